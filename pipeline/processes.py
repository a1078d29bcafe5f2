"""Whether a process still runs: how a run or a temporary folder tells a crash from a writer."""

from __future__ import annotations

import os


def pid_alive(pid: object) -> bool:
    """True when ``pid`` is an integer naming a process that exists on this machine.

    A process owned by another user counts as alive (the signal is refused, not unanswered)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
