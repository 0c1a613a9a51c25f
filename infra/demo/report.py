"""The demo's closing report: what the pipelines made of each sample call."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from infra.demo.samples import Sample

TOPICS = 3


def _callback(view: dict[str, Any]) -> str:
    callback = view.get("callback")
    if not callback:
        return "-"
    due = datetime.fromisoformat(callback["due_at"]).astimezone(UTC)
    return f"{due:%d %b %H:%M}Z"


def _short_id(conversation_id: str) -> str:
    return conversation_id.removeprefix("conv_")


def _conversation(sample: Sample, view: dict[str, Any]) -> str:
    status = view.get("status", "unknown")
    marker = "" if status == "completed" else f"\n[bold red]{status}[/]"
    return f"{_short_id(sample.conversation_id)}{marker}"


def _answers(view: dict[str, Any]) -> str:
    lines = []
    for answer in view.get("health_answers") or []:
        value = answer.get("value")
        unit = answer.get("unit")
        measured = f" = {value:g}{' ' + unit if unit else ''}" if value is not None else ""
        lines.append(f"{answer['question']}: {answer['answer']}{measured}")
    return "\n".join(lines) or "-"


def general_table(
    samples: list[Sample],
    views: dict[str, dict[str, Any]],
    similar: Callable[[str], list[tuple[str, float]]],
) -> Table:
    """One row per general call, readable at 80 columns.

    The details cell holds four lines: the sample's title, the summary (cut to the
    width), the topics and the most similar calls.
    """
    table = Table(title="General calls", show_lines=True, expand=True)
    table.add_column("Call", no_wrap=True)
    table.add_column("Details", ratio=1, no_wrap=True, overflow="ellipsis")
    table.add_column("Mood", no_wrap=True)
    table.add_column("Callback", no_wrap=True)
    for sample in samples:
        view = views.get(sample.conversation_id, {})
        if sample.kind != "general":
            continue
        near = similar(sample.conversation_id) if view.get("status") == "completed" else []
        topics = ", ".join((view.get("topics") or [])[:TOPICS]) or "-"
        alike = ", ".join(_short_id(c) for c, _score in near) or "-"
        table.add_row(
            _conversation(sample, view),
            f"[bold]{escape(sample.title)}[/]\n{escape(view.get('summary') or '-')}\n"
            f"[dim]topics:[/] {escape(topics)}\n[dim]similar:[/] {alike}",
            view.get("sentiment") or "-",
            _callback(view),
        )
    return table


def health_table(samples: list[Sample], views: dict[str, dict[str, Any]]) -> Table:
    """One row per health-check call: the answers recorded."""
    table = Table(title="Health-check calls", show_lines=True)
    table.add_column("Conversation", no_wrap=True)
    table.add_column("Answers")
    for sample in samples:
        if sample.kind != "health_check":
            continue
        view = views.get(sample.conversation_id, {})
        table.add_row(
            _conversation(sample, view),
            f"[bold]{escape(sample.title)}[/]\n{escape(_answers(view))}",
        )
    return table


def checks_table(checks: list[tuple[str, str, bool]]) -> Table:
    """The intake checks: duplicate, bad signature, invalid body."""
    table = Table(title="Intake checks")
    for column in ("Expectation", "Got", "OK"):
        table.add_column(column)
    for name, got, ok in checks:
        table.add_row(name, got, "[green]yes[/]" if ok else "[red]no[/]")
    return table


def print_report(
    console: Console,
    samples: list[Sample],
    views: dict[str, dict[str, Any]],
    checks: list[tuple[str, str, bool]],
    similar: Callable[[str], list[tuple[str, float]]],
) -> None:
    """Print the tables and the counts of calls by outcome."""
    console.print(checks_table(checks))
    console.print(general_table(samples, views, similar))
    console.print(health_table(samples, views))
    outcomes = Counter(views.get(s.conversation_id, {}).get("status", "unknown") for s in samples)
    console.print(
        "outcomes: " + ", ".join(f"{status} {count}" for status, count in sorted(outcomes.items()))
    )
