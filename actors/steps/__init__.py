"""Pipeline steps: plain functions over contracts and ports."""
