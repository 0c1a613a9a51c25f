"""Who acts and why, for the audit log: the ``--as`` and ``--reason`` of writing commands.

``switchboard dlq`` and ``switchboard forget``/``purge`` record every change in the audit
log under the operator's name: ``--as NAME``, else the OS user.
"""

from __future__ import annotations

import getpass
from typing import Annotated

import typer

from infra.cli.output import USAGE_ERROR, fail
from infra.store.audit import MAX_REASON_CHARS

ReasonOption = Annotated[
    str, typer.Option(metavar="TEXT", help="Why, in your words, for the audit log.")
]
AsOption = Annotated[
    str | None,
    typer.Option(
        "--as", metavar="NAME", help="Who acts, for the audit log.", show_default="the OS user"
    ),
]


def operator(name: str | None) -> str:
    """The name the audit log records: ``--as NAME``, else the OS user (exits on neither)."""
    if name is not None:
        if not name.strip():
            fail("--as needs a name", code=USAGE_ERROR)
        return name.strip()
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (a bare container)
        fail("cannot tell who you are for the audit log", hint="pass --as NAME")


def reason(text: str) -> str:
    """``--reason``, stripped (exits 2 when it says nothing)."""
    if not text.strip():
        fail(
            "--reason must say why",
            hint='e.g. --reason "INC-123: fixed upstream"',
            code=USAGE_ERROR,
        )
    if len(text.strip()) > MAX_REASON_CHARS:
        fail(
            f"--reason must be at most {MAX_REASON_CHARS} characters",
            hint="say why in a sentence; a ticket id (INC-123) can point to the rest",
            code=USAGE_ERROR,
        )
    return text.strip()
