"""The ``switchboard`` command line (typer + rich)."""
