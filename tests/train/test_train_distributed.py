"""Multi-worker training: two CPU workers on loopback, started with TF_CONFIG as a cluster
manager would start them on two machines."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.support.cli import run_cli
from tests.support.env import REPO, free_port

pytestmark = [pytest.mark.tf, pytest.mark.slow]


def test_two_workers_on_loopback_both_take_part(tmp_path):
    data = tmp_path / "har"
    made = run_cli("datasets", "synth", "har", "-o", str(data), "--samples", "40")
    assert made.code == 0, made.stderr
    ports = [free_port(), free_port()]
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    workers = []
    for index in range(2):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
                   TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))
        workers.append(subprocess.Popen(
            [sys.executable, "-m", "edgekit", "train", "har-cnn1d", "--data", str(data), "-o", str(tmp_path / f"w{index}"),
             "--epochs", "2", "--batch-size", "8", "--set", "train.patience=0"],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = []
    try:
        for proc in workers:
            outputs.append(proc.communicate(timeout=400))
    finally:
        for proc in workers:
            proc.kill()
    for proc, (_out, err) in zip(workers, outputs, strict=True):
        assert proc.returncode == 0, err

    chief = json.loads((tmp_path / "w0" / "report.json").read_text())
    other = json.loads((tmp_path / "w1" / "worker-1.json").read_text())
    assert (tmp_path / "w0" / "har-cnn1d.keras").is_file()
    assert not (tmp_path / "w1" / "har-cnn1d.keras").exists()  # only the chief writes the model
    for report, index in ((chief, 0), (other, 1)):
        assert report["strategy"]["kind"] == "multi-worker"
        assert report["strategy"]["replicas"] == 2
        assert report["strategy"]["worker"] == {"type": "worker", "index": index, "workers": 2, "has_chief": False}
        assert report["training"]["epochs_run"] == 2
    # each worker trained on its own shard: both did work, together they covered the data
    # once per epoch (2 epochs), neither saw all of it
    mine, theirs = chief["training"]["samples_this_worker"], other["training"]["samples_this_worker"]
    samples = chief["data"]["train"]["samples"]
    assert 0 < mine < 2 * samples and 0 < theirs < 2 * samples
    assert mine + theirs == 2 * samples
    # one synchronized model: the losses the workers saw are the cluster's, identical
    assert [h["loss"] for h in chief["training"]["history"]] == [h["loss"] for h in other["training"]["history"]]
    assert chief["test"]["accuracy"] == other["test"]["accuracy"]
    assert "worker 1 of 2" in outputs[1][0]


def test_malformed_tf_config_is_one_line(tmp_path):
    result = run_cli("train", "har-cnn1d", "-o", str(tmp_path / "out"), "--samples", "10", "--epochs", "1",
                     env={"TF_CONFIG": "{not json"})
    assert result.code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("edgekit: error: TF_CONFIG: expected JSON"), result.stderr
    assert "Traceback" not in result.stderr


def test_mixed_precision_trains_and_saves_a_float32_model(tmp_path):
    """The GPU path's precision on this CPU: mixed float16 training, float32 model out."""
    data = tmp_path / "har"
    assert run_cli("datasets", "synth", "har", "-o", str(data), "--samples", "30").code == 0
    out = tmp_path / "out"
    result = run_cli("train", "har-cnn1d", "--data", str(data), "-o", str(out), "--epochs", "1", "--batch-size", "16",
                     "--precision", "mixed")
    assert result.code == 0, result.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["strategy"]["mixed_precision"] is True
    code = ("import json, keras; m = keras.models.load_model({!r}); "
            "print(json.dumps(sorted({{l.dtype_policy.name for l in m.layers}})))").format(str(out / "har-cnn1d.keras"))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert json.loads(proc.stdout.splitlines()[-1]) == ["float32"]
