"""Unit tests: pipeline steps over in-memory fakes."""
