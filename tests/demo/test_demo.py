"""The main job, end to end, as `make demo` runs it (a small dataset, one epoch)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgekit.bundle import open_bundle
from edgekit.demo.run import build_stream, score_detections
from edgekit.features.audio import read_wav
from tests.support.cli import run_cli

STAGES = ("data", "train", "prune", "convert", "bench", "stream", "report")


def _stage_lines(stdout: str) -> dict[str, str]:
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["stage", "time"])
    return {line.split()[0]: line for line in lines[start + 1:] if line.split() and line.split()[0] in STAGES}


@pytest.mark.tf
@pytest.mark.slow
def test_demo_end_to_end_and_rerun(tmp_path):
    out = tmp_path / "demo"
    args = ("demo", "-o", str(out), "--samples", "12", "--epochs", "1", "--bench-seconds", "0.1")
    result = run_cli(*args)
    assert result.code == 0, result.stderr
    for stage in range(1, 8):
        assert f"[{stage}/7]" in result.stderr  # every stage says what it does
    for path in ("data/dataset.json", "train/kws-dscnn.keras", "train/kws-dscnn.preprocess.yaml",
                 "train/heldout.npz", "train/report.json", "train/report.md", "train/curves.png",
                 "train/confusion.png", "train/convert.json", "train/kws-dscnn.pruned.keras",
                 "train/kws-dscnn.pruned.prune.json", "kws-dscnn.edgekit", "bench/bench.json",
                 "bench/bench.md", "bench/bench.png", "stream/stream.wav", "stream/truth.json", "stream/scores.json",
                 "stream/tflite-int8.jsonl", "stream/onnx-fp32.jsonl", "stream/stream.png", "report.md",
                 "summary.txt", "summary.json"):
        assert (out / path).is_file(), path

    manifest = open_bundle(out / "kws-dscnn.edgekit").manifest  # verifies every hash
    assert manifest.variant_names == ["tflite-int8", "onnx-fp32"]
    # int8 I/O, unless the gate's auto-fallback had to keep layers in float (float I/O); a
    # one-epoch model on 12 clips per class sometimes needs it, and convert.json says so
    int8_report = next(v for v in json.loads((out / "train" / "convert.json").read_text())["variants"]
                       if v["name"] == "tflite-int8")
    expected_io = "float32" if int8_report.get("fallback", {}) and int8_report["fallback"].get("float_layers") else "int8"
    assert manifest.variant("tflite-int8").inputs[0].dtype.value == expected_io
    assert manifest.preprocess.kind.value == "audio"
    assert manifest.postprocess.smoothing_ms > 0 and "_silence_" in manifest.labels
    # the bundle is the pruned model, and says so; the summary and the report show the effect
    steps = manifest.provenance["steps"]
    assert [s["step"] for s in steps] == ["prune", "convert"] and steps[0]["options"]["channels"] == 0.5
    assert steps[0]["parameters"]["after"] < steps[0]["parameters"]["before"] / 2
    assert "pruning   50% of the channels removed" in result.stdout and "keras pruned" in result.stdout
    assert "## Pruning" in (out / "report.md").read_text()

    # the summary table: one row per model, the stream figures, every stage and the total
    stdout = result.stdout
    assert "keras float32" in stdout and "tflite-int8" in stdout and "onnx-fp32" in stdout
    assert "invoke p50" in stdout and "stream hits" in stdout and "false alarms" in stdout
    stages = _stage_lines(stdout)
    assert set(stages) == set(STAGES) and not any("reused" in stages[s] for s in STAGES[1:])
    assert any(line.startswith("total") for line in stdout.splitlines())
    summary = json.loads((out / "summary.json").read_text())
    assert [v["name"] for v in summary["variants"]] == ["tflite-int8", "onnx-fp32"]
    assert all(v["invoke_median_ms"] > 0 and v["e2e_median_ms"] > 0 for v in summary["variants"])

    # the stream: held-out clips only, at the times the ground truth says
    heldout = np.load(out / "train" / "heldout.npz")
    truth = json.loads((out / "stream" / "truth.json").read_text())
    samples, rate = read_wav(out / "stream" / "stream.wav")
    assert rate == 16000 and truth["segments"]
    for segment in truth["segments"]:
        clip = heldout["x"][segment["heldout_index"]]
        start = segment["start_sample"]
        assert segment["end_sample"] - start == len(clip) and abs(segment["start_s"] * rate - start) < 0.1
        assert np.max(np.abs(samples[start:start + len(clip)] - clip)) < 2e-4  # 16-bit rounding
        assert manifest.labels[int(heldout["y"][segment["heldout_index"]])] == segment["label"]
    scores = json.loads((out / "stream" / "scores.json").read_text())
    for name in ("tflite-int8", "onnx-fp32"):
        s = scores["variants"][name]
        assert s["hits"] + s["misses"] == s["keywords"] == scores["keywords"]
        lines = (out / "stream" / f"{name}.jsonl").read_text().splitlines()
        assert len(lines) == s["results"] > 0
        assert json.loads(lines[0])["variant"] == name
    report = (out / "report.md").read_text()
    for link in ("train/curves.png", "train/confusion.png", "bench/bench.png", "stream/stream.png"):
        assert f"]({link})" in report

    # a re-run reuses every stage
    again = run_cli(*args)
    assert again.code == 0, again.stderr
    stages = _stage_lines(again.stdout)
    assert all("reused" in stages[s] for s in STAGES[:-1]), again.stdout
    assert "reused" in again.stderr and "epoch 1/1" not in again.stderr

    # a changed option redoes only what depends on it
    third = run_cli(*args[:-1], "0.2")
    assert third.code == 0, third.stderr
    stages = _stage_lines(third.stdout)
    assert all("reused" in stages[s] for s in ("data", "train", "prune", "convert", "stream"))
    assert "reused" not in stages["bench"]


def test_demo_into_an_unwritable_place(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run_cli("demo", "-o", str(blocker / "sub"), "--epochs", "1")
    assert result.code == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("edgekit: error: output directory")


def test_stream_is_built_from_the_given_clips_with_gaps():
    rng = np.random.default_rng(0)
    labels = ["_silence_", "_unknown_", "yes", "no"]
    y = np.repeat(np.arange(4), 5)
    x = rng.uniform(-0.5, 0.5, (len(y), 1600)).astype(np.float32)
    samples, truth = build_stream(x, y, labels, per_class=3, gap_s=(0.5, 0.6), rate=1600, seed=1)
    assert len(truth) == 12 and sum(t["kind"] == "keyword" for t in truth) == 6
    previous_end = 0.0
    for t in truth:
        start = t["start_sample"]
        assert np.array_equal(samples[start:start + 1600], x[t["heldout_index"]])
        assert labels[y[t["heldout_index"]]] == t["label"]
        assert t["start_s"] - previous_end >= 0.5 - 1e-6 or previous_end == 0.0
        previous_end = t["end_s"]
    again, _ = build_stream(x, y, labels, per_class=3, gap_s=(0.5, 0.6), rate=1600, seed=1)
    assert np.array_equal(samples, again)  # same seed, same stream


def test_detections_are_scored_against_the_truth():
    truth = [{"start_s": 1.0, "end_s": 2.0, "label": "yes", "kind": "keyword"},
             {"start_s": 4.0, "end_s": 5.0, "label": "no", "kind": "keyword"},
             {"start_s": 7.0, "end_s": 8.0, "label": "_unknown_", "kind": "distractor"},
             {"start_s": 10.0, "end_s": 11.0, "label": "up", "kind": "keyword"}]
    detections = [(1.6, "yes"), (2.8, "yes"), (4.5, "up"), (5.9, "no"), (7.5, "go")]
    scores = score_detections(truth, detections, tolerance_s=1.0)
    assert (scores["hits"], scores["misses"], scores["false_alarms"]) == (2, 1, 3)
    assert scores["false_alarm_kinds"] == {"repeat": 1, "wrong_label": 1, "no_keyword": 1}
    assert [m["label"] for m in scores["missed"]] == ["up"]
    assert scores["recall"] == pytest.approx(2 / 3) and scores["precision"] == pytest.approx(2 / 5)
    late = score_detections(truth, [(6.1, "no")], tolerance_s=1.0)
    assert late["hits"] == 0 and late["false_alarm_kinds"]["no_keyword"] == 1
