"""Every architecture family through the whole pipeline: `edgekit train` on the recipe's
synthetic data, `--export` through the real converters, the bundle through the runtime.

Each run is shrunk with ``--set`` (few samples, one or two epochs, narrow layers) so it
takes seconds; the tests check behaviour, files and the figures' presence and sanity,
not accuracy (`tools/coverage_matrix.py` measures that on the full recipes).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.support.cli import CliResult, run_cli, train_killed_after_an_epoch

pytestmark = [pytest.mark.tf, pytest.mark.slow]


def train(recipe: str, root: Path, *args: str, export: bool = True) -> tuple[Path, Path, CliResult]:
    out, bundle = root / "out", root / f"{recipe}.edgekit"
    result = run_cli("train", recipe, "-o", str(out), *args, *(["--export", str(bundle)] if export else []))
    assert result.code == 0, result.stderr
    return out, bundle, result


def report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def variants(bundle: Path) -> dict[str, dict]:
    from edgekit.bundle import open_bundle

    manifest = open_bundle(bundle).manifest  # verifies hashes, sizes and schema
    return {v.name: {"precision": v.precision, "metrics": dict(v.metrics)} for v in manifest.variants}


@pytest.fixture(scope="module")
def demand_run(tmp_path_factory) -> tuple[Path, Path, CliResult]:
    return train("demand-lstm", tmp_path_factory.mktemp("demand"), "--epochs", "2", "--set", "architecture.units=[8]",
                 "--set", "data.synth_samples=40", "--set", "convert.max_accuracy_drop=100")


def test_regression_reports_rmse_and_the_bundle_answers_in_target_units(demand_run):
    out, bundle, result = demand_run
    figures = report(out)["test"]
    assert {"rmse", "mae", "r2", "baseline_rmse", "mape_pct"} <= set(figures)
    assert figures["rmse"] > 0 and np.isfinite(figures["r2"])
    assert "held-out RMSE" in result.stdout
    assert (out / "predictions.png").read_bytes()[:4] == b"\x89PNG"
    contract = yaml.safe_load((out / "demand-lstm.preprocess.yaml").read_text())
    assert contract["postprocess"]["kind"] == "regression" and "labels" not in contract
    with np.load(out / "heldout.npz") as heldout:
        x, y = heldout["x"], heldout["y"]
    assert x.shape[1:] == (48, 2) and y.dtype == np.float32 and len(y) == figures["samples"]

    found = variants(bundle)
    assert {"tflite-fp32", "onnx-fp32"} <= set(found)
    for name, v in found.items():
        assert v["metrics"]["drop_basis"] == "rmse_increase_pct", name
        assert v["metrics"]["rmse"] > 0, name

    # the runtime predicts demand in the data's units (the model rescales), not normalized values
    from edgekit.runtime import load

    model = load(bundle, variant="tflite-fp32")
    values = np.array([model.predict(window).values[0] for window in x[:20]])
    keras_rmse = figures["rmse"]
    runtime_rmse = float(np.sqrt(np.mean((values - y[:20]) ** 2)))
    assert runtime_rmse < 3 * keras_rmse + 1e-6 and abs(values.mean() - y.mean()) < 3 * y.std()


def test_regression_targets_must_be_numbers(tmp_path):
    np.savez(tmp_path / "bad.npz", x=np.zeros((20, 48, 2), np.float32), y=np.array(["a"] * 20))
    result = run_cli("-q", "train", "demand-lstm", "--data", str(tmp_path / "bad.npz"), "-o", str(tmp_path / "o"))
    assert result.code == 1 and "Traceback" not in result.stderr
    assert "targets in" in result.stderr and "numeric targets" in result.stderr


def test_the_transformer_trains_and_converts(tmp_path):
    out, bundle, _ = train("har-transformer", tmp_path, "--epochs", "1", "--samples", "16",
                           "--set", "architecture.layers=1", "--set", "architecture.d_model=16",
                           "--set", "train.warmup_epochs=0", "--set", "convert.variants=[tflite-int8,onnx-fp32]",
                           "--set", "convert.max_accuracy_drop=100")
    model = report(out)["model"]
    assert model["architecture"]["name"] == "transformer" and model["input_shape"] == [128, 6]
    found = variants(bundle)
    assert set(found) == {"tflite-int8", "onnx-fp32"}
    assert found["tflite-int8"]["metrics"]["top1_agreement"] >= 0.5


def test_the_dense_classifier_takes_feature_rows_standardized_by_the_bundle(tmp_path):
    out, bundle, _ = train("tab-mlp", tmp_path, "--epochs", "2", "--samples", "20", "--set", "architecture.units=[16]",
                           "--set", "convert.variants=[tflite-fp32,tflite-int8]", "--set", "convert.max_accuracy_drop=100")
    assert report(out)["model"]["input_shape"] == [1, 44]
    contract = yaml.safe_load((out / "tab-mlp.preprocess.yaml").read_text())
    spec = contract["preprocess"]
    assert spec["kind"] == "sensor" and spec["window"] == 1 and len(spec["channels"]) == 44
    with np.load(out / "heldout.npz") as heldout:
        x = heldout["x"]
    assert x.shape[1:] == (1, 44)
    assert float(np.abs(x).max()) > 5.0  # raw features on their own scales; the bundle standardizes
    assert min(spec["std"]) > 0 and max(spec["std"]) / min(spec["std"]) > 10  # fitted, on scales far apart

    from edgekit.runtime import load

    model = load(bundle, variant="tflite-int8")
    result = model.predict(x[0])
    assert result.kind == "classification" and result.label in contract["labels"]


def test_the_conv_autoencoder_detects_image_anomalies(tmp_path):
    out, bundle, _ = train("ad-conv-autoencoder", tmp_path, "--epochs", "2", "--samples", "60",
                           "--set", "architecture.filters=[8,16,16]", "--set", "architecture.bottleneck=8",
                           "--set", "convert.variants=[tflite-int8,onnx-fp32]", "--set", "convert.max_accuracy_drop=100")
    figures = report(out)["test"]
    assert 0.0 <= figures["roc_auc"] <= 1.0 and figures["threshold"] > 0
    data = report(out)["data"]
    assert data["test_split"]["per_class"]["anomalous"] > 0  # the anomalies went to the test only
    assert data["train"]["per_class"]["anomalous"] == 0
    contract = yaml.safe_load((out / "ad-conv-autoencoder.preprocess.yaml").read_text())
    assert contract["postprocess"]["anomaly_threshold"] == pytest.approx(figures["threshold"], rel=1e-6)
    found = variants(bundle)
    assert found["tflite-int8"]["metrics"]["drop_basis"] == "roc_auc"


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory) -> tuple[Path, Path, CliResult]:
    return train("gan-dcgan", tmp_path_factory.mktemp("gan"), "--epochs", "2", "--samples", "16",
                 "--set", "architecture.filters=[32,16,8]", "--set", "architecture.discriminator_filters=[8,16,16]",
                 "--set", "convert.variants=[tflite-fp32,tflite-fp16,onnx-fp32]")


def test_the_gan_exports_its_generator_with_a_sample_grid(gan_run):
    out, bundle, result = gan_run
    figures = report(out)
    history = figures["training"]["history"]
    assert [h["epoch"] for h in history] == [1, 2]
    assert {"d_loss", "g_loss", "real_score", "fake_score"} <= set(history[0])
    assert figures["test"]["diversity_rms"]["generated"] > 0
    assert (out / "samples.png").read_bytes()[:4] == b"\x89PNG" and "samples.png" in result.stdout
    assert not (out / "checkpoints").exists()
    contract = yaml.safe_load((out / "gan-dcgan.preprocess.yaml").read_text())
    assert contract["preprocess"] == {"kind": "none"} and contract["postprocess"]["kind"] == "generation"
    with np.load(out / "heldout.npz") as heldout:
        assert heldout["x"].shape == (256, 32) and "y" not in heldout.files

    found = variants(bundle)
    assert set(found) == {"tflite-fp32", "tflite-fp16", "onnx-fp32"}
    assert found["tflite-fp16"]["metrics"]["snr_db"] > 20

    from edgekit.runtime import load

    model = load(bundle, variant="tflite-fp32")
    z = np.random.default_rng(5).standard_normal(32).astype(np.float32)
    result = model.predict(z)
    assert result.kind == "generation"
    image = np.asarray(result.output, np.float32)
    assert image.size == 32 * 32 * 3 and 0.0 <= image.min() and image.max() <= 1.0 and image.std() > 0


def test_a_killed_gan_resumes_with_its_discriminator(tmp_path):
    """SIGKILL after a checkpoint: --resume continues both networks from the last epoch."""
    from edgekit.train import gan

    out, epochs = tmp_path / "out", 6
    args = ["gan-dcgan", "-o", str(out), "--epochs", str(epochs), "--samples", "16",
            "--set", "architecture.filters=[32,16,8]", "--set", "architecture.discriminator_filters=[8,16,16]"]
    killed_at = train_killed_after_an_epoch(args, out)["epoch"]
    assert (out / "checkpoints" / gan.DISCRIMINATOR_FILE).is_file()
    result = run_cli("train", *args, "--resume")
    assert result.code == 0, result.stderr
    assert f"resuming after epoch {killed_at}" in result.stderr
    assert [h["epoch"] for h in report(out)["training"]["history"]] == list(range(1, epochs + 1))


def test_the_regression_gate_speaks_in_percent_of_the_float_rmse(demand_run, tmp_path):
    from edgekit.runtime import load

    out, bundle, _ = demand_run
    # Targets the float model fits to within about 1 unit: int8's error is then an RMSE
    # increase beyond noise, which the gate fails even on 40 samples.
    with np.load(out / "heldout.npz") as heldout:
        x = heldout["x"]
    fp32 = load(bundle, variant="tflite-fp32")
    near = np.array([fp32.predict(w).values[0] for w in x]) + np.random.default_rng(0).normal(0.0, 1.0, len(x))
    np.savez(tmp_path / "near.npz", x=x, y=near)
    result = run_cli("-q", "convert", str(out / "demand-lstm.keras"), "-o", str(tmp_path / "d.edgekit"),
                     "--variants", "tflite-int8", "--data", str(tmp_path / "near.npz"), "--max-accuracy-drop", "0")
    assert result.code == 4, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("edgekit: gate failed: accuracy gate failed for tflite-int8; bundle not written")
    assert "a drop of at most 0% RMSE increase" in line and "% RMSE increase" in line.split("found")[1]
    assert not (tmp_path / "d.edgekit").exists()
