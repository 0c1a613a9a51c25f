"""One module per workflow: its ports and its pipeline."""
