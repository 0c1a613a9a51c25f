"""Supervising the local stack: api, worker and scheduler as child process groups.

Each child starts in its own session (process group), so the terminal's Ctrl-C reaches
only the supervisor, which then decides the shutdown: SIGTERM to each child (gunicorn's
and dramatiq's masters forward it to their workers; signalling the workers too would
count as a second signal, which dramatiq takes as "kill now"), a bounded wait, then
SIGKILL to whatever is left of each group, grandchildren included.

A child's output is either written to a log file or echoed line by line behind a
coloured ``[name]`` prefix.

A child whose spec says ``restart`` (each worker process) is started again when it dies
— the OOM killer's SIGKILL, a crash — while the others keep running: after 1 s, then
twice as long after each quick death, up to ``MAX_BACKOFF_S``; a child that ran
``STEADY_S`` before dying starts again after 1 s. Any other child's death stops the
stack, as before.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

from rich.console import Console
from rich.text import Text

from infra.settings import process_environment

STYLES: dict[str, str] = {"api": "cyan", "worker": "magenta", "scheduler": "yellow"}
"""Prefix colours of the stack's processes (``worker-2`` takes ``worker``'s)."""

FIRST_BACKOFF_S = 1.0
"""Wait before restarting a child that died."""

MAX_BACKOFF_S = 30.0
"""Longest wait before a restart, for a child that keeps dying at once."""

STEADY_S = 60.0
"""A child that ran this long before dying is restarted after ``FIRST_BACKOFF_S``."""


def child_env(
    overrides: Mapping[str, str], *, drop_prefixes: tuple[str, ...] = ()
) -> dict[str, str]:
    """The environment of a child process: ours, minus dropped names, plus ``overrides``."""
    inherited = process_environment()
    kept = {k: v for k, v in inherited.items() if not k.upper().startswith(drop_prefixes)}
    return {**kept, **overrides}


@dataclass(frozen=True)
class ProcessSpec:
    """One process of the stack.

    Attributes:
        name: Prefix and identity, e.g. ``api``.
        argv: The command line.
        env: The complete environment of the child.
        log_path: Where its output goes; None echoes it with a ``[name]`` prefix.
        restart: Start it again when it dies, instead of stopping the stack.
    """

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path | None = None
    restart: bool = False


@dataclass
class _Child:
    spec: ProcessSpec
    process: subprocess.Popen[bytes]
    log: IO[bytes] | None = None
    pump: threading.Thread | None = None
    started_at: float = field(default_factory=time.monotonic)
    backoff_s: float = FIRST_BACKOFF_S
    restart_at: float | None = None
    restarts: int = 0


@dataclass
class Stack:
    """Starts, watches and stops a set of child process groups.

    Use as a context manager (``with Stack(...) as stack``) so the children are stopped
    on every way out.
    """

    specs: list[ProcessSpec]
    console: Console
    stop_timeout_s: float = 15.0
    on_death: Callable[[ProcessSpec], None] | None = None
    """Called when a restartable child is found dead, before it is started again."""
    prefix: bool = True
    """Echo children's lines behind ``[name]``; False passes them through as they are
    (JSON logs: each line already names its process, and must stay one JSON object)."""
    _children: list[_Child] = field(default_factory=list)

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start every process, in order; if one cannot start, stop the others and raise."""
        try:
            for spec in self.specs:
                self._children.append(self._spawn(spec))
        except BaseException:
            self.stop()
            raise

    def _spawn(self, spec: ProcessSpec) -> _Child:
        log = None
        if spec.log_path is not None:
            spec.log_path.parent.mkdir(parents=True, exist_ok=True)
            log = spec.log_path.open("ab")
        process = subprocess.Popen(  # noqa: S603 (our own commands, no shell)
            spec.argv,
            env=spec.env,
            stdin=subprocess.DEVNULL,
            stdout=log if log is not None else subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        child = _Child(spec=spec, process=process, log=log)
        if log is None:
            child.pump = threading.Thread(
                target=self._echo, args=(child,), name=f"echo-{spec.name}", daemon=True
            )
            child.pump.start()
        return child

    def _echo(self, child: _Child) -> None:
        stream = child.process.stdout
        if stream is None:
            return
        style = STYLES.get(child.spec.name.split("-")[0], "bold")
        with stream:
            for raw in iter(stream.readline, b""):
                line = raw.decode(errors="replace").rstrip("\n")
                if not self.prefix:
                    self.console.print(line, markup=False, highlight=False, soft_wrap=True)
                    continue
                self.console.print(
                    Text.assemble((f"[{child.spec.name}] ", style), line),
                    highlight=False,
                    soft_wrap=True,
                )

    def pids(self) -> dict[str, int]:
        """The pid of each started process by name."""
        return {child.spec.name: child.process.pid for child in self._children}

    def restarts(self) -> dict[str, int]:
        """How often each restartable process was started again, by name."""
        return {child.spec.name: child.restarts for child in self._children}

    def dead(self) -> tuple[str, int] | None:
        """The first process that exited and is not restarted, with its exit code."""
        for child in self._children:
            code = child.process.poll()
            if code is not None and not child.spec.restart:
                return child.spec.name, code
        return None

    def revive(self) -> None:
        """Start again each restartable process that died, once its backoff is over."""
        now = time.monotonic()
        for index, child in enumerate(self._children):
            code = child.process.poll()
            if code is None or not child.spec.restart:
                continue
            if child.restart_at is None:
                ran_s = now - child.started_at
                if child.restarts and ran_s < STEADY_S:
                    child.backoff_s = min(child.backoff_s * 2, MAX_BACKOFF_S)
                else:
                    child.backoff_s = FIRST_BACKOFF_S
                child.restart_at = now + child.backoff_s
                self.console.print(
                    f"[bold red]{child.spec.name} exited with code {code}[/] after "
                    f"{ran_s:.0f} s: starting it again in {child.backoff_s:.0f} s; "
                    "the others keep running"
                )
                # Whatever it left behind in its group goes with it.
                _signal_group(child.process.pid, signal.SIGKILL)
                self._close(child)
                if self.on_death is not None:
                    self.on_death(child.spec)
            elif now >= child.restart_at:
                fresh = self._spawn(child.spec)
                fresh.backoff_s = child.backoff_s
                fresh.restarts = child.restarts + 1
                self._children[index] = fresh

    def stop(self) -> None:
        """SIGTERM every child, wait up to ``stop_timeout_s``, then SIGKILL each group.

        Idempotent.
        """
        children, self._children = self._children, []
        for child in children:
            if child.process.poll() is None:
                child.process.terminate()
        deadline = time.monotonic() + self.stop_timeout_s
        for child in children:
            remaining = max(0.0, deadline - time.monotonic())
            try:
                child.process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                self.console.print(f"{child.spec.name} did not stop in time: killing it")
        for child in children:
            # The group may outlive its leader (e.g. orphaned gunicorn workers).
            _signal_group(child.process.pid, signal.SIGKILL)
            self._close(child)

    @staticmethod
    def _close(child: _Child) -> None:
        child.process.wait()
        if child.pump is not None:
            child.pump.join(timeout=5.0)
        if child.log is not None and not child.log.closed:
            child.log.close()

    def supervise(self, *, poll_s: float = 0.2) -> int:
        """Block until SIGINT/SIGTERM (exit code 0) or a child's death (exit code 1).

        A restartable child's death does not end it: the child is started again.
        Stops every process before returning. Must run in the main thread (signals).
        """
        stopping = threading.Event()

        def request_stop(_signum: int, _frame: FrameType | None) -> None:
            stopping.set()

        previous = {
            sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            while not stopping.wait(poll_s):
                self.revive()
                dead = self.dead()
                if dead is not None:
                    name, code = dead
                    self.console.print(
                        f"[bold red]{name} exited with code {code}[/]: stopping the others"
                    )
                    return 1
            self.console.print("stopping…")
            return 0
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        # The whole group is already gone: nothing left to signal.
        return
