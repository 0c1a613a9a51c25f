"""A contract as the Dramatiq message that carries it on the bus, with no dramatiq import.

A service that publishes onto Switchboard's bus builds the message here, exactly as
Switchboard's own producers do (``infra.bus.publishing.Envelope.of`` uses this module),
so the two cannot drift::

    {
        "queue_name": contract.route.queue,      # e.g. "calls.transcript"
        "actor_name": contract.route.actor,      # e.g. "fetch_transcript"
        "args": [contract.model_dump(mode="json")],
        "kwargs": {},
        "options": {"contract", "schema_version", "job_id", "correlation_id",
                    "idempotency_key", "tenant_id" (only when the job has one)},
    }

These are the fields of ``dramatiq.Message`` less ``message_id`` and
``message_timestamp``, which Dramatiq fills in: ``dramatiq.Message(**message)``.

Errors: ``contract_by_name`` raises ``UnknownContractError`` for a name no contract
has and ``pydantic.ValidationError`` for an invalid payload; the functions building
messages raise nothing for a contract that validated.
"""

from __future__ import annotations

from typing import Any

from contracts import BY_NAME, Contract

__all__ = ["UnknownContractError", "contract_by_name", "dramatiq_message", "message_options"]


class UnknownContractError(LookupError):
    """No contract has this name (see ``contracts.BY_NAME``)."""


def contract_by_name(name: str, payload: dict[str, Any]) -> Contract:
    """Validate ``payload`` as the contract called ``name`` (its class name).

    Args:
        name: A contract's class name, e.g. ``"PostCallJobData"``.
        payload: The contract's fields, as JSON values or Python ones.

    Returns:
        The validated, frozen contract.

    Raises:
        UnknownContractError: No contract is called ``name``.
        pydantic.ValidationError: ``payload`` is not a valid ``name``.
    """
    contract_type = BY_NAME.get(name)
    if contract_type is None:
        raise UnknownContractError(
            f"no contract is called {name!r}; known: {', '.join(sorted(BY_NAME))}"
        )
    return contract_type.model_validate(payload)


def message_options(contract: Contract) -> dict[str, Any]:
    """The message options of a contract: its name, schema version and job identity.

    Workers read ``job_id`` and ``idempotency_key`` to report a failure to the job's
    progress; the dead-letter tools show ``contract``, ``job_id`` and ``tenant_id``.
    """
    options: dict[str, Any] = {
        "contract": type(contract).__name__,
        "schema_version": contract.schema_version,
        "job_id": contract.job_id,
        "correlation_id": contract.correlation_id,
        "idempotency_key": contract.idempotency_key,
    }
    if contract.tenant_id is not None:
        options["tenant_id"] = contract.tenant_id
    return options


def dramatiq_message(contract: Contract) -> dict[str, Any]:
    """The Dramatiq message (less its id and timestamp) that delivers ``contract``.

    Pure: equal contracts give equal dicts, and every value is JSON.

    Returns:
        The keyword arguments of ``dramatiq.Message`` (see the module docstring).
    """
    return {
        "queue_name": contract.route.queue,
        "actor_name": contract.route.actor,
        "args": [contract.model_dump(mode="json")],
        "kwargs": {},
        "options": message_options(contract),
    }
