"""Vendor adapters and their deterministic local counterparts."""
