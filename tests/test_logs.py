"""Logs carry no personal data and stay bounded during an outage."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest
import redis
from dramatiq import Message
from dramatiq.broker import MessageProxy

from contracts.errors import NotReadyError, TransientError
from infra.bus.log_filters import RedactMessages
from infra.logs import RepeatLimiter, configure_logging
from infra.raw_output import JsonLines
from infra.settings import load_settings

SECRET = "my date of birth is 1 April 1970"


def _record(msg: str, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord("dramatiq.worker", level, __file__, 1, msg, args, None)


def test_the_repeat_limiter_passes_a_burst_then_counts_what_it_holds_back() -> None:
    now = [0.0]
    limiter = RepeatLimiter(window_s=60, burst=2, clock=lambda: now[0])
    records = [_record("Consumer encountered a connection error: %s", i) for i in range(10)]
    assert [limiter.filter(r) for r in records] == [True, True] + [False] * 8
    now[0] = 61.0
    later = _record("Consumer encountered a connection error: %s", "again")
    assert limiter.filter(later)
    assert "[8 similar held back in the last 60 s]" in later.getMessage()


def test_the_repeat_limiter_keeps_different_templates_and_info_lines_apart() -> None:
    limiter = RepeatLimiter(window_s=60, burst=1, clock=lambda: 0.0)
    assert limiter.filter(_record("first kind %s", 1))
    assert not limiter.filter(_record("first kind %s", 2))
    assert limiter.filter(_record("second kind %s", 1))
    assert all(limiter.filter(_record("step done %s", i, level=logging.INFO)) for i in range(5))


def test_dramatiq_lines_name_the_message_but_never_print_its_payload() -> None:
    message: Message[object] = Message(
        queue_name="calls.analyze",
        actor_name="analyze_call",
        args=({"transcript": [{"role": "user", "message": SECRET}]},),
        kwargs={},
        options={},
    )
    record = _record("Message %s was skipped.", message)
    assert RedactMessages().filter(record)
    assert record.getMessage() == f"Message analyze_call[{message.message_id}] was skipped."


def test_an_expected_transient_failure_is_one_warning_line_without_a_traceback() -> None:
    message: Message[object] = Message(
        queue_name="q", actor_name="index_call", args=({"secret": SECRET},), kwargs={}, options={}
    )
    error = TransientError("Pinecone upsert failed: timed out")
    record = logging.LogRecord(
        "dramatiq.worker",
        logging.ERROR,
        __file__,
        1,
        "Failed to process message %s with unhandled exception.",
        (message,),
        exc_info=(TransientError, error, None),
    )
    RedactMessages().filter(record)
    assert record.levelno == logging.WARNING
    assert record.exc_info is None
    assert SECRET not in record.getMessage()
    assert "TransientError: Pinecone upsert failed: timed out" in record.getMessage()


def _failure(message: Message[object], error: Exception) -> logging.LogRecord:
    return logging.LogRecord(
        "dramatiq.worker.WorkerThread",
        logging.ERROR,
        __file__,
        1,
        "Failed to process message %s with unhandled exception.",
        (MessageProxy(message),),
        exc_info=(type(error), error, None),
    )


def _retries(template: str, *args: object) -> logging.LogRecord:
    level = logging.WARNING if "exceeded" in template else logging.INFO
    return logging.LogRecord(
        "dramatiq.middleware.retries.Retries", level, __file__, 1, template, args, None
    )


def test_dramatiqs_lines_about_an_expected_failure_are_dropped_but_not_its_dead_letter() -> None:
    message: Message[object] = Message(
        queue_name="calls.transcript", actor_name="fetch_transcript", args=(), kwargs={}, options={}
    )
    other: Message[object] = Message(
        queue_name="calls.index", actor_name="index_call", args=(), kwargs={}, options={}
    )
    quiet = RedactMessages()
    not_ready = NotReadyError("conversation conv_1 is 'processing', not 'done' yet")
    retrying = "Retrying message %r in %d milliseconds."

    # A retry: the shell's line is the only one.
    assert not quiet.filter(_failure(message, not_ready))
    assert not quiet.filter(_retries(retrying, message.message_id, 15))
    # The last attempt: Retries' warning that the message goes to the dead letters stays.
    assert not quiet.filter(_failure(message, not_ready))
    assert quiet.filter(_retries("Retries exceeded for message %r.", message.message_id))
    # Any other failure keeps Dramatiq's lines.
    assert quiet.filter(_failure(other, TransientError("Pinecone upsert failed")))
    assert quiet.filter(_retries(retrying, other.message_id, 30))


def test_json_lines_pass_json_through_and_wrap_every_other_line() -> None:
    raw = io.StringIO()
    lines = JsonLines(raw, logger="stderr", level="error", process="worker")

    lines.write('{"event": "already a log line"}\n')
    lines.write("Traceback (most recent call last):\n  File")
    lines.write(' "x.py", line 1\n\n')
    lines.write("{'not': 'json'}\n")

    written = [json.loads(line) for line in raw.getvalue().splitlines()]
    assert written[0] == {"event": "already a log line"}
    assert [w["event"] for w in written[1:]] == [
        "Traceback (most recent call last):",
        '  File "x.py", line 1',
        "{'not': 'json'}",
    ]
    assert all(
        (w["logger"], w["level"], w["process"]) == ("stderr", "error", "worker")
        for w in written[1:]
    )
    assert all(w["timestamp"].endswith("Z") for w in written[1:])


def test_with_json_logs_prints_and_uncaught_exceptions_are_json_lines_too(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(load_settings(log_format="json"), process="cli")
    print("Database is at revision 0005 (latest).")  # noqa: T201  (a library's print)
    try:
        _leak(SECRET)
    except ValueError as error:
        sys.excepthook(type(error), error, error.__traceback__)

    captured = capsys.readouterr()
    [printed] = [json.loads(line) for line in captured.out.splitlines()]
    [uncaught] = [json.loads(line) for line in captured.err.splitlines()]
    assert (printed["event"], printed["logger"]) == (
        "Database is at revision 0005 (latest).",
        "stdout",
    )
    assert uncaught["level"] == "critical"
    assert "ValueError: analysis failed after" in uncaught["exception"]


def test_console_logs_leave_stdout_stderr_and_the_hooks_as_python_has_them() -> None:
    configure_logging(load_settings(log_format="json"), process="cli")
    configure_logging(load_settings(log_format="console"), process="cli")

    assert not isinstance(sys.stdout, JsonLines)
    assert not isinstance(sys.stderr, JsonLines)
    assert sys.excepthook is sys.__excepthook__


def _leak(transcript: str) -> None:
    summary = transcript.upper()
    raise ValueError(f"analysis failed after {len(summary)} characters")


@pytest.mark.parametrize("log_format", ["console", "json"])
def test_tracebacks_never_print_local_variables(
    log_format: str, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(load_settings(log_format=log_format), process="test")
    try:
        _leak(SECRET)
    except ValueError:
        logging.getLogger("switchboard.test").exception("step failed")
    err = capsys.readouterr().err
    assert "analysis failed after" in err
    assert SECRET not in err
    assert SECRET.upper() not in err


def test_a_consumer_that_lost_the_broker_is_one_warning_and_its_restarts_are_debug() -> None:
    error = redis.TimeoutError("Timeout reading from socket")
    record = logging.LogRecord(
        "dramatiq.worker.ConsumerThread(calls.index)",
        logging.CRITICAL,
        __file__,
        1,
        "Consumer encountered an unexpected error.",
        (),
        exc_info=(redis.TimeoutError, error, None),
    )
    restart = logging.LogRecord(
        "dramatiq.worker.ConsumerThread(calls.index)",
        logging.INFO,
        __file__,
        1,
        "Restarting consumer in %0.2f seconds.",
        (3.0,),
        None,
    )
    logging.getLogger().setLevel(logging.INFO)

    assert RedactMessages().filter(record)
    assert (record.levelno, record.exc_info) == (logging.WARNING, None)
    assert record.getMessage() == (
        "Consumer lost the broker: TimeoutError: Timeout reading from socket (it will reconnect)."
    )
    assert not RedactMessages().filter(restart)


def test_the_consumers_of_every_queue_share_one_repeat_budget() -> None:
    limiter = RepeatLimiter(window_s=60, burst=1, clock=lambda: 0.0)
    records = [
        logging.LogRecord(
            f"dramatiq.worker.ConsumerThread({queue})",
            logging.WARNING,
            __file__,
            1,
            "lost",
            (),
            None,
        )
        for queue in ("calls.analyze", "calls.index", "calls.persist")
    ]
    assert [limiter.filter(r) for r in records] == [True, False, False]
