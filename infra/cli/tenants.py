"""``switchboard tenants``: add tenants with their agents, list them, rotate API keys."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

import typer
from rich.table import Table

from contracts.fields import E164_PATTERN, is_identifier
from infra.cli.help_format import HelpCommand, HelpGroup
from infra.cli.output import USAGE_ERROR, fail, out, print_whole
from infra.cli.store import migrated_engine
from infra.cli.suggestions import zone_hint
from infra.settings import load_settings
from infra.store.records import AgentKind, Tenant
from infra.store.tenants import SqlTenantDirectory, validate_timezone

app = typer.Typer(
    cls=HelpGroup, help="Tenants, their voice agents and API keys.", no_args_is_help=True
)

TENANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""A tenant's name: it goes into URLs (``?tenant=NAME``) and commands as it is."""


@app.command("add", cls=HelpCommand)
def add(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The tenant's unique name.")],
    agent: Annotated[
        list[str] | None,
        typer.Option("--agent", metavar="AGENT_ID", help="A general-call agent id (repeatable)."),
    ] = None,
    health_check_agent: Annotated[
        list[str] | None,
        typer.Option(
            "--health-check-agent",
            metavar="AGENT_ID",
            help="A health-check agent id (repeatable).",
        ),
    ] = None,
    timezone: Annotated[
        str, typer.Option(metavar="ZONE", help="The tenant's IANA time zone.")
    ] = "UTC",
) -> None:
    """Add a tenant, bind its agents and print its API key (shown only once)."""
    if not TENANT_NAME.fullmatch(name):
        fail(
            f"invalid tenant name {name!r}",
            hint="1 to 64 letters, digits and ._-, starting with a letter or digit: e.g. acme",
            code=USAGE_ERROR,
        )
    bindings: list[tuple[str, AgentKind]] = [(a, "general") for a in agent or []]
    bindings += [(a, "health_check") for a in health_check_agent or []]
    if not bindings:
        fail(
            "a tenant needs at least one agent",
            hint="pass --agent AGENT_ID and/or --health-check-agent AGENT_ID",
            code=USAGE_ERROR,
        )
    try:
        validate_timezone(timezone)
    except ValueError as error:
        fail(f"invalid --timezone: {error}", hint=zone_hint(timezone), code=USAGE_ERROR)
    settings = load_settings()
    with migrated_engine(settings) as engine:
        directory = SqlTenantDirectory(engine)
        for agent_id, _kind in bindings:
            bound = directory.agent(agent_id)
            if bound is not None:
                fail(
                    f"agent {agent_id} already belongs to tenant {bound.tenant.name!r}",
                    hint="an agent belongs to one tenant: bind another agent id",
                )
        try:
            tenant, key = directory.add_tenant(name, timezone=timezone)
        except ValueError as error:
            # The zone is valid by now: the name is taken.
            fail(str(error), hint="pick another name; `switchboard tenants list` shows those taken")
        for agent_id, kind in bindings:
            directory.bind_agent(tenant.id, agent_id, kind=kind)
    console = out()
    console.print(f"Added tenant {tenant.name} ({tenant.id}), time zone {tenant.timezone}.")
    for agent_id, kind in bindings:
        console.print(f"  agent {agent_id} ({kind})")
    console.print("API key (it will not be shown again; store it now):")
    console.print(key, markup=False)


@app.command("list", cls=HelpCommand)
def list_tenants(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON array (for scripts) instead.")
    ] = False,
) -> None:
    """List every tenant with its agents."""
    settings = load_settings()
    with migrated_engine(settings) as engine:
        tenants = SqlTenantDirectory(engine).list_tenants()
    if as_json:
        typer.echo(json.dumps([_tenant_json(t, agents) for t, agents in tenants], indent=2))
        return
    console = out()
    if not tenants:
        console.print("No tenants yet: add one with `switchboard tenants add NAME --agent ID`.")
        return
    table = Table("Name", "ID", "Time zone", "Agents", title="Tenants")
    for tenant, agents in tenants:
        listed = "\n".join(f"{agent_id} ({kind})" for agent_id, kind in agents) or "-"
        table.add_row(tenant.name, tenant.id, tenant.timezone, listed)
    print_whole(console, table)


def _tenant_json(tenant: Tenant, agents: list[tuple[str, AgentKind]]) -> dict[str, Any]:
    return {
        "id": tenant.id,
        "name": tenant.name,
        "timezone": tenant.timezone,
        "created_at": tenant.created_at.isoformat(),
        "agents": [{"agent_id": agent_id, "kind": kind} for agent_id, kind in agents],
    }


@app.command("key", cls=HelpCommand)
def key(name: Annotated[str, typer.Argument(metavar="NAME", help="The tenant's name.")]) -> None:
    """Issue a new API key for a tenant; its old key stops working."""
    settings = load_settings()
    with migrated_engine(settings) as engine:
        try:
            new_key = SqlTenantDirectory(engine).rotate_key(name)
        except LookupError:
            fail(
                f"no tenant named {name!r}",
                hint="`switchboard tenants list` shows them",
                code=USAGE_ERROR,
            )
    console = out()
    console.print(f"New API key of {name} (the old key no longer works; shown only once):")
    console.print(new_key, markup=False)


@app.command("call-line", cls=HelpCommand)
def call_line(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The tenant's name.")],
    agent: Annotated[
        str | None,
        typer.Option(
            "--agent",
            metavar="AGENT_ID",
            help="The telephony agent id for the tenant's outbound calls.",
        ),
    ] = None,
    caller_id: Annotated[
        str | None,
        typer.Option("--caller-id", metavar="NUMBER", help="The number to call from, E.164."),
    ] = None,
    reset: Annotated[
        bool,
        typer.Option(
            "--reset",
            help="Go back to the defaults, SWITCHBOARD_CALLKARO__AGENT_ID and __CALLER_ID.",
        ),
    ] = False,
) -> None:
    """Set the agent and caller id of a tenant's outbound calls (daily calls, callbacks).

    Without options, print them. They override SWITCHBOARD_CALLKARO__AGENT_ID and
    SWITCHBOARD_CALLKARO__CALLER_ID for this tenant's calls queued from now on.
    """
    if agent is not None and not is_identifier(agent):
        fail(
            f"invalid --agent {agent!r}", hint="1 to 128 letters, digits and ._:-", code=USAGE_ERROR
        )
    if caller_id is not None and not re.fullmatch(E164_PATTERN, caller_id):
        fail(
            f"invalid --caller-id {caller_id!r}",
            hint="an E.164 number, e.g. +14155550123",
            code=USAGE_ERROR,
        )
    settings = load_settings()
    with migrated_engine(settings) as engine:
        directory = SqlTenantDirectory(engine)
        try:
            if reset or agent is not None or caller_id is not None:
                current = (None, None) if reset else directory.call_line(name)
                directory.set_call_line(
                    name,
                    agent_id=agent if agent is not None else current[0],
                    caller_id=caller_id if caller_id is not None else current[1],
                )
            line = directory.call_line(name)
        except LookupError:
            fail(
                f"no tenant named {name!r}",
                hint="`switchboard tenants list` shows them",
                code=USAGE_ERROR,
            )
    out().print(
        f"{name}: outbound agent {line[0] or '(default)'}, caller id {line[1] or '(default)'}",
        markup=False,
    )
