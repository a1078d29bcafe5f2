"""Trial processes: at most ``workers`` at once, each started fresh (spawn) for one trial.

A fresh process per trial is what keeps memory flat over a long search: whatever a trial's
TensorFlow and Keras allocate is returned when its process exits (KerasTuner keeps one
process, whose memory grows from trial to trial). A process that dies without reporting (out
of memory, killed) fails its trial only.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.connection import wait
from typing import Any

from .trial import trial_main


class TrialPool:
    """Runs trials in their own processes and collects their outcomes."""

    def __init__(self) -> None:
        self._context = multiprocessing.get_context("spawn")
        self._running: dict[int, tuple[Any, Any]] = {}

    def __len__(self) -> int:
        return len(self._running)

    def start(self, number: int, payload: dict[str, Any]) -> None:
        """Start trial ``number`` in a new process."""
        receiver, sender = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=trial_main, args=(payload, sender), name=f"trial-{number}", daemon=True
        )
        process.start()
        sender.close()
        self._running[number] = (process, receiver)

    def wait(self) -> list[tuple[int, dict[str, Any]]]:
        """Wait until at least one trial ends; ``(number, outcome)`` of each that ended."""
        handles = [h for process, conn in self._running.values() for h in (conn, process.sentinel)]
        ready = set(wait(handles))
        ended = []
        for number, (process, conn) in list(self._running.items()):
            if conn not in ready and process.sentinel not in ready:
                continue
            outcome = None
            try:
                if conn.poll():
                    outcome = conn.recv()
            except (EOFError, OSError):
                outcome = None
            process.join(timeout=60)
            if outcome is None:
                outcome = {
                    "state": "fail",
                    "error": f"the trial process ended with exit code {process.exitcode} "
                    "before reporting (killed, or out of memory)",
                }
            conn.close()
            del self._running[number]
            ended.append((number, outcome))
        return ended

    def stop(self) -> None:
        """Kill the trials still running (the search stops on an error or an interrupt)."""
        for process, conn in self._running.values():
            process.kill()
            process.join(timeout=10)
            conn.close()
        self._running.clear()
