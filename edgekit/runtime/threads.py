"""The front end's numpy/BLAS threads follow the runtime's `threads` setting.

numpy's matrix products (the mel filterbank and the DCT of the audio front end, among
others) call the BLAS library numpy was built with (OpenBLAS in the wheels), and that
library starts a thread per core for products above a small size. On a device whose
cores are busy with other work (another numerical process, the interpreter, a test
suite) those threads wait on each other: a 1 s MFCC front end that takes 0.35 ms alone
took 10 ms with two other numpy processes running. So the runtime caps them.

How (measured on the 2-core x86 host, OpenBLAS 0.3.31):

- ``threadpoolctl.threadpool_limits(...)`` as a context manager around each call costs
  about 140 us (it looks the libraries up each time); it is used for nothing here.
- The library's own ``set_num_threads``/``get_num_threads``, found through threadpoolctl
  when a model is loaded and kept, cost about 0.5 us each. `BlasLimit` enters by reading
  the current count and setting it only when it differs, and restores it on exit, so a
  `predict` or a stream window costs about 1 us more when the process already runs at
  the limit and about 2 us when it does not.

The limit is set around the runtime's own calls (`Model.predict`, each window of
`Model.stream`), not for the whole process: an application that embeds the runtime
keeps its own numpy threads for its own work. While a call runs, the setting is the
process's (BLAS libraries have no per-thread setting): a large product another thread
of the same process starts meanwhile runs with the runtime's count. Calls of several
threads that overlap share one limit (the first in sets it, the last out restores).

OpenBLAS (0.3.31, numpy's wheels) ignores a change of the count made by a thread other
than the main one once the main thread has set it. So the commands that exist to run the
runtime (``edgekit run``, ``edgekit serve``, bench's workers) set the limit for the whole
process from the main thread at start (`limit_process`), and the per-call check at that
count is then skipped (about 6 us a hop in a 20 ms keyword stream); an application that sets the BLAS threads in its main thread and runs models
in other threads keeps its own setting for their front ends.

The count is the runtime's `threads` (``--threads``, ``load(threads=...)``), and 1 when
that is not set: on a device the front end's products are small, a second thread saves
little and costs much as soon as the cores have other work. The interpreter keeps its
own setting (`threads`, or its default when None).

Without threadpoolctl (it comes with the device extras) nothing is limited and
`describe` says so.
"""

from __future__ import annotations

import threading
from typing import Any


def front_end_threads(threads: int | None) -> int:
    """BLAS threads for the front end: the runtime's `threads`, 1 when unset (None or 0)."""
    return int(threads) if threads else 1


_found: tuple[Any, ...] | None = None


def _libraries() -> tuple[Any, ...]:
    """threadpoolctl's controllers of the BLAS libraries loaded in this process (looked
    up on first use and again by `refresh`)."""
    return refresh() if _found is None else _found


def refresh() -> tuple[Any, ...]:
    """Look the BLAS libraries up again (about 0.1 ms): a library loaded since the last
    look-up (SciPy's OpenBLAS, loaded by a later import) is limited too. `Model` calls it
    when it is made."""
    global _found
    try:
        import numpy  # noqa: F401  (its BLAS must be loaded before the lookup)
        from threadpoolctl import ThreadpoolController
    except ImportError:
        _found = ()
        return _found
    try:
        controller = ThreadpoolController()
    except Exception:  # noqa: BLE001  (an unusual library layout: run unlimited rather than fail)
        _found = ()
        return _found
    _found = tuple(lib for lib in controller.lib_controllers if lib.user_api == "blas")
    return _found


def available() -> bool:
    """Whether the BLAS threads can be limited here (threadpoolctl found a BLAS library)."""
    return bool(_libraries())


class _Held:
    """The process-wide state of the limits in force: how many `with` blocks are inside one
    (several threads may run models at once) and the settings to restore when the last one
    leaves."""

    lock = threading.Lock()
    depth = 0
    saved: list[tuple[Any, int]] = []
    process: int | None = None  # the count `limit_process` set for the whole process


class BlasLimit:
    """A reusable, cheap context manager: at most `threads` BLAS threads inside it.

    The setting is process-wide (see the module docstring). Blocks of several threads of
    the process may overlap (one `Model` per thread): the first to enter sets the limit,
    the last to leave restores what was there before; a block that enters while another
    one holds a different limit runs with that one.
    """

    __slots__ = ("threads",)

    def __init__(self, threads: int) -> None:
        self.threads = max(1, int(threads))
        refresh()  # the libraries loaded by now (once per model, not per call)

    def held(self) -> bool:
        """Whether the whole process runs at this limit already (`limit_process`): then a
        `with` block would do nothing, and a caller on the hot path can skip it."""
        return _Held.process == self.threads

    def __enter__(self) -> BlasLimit:
        if _Held.process == self.threads:  # the process runs at this limit already (edgekit run, serve)
            return self
        with _Held.lock:
            if _Held.depth == 0:
                for lib in _libraries():
                    current = lib.get_num_threads()
                    if current is not None and current != self.threads:
                        lib.set_num_threads(self.threads)
                        _Held.saved.append((lib, current))
            _Held.depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        if _Held.process == self.threads:
            return
        with _Held.lock:
            _Held.depth -= 1
            if _Held.depth == 0:
                saved = _Held.saved
                while saved:
                    lib, count = saved.pop()
                    lib.set_num_threads(count)


def limit_process(threads: int) -> None:
    """Set the BLAS threads of the whole process (a process that exists to run the
    runtime: edgekit run and serve, bench's workers); the models' own limits at that count
    then cost nothing per call. A no-op without threadpoolctl."""
    count = max(1, int(threads))
    libraries = refresh()
    for lib in libraries:
        lib.set_num_threads(count)
    _Held.process = count if libraries else None


def describe(threads: int | None = None) -> dict[str, Any]:
    """The thread settings, for reports: the interpreter's `threads` as given, the front
    end's BLAS limit, and each BLAS library with its current thread count."""
    libraries = [{"library": lib.internal_api, "version": lib.version, "threads": lib.get_num_threads(),
                  "threading_layer": getattr(lib, "threading_layer", None)} for lib in refresh()]
    return {"interpreter_threads": threads, "front_end_blas_threads": front_end_threads(threads),
            "blas_limited": bool(libraries), "blas": libraries,
            **({} if libraries else {"note": "BLAS threads not limited (threadpoolctl not installed "
                                             "or no BLAS library found)"})}
