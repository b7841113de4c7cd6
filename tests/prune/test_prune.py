"""`edgekit prune` end to end: a real (tiny) training run, real pruning and fine-tuning, real
converters and the bundle's provenance; bad input gets one line, its exit code and no file.

The pruning algorithms themselves are tested in test_prune_magnitude.py and
test_prune_structured.py; this file tests the command around them.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.support.cli import CliResult, run_cli

pytestmark = pytest.mark.tf

TINY = ("--samples", "24", "--epochs", "2", "--set", "train.batch_size=16", "--set", "architecture.filters=[8,8,16]",
        "--set", "train.patience=0")


@dataclass(frozen=True)
class Trained:
    folder: Path
    model: Path
    bundle: Path


def prune_cli(*args: str | Path) -> CliResult:
    return run_cli("-q", "prune", *map(str, args))


def assert_refused(result: CliResult, code: int, *fragments: str) -> str:
    """Exit `code`, one line on stderr holding every fragment, no traceback."""
    assert result.code == code, (result.code, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def assert_nothing_written(out: Path) -> None:
    stem = out.name.removesuffix(".keras")
    leftovers = sorted(p.name for p in out.parent.iterdir() if p.name.startswith(stem))
    assert leftovers == [], leftovers


def kernels(path: Path) -> dict[str, np.ndarray]:
    from edgekit.keras_env import import_keras

    keras = import_keras()
    model = keras.saving.load_model(str(path), compile=False, safe_mode=True)
    return {layer.name: np.asarray(layer.kernel) for layer in model.layers if hasattr(layer, "kernel")
            and type(layer).__name__ in ("Conv2D", "Dense")}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """ic-resnet8 shrunk, trained with the recipe's prune section (50% sparsity) and exported."""
    folder = tmp_path_factory.mktemp("prune") / "ic"
    bundle = folder.parent / "ic.edgekit"
    result = run_cli("-q", "train", "ic-resnet8", "-o", str(folder), *TINY, "--set", "prune.sparsity=0.5",
                     "--set", "prune.epochs=1", "--set", "convert.variants=[tflite-fp32]", "--export", str(bundle))
    assert result.code == 0, result.stderr
    return Trained(folder, folder / "ic-resnet8.keras", bundle)


def test_train_prunes_before_export_and_the_bundle_says_so(trained: Trained) -> None:
    report = json.loads((trained.folder / "report.json").read_text())
    pruned = trained.folder / "ic-resnet8.pruned.keras"
    assert report["outputs"]["pruned_model"] == str(pruned) and pruned.is_file()
    section = report["prune"]
    assert section["method"] == "magnitude" and section["options"]["sparsity"] == 0.5
    assert section["parameters"]["nonzero_after"] < section["parameters"]["before"]
    assert "## Pruning" in (trained.folder / "report.md").read_text()
    with zipfile.ZipFile(trained.bundle) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    steps = manifest["provenance"]["steps"]
    assert [s["step"] for s in steps] == ["prune", "convert"]
    assert steps[0]["method"] == "magnitude" and steps[0]["options"]["sparsity"] == 0.5
    assert steps[0]["source"]["path"] == "ic-resnet8.keras"
    # the exported model is the pruned one: its kernels carry the zeros
    pruned_kernels = kernels(pruned)
    left_alone = {item["layer"] for item in steps[0]["left_alone"]}
    assert {"probabilities"} <= left_alone
    inner = [k for name, k in pruned_kernels.items() if name not in left_alone]
    assert inner and all(abs(float(np.mean(k == 0)) - 0.5) < 0.01 for k in inner)


def test_prune_sparsity_writes_model_contract_and_report(trained: Trained, tmp_path: Path) -> None:
    out = tmp_path / "sparse.keras"
    result = prune_cli(trained.model, "--sparsity", "0.7", "--epochs", "1", "--scope", "global", "--distill", "0.5",
                       "--no-measure", "-o", out)
    assert result.code == 0, result.stderr
    assert "held-out accuracy" in result.stdout and "left alone:" in result.stdout
    report = json.loads((tmp_path / "sparse.prune.json").read_text())
    assert report["method"] == "magnitude" and report["options"]["scope"] == "global"
    assert report["options"]["distill"] == 0.5
    assert abs(report["pruning"]["achieved"] - 0.7) < 0.01
    # the split is the training split: the held-out samples are the training run's test samples
    train_report = json.loads((trained.folder / "report.json").read_text())
    assert report["data"]["test"] == train_report["data"]["test_split"]["samples"]
    assert report["held_out"]["before"]["value"] == pytest.approx(train_report["test"]["accuracy"])
    contract = yaml.safe_load((tmp_path / "sparse.preprocess.yaml").read_text())
    original = yaml.safe_load((trained.folder / "ic-resnet8.preprocess.yaml").read_text())
    assert contract["preprocess"] == original["preprocess"] and contract["labels"] == original["labels"]
    assert contract["provenance"]["steps"][-1]["step"] == "prune"
    assert contract["provenance"]["steps"][-1]["options"]["distill"] == 0.5
    first = kernels(out)
    assert float(np.mean(first["probabilities"] == 0)) < 0.05  # the last layer stayed dense


def test_prune_channels_makes_a_thinner_model_that_converts(trained: Trained, tmp_path: Path) -> None:
    out = tmp_path / "thin.keras"
    result = prune_cli(trained.model, "--channels", "0.5", "--epochs", "1", "--no-bench", "-o", out, "--json")
    assert result.code == 0, result.stderr
    report = result.json()
    assert report["parameters"]["after"] < report["parameters"]["before"] * 0.5
    assert report["macs"]["after"] < report["macs"]["before"] * 0.5
    assert report["pruning"]["groups"] and all(g["after"] < g["before"] for g in report["pruning"]["groups"])
    fp32 = report["tflite"]["variants"]["tflite-fp32"]
    assert fp32["pruned"]["bytes"] < fp32["unpruned"]["bytes"] * 0.6
    assert "accuracy" in fp32["pruned"]["metrics"]
    bundle = tmp_path / "thin.edgekit"
    converted = run_cli("-q", "convert", str(out), "-o", str(bundle), "--variants", "tflite-fp32", "--data",
                        str(trained.folder / "heldout.npz"))
    assert converted.code == 0, converted.stderr
    with zipfile.ZipFile(bundle) as archive:
        steps = json.loads(archive.read("manifest.json"))["provenance"]["steps"]
    assert [s["step"] for s in steps] == ["prune", "convert"] and steps[0]["method"] == "channels"


@pytest.mark.parametrize(("args", "fragments"), [
    (("--sparsity", "1.0"), ("--sparsity", "[0, 1)", "1.0")),
    (("--sparsity", "-0.1"), ("--sparsity", "[0, 1)")),
    (("--channels", "1.5"), ("--channels", "(0, 1)")),
    (("--channels", "0.97"), ("0.97", "channel")),
    (("--sparsity", "0.5", "--skip", "no_such_layer"), ("no_such_layer",)),
])
def test_bad_amounts_get_one_line_exit_1_and_no_file(trained: Trained, tmp_path: Path, args: tuple[str, ...],
                                                     fragments: tuple[str, ...]) -> None:
    out = tmp_path / "bad.keras"
    assert_refused(prune_cli(trained.model, *args, "--epochs", "0", "--no-measure", "-o", out), 1, *fragments)
    assert_nothing_written(out)


def test_usage_errors_exit_2(trained: Trained, tmp_path: Path) -> None:
    out = tmp_path / "x.keras"
    both = prune_cli(trained.model, "--sparsity", "0.5", "--channels", "0.5", "-o", out)
    assert both.code == 2 and "exclusive" in both.stderr
    neither = prune_cli(trained.model, "-o", out)
    assert neither.code == 2 and "--sparsity" in neither.stderr
    assert_nothing_written(out)


def test_model_with_code_is_refused_exit_3(tmp_path: Path) -> None:
    from edgekit.keras_env import import_keras

    keras = import_keras()
    inputs = keras.Input((8,))
    hidden = keras.layers.Dense(8)(inputs)
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.Lambda(lambda t: t * 2.0, name="doubler")(hidden))
    model_path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(model_path)
    out = tmp_path / "out.keras"
    line = assert_refused(prune_cli(model_path, "--sparsity", "0.5", "--data", tmp_path, "-o", out), 3,
                          "refused", "doubler", "--trust-model-code")
    assert line.startswith("edgekit: refused:")
    assert_nothing_written(out)


def test_nothing_prunable_and_missing_recipe(trained: Trained, tmp_path: Path) -> None:
    from edgekit.keras_env import import_keras

    keras = import_keras()
    folder = tmp_path / "linear"
    folder.mkdir()
    inputs = keras.Input((32, 32, 3), name="image")
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    classes = len((trained.folder / "labels.txt").read_text().split())
    outputs = keras.layers.Dense(classes, activation="softmax", name="probabilities")(pooled)
    model = folder / "linear.keras"
    keras.Model(inputs, outputs).save(model)
    out = tmp_path / "out.keras"
    # no training folder next to it and no --recipe: say what is missing
    assert_refused(prune_cli(model, "--sparsity", "0.5", "--data", trained.folder / "data", "-o", out), 1,
                   "report.json", "--recipe")
    # with the recipe and the data: the only layer is the output, so there is nothing to prune
    for kind in (("--sparsity", "0.5"), ("--channels", "0.5")):
        line = assert_refused(prune_cli(model, *kind, "--recipe", "ic-resnet8", "--epochs", "0", "--data",
                                        trained.folder / "data", "--no-measure", "-o", out), 1)
        assert "probabilities" in line, line
    assert_nothing_written(out)


def test_output_must_be_a_new_keras_file(trained: Trained, tmp_path: Path) -> None:
    assert_refused(prune_cli(trained.model, "--sparsity", "0.5", "-o", tmp_path / "x.tflite"), 1, ".keras")
    copy = tmp_path / "copy"
    shutil.copytree(trained.folder, copy, ignore=shutil.ignore_patterns("data"))
    assert_refused(prune_cli(copy / "ic-resnet8.keras", "--sparsity", "0.5", "-o", copy / "ic-resnet8.keras"), 1,
                   "the input model itself")


def test_anomaly_model_gets_its_own_threshold(tmp_path: Path) -> None:
    """A pruned autoencoder reconstructs differently: its contract carries a threshold
    recalibrated on the validation split, not the unpruned model's."""
    folder = tmp_path / "ad"
    trained = run_cli("-q", "train", "ad-autoencoder", "-o", str(folder), "--samples", "150", "--epochs", "2", "--set",
                      "architecture.units=[16,16]", "--set", "architecture.bottleneck=4", "--set", "train.batch_size=32")
    assert trained.code == 0, trained.stderr
    out = tmp_path / "ad-pruned.keras"
    result = prune_cli(folder / "ad-autoencoder.keras", "--sparsity", "0.9", "--epochs", "0", "--no-measure", "-o", out,
                       "--json")
    assert result.code == 0, result.stderr
    report = result.json()
    assert report["held_out"]["before"]["metric"] == "roc_auc"
    thresholds = report["anomaly_threshold"]
    assert thresholds["after"] != thresholds["before"]
    contract = yaml.safe_load((tmp_path / "ad-pruned.preprocess.yaml").read_text())
    original = yaml.safe_load((folder / "ad-autoencoder.preprocess.yaml").read_text())
    assert original["postprocess"]["anomaly_threshold"] == pytest.approx(thresholds["before"], rel=1e-6)
    assert contract["postprocess"]["anomaly_threshold"] == pytest.approx(thresholds["after"], rel=1e-6)
