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


_LIBC: Any = None  # libc.so.6 through ctypes once loaded; False where there is none


def _libc() -> Any:
    """The C library (one handle for every use here), or False off Linux or without glibc."""
    global _LIBC
    if _LIBC is None:
        _LIBC = False
        if sys.platform.startswith("linux"):
            try:
                import ctypes

                _LIBC = ctypes.CDLL("libc.so.6", use_errno=True)
            except OSError:
                pass
    return _LIBC


def _set_pdeathsig() -> None:  # runs in the child between fork and exec: no imports, no locks
    if _LIBC:
        _LIBC.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def die_with_parent() -> Optional[Callable[[], None]]:
    """A ``preexec_fn`` for :class:`subprocess.Popen`: the child gets SIGKILL when the thread that
    started it ends (Linux ``PR_SET_PDEATHSIG``), so a rectrain killed with SIGKILL leaves no
    engine or server running on (writing into a run another command may then resume). None
    elsewhere, and outside the main thread (a thread that ends before its child would kill it)."""
    if threading.current_thread() is not threading.main_thread() or not _libc():
        return None
    return _set_pdeathsig


def _glibc() -> Any:
    """glibc (for its heap), or False where there is none (musl has no libc.so.6)."""
    libc = _libc()
    return libc if libc and hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else False


def flat_heap(arenas: int = 2) -> None:
    """Keep this process's C heap from growing with the work done by many threads, before they
    start: at most ``arenas`` glibc malloc arenas (``mallopt(M_ARENA_MAX)``; glibc's default is
    8 per core), and :func:`release_free_heap` now and then. Measured (docs/performance.md, "Ten
    million crops in flat memory"): a 64-thread pull's resident size grew by ~100 bytes per file
    while the memory in use, Python's and the C heap's, stayed flat: freed memory kept in 16
    arenas in holes below live blocks. Nothing happens elsewhere than glibc."""
    libc = _glibc()
    if libc:
        libc.mallopt(-8, max(1, arenas))  # M_ARENA_MAX


def release_free_heap() -> None:
    """Give the memory this process has freed back to the kernel (glibc's ``malloc_trim(0)``,
    which also releases whole free pages inside its heaps; nothing elsewhere). ~0.2 ms with a
    transfer's heap here: call it every few thousand files, not per file."""
    libc = _glibc()
    if libc:
        libc.malloc_trim(0)
