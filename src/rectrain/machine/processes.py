"""Processes of this machine, as the kernel sees them."""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any, Callable, Optional


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (a process of another user counts: it exists)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_LIBC: Any = None


def _set_pdeathsig() -> None:  # runs in the child between fork and exec: no imports, no locks
    if _LIBC is not None:
        _LIBC.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def die_with_parent() -> Optional[Callable[[], None]]:
    """A ``preexec_fn`` for :class:`subprocess.Popen`: the child gets SIGKILL when the thread that
    started it ends (Linux ``PR_SET_PDEATHSIG``), so a rectrain killed with SIGKILL leaves no
    engine or server running on (writing into a run another command may then resume). None
    elsewhere, and outside the main thread (a thread that ends before its child would kill it)."""
    global _LIBC
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    if _LIBC is None:
        try:
            import ctypes

            _LIBC = ctypes.CDLL("libc.so.6", use_errno=True)
        except OSError:
            return None
    return _set_pdeathsig
