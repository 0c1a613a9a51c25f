"""Fixtures of the end-to-end tests (defined in ``tests.e2e.processes``)."""

from tests.e2e.processes import stack_factory

__all__ = ["stack_factory"]
