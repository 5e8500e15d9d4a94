"""Child processes of ``spinewatch serve`` (analysis workers, the DICOM listener), kept alive.

:class:`Supervisor` starts each command as a child process and watches it from a thread (every
``poll_s``): a child that ends while the server runs -- killed, out of memory, crashed -- is
started again at once, and the log says which one, its exit status and the restart count. The
new analysis worker's first act is to re-queue the job its predecessor was running
(:func:`spinewatch.web.scans.jobs.recover_dead_workers`), so a killed worker costs the time to
start a process, not the heartbeat timeout.

A child that keeps dying (more than ``burst`` restarts within ``window_s``) is restarted with a
doubling delay (at most ``max_delay_s``) instead of in a tight loop; the delay resets once it
stays up for a window. :meth:`Supervisor.stop` ends the children (SIGTERM, then SIGKILL after
``grace_s``): a worker stopped this way puts its job back in the queue itself.

gunicorn's arbiter reaps any child of the serve process (``waitpid(-1)``), so an exit status may
be lost (reported as 0); the death itself is never missed.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Child", "Supervisor"]

log = logging.getLogger("spinewatch.serve")


@dataclass
class Child:
    """One supervised command: its arguments to ``spinewatch``, its process and its history."""

    name: str
    args: tuple[str, ...]
    process: Any = None
    restarts: int = 0
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=32))
    next_start: float = 0.0
    delay_s: float = 0.0


class Supervisor:
    """Start, watch and restart ``spinewatch`` sub-commands (see the module docstring)."""

    def __init__(
        self,
        children: Sequence[tuple[str, Sequence[str]]],
        *,
        poll_s: float = 0.2,
        burst: int = 5,
        window_s: float = 60.0,
        max_delay_s: float = 30.0,
        grace_s: float = 20.0,
    ) -> None:
        self.children = [Child(name, tuple(args)) for name, args in children]
        self.poll_s = poll_s
        self.burst = burst
        self.window_s = window_s
        self.max_delay_s = max_delay_s
        self.grace_s = grace_s
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._watch, name="spinewatch-supervisor", daemon=True
        )

    def _spawn(self, child: Child) -> None:
        child.process = subprocess.Popen([sys.executable, "-m", "spinewatch.cli", *child.args])
        log.info("started %s (pid %d)", child.name, child.process.pid)

    def start(self) -> Supervisor:
        with self._lock:
            for child in self.children:
                self._spawn(child)
        self._thread.start()
        return self

    def pids(self) -> dict[str, int | None]:
        """The current process id of each child (None while it waits to be restarted)."""
        with self._lock:
            return {
                c.name: (c.process.pid if c.process and c.process.poll() is None else None)
                for c in self.children
            }

    def _delay(self, child: Child, now: float) -> float:
        child.recent.append(now)
        recent = [t for t in child.recent if now - t <= self.window_s]
        if len(recent) <= self.burst:
            child.delay_s = 0.0
        else:
            child.delay_s = min(self.max_delay_s, max(1.0, 2 * child.delay_s))
        return child.delay_s

    def _check(self, child: Child, now: float) -> None:
        process = child.process
        if process is not None and process.poll() is None:
            return
        if process is not None:
            child.process = None
            delay = self._delay(child, now)
            child.next_start = now + delay
            log.error(
                "%s (pid %d) ended with status %s; restarting%s",
                child.name,
                process.pid,
                process.returncode,
                f" in {delay:.0f} s (it keeps dying)" if delay else " now",
            )
        if child.process is None and now >= child.next_start:
            child.restarts += 1
            self._spawn(child)

    def _watch(self) -> None:
        while not self._stopping.wait(self.poll_s):
            with self._lock:
                if self._stopping.is_set():
                    return
                now = time.monotonic()
                for child in self.children:
                    try:
                        self._check(child, now)
                    except OSError:  # cannot fork right now: try again at the next poll
                        log.exception("could not restart %s", child.name)

    def stop(self) -> None:
        """Stop watching, then end every child (SIGTERM, SIGKILL after ``grace_s``)."""
        self._stopping.set()
        with self._lock:
            processes = [c.process for c in self.children if c.process is not None]
        for process in processes:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + self.grace_s
        for process in processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
