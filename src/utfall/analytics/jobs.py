"""The background run job: indicator runs are computed outside requests.

A web process owns one :class:`RunJob`. It watches the store (every
``analytics_runs_poll_seconds``): when data has changed since the latest stored run
(an import batch, captured assessments or enrolments — :func:`~utfall.analytics.runs.store_state`),
it computes a new run in a background thread at low CPU priority
(:func:`~utfall.analytics.runs.compute_and_store`). Pages only ever read the latest
stored run; an admin sees progress at ``/admin/runs`` and can start a run by hand.
One run at a time: a request while a run is under way is remembered and runs after it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

log = logging.getLogger("utfall.analytics.jobs")

PHASES = ("read", "indicators", "disclosure", "funnels", "store")


class RunJob:
    """Computes indicator runs in a background thread, one at a time."""

    def __init__(self, engine: Engine, folder: Path | None = None) -> None:
        self.engine = engine
        from utfall.analytics.runs import runs_folder

        # resolved now: a run started later must land in this app's data folder, whatever
        # the process's settings are by then
        self.folder = folder or runs_folder()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pending: str | None = None
        self._stop = threading.Event()
        self._status: dict[str, Any] = {"state": "idle", "phase": None, "done": 0, "total": 0,
                                        "trigger": None, "started_at": None,
                                        "finished_at": None, "run_id": None, "error": None,
                                        "seconds": None}

    # ------------------------------------------------------------------ status
    def status(self) -> dict[str, Any]:
        """A copy of the current status (``state``: idle, running, done or failed)."""
        with self._lock:
            return dict(self._status)

    @property
    def running(self) -> bool:
        """Whether a run is being computed now."""
        with self._lock:
            return self._thread is not None and self._thread.is_alive()

    def _progress(self, phase: str, done: int, total: int) -> None:
        with self._lock:
            self._status.update(phase=phase, done=done, total=total)

    # ------------------------------------------------------------------ runs
    def start(self, trigger: str) -> bool:
        """Start a run in the background; False when one is already under way (the
        request is then remembered and runs right after it)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                self._pending = trigger
                return False
            self._status.update(state="running", phase="read", done=0, total=0,
                                trigger=trigger, error=None, finished_at=None,
                                started_at=_now(), seconds=None)
            self._thread = threading.Thread(target=self._work, args=(trigger,), daemon=True,
                                            name="utfall-indicator-run")
            self._thread.start()
            return True

    def _work(self, trigger: str) -> None:
        _lower_priority()
        while True:
            began = time.perf_counter()
            try:
                from utfall.analytics.runs import compute_and_store

                run = compute_and_store(self.engine, self.folder, progress=self._progress)
                with self._lock:
                    self._status.update(state="done", run_id=run.run_id, finished_at=_now(),
                                        seconds=round(time.perf_counter() - began, 1))
            except Exception as exc:  # reported on the admin page; pages keep the old run
                log.exception("indicator run failed")
                with self._lock:
                    self._status.update(state="failed", error=type(exc).__name__,
                                        finished_at=_now(),
                                        seconds=round(time.perf_counter() - began, 1))
            with self._lock:
                trigger_next, self._pending = self._pending, None
                if trigger_next is None:
                    return
                self._status.update(state="running", phase="read", done=0, total=0,
                                    trigger=trigger_next, error=None, finished_at=None,
                                    started_at=_now(), seconds=None)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the running run (tests, CLI); True when nothing is running."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.running

    # ------------------------------------------------------------------ watching
    def check(self) -> bool:
        """Start a run when the store changed since the latest stored run (or none is
        stored); also loads the latest run into memory so the first page is fast."""
        from utfall.analytics.regional import regional_html_fragment  # noqa: F401 (warm)
        from utfall.analytics.runs import read_stored_run, run_is_current

        run = read_stored_run(self.folder)
        if run_is_current(self.engine, run) or self.running:
            return False
        return self.start("data_changed" if run is not None else "no_run")

    def watch(self, every_seconds: float) -> None:
        """Check now and then every ``every_seconds`` in a daemon thread."""

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.check()
                except Exception:  # e.g. the store is down: try again later
                    log.warning("indicator run check failed", exc_info=True)
                self._stop.wait(every_seconds)

        threading.Thread(target=loop, daemon=True, name="utfall-run-watch").start()

    def stop(self) -> None:
        """Stop watching (a run under way finishes)."""
        self._stop.set()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _lower_priority() -> None:
    """Run this thread (and the engine threads it starts) at low CPU priority so that
    requests stay quick while a run is computed (Linux: per-thread nice value)."""
    with contextlib.suppress(AttributeError, OSError):  # other platforms: as is
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


def install(app: Any, poll_seconds: float) -> RunJob:
    """Give ``app`` its run job (``app.state.runs``); watch the store when
    ``poll_seconds`` > 0, else only load the latest stored run in the background."""
    job = RunJob(app.state.engine)
    app.state.runs = job
    if poll_seconds > 0:
        job.watch(poll_seconds)  # first check at once, in the watcher's thread
    else:
        warm()
    return job


def warm() -> None:
    """Load the latest stored run (and the modules that show it) in a background
    thread, so that the first page after start-up does not wait for them."""

    def load() -> None:
        try:
            from utfall.analytics.regional import regional_html_fragment  # noqa: F401
            from utfall.analytics.runs import read_stored_run

            read_stored_run()
        except Exception:  # pragma: no cover - the page loads it again
            log.warning("warming the stored run failed", exc_info=True)

    threading.Thread(target=load, daemon=True, name="utfall-run-warm").start()
