"""Clock skew for the fault campaign (tests/faults): with ``FAULT_CLOCK_SKEW_S`` set, this
Python process and its Python children (they inherit PYTHONPATH, which names this folder)
see ``time.time()`` and ``time.time_ns()`` shifted by that many seconds, like a machine whose
wall clock is off. Monotonic clocks are untouched, as on a real machine. What is NOT shifted:
clocks read in C (``datetime.now()``, so botocore's request signing, whose dates stay valid),
the engine's C++ code, the S3 server. Imported by ``site`` at start-up; does nothing without
the variable."""

import os
import time

_SKEW = os.environ.get("FAULT_CLOCK_SKEW_S")
if _SKEW:
    _offset = float(_SKEW)
    _real_time, _real_time_ns = time.time, time.time_ns

    def _skewed_time() -> float:
        return _real_time() + _offset

    def _skewed_time_ns() -> int:
        return _real_time_ns() + int(_offset * 1e9)

    time.time = _skewed_time
    time.time_ns = _skewed_time_ns
