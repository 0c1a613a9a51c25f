"""The infrastructure layer shared by every process."""
