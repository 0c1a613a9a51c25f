"""Render the settings reference: ``infra/deploy/example.env`` and the README's table.

Both are generated from ``Settings`` so they cannot fall behind it; tests compare them
with what this module renders. Regenerate with ``make docs``.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from infra.settings import LEGACY_NAMES, describe_variables

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_ENV = ROOT / "infra" / "deploy" / "example.env"
README = ROOT / "README.md"
_TABLE = re.compile(r"(<!-- settings-table:start -->\n).*?(<!-- settings-table:end -->)", re.S)

_EVERY_INTERFACE = "0.0.0.0"  # noqa: S104 (the container's; compose publishes none of these ports)

IMAGE_ENV = {
    "SWITCHBOARD_ENVIRONMENT": "production",
    "SWITCHBOARD_DATA_DIR": "/var/lib/switchboard",
    "SWITCHBOARD_API__PROMETHEUS_HOST": _EVERY_INTERFACE,
    "SWITCHBOARD_WORKER__PROMETHEUS_HOST": _EVERY_INTERFACE,
    "SWITCHBOARD_SCHEDULER__PROMETHEUS_HOST": _EVERY_INTERFACE,
}
"""What the Dockerfile's ``ENV`` sets (tests/deploy checks the two agree).

example.env leaves these commented out: an env file copied from it must not override
the image (a relative data dir under the root-owned ``/app`` cannot be created by the
image's non-root user; metrics bound to the container's loopback cannot be scraped).
"""

COMPOSE_SUPPLIES = {
    "SWITCHBOARD_ALLOW_LOCAL": (
        "analyzer,embedder,vectors,transcripts,telephony",
        "so that the stack starts with no vendor key. Once the keys are in, set it here, "
        "empty: then none is allowed, and a missing key stops a process.",
    ),
}
"""Settings docker-compose.yml gives a value of its own while .env does not set them.

Name -> (the value compose sets, why and what to set instead). Compose reads them as
``${NAME-value}``, without a colon, so that an empty value in .env is a value that wins
(for SWITCHBOARD_ALLOW_LOCAL: none allowed); example.env therefore leaves them commented
out, saying what compose sets instead.
"""

COMPOSE_REQUIRES = {
    "SWITCHBOARD_CALLKARO__WEBHOOK_SECRET": (
        "the API verifies the telephony webhooks with it, and shares no data directory with "
        "the worker where the simulator could keep a secret of its own. With a CallKaro "
        "key, set the one CallKaro signs with."
    ),
}
"""Settings docker-compose.yml requires (``${NAME:?…}``), with why; example.env says so."""

COMPOSE_VARIABLES = {
    "GRAFANA_ADMIN_PASSWORD": "Grafana's admin password; compose refuses to start without it.",
}
"""Variables docker-compose.yml itself requires (``${NAME:?…}``), beside the settings."""

COMPOSE_OPTIONAL_VARIABLES = {
    "REDIS_MAXMEMORY": (
        "1gb",
        "Redis's memory limit (maxmemory). Full, it refuses writes (noeviction) rather than "
        "drop queued messages: publishing fails, accepted jobs wait in the inbox, and the "
        "relay publishes them once there is room.",
    ),
}
"""Variables docker-compose.yml itself reads with a default (``${NAME:-default}``), beside
the settings: name -> (that default, what it is). example.env sets them to the default."""


def render_example_env() -> str:
    """The text of example.env: every variable with its default, grouped by section."""
    lines = [
        "# Every variable Switchboard reads, with its default. For docker compose, copy it to",
        "# infra/deploy/.env: next to docker-compose.yml, where its `env_file: .env` resolves.",
        "# Empty values fall back to the embedded defaults (Valkey, SQLite, local adapters).",
        "# Nested sections use a double underscore: SWITCHBOARD_<SECTION>__<FIELD>.",
    ]
    section = None
    for name, default, description in describe_variables():
        current = name.split("__")[0].removeprefix("SWITCHBOARD_") if "__" in name else "general"
        if current != section:
            section = current
            lines += ["", f"# --- {section.lower()} ---"]
        lines += [f"# {description}", *_setting_lines(name, default)]
    lines += ["", "# --- docker compose (infra/deploy/docker-compose.yml) ---"]
    for name, description in COMPOSE_VARIABLES.items():
        lines += [f"# {description}", f"{name}="]
    for name, (default, description) in COMPOSE_OPTIONAL_VARIABLES.items():
        lines += [*_comment(description), f"{name}={default}"]
    lines += ["", "# --- names of the old Node services, accepted with lower priority ---"]
    lines += [
        f"# {legacy}=   (same as SWITCHBOARD_{section_name.upper()}__{field.upper()})"
        for legacy, (section_name, field) in LEGACY_NAMES.items()
    ]
    return "\n".join(lines) + "\n"


def _setting_lines(name: str, default: str) -> list[str]:
    # A pattern (SWITCHBOARD_ACTORS__<ACTOR>__…) is documented, not set.
    if "<" in name:
        return [f"# {name}="]
    if name in IMAGE_ENV:
        return [
            f"# The image sets {IMAGE_ENV[name]}; a value here would override it.",
            f"# {name}={default}",
        ]
    if name in COMPOSE_SUPPLIES:
        value, why = COMPOSE_SUPPLIES[name]
        note = f"docker-compose.yml sets {value} while this stays commented out, {why}"
        return [*_comment(note), f"# {name}={default}"]
    if name in COMPOSE_REQUIRES:
        note = f"docker-compose.yml refuses to start without it: {COMPOSE_REQUIRES[name]}"
        return [*_comment(note), f"{name}={default}"]
    return [f"{name}={default}"]


def _comment(text: str) -> list[str]:
    """``text`` as comment lines of at most 88 characters."""
    return [f"# {line}" for line in textwrap.wrap(text, width=86)]


def render_table() -> str:
    """The README's settings table in Markdown."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, default, description in describe_variables():
        shown = (f"`{default}`" if default else "—").replace("|", "\\|")
        rows.append(f"| `{name}` | {shown} | {description} |")
    return "\n".join(rows) + "\n"


def readme_with_table(readme: str) -> str:
    """The README text with its settings table replaced by the rendered one."""
    return _TABLE.sub(lambda m: m.group(1) + render_table() + m.group(2), readme)


def main() -> None:
    """Rewrite example.env and the README's settings table."""
    EXAMPLE_ENV.write_text(render_example_env(), encoding="utf-8")
    README.write_text(readme_with_table(README.read_text("utf-8")), encoding="utf-8")


if __name__ == "__main__":
    main()
