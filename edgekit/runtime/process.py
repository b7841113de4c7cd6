"""Settings for a process that exists to run the runtime (``edgekit run``, ``edgekit serve``,
bench's workers): the front end's BLAS threads, and a steady heap.

An application that embeds the runtime keeps its own settings: `Model` sets the BLAS
limit around its own calls only (`edgekit.runtime.threads`), and touches no heap setting.

The heap: glibc's malloc moves two thresholds as a program runs, which allocations it
serves from fresh pages (``mmap``) and how much free memory at the top of the heap it gives
back to the system (trim). A runtime process allocates the same temporaries on every
window, and once the thresholds have moved (here after a stream at a 250 ms hop had run in
the same process) a 1 s MFCC's temporaries (the spectrum of 49 frames is 0.4 MB) were
given back and faulted in again on each `predict`: 0.56 ms per 1 s window instead of
0.36 ms (tools/stream_bench.py saw it). Fixing the thresholds, arrays under 8 MiB from the
heap and at most 16 MiB of free memory kept at its top, keeps them in the heap at a cost
of at most 16 MiB kept. Elsewhere than glibc (musl, macOS) nothing is changed.
"""

from __future__ import annotations

import ctypes
import sys

from edgekit.runtime.threads import front_end_threads, limit_process

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 8 << 20
TRIM_THRESHOLD = 16 << 20


def steady_heap() -> bool:
    """Fix glibc's mmap and trim thresholds (module docstring); True when they were set."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018 - glibc only (musl's mallopt does nothing)
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1


def own_process(threads: int | None) -> bool:
    """The process is the runtime's: its BLAS threads follow `threads` (1 when None,
    `threads.limit_process`) and its heap is steady (`steady_heap`, whose answer this is)."""
    limit_process(front_end_threads(threads))
    return steady_heap()
