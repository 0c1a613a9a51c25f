"""``switchboard db``: migrate the database and report its revision."""

from __future__ import annotations

import sqlalchemy as sa
import typer

from contracts.errors import TransientError
from infra.cli.help_format import HelpCommand, HelpGroup
from infra.cli.output import fail, out
from infra.cli.store import URL_HINT, existing_url, sqlite_file, usable_url
from infra.logs import configure_logging
from infra.settings import load_settings
from infra.store.engine import create_engine, redact
from infra.store.migrate import current_revision, head_revision, upgrade

app = typer.Typer(
    cls=HelpGroup, help="The SQL database: migrations and status.", no_args_is_help=True
)


@app.command("upgrade", cls=HelpCommand)
def upgrade_command() -> None:
    """Migrate the database to the latest revision (idempotent).

    Alembic's lines (each revision applied) go through the process's logging: with JSON
    logs on (a migration job in production), every line printed is JSON, this
    command's own included.
    """
    settings = load_settings()
    configure_logging(settings, process="migrate")
    url = usable_url(settings)
    path = sqlite_file(url)
    new = path is not None and not path.exists()
    try:
        upgrade(url)
    except (TransientError, sa.exc.OperationalError) as error:
        fail(f"cannot reach the database {redact(url)}: {error}", hint=URL_HINT)
    created = f" (created now, at {path})" if new else ""
    out().print(
        f"Database {redact(url)}{created} is at revision {head_revision()} (latest).",
        markup=False,
    )


@app.command("status", cls=HelpCommand)
def status() -> None:
    """Show the database's revision; exit 1 when it is not migrated to the latest."""
    settings = load_settings()
    url = existing_url(settings)
    engine = create_engine(url, echo=settings.database.echo)
    try:
        current = current_revision(engine)
    except (TransientError, sa.exc.OperationalError) as error:
        fail(f"cannot reach the database {redact(url)}: {error}", hint=URL_HINT)
    finally:
        engine.dispose()
    head = head_revision()
    console = out()
    console.print(f"Database: {redact(url)}")
    console.print(f"Revision: {current or 'empty'} (latest: {head})")
    if current != head:
        fail("the database is not migrated", hint="run `switchboard db upgrade`")
    console.print("Up to date.")
