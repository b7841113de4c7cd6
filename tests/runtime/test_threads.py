"""The runtime owns its threads: the front end's numpy/BLAS threads follow `threads`
(edgekit.runtime.threads), in predict and in each stream window; bench records them."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from edgekit.runtime import threads as runtime_threads
from edgekit.runtime.threads import BlasLimit, front_end_threads

threadpoolctl = pytest.importorskip("threadpoolctl")


def _blas_threads() -> int:
    """The thread count of the process's BLAS libraries (one count: the runtime sets them all)."""
    counts = {lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"}
    assert len(counts) == 1, counts
    return counts.pop()


@pytest.fixture
def blas():
    if not runtime_threads.available():
        pytest.skip("no BLAS library that threadpoolctl can limit")
    runtime_threads.refresh()
    before = max(lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas")
    yield before
    runtime_threads.limit_process(before)
    runtime_threads._Held.process = None  # as in a process that never called limit_process


def test_the_limit_holds_inside_and_is_restored_after(blas):
    runtime_threads.limit_process(3)
    limit = BlasLimit(1)
    with limit:
        assert _blas_threads() == 1
        np.ones((64, 64)) @ np.ones((64, 64))  # numpy keeps working under the limit
    assert _blas_threads() == 3
    with limit:  # reusable
        assert _blas_threads() == 1
    assert _blas_threads() == 3
    with BlasLimit(3):  # already at the limit: nothing to set or restore
        assert _blas_threads() == 3
    assert front_end_threads(None) == 1 and front_end_threads(0) == 1 and front_end_threads(4) == 4


def test_blocks_of_two_threads_that_overlap_restore_the_setting_once_both_left(blas):
    """One Model per thread: the first block in sets the limit, a block of another thread
    that enters meanwhile runs with it and restores nothing; the last one out restores the
    process's setting."""
    import threading

    runtime_threads.limit_process(3)
    seen: list[int] = []

    def other():
        with BlasLimit(2):
            seen.append(_blas_threads())
        seen.append(_blas_threads())

    with BlasLimit(1):
        thread = threading.Thread(target=other)
        thread.start()
        thread.join(5)
        assert seen == [1, 1]  # the other block left, this one still runs at its limit
        assert _blas_threads() == 1
    assert _blas_threads() == 3


_WORKERS = """
import threading
from threadpoolctl import threadpool_info
from edgekit.runtime.threads import BlasLimit

def blas():
    return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}

before = blas()
first_in, second_done = threading.Event(), threading.Event()
seen = {}

def first():
    with BlasLimit(1):
        first_in.set()
        second_done.wait(5)
        seen["first"] = blas()

def second():
    first_in.wait(5)
    with BlasLimit(3):
        seen["second"] = blas()
    second_done.set()

threads = [threading.Thread(target=first), threading.Thread(target=second)]
for t in threads:
    t.start()
for t in threads:
    t.join(5)
print(seen["first"] == seen["second"] == {1}, blas() == before)
"""


def test_models_in_two_worker_threads_share_one_limit():
    """In an application whose main thread never set the BLAS threads (a fresh process),
    two models' front ends in two worker threads: the second block does not change the
    first one's limit, and the process's setting is back once both left."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _WORKERS], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["True", "True"], out.stdout + out.stderr


def test_describe_reports_interpreter_and_front_end_threads(blas):
    settings = runtime_threads.describe(2)
    assert settings["interpreter_threads"] == 2 and settings["front_end_blas_threads"] == 2
    assert settings["blas_limited"] is True
    assert settings["blas"] and all(lib["library"] and lib["threads"] >= 1 for lib in settings["blas"])
    assert runtime_threads.describe(None)["front_end_blas_threads"] == 1


class _Probe:
    """Audio samples that record the BLAS thread count when numpy reads them (inside the
    front end's call)."""

    def __init__(self, samples: np.ndarray) -> None:
        self.samples = samples
        self.seen: list[int] = []

    def __array__(self, dtype=None, copy=None):
        self.seen.append(_blas_threads())
        return self.samples if dtype is None else self.samples.astype(dtype)


@pytest.mark.tf  # the bundle is made by the converter
@pytest.mark.parametrize("threads", [None, 2])
def test_predict_runs_its_front_end_under_the_runtime_threads(runtime_bundles, blas, threads):
    from edgekit.runtime import load

    runtime_threads.limit_process(4)  # the application's own setting
    model = load(runtime_bundles.kws, threads=threads)
    probe = _Probe(0.1 * np.random.default_rng(0).standard_normal(16000).astype(np.float32))
    model.predict(probe)
    assert probe.seen == [front_end_threads(threads)]
    assert _blas_threads() == 4  # the application's setting is back


@pytest.mark.tf  # the bundle is made by the converter
def test_a_bench_worker_runs_at_the_threads_it_records(runtime_bundles, blas):
    """bench's worker process is the runtime's: it sets its BLAS threads to the front end's
    count and reports the settings it measured with (JSON ``thread_settings``)."""
    from edgekit.bench.report import _blas_note
    from edgekit.bench.worker import Worker

    runtime_threads.limit_process(4)
    info = Worker().load(str(runtime_bundles.kws), None, 2, 0)
    settings = info["thread_settings"]
    assert settings["interpreter_threads"] == 2 and settings["front_end_blas_threads"] == 2
    assert _blas_threads() == 2 and {lib["threads"] for lib in settings["blas"]} == {2}
    assert _blas_note(settings).startswith("2 thread(s) (")
    assert settings["steady_heap"] is sys.platform.startswith("linux")  # glibc's thresholds fixed (runtime.process)


def test_a_process_limited_at_the_runtimes_count_pays_nothing_per_call(blas):
    """edgekit run and serve set the process's BLAS threads at start (`limit_process`): the
    models' own limit at that count is then not checked per call (not even read), so a
    setting changed later behind the runtime's back stays as it is."""
    runtime_threads.limit_process(2)
    for lib in runtime_threads.refresh():
        lib.set_num_threads(3)  # behind the runtime's back
    with BlasLimit(2):
        assert _blas_threads() == 3
    with BlasLimit(1):  # another count: set and restored as usual
        assert _blas_threads() == 1
    assert _blas_threads() == 3
    runtime_threads.limit_process(3)
