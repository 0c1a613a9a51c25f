"""``switchboard users``: add the users called every day, list them, show their calls.

Values are validated by ``contracts.users.NewUser``, the model the HTTP API uses, so
both refuse the same values with the same messages; here each names the option to fix
and exits 2, like click's own usage errors. An unknown tenant or user exits 1.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time
from typing import Annotated, Any, NoReturn
from zoneinfo import ZoneInfo

import pydantic
import sqlalchemy as sa
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from contracts.users import NewUser
from infra.cli.help_format import HelpCommand, HelpGroup
from infra.cli.output import USAGE_ERROR, fail, out, print_whole
from infra.cli.store import migrated_engine
from infra.cli.suggestions import zone_hint
from infra.documents import call_document, user_document
from infra.settings import Settings, load_settings
from infra.store.dialing import call_book
from infra.store.records import UserRecord
from infra.store.tenants import SqlTenantDirectory
from infra.store.users import SqlUsers, users_of

app = typer.Typer(
    cls=HelpGroup,
    help="Users called every day at their local time, and their calls.",
    no_args_is_help=True,
)


_OPTIONS = {
    "name": "--name",
    "phone": "--phone",
    "local_tz": "--tz",
    "call_time": "--time",
    "window_start": "--window",
    "window_end": "--window",
    "call_enabled": "--disabled",
}
"""The option of each ``NewUser`` field."""

_HINTS = {
    "--name": "give the user's name, 1 to 200 characters",
    "--phone": "give the number in E.164: +, the country code and the number, e.g. +14155550123",
    "--time": "give the local call time as HH:MM or HH:MM:SS, e.g. 09:30",
    "--window": "give the calling window as HH:MM-HH:MM around --time, e.g. 09:00-11:00",
}

_FIELD_WORDS = {
    "call_time": "--time",
    "window_start": "the window's start",
    "window_end": "the window's end",
}
"""Field names in ``NewUser``'s messages, as a user of the command knows them."""


_TENANT_HINT = (
    "`switchboard tenants list` shows the tenants; "
    "`switchboard tenants add NAME --agent AGENT_ID` adds one"
)


def _invalid(option: str, message: str, *, hint: str | None = None) -> NoReturn:
    for field, words in _FIELD_WORDS.items():
        message = message.replace(field, words)
    fail(f"invalid {option}: {message}", hint=hint or _HINTS.get(option), code=USAGE_ERROR)


def _new_user(fields: dict[str, Any]) -> NewUser:
    """Validate the options as a ``NewUser``; exit 2 naming the first invalid option."""
    try:
        return NewUser.model_validate(fields)
    except pydantic.ValidationError as error:
        first = error.errors(include_input=False, include_url=False)[0]
        field = str(first["loc"][0]) if first["loc"] else "window_end"
        # A zone is one of some 600 names: offer the ones closest to what was typed.
        hint = zone_hint(fields["local_tz"]) if field == "local_tz" else None
        _invalid(_OPTIONS.get(field, field), first["msg"].removeprefix("Value error, "), hint=hint)


def _window(value: str | None) -> dict[str, str]:
    if value is None:
        return {}
    start, dash, end = value.partition("-")
    if not dash:
        _invalid("--window", f"{value!r} is not two local times HH:MM-HH:MM")
    return {"window_start": start.strip(), "window_end": end.strip()}


def _users(settings: Settings, engine: sa.Engine) -> SqlUsers:
    return users_of(engine, settings.daily_calls)


@app.command("add", cls=HelpCommand)
def add(
    tenant: Annotated[str, typer.Option(metavar="NAME", help="The user's tenant (its name).")],
    name: Annotated[str, typer.Option(metavar="NAME", help="The user's name.")],
    phone: Annotated[
        str, typer.Option(metavar="NUMBER", help="The number to call, E.164 (+14155550123).")
    ],
    tz: Annotated[
        str, typer.Option("--tz", metavar="ZONE", help="The user's IANA time zone (Europe/London).")
    ],
    call_time: Annotated[
        str, typer.Option("--time", metavar="HH:MM", help="Local call time (or HH:MM:SS).")
    ],
    window: Annotated[
        str | None,
        typer.Option(
            metavar="HH:MM-HH:MM",
            help="Local window for retries, containing --time.",
            show_default="retries until the end of the local day",
        ),
    ] = None,
    disabled: Annotated[
        bool, typer.Option("--disabled", help="Add the user with daily calls off.")
    ] = False,
) -> None:
    """Add a user to call every day; print their id and next call."""
    user = _new_user(
        {
            "name": name,
            "phone": phone,
            "local_tz": tz,
            "call_time": call_time,
            "call_enabled": not disabled,
            **_window(window),
        }
    )
    settings = load_settings()
    with migrated_engine(settings) as engine:
        users = _users(settings, engine)
        tenant_id = users.tenant_id_by_name(tenant)
        if tenant_id is None:
            fail(f"no tenant named {tenant!r}", hint=_TENANT_HINT, code=USAGE_ERROR)
        record = users.add_user(tenant_id, user)
    console = out()
    console.print(f"Added user {record.id} ({record.name}) to tenant {tenant}.", markup=False)
    console.print(f"Next call: {_next_call(record)}.", markup=False)


@app.command("list", cls=HelpCommand)
def list_users(
    tenant: Annotated[
        str | None,
        typer.Option(
            metavar="NAME", help="Only this tenant's users.", show_default="every tenant's"
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, metavar="N", help="Show at most this many users.")
    ] = 100,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON array (for scripts) instead.")
    ] = False,
) -> None:
    """List users by name with their call time and next call."""
    settings = load_settings()
    with migrated_engine(settings) as engine:
        users = _users(settings, engine)
        tenant_id = None
        if tenant is not None:
            tenant_id = users.tenant_id_by_name(tenant)
            if tenant_id is None:
                fail(f"no tenant named {tenant!r}", hint=_TENANT_HINT, code=USAGE_ERROR)
        records = users.list_users(tenant_id=tenant_id, limit=limit)
        names = _tenant_names(engine)
    if as_json:
        typer.echo(json.dumps([_user_json(r, names) for r in records], indent=2))
        return
    console = out()
    if not records:
        console.print(
            "No users yet: add one with `switchboard users add --tenant NAME --name NAME "
            "--phone +E164 --tz ZONE --time HH:MM`.",
            markup=False,
        )
        return
    table = Table(title=f"Users of {tenant}" if tenant else "Users")
    for column in ("ID", "Name", "Phone", "Zone", "Call time", "Enabled", "Next call (local)"):
        table.add_column(column, no_wrap=True)
    if tenant is None:
        table.add_column("Tenant", no_wrap=True)
    for record in records:
        prefs = record.preferences
        row = [
            record.id,
            record.name,
            record.phone,
            prefs.local_tz,
            _clock(prefs.call_time),
            "yes" if prefs.call_enabled else "no",
            _local(record.next_call_at, prefs.local_tz) if record.next_call_at else "-",
        ]
        if tenant is None:
            row.append(names.get(record.tenant_id, record.tenant_id))
        table.add_row(*(Text(cell) for cell in row))
    print_whole(console, table)
    if len(records) == limit:
        console.print(f"(the first {limit} users; pass --limit for more)")


@app.command("show", cls=HelpCommand)
def show(
    user_id: Annotated[
        str, typer.Argument(metavar="USER_ID", help="The user's id (`switchboard users list`).")
    ],
    limit: Annotated[
        int, typer.Option(min=1, max=500, metavar="N", help="Show at most this many recent calls.")
    ] = 20,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON object (for scripts) instead.")
    ] = False,
) -> None:
    """Show a user, their call preferences and their recent calls, newest first."""
    settings = load_settings()
    with migrated_engine(settings) as engine:
        record = _users(settings, engine).get_user(user_id, tenant_id=None)
        if record is None:
            fail(
                f"no user {user_id}",
                hint="`switchboard users list` shows their ids",
                code=USAGE_ERROR,
            )
        calls = call_book(engine, settings.daily_calls).calls_of_user(record.id, limit=limit)
        names = _tenant_names(engine)
    if as_json:
        document = {**_user_json(record, names), "calls": [call_document(c) for c in calls]}
        typer.echo(json.dumps(document, indent=2))
        return
    console = out()
    _print_user(console, record, names)
    if not calls:
        console.print("No calls yet.")
        return
    table = Table(title="Recent calls")
    for column in ("Local date", "Attempt", "Status", "Due (UTC)", "Ended (UTC)", "Secs", "ID"):
        table.add_column(column, no_wrap=True)
    table.add_column("Error")
    for call in calls:
        table.add_row(
            *(
                Text(cell)
                for cell in (
                    call.local_date.isoformat() if call.local_date else "-",
                    str(call.attempt),
                    call.status,
                    _utc(call.due_at),
                    _utc(call.ended_at),
                    "-" if call.duration_secs is None else str(call.duration_secs),
                    call.id,
                    call.error or "",
                )
            )
        )
    print_whole(console, table)


def _print_user(console: Console, record: UserRecord, names: dict[str, str]) -> None:
    prefs = record.preferences
    window = (
        f"{_clock(prefs.window_start)}-{_clock(prefs.window_end)}"
        if prefs.window_start and prefs.window_end
        else "none (retries until the end of the local day)"
    )
    lines = [
        f"User {record.id}",
        f"  Name:        {record.name}",
        f"  Tenant:      {names.get(record.tenant_id, '?')} ({record.tenant_id})",
        f"  Phone:       {record.phone}",
        f"  Zone:        {prefs.local_tz}",
        f"  Call time:   {_clock(prefs.call_time)}",
        f"  Window:      {window}",
        f"  Calls:       {'on' if prefs.call_enabled else 'off'}",
        f"  Next call:   {_next_call(record)}",
        f"  Added:       {_utc(record.created_at)}",
    ]
    for line in lines:
        console.print(line, markup=False)


def _tenant_names(engine: sa.Engine) -> dict[str, str]:
    return {tenant.id: tenant.name for tenant, _ in SqlTenantDirectory(engine).list_tenants()}


def _clock(value: time | None) -> str:
    if value is None:
        return "-"
    return value.strftime("%H:%M:%S" if value.second else "%H:%M")


def _local(moment: datetime, zone: str) -> str:
    local = moment.astimezone(ZoneInfo(zone))
    return f"{local:%Y-%m-%d} {_clock(local.time())}"


def _utc(moment: datetime | None) -> str:
    return "-" if moment is None else f"{_local(moment, 'UTC')} UTC"


def _next_call(record: UserRecord) -> str:
    if record.next_call_at is None:
        return "none (daily calls are off)"
    zone = record.preferences.local_tz
    return f"{_local(record.next_call_at, zone)} {zone} ({_utc(record.next_call_at)})"


def _user_json(record: UserRecord, names: dict[str, str]) -> dict[str, Any]:
    return {**user_document(record), "tenant": names.get(record.tenant_id)}


def _iso(value: date | time | None) -> str | None:
    return None if value is None else value.isoformat()
