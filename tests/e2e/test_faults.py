"""Fault injection: the camera stream server killed or frozen and restarted, the MQTT
broker stopped or hung and restarted, a disk that fills during a bundle write, and
SIGKILL during convert. Real processes and real signals, no mocks.

Every `edgekit run` here is a process of its own, as on a device; its results are read
from its stdout (or from a real subscriber) and time-stamped on arrival. A recovery time
is measured from the moment the restarted server accepts connections to the first result
made after it. The tests print those times (``pytest -s``); `tools/fault_figures.py` runs
the camera and broker faults several times and prints min/median/max.

What a fault may leave behind, and who cleans it up:

- a bundle writer killed mid-write leaves ``.NAME.edgekit.PID.RANDOM.tmp`` next to the
  bundle; the next write to that path removes temp files whose process is gone;
- a killed ``edgekit convert`` also leaves its working folders (``edgekit-convert-PID-*``,
  ``edgekit-variants-PID-*``) in the temporary directory; the next convert removes those
  whose process is gone.
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from edgekit.bundle import Manifest, Variant, open_bundle, write_bundle
from edgekit.bundle.atomic import remove_stale_temps
from edgekit.spec import TensorSpec
from tests.support.brokers import Mosquitto
from tests.support.env import REPO, need_module, need_program
from tests.support.faults import (
    ENV,
    MQTT_BACKOFF_MAX,
    FaultBundles,
    broker_fault,
    build_bundles,
    camera_fault,
)

# Bundles ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> FaultBundles:
    need_module("tensorflow", 'pip install "edgekit-ml[train]"')
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return build_bundles(tmp_path_factory.mktemp("fault-bundles"))


# Processes ----------------------------------------------------------------------------


# The camera stream server killed or frozen, and restarted ------------------------------


@pytest.mark.tf
@pytest.mark.timeout(180)
@pytest.mark.parametrize("how", ["kill", "freeze"])
def test_camera_server_killed_or_frozen_and_restarted(bundles, how):
    need_module("cv2", 'pip install "edgekit-ml[camera]"')
    fault = camera_fault(bundles.image, how, timeout=2.0, backoff_max=1.0, outage=3.0)
    print(fault.report())
    assert fault.returncode == 0, fault.stderr[-2000:]
    assert fault.results_after >= 15  # the run reached --limit on frames from the restarted server
    assert fault.reconnects >= 1
    # A dropped connection is noticed at once; a silent one by the watchdog, within its timeout.
    assert fault.detected_s <= fault.timeout + 1.0, fault.report()
    # Back within one backoff period plus one open attempt (itself bounded by the timeout).
    assert fault.recovery_s <= fault.timeout + fault.backoff_max, fault.report()


# The MQTT broker stopped (or hung) and restarted ------------------------------------------


@pytest.mark.tf
@pytest.mark.system
@pytest.mark.timeout(180)
@pytest.mark.parametrize(("how", "buffer"), [("stop", 1000), ("hang", 200)])
def test_broker_stopped_and_restarted_during_edgekit_run(bundles, tmp_path, how, buffer):
    """`stop`: the buffer holds the whole outage, every result arrives. `hang`: about 100
    results wait unacknowledged inside paho when the broker dies, and the buffer holds 200
    of the 300 or so made while it is away, so some are dropped and counted; what paho
    re-sends must arrive before the newer buffered results (it came after them, before
    the sink waited for paho's re-sends)."""
    binary = need_program("mosquitto", "apt-get install mosquitto")
    fault = broker_fault(bundles.sensor, tmp_path, binary, how, buffer=buffer)
    print(fault.report())
    assert fault.returncode == 0, fault.stderr[-2000:]
    # Inference never waited for the broker: every result was made, at the source's pace.
    assert f"{fault.total} results in" in fault.stderr
    assert fault.seconds < fault.expected_seconds + 1.0, fault.report()
    if fault.sink_dropped == 0:
        assert fault.max_gap_s < 1.0, fault.report()  # no pause in the results' own timestamps
    # Each result delivered once (QoS 1 may repeat one the broker had taken before it went
    # away) or counted as not delivered; in order.
    assert len(fault.delivered) + fault.sink_dropped == fault.total, fault.report()
    assert fault.delivered == sorted(fault.delivered), fault.report()
    assert set(fault.delivered) <= set(range(fault.total))
    assert all(sequence <= fault.last_before_restart for sequence in fault.duplicates), fault.report()
    if buffer >= fault.total:
        assert fault.sink_dropped == 0
    else:
        assert fault.sink_dropped > 0  # the outage outlasted the buffer
    assert fault.recovery_s <= MQTT_BACKOFF_MAX + 1.0, fault.report()


def sink_against_a_dying_broker(root: Path, qos: int, hung_writes: int) -> tuple[dict, list[int], int, int]:
    """An `MqttSink` in this process publishing to a broker that hangs (SIGSTOP) while
    `hung_writes` results are written, is SIGKILLed, restarts, and gets 200 more. Returns
    the sink's final stats, the sequence numbers a persistent subscriber saw (first
    arrivals, in order), how many of them came after the restart, and how many were written."""
    from edgekit.runtime.sinks import open_sink
    from tests.support.brokers import Subscriber, result

    broker = Mosquitto(need_program("mosquitto", "apt-get install mosquitto"), root)
    broker.start()
    subscriber = Subscriber(broker.port, f"edgekit/dying-{qos}")
    subscriber.client.reconnect_delay_set(0.1, 0.2)
    sink = open_sink(f"mqtt://127.0.0.1:{broker.port}/edgekit/dying-{qos}?qos={qos}&buffer=1000")
    written = 0

    def write(count: int, pause: float = 0.0) -> None:
        nonlocal written
        for _ in range(count):
            sink.write(result(written))
            written += 1
            time.sleep(pause)

    try:
        assert sink.connected.wait(10)
        write(50, 0.002)
        time.sleep(1.5)  # the broker's autosave keeps the subscriber's session
        broker.proc.send_signal(signal.SIGSTOP)
        write(hung_writes)
        broker.proc.kill()
        broker.proc.wait(timeout=10)
        broker.proc = None
        write(100)  # the sink notices the loss meanwhile; these wait in its buffer
        broker.start()
        restarted = len(subscriber.messages)
        assert sink.connected.wait(15) or sink.stats()["reconnects"], "the sink did not reconnect"
        write(200, 0.005)
        sink.close(timeout=20)
        stats = sink.stats()
        subscriber.wait_for(written - stats["dropped"], timeout=20 if qos else 2)
        time.sleep(0.3)
    finally:
        subscriber.close()
        if broker.proc is not None:
            broker.proc.send_signal(signal.SIGCONT)
        broker.stop()
    seen: set[int] = set()
    delivered = []
    after = 0
    for index, message in enumerate(subscriber.messages):
        sequence = json.loads(message)["sequence"]
        if sequence not in seen:
            seen.add(sequence)
            delivered.append(sequence)
            after += index >= restarted
    return stats, delivered, after, written


@pytest.mark.system
@pytest.mark.timeout(120)
def test_messages_in_flight_when_the_broker_dies_come_before_the_buffered_ones(tmp_path):
    """paho re-sends the QoS 1 messages the broker never acknowledged once it reconnects;
    the results buffered meanwhile must follow them, not overtake them."""
    stats, delivered, after, written = sink_against_a_dying_broker(tmp_path, qos=1, hung_writes=150)
    assert stats["dropped"] == 0 and stats["delivered"] == written, stats
    assert delivered == list(range(written)), [
        (a, b) for a, b in zip(delivered, delivered[1:], strict=False) if b != a + 1][:5]
    assert after > 0


@pytest.mark.system
@pytest.mark.timeout(120)
def test_qos0_sink_delivers_again_after_the_broker_dies_with_messages_unsent(tmp_path):
    """QoS 0 messages paho had not written when the connection died are gone, and counted
    so; they must not keep the sink's limit on messages inside paho used up for ever."""
    stats, delivered, after, written = sink_against_a_dying_broker(tmp_path, qos=0, hung_writes=40_000)
    assert stats["delivered"] + stats["dropped"] == written, stats
    assert stats["dropped"] > 0  # the hung broker took far fewer than 40,000
    assert delivered == sorted(delivered)
    assert after >= 200, (after, stats)  # the 200 written after the restart at least


# A disk that fills during a bundle write ------------------------------------------------


def limited_file_size(limit: int) -> Callable[[], None]:
    """A `preexec_fn`: files may grow to `limit` bytes; beyond it write() fails with EFBIG
    (SIGXFSZ ignored, as Python does anyway), as on a full disk."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def neighbours(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


def test_disk_full_while_signing_keeps_the_old_bundle(tmp_path):
    """`edgekit sign` rewrites a bundle in place (no TensorFlow involved)."""
    need_module("cryptography", 'pip install "edgekit-ml[sign]"')
    from edgekit.bundle.signing import generate_keypair

    spec = (TensorSpec("x", (1, 4), "float32"),)
    variant = Variant("tflite-fp32", "tflite", "models/m.tflite", "fp32", spec, spec)
    bundle = tmp_path / "out" / "model.edgekit"
    bundle.parent.mkdir()
    write_bundle(bundle, Manifest(name="old", variants=(variant,)), {variant.file: os.urandom(200_000)})
    key = generate_keypair(tmp_path / "signing.key").private
    before = bundle.read_bytes()

    proc = subprocess.run([sys.executable, "-m", "edgekit", "sign", str(bundle), "--key", str(key)], cwd=REPO,
                          env=ENV, capture_output=True, text=True, timeout=120,
                          preexec_fn=limited_file_size(len(before) // 2))
    assert_one_line_error(proc, "previous file (if any) is unchanged", "File too large")
    assert bundle.read_bytes() == before
    assert open_bundle(bundle).manifest.name == "old"
    assert neighbours(bundle) == ["model.edgekit"]  # the temp file went with the failure

    # With room again, the same command succeeds.
    proc = subprocess.run([sys.executable, "-m", "edgekit", "sign", str(bundle), "--key", str(key)], cwd=REPO,
                          env=ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.tf
@pytest.mark.timeout(300)
def test_disk_full_while_converting_keeps_the_old_bundle(bundles, tmp_path):
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**ENV, "TMPDIR": str(temp)}

    def convert(out: Path, limit: int | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "edgekit", "-q", "convert", str(bundles.wide), "-o", str(out),
                               "--allow-random-calibration", "--variants",
                               "tflite-fp32,tflite-fp16,tflite-dynamic,onnx-fp32"], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=300,
                              preexec_fn=None if limit is None else limited_file_size(limit))

    # The bundle (about 3.3 MB) is the largest file convert writes (the SavedModel's
    # variables take about 2.5 MB): 4 KB short of its size, the disk fills near the end
    # of the bundle write.
    probe = tmp_path / "probe.edgekit"
    made = convert(probe)
    assert made.returncode == 0, made.stderr
    out = tmp_path / "out" / "wide.edgekit"
    out.parent.mkdir()
    spec = (TensorSpec("x", (1, 64), "float32"),)
    write_bundle(out, Manifest(name="old", variants=(Variant("tflite-fp32", "tflite", "models/m.tflite", "fp32",
                                                             spec, spec),)), {"models/m.tflite": b"old model"})
    before = out.read_bytes()

    proc = convert(out, limit=probe.stat().st_size - 4096)
    assert_one_line_error(proc, f"writing {out} failed", "previous file (if any) is unchanged")
    assert out.read_bytes() == before
    assert open_bundle(out).manifest.name == "old"
    assert neighbours(out) == ["wide.edgekit"]
    assert [p.name for p in temp.iterdir() if p.name.startswith("edgekit-")] == []  # working folders removed

    # The disk fills earlier, while the SavedModel the converters read is exported to TMPDIR.
    proc = convert(out, limit=256 * 1024)
    assert_one_line_error(proc, "temporary export", "free disk space")
    assert out.read_bytes() == before and neighbours(out) == ["wide.edgekit"]


# SIGKILL during convert ------------------------------------------------------------------


def convert_killed(model: Path, out: Path, temp: Path, when: str, timeout: float = 300) -> int:
    """Start ``edgekit convert`` and SIGKILL it once `when` happens: a progress line containing
    that text appears on stderr, or (``when="temp file"``) a temp file appears next to `out`.
    Returns the exit status (-9 when killed; 0 when it finished first)."""
    proc = subprocess.Popen([sys.executable, "-m", "edgekit", "convert", str(model), "-o", str(out),
                             "--allow-random-calibration", "--variants", "tflite-fp32,tflite-fp16,onnx-fp32"],
                            cwd=REPO, env={**ENV, "TMPDIR": str(temp)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + timeout
        if when == "temp file":
            threading.Thread(target=proc.stderr.read, daemon=True).start()  # never let the pipe fill
            prefix = f".{out.name}."
            while proc.poll() is None and time.monotonic() < deadline:
                if any(name.startswith(prefix) for name in os.listdir(out.parent)):
                    break
                time.sleep(0.0002)
        else:
            for line in proc.stderr:
                if when in line or time.monotonic() > deadline:
                    break
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
        proc.stderr.close()
    return proc.returncode


@pytest.mark.tf
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sigkill_during_convert_leaves_no_partial_bundle(bundles, tmp_path):
    out = tmp_path / "out" / "wide.edgekit"
    out.parent.mkdir()
    temp = tmp_path / "tmp"
    temp.mkdir()

    # Killed while building the first variant, with no bundle there yet: none appears.
    assert convert_killed(bundles.wide, out, temp, "building tflite-fp32") == -signal.SIGKILL
    assert neighbours(out) == []

    # With a bundle there, killed while building the last variant and then the moment its
    # temp file appears: the old bundle stays, byte for byte (or, had the writer finished
    # first, a complete new one).
    old = Manifest(name="old", variants=(Variant("tflite-fp32", "tflite", "models/m.tflite", "fp32",
                                                 (TensorSpec("x", (1, 64), "float32"),),
                                                 (TensorSpec("y", (1, 4), "float32"),)),))
    write_bundle(out, old, {"models/m.tflite": b"old model"})
    before = out.read_bytes()
    outcomes = []
    for when in ("building onnx-fp32", "temp file"):
        outcomes.append((when, convert_killed(bundles.wide, out, temp, when)))
        if out.read_bytes() != before:
            assert outcomes[-1][1] == 0, f"a killed convert changed the bundle ({when})"
            assert len(open_bundle(out).manifest.variants) == 3
            out.write_bytes(before)
    assert outcomes[0][1] == -signal.SIGKILL

    # Next to the bundle, at most dead writers' temp files, which the next write removes.
    stale = [name for name in neighbours(out) if name != out.name]
    print("convert killed:", outcomes, "; temp files left next to the bundle:", stale)
    assert all(re.fullmatch(rf"\.{re.escape(out.name)}\.\d+\.[0-9a-f]+\.tmp", name) for name in stale), stale
    assert [p.name for p in remove_stale_temps(out)] == stale
    assert neighbours(out) == [out.name]
    # The killed converts' working folders stay in TMPDIR until the next convert starts.
    left = sorted(p.name for p in temp.iterdir() if p.name.startswith("edgekit-"))
    print("left in TMPDIR by the killed converts:", left)
    assert left and all(re.fullmatch(r"edgekit-(convert|variants)-\d+-\w+", name) for name in left), left
    from edgekit.convert.source import work_dir

    saved, tempfile.tempdir = tempfile.tempdir, str(temp)
    try:
        fresh = work_dir("convert")
    finally:
        tempfile.tempdir = saved
    assert sorted(p.name for p in temp.iterdir() if p.name.startswith("edgekit-")) == [fresh.name]

