"""A process that exists to run the runtime fixes glibc's heap thresholds
(edgekit.runtime.process): temporaries freed at the top of the heap stay there instead of
being given back and faulted in again on every window."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import resource, sys
import numpy as np
from edgekit.runtime.process import own_process  # imported in both runs: the same heap before the test
if sys.argv[1] == "steady":
    assert own_process(1)
def cycle():
    # 12 MB of temporaries freed together (a window's, a few times over). glibc by default
    # maps arrays above its threshold afresh (4 MB is above it unless a larger array was
    # freed before), or serves them from the heap and trims the heap once twice the
    # threshold is free at its top: either way the pages are faulted in again next time
    arrays = [np.ones(4_000_000 // 8) for _ in range(3)]
    del arrays
cycle()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    cycle()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 50)
"""


def _faults_per_cycle(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True)
    return float(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_steady_heap_keeps_freed_temporaries_instead_of_faulting_them_in_again():
    default = _faults_per_cycle("default")
    if default < 10:
        pytest.skip(f"this C library does not give the memory back here ({default} faults a cycle)")
    assert _faults_per_cycle("steady") < 1, default
