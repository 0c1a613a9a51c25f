"""The JSON documents of users and their calls, shared by the users API and the CLI."""

from __future__ import annotations

from datetime import date, time
from typing import Any

from contracts.users import CallPreferences
from contracts.values import OutboundCall
from infra.store.records import UserRecord


def _iso(value: date | time | None) -> str | None:
    return None if value is None else value.isoformat()


def preferences_document(preferences: CallPreferences) -> dict[str, Any]:
    """The JSON document of call preferences (times as ``HH:MM:SS``)."""
    return {
        "call_enabled": preferences.call_enabled,
        "call_time": preferences.call_time.isoformat(),
        "local_tz": preferences.local_tz,
        "window_start": _iso(preferences.window_start),
        "window_end": _iso(preferences.window_end),
    }


def user_document(user: UserRecord) -> dict[str, Any]:
    """The JSON document of one user."""
    return {
        "id": user.id,
        "tenant_id": user.tenant_id,
        "name": user.name,
        "phone": user.phone,
        "call_preferences": preferences_document(user.preferences),
        "next_call_at": _iso(user.next_call_at),
        "next_local_date": _iso(user.next_local_date),
        "created_at": user.created_at.isoformat(),
    }


def call_document(call: OutboundCall) -> dict[str, Any]:
    """The JSON document of one of a user's calls."""
    return {
        "id": call.id,
        "status": call.status,
        "purpose": call.purpose,
        "local_date": _iso(call.local_date),
        "attempt": call.attempt,
        "due_at": _iso(call.due_at),
        "placed_at": _iso(call.placed_at),
        "provider_call_id": call.provider_call_id,
        "ended_at": _iso(call.ended_at),
        "duration_secs": call.duration_secs,
        "error": call.error,
    }
