"""How long a thread waited for a CPU: ``RunQueueWatch``, for tests that bound event-loop stalls.

A callback that held the loop 120 ms on a machine busy with other jobs may have run for 20 ms and waited
100 ms for a CPU. Linux counts a thread's run-queue wait (ready to run, no CPU) in the second field of
``/proc/self/task/<tid>/schedstat``, in ns; a watcher thread samples it every ``every_s`` and keeps the spans
in which it grew, so a test can subtract that time from a stall. Waiting for the GIL or for I/O is sleeping,
not run-queue time: a stall of our own code is never excused. Without scheduler statistics nothing is.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path


class RunQueueWatch:
    """Samples the run-queue wait of the thread that creates it (the event loop's) until ``close()``."""

    def __init__(self, *, every_s: float = 0.002) -> None:
        self.spans: list[tuple[float, float]] = []  # (start, end) wall-clock spans spent waiting for a CPU
        self._every_s = every_s
        self._schedstat = Path(f"/proc/self/task/{threading.get_native_id()}/schedstat")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="run-queue", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def waited(self, start: float, end: float) -> float:
        """Seconds of [start, end] (``time.time()``) the watched thread spent waiting for a CPU."""
        return sum(max(0.0, min(end, b) - max(start, a)) for a, b in self.spans)

    def _watch(self) -> None:
        waited = self._run_queue_s()
        while not self._stop.wait(self._every_s):
            now, total = time.time(), self._run_queue_s()
            if total > waited:
                self.spans.append((now - (total - waited), now))
            waited = total

    def _run_queue_s(self) -> float:
        try:
            return int(self._schedstat.read_text().split()[1]) / 1e9
        except (OSError, IndexError, ValueError):
            return 0.0
