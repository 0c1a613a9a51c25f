"""Falcon resources: each gets its collaborators in ``__init__`` and keeps no request state."""
