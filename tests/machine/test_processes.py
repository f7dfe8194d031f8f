"""rectrain.machine.processes: the C heap of a many-threaded transfer stays within its arenas."""

from __future__ import annotations

import subprocess
import sys

import pytest

# A child process: flat_heap() before 16 threads allocate and free at once, then glibc's own
# report (malloc_info) says how many arenas (<heap nr=...>) exist; release_free_heap() must run.
_CHILD = r"""
import ctypes, os, tempfile, threading
from rectrain.machine.processes import flat_heap, release_free_heap
flat_heap(2)
barrier = threading.Barrier(16)
def work():
    barrier.wait()
    for _ in range(2000):
        blocks = [bytearray(700 + i) for i in range(20)]  # over 512 bytes: malloc, not pymalloc
        del blocks
threads = [threading.Thread(target=work) for _ in range(16)]
for t in threads: t.start()
for t in threads: t.join()
release_free_heap()
libc = ctypes.CDLL("libc.so.6")
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
path = os.path.join(tempfile.mkdtemp(), "info.xml")
fh = libc.fopen(path.encode(), b"w")
libc.malloc_info(0, fh)
libc.fclose(fh)
print(open(path).read().count("<heap nr="))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_flat_heap_caps_the_arenas_of_many_threads():
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_info  # noqa: B018 - glibc only
    except (OSError, AttributeError):
        pytest.skip("not glibc")
    out = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, check=True)
    assert 1 <= int(out.stdout.strip()) <= 2, out.stdout
