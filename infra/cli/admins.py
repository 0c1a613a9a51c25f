"""``switchboard admins``: named admin and viewer tokens for the API (and the console).

A token is printed once, when it is made; only its hash is stored. The audit log names
its holder. ``SWITCHBOARD_ADMIN_TOKEN`` stays as the bootstrap admin.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from contracts.fields import is_identifier
from infra.cli.help_format import HelpCommand, HelpGroup
from infra.cli.output import USAGE_ERROR, fail, out, print_whole
from infra.cli.store import migrated_engine
from infra.settings import load_settings
from infra.store.admins import ROLES, Role, SqlAdminTokens

app = typer.Typer(cls=HelpGroup, help="Named admin and viewer tokens.", no_args_is_help=True)


@app.command("add", cls=HelpCommand)
def add(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="Who holds the token (the audit log's name).")
    ],
    role: Annotated[
        str, typer.Option(metavar="ROLE", help="admin (may change things) or viewer (may look).")
    ],
) -> None:
    """Make a token and print it (shown only once; store it now)."""
    if role not in ROLES:
        fail(f"invalid --role {role!r}", hint="use --role admin or --role viewer", code=USAGE_ERROR)
    with migrated_engine(load_settings()) as engine:
        try:
            token, secret = SqlAdminTokens(engine).add(name, _role(role))
        except ValueError as error:
            # The role is known by now. A malformed name's message says what a name is;
            # a well-formed one is taken.
            taken = is_identifier(name)
            fail(
                str(error),
                hint="`switchboard admins list` shows the names in use" if taken else None,
                code=1 if taken else USAGE_ERROR,
            )
    console = out()
    console.print(f"Added {token.role} token {token.name}.", markup=False)
    console.print("Token (it will not be shown again; store it now):")
    console.print(secret, markup=False)


@app.command("list", cls=HelpCommand)
def list_tokens(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array instead.")] = False,
) -> None:
    """Every named token, active or revoked (never the tokens themselves)."""
    with migrated_engine(load_settings()) as engine:
        tokens = SqlAdminTokens(engine).tokens()
    if as_json:
        documents = [
            {
                "name": t.name,
                "role": t.role,
                "created_at": t.created_at.isoformat(),
                "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
            }
            for t in tokens
        ]
        typer.echo(json.dumps(documents, indent=2))
        return
    console = out()
    if not tokens:
        console.print("No named tokens yet: add one with `switchboard admins add NAME --role …`.")
        return
    table = Table("Name", "Role", "Created (UTC)", "Revoked (UTC)", title="Admin tokens")
    for token in tokens:
        table.add_row(
            token.name,
            token.role,
            f"{token.created_at:%Y-%m-%d %H:%M}",
            f"{token.revoked_at:%Y-%m-%d %H:%M}" if token.revoked_at else "-",
        )
    print_whole(console, table)


@app.command("revoke", cls=HelpCommand)
def revoke(name: Annotated[str, typer.Argument(metavar="NAME", help="The token's name.")]) -> None:
    """Revoke a token: it stops working at once (its name stays, for the audit log)."""
    with migrated_engine(load_settings()) as engine:
        revoked = SqlAdminTokens(engine).revoke(name)
    if not revoked:
        fail(
            f"no active token named {name!r}",
            hint="`switchboard admins list` shows them",
            code=USAGE_ERROR,
        )
    out().print(f"Revoked {name}.", markup=False)


def _role(value: str) -> Role:
    return "admin" if value == "admin" else "viewer"
