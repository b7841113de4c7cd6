"""The microphone source through a real PortAudio stream.

This machine has no sound card, so the tests give ALSA a capture device of its own:
the ``file`` plugin over the ``null`` device, whose ``infile`` is a named pipe. PortAudio
opens it like any ALSA input; the test writes 16-bit samples into the pipe at real-time
pace, and a blocked read paces the capture exactly as a sound card would. ALSA reads its
configuration when PortAudio starts, so each test runs edgekit in a fresh process.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.support.cli import run_cli
from tests.support.env import need_module

pytestmark = pytest.mark.system

ALSA_CONF = Path("/usr/share/alsa/alsa.conf")
RATE = 16000


def pattern(count: int) -> np.ndarray:
    """The samples the fake microphone hears: a ramp that never repeats within a test."""
    return ((np.arange(count) * 7) % 30000 - 15000).astype("<i2")


class FakeMicrophone:
    """Writes `pattern` into the named pipe in 50 ms blocks at real-time pace, reopening
    the pipe whenever the reader (a PortAudio stream) closes and reopens it."""

    def __init__(self, root: Path) -> None:
        from tests.support.env import need_file, need_library

        need_module("sounddevice", 'pip install "edgekit-ml[audio]"')
        need_library("portaudio", "sudo apt-get install libportaudio2")  # sounddevice loads it on import
        need_file(ALSA_CONF, "sudo apt-get install libasound2-data")  # ALSA's configuration
        self.fifo = root / "mic.fifo"
        os.mkfifo(self.fifo)
        self.config = root / "asound.conf"
        self.config.write_text(f'<{ALSA_CONF}>\npcm.edgekit_mic {{\n  type file\n  slave.pcm "null"\n'
                               f'  file "/dev/null"\n  infile "{self.fifo}"\n  format "raw"\n}}\n')
        self.env = {"ALSA_CONFIG_PATH": str(self.config)}
        self.written = 0
        self.paused = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._write, daemon=True)
        self._thread.start()

    def _open(self) -> int | None:
        while not self._stop.is_set():
            try:
                return os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:  # ENXIO: no reader yet
                if exc.errno != errno.ENXIO:
                    raise
                time.sleep(0.01)
        return None

    def _write(self) -> None:
        block = RATE // 20
        data = pattern(RATE * 120)
        fd = self._open()
        start = time.monotonic()
        while fd is not None and not self._stop.is_set():
            if self.paused.is_set():
                time.sleep(0.01)
                continue
            due = start + self.written / RATE
            time.sleep(max(0.0, due - time.monotonic()))
            try:
                os.set_blocking(fd, True)
                os.write(fd, data[self.written : self.written + block].tobytes())
                self.written += block
            except BrokenPipeError:  # the stream was closed; wait for the next one
                os.close(fd)
                fd = self._open()
        if fd is not None:
            os.close(fd)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.fixture
def microphone(tmp_path: Path):
    mic = FakeMicrophone(tmp_path)
    yield mic
    mic.stop()


def run_python(code: str, env: dict[str, str], timeout: float = 60) -> dict:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=timeout, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def test_microphone_delivers_the_samples_in_order_and_recovers_a_stopped_stream(microphone):
    report = run_python("""
        import json, time
        import numpy as np
        from edgekit.runtime.sources import open_source

        source = open_source("mic:edgekit_mic?rate=16000&block_ms=50&timeout=1")
        first = []
        for item in source:
            first.append(item)
            if len(first) == 20:
                break
        source.stream.abort()  # what a driver error or an unplugged device does to the stream
        stopped = time.monotonic()
        after = []  # blocks buffered before the abort may still come first; count from the reopen
        for item in source:
            if source.counters.reconnects:
                after.append(item)
            if len(after) == 5 or time.monotonic() - stopped > 30:
                break
        recovered = time.monotonic() - stopped
        source.close()
        samples = np.concatenate([item.payload[0] for item in first])
        print(json.dumps({
            "samples": np.round(samples * 32768).astype(int).tolist(),
            "rates": sorted({item.payload[1] for item in first + after}),
            "stamps_increase": all(a.timestamp <= b.timestamp for a, b in zip(first, first[1:])),
            "names": [first[0].name, first[1].name],
            "after": [len(item.payload[0]) for item in after],
            "recovered_s": recovered,
            "counters": source.counters.to_dict(),
        }))
    """, microphone.env)
    samples = np.asarray(report["samples"])
    assert len(samples) == 20 * 800
    assert np.array_equal(samples, pattern(len(samples)))  # every sample, none lost or repeated
    assert report["rates"] == [RATE]
    assert report["stamps_increase"]
    assert report["names"] == ["mic@0.000s", "mic@0.050s"]
    assert report["counters"]["reconnects"] == 1
    assert report["after"] == [800] * 5
    assert report["recovered_s"] < 5


def test_slow_consumer_drops_the_oldest_blocks_and_counts_them(microphone):
    report = run_python("""
        import json, time
        from edgekit.runtime.sources import open_source

        source = open_source("mic:edgekit_mic?block_ms=50&buffer_s=0.2")
        time.sleep(1.5)  # inference busy elsewhere: 30 blocks arrive, 4 fit in the buffer
        items = []
        for item in source:
            items.append(item)
            if len(items) == 6:
                break
        source.close()
        print(json.dumps({"counters": source.counters.to_dict(), "age_s": time.time() - items[0].timestamp}))
    """, microphone.env)
    assert report["counters"]["dropped"] >= 20
    assert report["age_s"] < 1.0  # the first item handed out is recent audio, not 1.5 s old


def test_keyword_model_runs_on_the_microphone_from_the_cli(runtime_bundles, microphone):
    result = run_cli("run", str(runtime_bundles.kws), "--source", "mic:edgekit_mic?block_ms=100", "--limit", "3",
                     env=microphone.env, timeout=120)
    assert result.code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["sequence"] for line in lines] == [0, 1, 2]
    assert all(line["source"].startswith("mic@") for line in lines)
    assert "3 results in" in result.stderr


def test_unknown_microphone_lists_the_input_devices(runtime_bundles, microphone):
    result = run_cli("run", str(runtime_bundles.kws), "--source", "mic:no-such-device", env=microphone.env,
                     timeout=120)
    assert result.code == 1
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "edgekit_mic" in result.stderr and "mic:0" in result.stderr
