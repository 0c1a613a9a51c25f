"""``switchboard forget``: delete one call's or one user's data on request, everywhere.

``forget call CONVERSATION_ID --tenant NAME`` deletes the call's vectors, its rows
(jobs with the webhook's transcript, steps, call log, health answers, callback,
callback calls and their status events, intake rejections of the id) and its dead
letters; ``forget user USER_ID`` does that for every call of the user's tenant from or
to their number, then deletes their daily calls, those calls' events, their dead
letters and their row (``infra.erasure``). Leads are not stored yet: when they are,
``forget lead`` joins these.

Each forget is recorded in the audit log, under ``--as NAME`` (else the OS user) with
``--reason``, and prints what it deleted. Forgetting again deletes nothing and says so.
Exit codes: 0 when everything is gone (or nothing was there), 1 when something was kept
(a call still being processed, dead letters the broker could not show) or a store failed
midway: run the same command again; 2 for a usage error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import sqlalchemy as sa
import typer
from rich.table import Table

from contracts.errors import TransientError
from contracts.fields import is_identifier
from infra.bus.broker import redis_client
from infra.bus.dead_letters import DeadLetters
from infra.cli.help_format import HelpCommand, HelpGroup
from infra.cli.index import vector_index
from infra.cli.operator import AsOption, ReasonOption, operator
from infra.cli.operator import reason as reason_text
from infra.cli.output import USAGE_ERROR, err, fail, out, print_whole
from infra.cli.store import migrated_engine
from infra.dlq import DeadLetterDesk
from infra.embedded import running_server
from infra.erasure import DeskBin, Eraser, Erasure
from infra.settings import Settings, load_settings
from infra.store.audit import SqlAudit
from infra.store.erasure import LABELS, CallKey, SqlErasure
from infra.store.progress import SqlJobProgress
from infra.store.tenants import SqlTenantDirectory

app = typer.Typer(
    cls=HelpGroup,
    help="Delete one call's or one user's data on request, vectors and dead letters included.",
    no_args_is_help=True,
)


@contextmanager
def _dead_letter_bin(settings: Settings, engine: sa.Engine) -> Iterator[DeskBin | None]:
    """The broker's dead letters, or None without a broker (they are reported kept)."""
    url = settings.broker.url
    if not url:
        record = running_server(settings.data_dir)
        url = record.url if record is not None else None
    if url is None:
        yield None
        return
    client = redis_client(settings.broker, url)
    try:
        letters = DeadLetters(client, settings.broker.namespace)
        yield DeskBin(letters, DeadLetterDesk(letters, SqlJobProgress(engine), SqlAudit(engine)))
    finally:
        client.close()


def _forget(settings: Settings, engine: sa.Engine, act: Callable[[Eraser], Erasure]) -> Erasure:
    with vector_index(settings, engine) as index, _dead_letter_bin(settings, engine) as bin_:
        eraser = Eraser(SqlErasure(engine), index, SqlAudit(engine), bin_)
        try:
            return act(eraser)
        except TransientError as error:
            fail(
                f"forget stopped: {error}",
                hint="what was deleted stays deleted: run the same command again to finish",
            )


@app.command("call", cls=HelpCommand)
def call(
    conversation_id: Annotated[
        str, typer.Argument(metavar="CONVERSATION_ID", help="The voice platform's id.")
    ],
    tenant: Annotated[str, typer.Option(metavar="NAME", help="The call's tenant.")],
    reason: ReasonOption,
    who: AsOption = None,
) -> None:
    """Delete one call: its transcript, summary, health answers, callback, vectors, dead letters."""
    actor, why = operator(who), reason_text(reason)
    if not is_identifier(conversation_id):
        fail(f"{conversation_id!r} is not a conversation id", code=USAGE_ERROR)
    settings = load_settings()
    with migrated_engine(settings) as engine:
        found = SqlTenantDirectory(engine).tenant_by_name(tenant)
        if found is None:
            fail(
                f"no tenant named {tenant!r}",
                hint="`switchboard tenants list` shows them",
                code=USAGE_ERROR,
            )
        key = CallKey(found.id, conversation_id)
        erasure = _forget(
            settings,
            engine,
            lambda eraser: eraser.forget_call(key, tenant_name=found.name, actor=actor, reason=why),
        )
    _show(erasure)


@app.command("user", cls=HelpCommand)
def user(
    user_id: Annotated[str, typer.Argument(metavar="USER_ID", help="The user's id (usr_…).")],
    reason: ReasonOption,
    who: AsOption = None,
) -> None:
    """Delete one user: their calls (by their number), daily calls, dead letters and row."""
    actor, why = operator(who), reason_text(reason)
    if not is_identifier(user_id):
        fail(f"{user_id!r} is not a user id", code=USAGE_ERROR)
    settings = load_settings()
    with migrated_engine(settings) as engine:
        erasure = _forget(
            settings,
            engine,
            lambda eraser: eraser.forget_user(user_id, actor=actor, reason=why),
        )
    _show(erasure)


def _show(erasure: Erasure) -> None:
    console = out()
    if erasure.deleted:
        table = Table("What", "Deleted", title=f"Forgot {erasure.subject}")
        for label in LABELS:
            if erasure.deleted[label]:
                table.add_row(label, str(erasure.deleted[label]))
        print_whole(console, table)
        if erasure.calls and erasure.subject.startswith("user"):
            calls = ", ".join(key.conversation_id for key in erasure.calls)
            console.print(f"Calls from or to their number: {calls}", markup=False)
    elif erasure.complete:
        console.print(
            f"Nothing left of {erasure.subject} (forgotten already, or never stored).",
            markup=False,
        )
    for why in erasure.left:
        console.print(f"Left {why}", markup=False)
    console.print("Recorded in the audit log (`switchboard dlq audit --action forget`).")
    if not erasure.complete:
        for why in erasure.kept:
            err().print(f"kept {why}", markup=False)
        fail(
            f"{erasure.subject} is not wholly forgotten yet",
            hint="run the same command again once what was kept is free",
        )
