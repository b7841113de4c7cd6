"""`edgekit eval`: bundles measured on labelled data through the runtime.

The bundles are made by the real converter from tiny Keras models trained on real data
(scikit-learn's bundled iris, breast cancer and diabetes tables) and the shapes images;
every figure is checked against the runtime's own answers, computed here sample by sample.
"""

from __future__ import annotations

import json
import shutil
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from edgekit.errors import InputError
from edgekit.eval import EvalConfig, evaluate
from edgekit.eval.report import PLOT_HINT
from edgekit.runtime import load
from tests.support.cli import CliResult, assert_one_line_error
from tests.support.env import need_module
from tests.support.models import save_keras

pytestmark = pytest.mark.tf  # the bundles are made by the converter

IRIS_CHANNELS = ("sepal_length", "sepal_width", "petal_length", "petal_width")


def eval_cli(capsys: pytest.CaptureFixture[str], *args: object) -> CliResult:
    """``edgekit -q eval ARGS`` in this process (the command line's own error mapping)."""
    from edgekit.cli import main

    capsys.readouterr()
    code = main(["-q", "eval", *(str(a) for a in args)])
    out = capsys.readouterr()
    return CliResult(code, out.out, out.err)


def inside(figure: dict) -> bool:
    low, high = figure["ci95"]
    return low <= figure["value"] <= high


@dataclass
class Tabular:
    iris: Path  # classifier, window-1 sensor spec over the four named measurements
    iris_x: np.ndarray
    iris_y: np.ndarray
    iris_names: tuple[str, ...]
    cancer: Path  # autoencoder trained on benign tumours; malignant ones are the anomalies
    cancer_x: np.ndarray
    cancer_anomalous: np.ndarray
    diabetes: Path  # regressor of disease progression
    diabetes_x: np.ndarray
    diabetes_y: np.ndarray


def _sensor_yaml(channels: list[str], x: np.ndarray, rest: str) -> str:
    mean = [round(float(v), 6) for v in x.mean(axis=0)]
    std = [round(float(v), 6) for v in x.std(axis=0) + 1e-6]
    return (f"preprocess: {{kind: sensor, window: 1, stride: 1, channels: {json.dumps(channels)}, "
            f"mean: {mean}, std: {std}}}\n{rest}")


@pytest.fixture(scope="session")
def tabular(tmp_path_factory: pytest.TempPathFactory) -> Tabular:
    """Three bundles from real data. The Keras models get the weights of scikit-learn's
    closed-form fits (logistic regression, PCA as a linear autoencoder, least squares), so
    nothing is trained by gradient descent here; the converter and interpreters are real."""
    need_module("sklearn", 'pip install "edgekit-ml[dev]" (scikit-learn)')
    import keras
    from sklearn import datasets
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LinearRegression, LogisticRegression

    from edgekit.convert.run import ConvertConfig, convert

    root = tmp_path_factory.mktemp("eval")

    def standardized(x: np.ndarray, like: np.ndarray | None = None) -> np.ndarray:
        like = x if like is None else like
        return (x - like.mean(axis=0)) / (like.std(axis=0) + 1e-6)

    def dense_model(features: int, layers: list[tuple[np.ndarray, np.ndarray, str | None]]) -> keras.Model:
        inp = keras.Input((1, features))
        h = keras.layers.Flatten()(inp)
        dense = []
        for weights, _bias, activation in layers:
            dense.append(keras.layers.Dense(weights.shape[1], activation=activation))
            h = dense[-1](h)
        model = keras.Model(inp, h)
        for layer, (weights, bias, _activation) in zip(dense, layers, strict=True):
            layer.set_weights([weights.astype(np.float32), bias.astype(np.float32)])
        return model

    # iris: versicolor and virginica overlap, setosa stands apart
    iris = datasets.load_iris()
    x, y = iris.data.astype(np.float32), iris.target.astype(np.int64)
    fit = LogisticRegression(C=0.5, max_iter=1000).fit(standardized(x), y)
    save_keras(dense_model(4, [(fit.coef_.T, fit.intercept_, "softmax")]), root / "iris.keras")
    names = tuple(str(n) for n in iris.target_names)
    (root / "iris.preprocess.yaml").write_text(_sensor_yaml(list(IRIS_CHANNELS), x, f"labels: {list(names)}\n"))
    np.savez(root / "iris-calibration.npz", x=x[:, None, :], y=y)
    convert(ConvertConfig(model=root / "iris.keras", output=root / "iris.edgekit", data=root / "iris-calibration.npz",
                          variants=("tflite-fp32", "tflite-int8")))

    # breast cancer: a linear autoencoder (PCA) of benign tumours (target 1); malignant ones are anomalous
    cancer = datasets.load_breast_cancer()
    cx, anomalous = cancer.data.astype(np.float32), (cancer.target == 0).astype(np.int64)
    benign = cx[anomalous == 0]
    scaled = standardized(benign)
    pca = PCA(4).fit(scaled)
    components = pca.components_
    autoencoder = dense_model(30, [(components.T, -pca.mean_ @ components.T, None), (components, pca.mean_, None)])
    errors = np.mean((pca.inverse_transform(pca.transform(scaled)) - scaled) ** 2, axis=1)
    save_keras(autoencoder, root / "cancer.keras")
    (root / "cancer.preprocess.yaml").write_text(_sensor_yaml(
        [f"f{i}" for i in range(30)], benign,
        f"postprocess: {{kind: anomaly, anomaly_threshold: {float(np.percentile(errors, 95)):.6f}}}\n"))
    convert(ConvertConfig(model=root / "cancer.keras", output=root / "cancer.edgekit", variants=("tflite-fp32",),
                          allow_random_calibration=True))

    # diabetes: disease progression a year later, from ten measurements (least squares)
    diabetes = datasets.load_diabetes(scaled=False)
    dx, dy = diabetes.data.astype(np.float32), diabetes.target.astype(np.float32)
    line = LinearRegression().fit(standardized(dx), dy)
    save_keras(dense_model(10, [(line.coef_[:, None], np.array([line.intercept_]), None)]), root / "diabetes.keras")
    (root / "diabetes.preprocess.yaml").write_text(_sensor_yaml(list(diabetes.feature_names), dx,
                                                                "postprocess: {kind: regression}\n"))
    convert(ConvertConfig(model=root / "diabetes.keras", output=root / "diabetes.edgekit", variants=("tflite-fp32",),
                          allow_random_calibration=True))
    return Tabular(root / "iris.edgekit", x, y, names, root / "cancer.edgekit", cx, anomalous,
                   root / "diabetes.edgekit", dx, dy)


# ---------------------------------------------------------------------------
# classification


def test_a_csv_with_extra_columns_is_read_by_name_and_scored_per_window_and_recording(tabular, tmp_path):
    # rows in recording order, columns in another order than the bundle's, with extras
    order = np.argsort(tabular.iris_y, kind="stable")
    csv_path = tmp_path / "iris.csv"
    header = ["timestamp", "label", *IRIS_CHANNELS[::-1], "subject"]
    lines = [",".join(header)] + [
        ",".join([f"{k * 0.02:.2f}", tabular.iris_names[tabular.iris_y[i]],
                  *(f"{v:.1f}" for v in tabular.iris_x[i][::-1]), "s1"]) for k, i in enumerate(order)]
    csv_path.write_text("\n".join(lines) + "\n")
    report = evaluate(EvalConfig(bundle=tabular.iris, data=csv_path))
    doc = report.to_dict()
    assert doc["task"] == "classification" and doc["data"]["form"] == "recordings"
    assert [v["variant"] for v in doc["variants"]] == ["tflite-fp32", "tflite-int8"]
    fp32 = doc["variants"][0]["metrics"]

    model = load(tabular.iris, variant="tflite-fp32")
    answers = np.array([model.predict(tabular.iris_x[i][None, :]).index for i in order])
    truth = tabular.iris_y[order]
    assert fp32["accuracy"]["value"] == pytest.approx(np.mean(answers == truth))
    assert fp32["accuracy"]["n"] == 150 and inside(fp32["accuracy"]) and fp32["accuracy"]["method"] == "wilson"
    # three recording segments (one label each), answered by the majority of their windows
    votes = [np.bincount(answers[truth == c], minlength=3).argmax() == c for c in range(3)]
    assert fp32["recordings"] == {"accuracy": fp32["recordings"]["accuracy"], "segments": 3}
    assert fp32["recordings"]["accuracy"]["value"] == pytest.approx(np.mean(votes))

    per_class = {c["label"]: c for c in fp32["per_class"]}
    assert per_class["setosa"]["recall"]["value"] == 1.0 and per_class["setosa"]["precision"]["value"] == 1.0
    assert per_class["versicolor"]["f1"]["value"] < 1.0  # the two overlapping species are confused
    for figures in per_class.values():
        assert all(inside(figures[k]) for k in ("precision", "recall", "f1"))
        assert figures["f1"]["method"] == "bootstrap"
    assert sum(map(sum, fp32["confusion_matrix"]["rows"])) == 150

    # the same samples as an .npz (names in a classes array) give the same figures
    np.savez(tmp_path / "iris.npz", x=tabular.iris_x, y=tabular.iris_y, classes=np.array(tabular.iris_names))
    arrays = evaluate(EvalConfig(bundle=tabular.iris, data=tmp_path / "iris.npz", variants=("tflite-fp32",)))
    assert arrays.to_dict()["variants"][0]["metrics"]["accuracy"] == fp32["accuracy"]
    text = report.render()
    assert "recording accuracy" in text and "versicolor" in text and "95% confidence" in text


def test_image_folder_json_and_confusion_pngs(runtime_bundles, tmp_path, capsys):
    # 12 images per class, and 6 triangles filed as circles: circle's precision must suffer
    data = tmp_path / "images"
    classes = sorted(p.name for p in runtime_bundles.shapes_images.iterdir())
    for name in classes:
        (data / name).mkdir(parents=True)
        for f in sorted((runtime_bundles.shapes_images / name).glob("*.png"))[:12]:
            shutil.copy(f, data / name / f.name)
    confusable, victim = classes[0], classes[-1]
    for f in sorted((runtime_bundles.shapes_images / victim).glob("*.png"))[12:18]:
        shutil.copy(f, data / confusable / f"x{f.name}")
    out = tmp_path / "out"
    result = eval_cli(capsys, runtime_bundles.shapes, "--data", data, "--variants", "tflite-fp32,tflite-int8",
                      "--json", "-o", out)
    assert result.code == 0, result.stderr
    doc = result.json()
    assert set(doc) == {"schema", "bundle", "name", "task", "labels", "confidence", "data", "variants", "notes",
                        "output_dir"}
    assert doc["schema"] == 1 and doc["confidence"] == 0.95 and doc["data"]["samples"] == 12 * len(classes) + 6
    assert doc["data"]["form"] == "image files"
    variant = doc["variants"][0]
    assert set(variant) == {"variant", "backend", "samples", "skipped", "skipped_examples", "error", "metrics",
                            "confusion_png"}
    metrics = variant["metrics"]
    assert set(metrics) == {"accuracy", "macro_f1", "per_class", "confusion_matrix", "recordings"}
    assert set(metrics["per_class"][0]) == {"label", "support", "predicted", "precision", "recall", "f1"}
    assert inside(metrics["accuracy"]) and inside(metrics["macro_f1"])

    model = load(runtime_bundles.shapes, variant="tflite-fp32")
    files = sorted(data.rglob("*.png"))
    right = [model.predict(f).label == f.parent.name for f in files]
    assert metrics["accuracy"]["value"] == pytest.approx(np.mean(right))
    per_class = {c["label"]: c for c in metrics["per_class"]}
    assert per_class[confusable]["recall"]["value"] < per_class[victim]["recall"]["value"]
    assert per_class[confusable]["support"] == 18

    for v in doc["variants"]:
        png = Path(v["confusion_png"])
        assert png.parent == out and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "eval.json").read_text()) == doc
    assert not list(out.glob(".*.tmp"))


def test_without_matplotlib_the_pngs_are_one_note(runtime_bundles, tmp_path, monkeypatch):
    data = tmp_path / "images"
    for name in ("circle", "square"):
        (data / name).mkdir(parents=True)
        for f in sorted((runtime_bundles.shapes_images / name).glob("*.png"))[:3]:
            shutil.copy(f, data / name / f.name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    report = evaluate(EvalConfig(bundle=runtime_bundles.shapes, data=data, variants=("tflite-fp32",),
                                 output_dir=tmp_path / "out"))
    assert report.notes == (PLOT_HINT,) and 'pip install "edgekit-ml[plot]"' in report.render()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["eval.json"]
    assert report.to_dict()["variants"][0]["confusion_png"] is None


def test_sensor_recording_windows_and_recording_majority(runtime_bundles, tmp_path):
    rng = np.random.default_rng(4)
    segments = [("idle", 95, 0.05), ("walk", 60, 2.0), ("idle", 41, 0.05)]
    rows, stamp = [], 0.0
    for label, length, amplitude in segments:
        for _ in range(length):
            ax, ay, az = amplitude * rng.standard_normal(3) + (0, 0, 1)
            rows.append(f"{stamp:.2f},{label},{az:.4f},subject-7,{ay:.4f},{ax:.4f}")
            stamp += 0.02
    csv_path = tmp_path / "walk.csv"
    csv_path.write_text("timestamp,label,az,subject,ay,ax\n" + "\n".join(rows) + "\n")
    report = evaluate(EvalConfig(bundle=runtime_bundles.sensor, data=csv_path, variants=("tflite-fp32",)))
    metrics = report.to_dict()["variants"][0]["metrics"]

    # the same windows, cut and answered here: 20 rows every 10, labelled by their majority
    values = np.loadtxt(csv_path, delimiter=",", skiprows=1, usecols=(5, 4, 2))
    labels = np.array([0] * 95 + [1] * 60 + [0] * 41)
    model = load(runtime_bundles.sensor, variant="tflite-fp32")
    starts = range(0, len(values) - 20 + 1, 10)
    answers = np.array([model.predict(values[s : s + 20]).index for s in starts])
    truth = np.array([np.bincount(labels[s : s + 20], minlength=2).argmax() for s in starts])
    assert report.samples == len(answers) == 18
    assert metrics["accuracy"]["value"] == pytest.approx(np.mean(answers == truth))
    # segments: runs of windows with one label (idle, walk, idle), each answered by majority vote
    runs = np.concatenate([[0], np.cumsum(truth[1:] != truth[:-1])])
    votes = [np.bincount(answers[runs == r], minlength=2).argmax() == truth[runs == r][0] for r in range(runs[-1] + 1)]
    assert metrics["recordings"]["segments"] == 3
    assert metrics["recordings"]["accuracy"]["value"] == pytest.approx(np.mean(votes))


def test_wav_folders_are_decoded_here_and_resampled_by_the_runtime(runtime_bundles, tmp_path):
    from edgekit.features.audio import write_wav

    rng = np.random.default_rng(2)
    for label, amplitude in (("_silence_", 0.001), ("yes", 0.3), ("no", 0.3)):
        (tmp_path / label).mkdir()
        for k in range(3):  # 8 kHz clips: the runtime resamples them to the bundle's 16 kHz
            tone = amplitude * np.sin(2 * np.pi * (300 + 200 * k) * np.arange(8000) / 8000)
            write_wav(tmp_path / label / f"{k}.wav", (tone + 0.01 * rng.standard_normal(8000)).astype(np.float32), 8000)
    report = evaluate(EvalConfig(bundle=runtime_bundles.kws, data=tmp_path))
    doc = report.to_dict()
    assert doc["data"]["form"] == "WAV files" and doc["data"]["samples"] == 9
    from edgekit.features.audio import read_wav

    model = load(runtime_bundles.kws)
    files = sorted(tmp_path.rglob("*.wav"))
    right = [model.predict(read_wav(f)).label == f.parent.name for f in files]
    assert doc["variants"][0]["metrics"]["accuracy"]["value"] == pytest.approx(np.mean(right))


# ---------------------------------------------------------------------------
# anomaly and regression


def test_anomaly_roc_auc_and_the_bundle_threshold(tabular, tmp_path):
    from sklearn.metrics import roc_auc_score

    np.savez(tmp_path / "cancer.npz", x=tabular.cancer_x, y=tabular.cancer_anomalous)
    report = evaluate(EvalConfig(bundle=tabular.cancer, data=tmp_path / "cancer.npz"))
    metrics = report.to_dict()["variants"][0]["metrics"]
    model = load(tabular.cancer)
    results = [model.predict(row[None, :]) for row in tabular.cancer_x]
    scores = [r.anomaly_score for r in results]
    assert metrics["roc_auc"]["value"] == pytest.approx(roc_auc_score(tabular.cancer_anomalous, scores), abs=1e-6)
    assert metrics["roc_auc"]["value"] > 0.8 and inside(metrics["roc_auc"])
    flagged = np.array([r.is_anomaly for r in results])
    truth = tabular.cancer_anomalous.astype(bool)
    assert metrics["threshold"] == model.postprocess_spec.anomaly_threshold
    assert metrics["threshold_recall"]["value"] == pytest.approx(np.sum(flagged & truth) / truth.sum())
    assert metrics["threshold_precision"]["value"] == pytest.approx(np.sum(flagged & truth) / flagged.sum())
    assert (metrics["normal"], metrics["anomalous"]) == (357, 212)
    assert "ROC-AUC" in report.render() and "precision at threshold" in report.render()


def test_regression_rmse_and_mae(tabular, tmp_path):
    np.savez(tmp_path / "diabetes.npz", x=tabular.diabetes_x, y=tabular.diabetes_y)
    report = evaluate(EvalConfig(bundle=tabular.diabetes, data=tmp_path / "diabetes.npz"))
    metrics = report.to_dict()["variants"][0]["metrics"]
    model = load(tabular.diabetes)
    predicted = np.array([model.predict(row[None, :]).values[0] for row in tabular.diabetes_x])
    error = predicted - tabular.diabetes_y
    assert metrics["rmse"]["value"] == pytest.approx(np.sqrt(np.mean(error**2)), rel=1e-5)
    assert metrics["mae"]["value"] == pytest.approx(np.mean(np.abs(error)), rel=1e-5)
    assert inside(metrics["rmse"]) and inside(metrics["mae"]) and metrics["rmse"]["method"] == "bootstrap"
    assert metrics["rmse"]["value"] < metrics["target_std"]  # better than predicting the mean
    assert "RMSE" in report.render()
    # float targets given to a classifier are refused, naming them
    with pytest.raises(InputError, match="float targets"):
        evaluate(EvalConfig(bundle=tabular.iris, data=tmp_path / "diabetes.npz"))


# ---------------------------------------------------------------------------
# errors: one line, documented exit codes


def test_errors_are_one_line_with_their_exit_codes(runtime_bundles, tabular, tmp_path, capsys):
    images = runtime_bundles.shapes_images
    # a bare model file, not a bundle
    tflite = tmp_path / "model.tflite"
    tflite.write_bytes(zipfile.ZipFile(runtime_bundles.shapes).read("models/tflite-fp32.tflite"))
    assert_one_line_error(eval_cli(capsys, tflite, "--data", images), 1)
    # classes that are not the bundle's labels
    wrong = tmp_path / "wrong"
    for name in ("circle", "hexagon"):
        (wrong / name).mkdir(parents=True)
        shutil.copy(next((images / "circle").glob("*.png")), wrong / name / "a.png")
    assert_one_line_error(eval_cli(capsys, runtime_bundles.shapes, "--data", wrong), 1,
                          "expected the bundle's labels", "hexagon")
    # nothing the runtime can decode
    corrupt = tmp_path / "corrupt"
    (corrupt / "circle").mkdir(parents=True)
    (corrupt / "circle" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    assert_one_line_error(eval_cli(capsys, runtime_bundles.shapes, "--data", corrupt, "--variants", "tflite-fp32"),
                          1, "none decodable")
    # no labels
    flat = tmp_path / "flat"
    flat.mkdir()
    shutil.copy(next((images / "circle").glob("*.png")), flat / "a.png")
    assert_one_line_error(eval_cli(capsys, runtime_bundles.shapes, "--data", flat), 1, "eval needs labels")
    # a variant the bundle does not have
    assert_one_line_error(eval_cli(capsys, tabular.iris, "--data", flat, "--variants", "onnx-int8"), 1,
                          "variants of the bundle")
    # a recording without one of the bundle's channels
    (tmp_path / "short.csv").write_text("sepal_length,sepal_width,petal_length,label\n1,2,3,setosa\n")
    assert_one_line_error(eval_cli(capsys, tabular.iris, "--data", tmp_path / "short.csv"), 1, "petal_width")
    # a bundle whose model bytes changed: refused before anything runs
    from tests.support.bundles import rewrite

    tampered = rewrite(tabular.iris, tmp_path / "tampered.edgekit",
                       members={"models/tflite-fp32.tflite": b"TFL3" + b"\0" * 64})
    assert_one_line_error(eval_cli(capsys, tampered, "--data", tmp_path / "short.csv"), 3)
