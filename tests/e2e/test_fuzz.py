"""Fuzzing in the test suite: a fixed-seed, time-bounded run of every loader, the
regression corpus replayed, and proof that the harness sees what it must see.

The harness and its targets are in ``fuzzing.py``; the long run is ``tools/fuzz.py``
(``make fuzz``). ``pytest tests/e2e/test_fuzz.py -s`` prints the figures of each target.
``EDGEKIT_FUZZ_SECONDS`` changes the time per target (default 3).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support import fuzzing
from tests.support.env import REPO, need_module

FUZZ_SECONDS = float(os.environ.get("EDGEKIT_FUZZ_SECONDS", "3"))
INSTALL = 'pip install "edgekit-ml[all]"'


def _need(target: fuzzing.Target) -> None:
    for module in target.needs:
        need_module(module, INSTALL)


def _explain(findings: list[fuzzing.Finding]) -> str:
    lines = []
    for finding in findings:
        lines.append(finding.line())
        if finding.traceback:
            lines.append(finding.traceback[-1500:])
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# the fixed-seed run


@pytest.mark.parametrize("name", fuzzing.PUBLIC_TARGETS)
def test_fuzz_target(name: str, tmp_path: Path) -> None:
    """Mutated inputs end in a value or an EdgekitError: no other exception, crash or hang."""
    target = fuzzing.TARGETS[name]
    _need(target)
    report = fuzzing.fuzz(name, FUZZ_SECONDS, seed=0, save_dir=tmp_path)
    print("\n" + report.render())
    assert report.inputs > report.seeds, "no mutated input ran"
    assert not report.failures, f"fuzzing {name} failed (reproducers under {tmp_path}):\n" + _explain(report.failures)


@pytest.mark.parametrize("name", fuzzing.PUBLIC_TARGETS)
def test_seeds_are_valid_inputs(name: str) -> None:
    """Every seed loads: mutations start from inputs that reach the whole loader."""
    target = fuzzing.TARGETS[name]
    _need(target)
    files = sorted(p for p in (fuzzing.SEEDS / name).iterdir() if p.is_file() and p.suffix not in (".pub", ".md"))
    assert files, f"no seeds under {fuzzing.SEEDS / name}"
    outcomes = fuzzing.replay(name, files)
    refused = {path.name: [o for o in got if o["kind"] != "ok"] for path, got in outcomes.items()}
    refused = {k: v for k, v in refused.items() if v}
    assert not refused, json.dumps(refused, indent=1)[:3000]


def test_mjpeg_seeds_reach_the_frames() -> None:
    """The MJPEG seeds are streams OpenCV reads frames from, not bodies it refuses at once."""
    need_module("cv2", 'pip install "edgekit-ml[camera]"')
    files = sorted((fuzzing.SEEDS / "mjpeg").iterdir())
    for path, outcomes in fuzzing.replay("mjpeg", files).items():
        assert outcomes[0]["kind"] == "ok" and not outcomes[0]["detail"].startswith("0 frame"), (path.name, outcomes)


def test_mjpeg_step_reports_an_exception_in_the_capture_thread(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """An exception in the camera source's capture thread is a finding, not a printed traceback
    (and a stream that never ends)."""
    import threading

    need_module("cv2", 'pip install "edgekit-ml[camera]"')
    from edgekit.runtime.sources import camera

    monkeypatch.setattr(threading, "excepthook", threading.excepthook)  # restored afterwards

    def broken(self, frame):
        raise KeyError("planted in the capture thread")

    monkeypatch.setattr(camera.CameraSource, "_publish", broken)
    ws = fuzzing.Workspace(tmp_path)
    fuzzing.TARGETS["mjpeg"].setup(ws)
    with pytest.raises(KeyError, match="planted"):
        fuzzing._mjpeg_stream((fuzzing.SEEDS / "mjpeg" / "frames.mjpeg").read_bytes(), ws)


# ---------------------------------------------------------------------------
# the regression corpus


CASES = fuzzing.corpus_cases()
_REPLAYED: dict[str, dict[Path, list[dict]]] = {}


def _replayed(name: str) -> dict[Path, list[dict]]:
    """Every corpus file of a target, replayed once as edgekit runs it (child processes included)."""
    if name not in _REPLAYED:
        _REPLAYED[name] = fuzzing.replay(name, [path for target, path, _ in CASES if target == name])
    return _REPLAYED[name]


@pytest.mark.parametrize("name,path", [
    pytest.param(name, path, id=f"{name}/{path.name}",
                 marks=[pytest.mark.xfail(strict=True, reason=f"pending: {note['fix']}")] if note else [])
    for name, path, note in CASES])
def test_corpus(name: str, path: Path) -> None:
    """Each input that once broke a loader now ends in a value or an EdgekitError.

    An expected failure names the fix that is pending in a file of another change; it
    turns into a failure (XPASS, strict) once that fix lands, to be removed from
    ``expected-failures.json``.
    """
    _need(fuzzing.TARGETS[name])
    outcomes = _replayed(name)[path]
    failed = [o for o in outcomes if o["kind"] in fuzzing.FAILURE_KINDS]
    assert not failed, "\n".join(f"{o['step']}: {o['kind']} {o.get('type')} at {o.get('where')}: {o.get('message')}"
                                 for o in failed)


def test_corpus_is_not_empty() -> None:
    names = {name for name, _, _ in CASES}
    assert {"bundle", "tflite", "onnx", "image", "sensor", "wav"} <= names


def test_expected_failures_name_files_and_fixes() -> None:
    for folder in fuzzing.CORPUS.iterdir():
        notes_file = folder / fuzzing.EXPECTED_FAILURES
        if not notes_file.is_file():
            continue
        for file_name, note in json.loads(notes_file.read_text()).items():
            assert (folder / file_name).is_file(), f"{notes_file}: no file {file_name}"
            assert note.get("why") and note.get("fix") and isinstance(note.get("match"), dict), note


# ---------------------------------------------------------------------------
# the harness sees what it must see (planted failures)


def test_harness_reports_a_planted_exception(tmp_path: Path) -> None:
    report = fuzzing.fuzz("selftest-exception", 30, seed=0, save_dir=tmp_path, max_inputs=200)
    assert [(f.kind, f.type) for f in report.failures] == [("bug", "KeyError")]
    reproducer = report.failures[0].reproducer
    assert reproducer is not None and reproducer.read_bytes()[0] % 2 == 1
    replayed = fuzzing.replay("selftest-exception", [reproducer])[reproducer]
    assert replayed[0]["kind"] == "bug" and replayed[0]["type"] == "KeyError"
    assert report.steps["plant"]["error:InputError"] > 0  # the typed error is not a finding


def test_harness_survives_a_planted_crash_and_keeps_going(tmp_path: Path) -> None:
    report = fuzzing.fuzz("selftest-crash", 60, seed=0, save_dir=tmp_path, max_inputs=40)
    assert report.inputs == 40
    assert [(f.kind, f.type) for f in report.failures] == [("crash", "SIGABRT")]
    crashes = report.failures[0].count
    assert 0 < crashes < 40 and report.steps["plant"]["ok"] == 40 - crashes
    assert report.worker_starts == crashes + 1  # respawned after each crash
    assert report.failures[0].reproducer is not None and report.failures[0].reproducer.is_file()


def test_harness_counts_a_crash_edgekit_contains(tmp_path: Path) -> None:
    report = fuzzing.fuzz("selftest-contained", 60, seed=0, save_dir=tmp_path, max_inputs=20)
    assert not report.failures
    assert [(f.kind, f.type) for f in report.contained] == [("crash", "SIGABRT")]
    assert "InputError" in (report.contained[0].contained or "")


def test_harness_reports_a_planted_hang(tmp_path: Path) -> None:
    report = fuzzing.fuzz("selftest-hang", 60, seed=0, save_dir=tmp_path, max_inputs=3)  # the seeds
    assert [(f.kind, f.type) for f in report.failures] == [("hang", "timeout")]
    assert report.slow == 1  # retried once with more time before it counted


def test_known_failures_are_matched_by_kind_type_and_file() -> None:
    known = [{"match": {"kind": "bug", "type": "KeyError", "in": "model.py"}, "fix": "the fix"}]
    assert fuzzing._known({"kind": "bug", "type": "KeyError", "where": "model.py:178"}, known) == "the fix"
    assert fuzzing._known({"kind": "bug", "type": "KeyError", "where": "sources.py:12"}, known) is None
    assert fuzzing._known({"kind": "bug", "type": "ValueError", "where": "model.py:178"}, known) is None
    assert fuzzing._known({"kind": "crash", "type": "KeyError", "where": "model.py:178"}, known) is None


def test_mutations_are_fixed_by_the_seed() -> None:
    import random

    seed = (fuzzing.SEEDS / "bundle" / "sensor.edgekit").read_bytes()

    def run(s: int) -> list[bytes]:
        mutator = fuzzing.Mutator(random.Random(s), [seed])
        return [fuzzing.TARGETS["bundle"].mutate(mutator, seed) for _ in range(20)]

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_rehashed_bundle_mutations_pass_the_hash_check() -> None:
    """The structure-aware mutator fixes sizes and hashes, so mutations reach past them."""
    from edgekit.bundle import open_bundle

    with zipfile.ZipFile(io.BytesIO((fuzzing.SEEDS / "bundle" / "sensor.edgekit").read_bytes())) as archive:
        members = [(info.filename, archive.read(info)) for info in archive.infolist()]
    changed = [(name, data + b"\0" if name.endswith(".tflite") else data) for name, data in members]
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"edgekit-rehash-{os.getpid()}.edgekit"
    try:
        path.write_bytes(fuzzing._write_zip(fuzzing._rehash_manifest(changed)))
        assert open_bundle(path).read("models/tflite-fp32.tflite").endswith(b"\0")
    finally:
        path.unlink(missing_ok=True)


# ---------------------------------------------------------------------------
# the fixes, through the command line


def _edgekit(*args: str, stdin: bytes = b"", tmp: Path) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", XDG_CACHE_HOME=str(tmp))  # no earlier probe verdict
    return subprocess.run([sys.executable, "-m", "edgekit", *args], input=stdin, capture_output=True, env=env,
                          cwd=REPO, timeout=300, check=False)


def test_run_refuses_a_bundle_whose_model_crashes_the_interpreter(tmp_path: Path) -> None:
    """Before the probe, `edgekit run` died with SIGSEGV on this bundle (valid hashes, a
    mutated .tflite that passes the flatbuffer verifier)."""
    need_module("ai_edge_litert", INSTALL)
    bundle = fuzzing.CORPUS / "bundle" / "model-segfaults-the-interpreter.edgekit"
    proc = _edgekit("run", str(bundle), "--source", "stdin", tmp=tmp_path)
    lines = proc.stderr.decode().strip().splitlines()
    assert proc.returncode == 1, proc.stderr.decode()[-2000:]
    assert len(lines) == 1 and "contained in a child process" in lines[0], lines
    assert not list((tmp_path / "edgekit" / "probed").glob("*")), "a refused model must not be remembered as safe"


def test_the_probe_remembers_bytes_that_passed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    need_module("ai_edge_litert", INSTALL)
    from edgekit.runtime import backends
    from edgekit.runtime.backends import probe

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    data = (fuzzing.SEEDS / "tflite" / "image.tflite").read_bytes()
    backends.open_backend("tflite", data)
    assert len(list((tmp_path / "edgekit" / "probed").iterdir())) == 1

    def no_child(*_args, **_kwargs):
        raise AssertionError("probed again")

    monkeypatch.setattr(probe.subprocess, "run", no_child)
    backends.open_backend("tflite", data)  # remembered: no child process
    with pytest.raises(AssertionError, match="probed again"):
        backends.open_backend("tflite", data + b"\0")  # other bytes are probed


def test_run_counts_stdin_lines_that_are_not_utf8_or_not_numbers(tmp_path: Path) -> None:
    need_module("ai_edge_litert", INSTALL)
    bundle = fuzzing.SEEDS / "bundle" / "sensor.edgekit"
    good = b"".join(f"{i},{-i},1.0\n".encode() for i in range(8))
    bad = b"\xff\xfe,1,1\n" + b'{"ax": ' + b"9" * 400 + b', "ay": 1, "az": 1}\n' + b"[" * 100_000 + b"\n" + \
        b"nan,1,1\n1e39,1,1\n"
    proc = _edgekit("run", str(bundle), "--source", "stdin", stdin=good + bad + good, tmp=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    results = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert len(results) == 3  # 16 good rows, window 8, stride 4
    assert "malformed lines 5" in proc.stderr.decode()


def test_inspect_reads_onnx_external_data_as_the_runtime_does(tmp_path: Path) -> None:
    """Found while making the seeds: onnx.checker ran on the bytes without their folder, so
    ``edgekit inspect`` refused every bare .onnx with external data (exit 1)."""
    need_module("onnx", INSTALL)
    model = tmp_path / "model.onnx"
    model.write_bytes((fuzzing.SEEDS / "onnx" / "external.onnx").read_bytes())
    missing = _edgekit("inspect", str(model), "--json", tmp=tmp_path)
    assert missing.returncode == 3 and "no such file next to the model" in missing.stderr.decode(), missing.stderr
    (tmp_path / "weights.bin").write_bytes(bytes(16))  # the 1 x 4 float32 initializer
    proc = _edgekit("inspect", str(model), "--json", tmp=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    report = json.loads(proc.stdout)
    assert report["parameters"] == 4 and "1 initializer(s) stored as external data" in report["notes"]
