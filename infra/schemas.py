"""Export contract schemas (JSON Schema + AsyncAPI) and detect breaking changes.

Non-Python producers publish from ``contracts/schemas/``; ``switchboard contracts check``
compares the committed snapshot with the code, like ``buf breaking`` does for protobuf.
A change is breaking when a consumer built on the old schema could reject or misread a
message built on the new one, or the other way round: a property removed or retyped, a
property newly required, an enum value removed, a contract removed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import contracts
from contracts import CONTRACTS, Contract

ASYNCAPI_FILE = "asyncapi.json"


def contract_schema(contract: type[Contract]) -> dict[str, Any]:
    """The JSON Schema of one contract, with its route and version."""
    schema = contract.model_json_schema(mode="validation")
    schema["x-switchboard"] = {
        "queue": contract.route.queue,
        "actor": contract.route.actor,
        "schema_version": contract.model_fields["schema_version"].default,
    }
    return schema


def rendered_schemas() -> dict[str, str]:
    """File name → file text of every schema the code defines now."""
    files = {f"{c.__name__}.json": _dump(contract_schema(c)) for c in CONTRACTS}
    files[ASYNCAPI_FILE] = _dump(asyncapi_document())
    return files


def export_schemas(directory: Path) -> list[Path]:
    """Write one JSON Schema per contract and the AsyncAPI document into ``directory``.

    Files of contracts that no longer exist are removed, so the directory is a snapshot.

    Returns:
        The paths written, sorted.
    """
    directory.mkdir(parents=True, exist_ok=True)
    files = rendered_schemas()
    for stale in directory.glob("*.json"):
        if stale.name not in files:
            stale.unlink()
    written = []
    for name, text in files.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return sorted(written)


def drift(directory: Path) -> list[str]:
    """Names of files whose committed text differs from what the code renders."""
    files = rendered_schemas()
    committed = {p.name for p in directory.glob("*.json")}
    changed = [
        name
        for name, text in files.items()
        if not (directory / name).exists() or (directory / name).read_text("utf-8") != text
    ]
    return sorted(changed + list(committed - files.keys()))


def check(directory: Path) -> list[str]:
    """Breaking changes of the code's contracts against the snapshot in ``directory``.

    Returns:
        One sentence per breaking change; empty when the change is additive.

    Raises:
        FileNotFoundError: ``directory`` holds no snapshot.
    """
    snapshot = sorted(p for p in directory.glob("*.json") if p.name != ASYNCAPI_FILE)
    if not snapshot:
        raise FileNotFoundError(f"no contract schemas in {directory}")
    current = {f"{c.__name__}.json": contract_schema(c) for c in CONTRACTS}
    problems: list[str] = []
    for path in snapshot:
        name = path.stem
        new = current.get(path.name)
        if new is None:
            problems.append(f"{name}: contract removed")
            continue
        old = json.loads(path.read_text("utf-8"))
        problems.extend(_compare_object(name, old, new))
        for def_name, old_def in old.get("$defs", {}).items():
            new_def = new.get("$defs", {}).get(def_name)
            if new_def is None:
                problems.append(f"{name}: type {def_name} removed")
            else:
                problems.extend(_compare_object(f"{name}.{def_name}", old_def, new_def))
    return problems


def version_problems(directory: Path) -> list[str]:
    """What is wrong with ``contracts.__version__`` for the change since the snapshot.

    The snapshot's version is the one its ``asyncapi.json`` records. A breaking change
    (``check``) needs a new major version, any other change to a contract's schema a
    greater version (a new minor one), and the version never goes back. A directory
    without a snapshot has nothing to compare with.

    Returns:
        One sentence per problem, saying which version would do; empty when it is right.
    """
    document = directory / ASYNCAPI_FILE
    if not document.exists():
        return []
    old = _version(json.loads(document.read_text("utf-8"))["info"]["version"])
    new = _version(contracts.__version__)
    if new < old:
        return [f"contracts.__version__ {_text(new)} is older than the snapshot's {_text(old)}"]
    breaking = check(directory)
    if breaking and new[0] <= old[0]:
        return [
            f"{len(breaking)} breaking change(s) need a new major version: set "
            f"contracts.__version__ to {old[0] + 1}.0.0 (it is {_text(new)})"
        ]
    if new == old and _contracts_changed(directory):
        return [
            "the contracts' schemas changed: set contracts.__version__ to "
            f"{old[0]}.{old[1] + 1}.0 (it is {_text(new)})"
        ]
    return []


def _version(text: str) -> tuple[int, int, int]:
    major, minor, patch = (int(part) for part in text.split("."))
    return major, minor, patch


def _text(version: tuple[int, int, int]) -> str:
    return ".".join(str(part) for part in version)


def _contracts_changed(directory: Path) -> bool:
    committed = {
        p.name: json.loads(p.read_text("utf-8"))
        for p in directory.glob("*.json")
        if p.name != ASYNCAPI_FILE
    }
    current = {f"{c.__name__}.json": contract_schema(c) for c in CONTRACTS}
    return committed != current


def asyncapi_document() -> dict[str, Any]:
    """An AsyncAPI 3.0 document: one channel per queue, one message per contract."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for c in CONTRACTS:
        name = c.__name__
        messages[name] = {
            "name": name,
            "title": name,
            "summary": (c.__doc__ or "").strip().splitlines()[0],
            "contentType": "application/json",
            "payload": {"$ref": f"./{name}.json"},
        }
        channels[c.route.queue] = {
            "address": c.route.queue,
            "description": f"Dramatiq queue consumed by the `{c.route.actor}` actor.",
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
        }
        operations[f"publish{name}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{c.route.queue}"},
            "messages": [{"$ref": f"#/channels/{c.route.queue}/messages/{name}"}],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Switchboard job contracts",
            "version": contracts.__version__,
            "description": (
                "Messages are Dramatiq messages on Redis whose single argument is the "
                "contract's JSON; options carry contract, schema_version, correlation_id, "
                "idempotency_key, job_id and tenant_id."
            ),
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def _dump(value: Mapping[str, Any]) -> str:
    return json.dumps(value, indent=2, sort_keys=True) + "\n"


def _compare_object(
    where: str,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
) -> Iterator[str]:
    old_props: Mapping[str, Any] = old.get("properties", {})
    new_props: Mapping[str, Any] = new.get("properties", {})
    for field, old_field in old_props.items():
        new_field = new_props.get(field)
        if new_field is None:
            yield f"{where}.{field}: property removed"
        elif _type_of(old_field) != _type_of(new_field):
            before, after = _type_of(old_field), _type_of(new_field)
            yield f"{where}.{field}: type changed from {before} to {after}"
        else:
            removed = set(old_field.get("enum", [])) - set(new_field.get("enum", []))
            if removed:
                yield f"{where}.{field}: enum values removed: {sorted(removed)}"
            yield from (f"{where}.{field}: {change}" for change in _tightened(old_field, new_field))
    for field in sorted(set(new.get("required", [])) - set(old.get("required", []))):
        yield f"{where}.{field}: newly required"


_LOWER_BOUNDS = ("minLength", "minimum", "exclusiveMinimum", "minItems")
_UPPER_BOUNDS = ("maxLength", "maximum", "exclusiveMaximum", "maxItems")


def _constraints(field: Mapping[str, Any]) -> dict[str, Any]:
    """The value constraints of a property, looking inside ``anyOf`` (nullable fields)."""
    found = {k: v for k, v in field.items() if k in (*_LOWER_BOUNDS, *_UPPER_BOUNDS, "pattern")}
    for option in field.get("anyOf", []):
        found.update(_constraints(option))
    return found


def _tightened(old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[str]:
    """Constraints that refuse values the old schema accepted."""
    before, after = _constraints(old), _constraints(new)
    for name, value in after.items():
        previous = before.get(name)
        if previous == value:
            continue
        if name == "pattern":
            yield (
                f"pattern {value!r} added" if previous is None else f"pattern changed to {value!r}"
            )
        elif previous is None:
            yield f"{name} {value} added"
        elif (name in _LOWER_BOUNDS and value > previous) or (
            name in _UPPER_BOUNDS and value < previous
        ):
            yield f"{name} tightened from {previous} to {value}"


def _type_of(field: Mapping[str, Any]) -> str:
    """A canonical text of a property's type, ignoring descriptions and defaults."""
    if "$ref" in field:
        return str(field["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in field:
        return " | ".join(sorted(_type_of(option) for option in field["anyOf"]))
    if field.get("type") == "array":
        return f"array[{_type_of(field.get('items', {}))}]"
    if "const" in field:
        return f"const:{field['const']}"
    if "enum" in field:
        return f"enum:{field.get('type', 'any')}"
    return str(field.get("type", "any"))
