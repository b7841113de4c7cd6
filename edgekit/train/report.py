"""The training report: learning curves, a confusion matrix (classification), an anomaly
score histogram, predicted-vs-true (regression) or a sample grid (generation) as PNG files,
and a Markdown summary next to ``report.json``."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import numpy as np

from edgekit._optional import extra_install
from edgekit.bundle import atomic_write_bytes

logger = logging.getLogger("edgekit.train")


def _figure_bytes(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def write_plots(report: dict[str, Any], out: Path) -> list[str]:
    """``curves.png`` and ``confusion.png`` (classification), ``scores.png`` (anomaly),
    ``predictions.png`` (regression) or ``samples.png`` (generation).

    Returns the files written; without matplotlib, none (and a warning naming the extra).
    Per-sample lists (anomaly errors, regression predictions, generated images) are moved
    out of the report into the plots.
    """
    test = report["test"]
    normal = test.pop("errors_normal", None)
    anomalous = test.pop("errors_anomalous", None)
    predictions, targets = test.pop("predictions", None), test.pop("targets", None)
    grid = test.pop("grid", None)
    if grid is not None:  # written without matplotlib too: the generator's output is the result
        atomic_write_bytes(out / "samples.png", sample_grid(grid["generated"], grid["real"], report))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib missing: no training plots; %s", extra_install("plot"))
        return []
    written = []
    history = report["training"]["history"]
    keys = [k for k in ("loss", "accuracy", "rmse", "d_loss", "g_loss") if history and k in history[0]]
    if history and keys:
        fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.6), squeeze=False)
        epochs = [h["epoch"] for h in history]
        for ax, key in zip(axes[0], keys, strict=True):
            ax.plot(epochs, [h[key] for h in history], marker="o", ms=3, label="train")
            if f"val_{key}" in history[0]:
                ax.plot(epochs, [h[f"val_{key}"] for h in history], marker="o", ms=3, label="validation")
            ax.set_xlabel("epoch")
            ax.set_ylabel(key)
            ax.grid(alpha=0.3)
            ax.legend()
        fig.suptitle(f"{report['recipe']['name']}: learning curves")
        atomic_write_bytes(out / "curves.png", _figure_bytes(fig))
        plt.close(fig)
        written.append(str(out / "curves.png"))
    if grid is not None:
        written.append(str(out / "samples.png"))
    if predictions is not None:
        fig, ax = plt.subplots(figsize=(4.6, 4.2))
        ax.scatter(targets, predictions, s=6, alpha=0.5)
        low, high = float(min(min(targets), min(predictions))), float(max(max(targets), max(predictions)))
        ax.plot([low, high], [low, high], color="k", lw=1, ls="--")
        ax.set_xlabel("true")
        ax.set_ylabel("predicted")
        ax.set_title(f"held-out predictions (RMSE {test['rmse']:.4g}, R² {test['r2']:.3f})")
        ax.grid(alpha=0.3)
        atomic_write_bytes(out / "predictions.png", _figure_bytes(fig))
        plt.close(fig)
        written.append(str(out / "predictions.png"))
    if "confusion_matrix" in test:
        matrix = np.asarray(test["confusion_matrix"], np.float64)
        names = test["classes"]
        rows = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        size = max(4.0, 0.5 * len(names) + 2)
        fig, ax = plt.subplots(figsize=(size, size * 0.85))
        ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(len(names)), names, rotation=60, ha="right")
        ax.set_yticks(range(len(names)), names)
        for i in range(len(names)):
            for j in range(len(names)):
                if matrix[i, j]:
                    ax.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if rows[i, j] > 0.5 else "black")
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"held-out confusion matrix (accuracy {test['accuracy']:.1%})")
        atomic_write_bytes(out / "confusion.png", _figure_bytes(fig))
        plt.close(fig)
        written.append(str(out / "confusion.png"))
    if normal is not None:
        fig, ax = plt.subplots(figsize=(6, 3.6))
        every = np.concatenate([normal, anomalous or []]) if normal or anomalous else np.zeros(1)
        bins = np.linspace(0, float(np.percentile(every, 99.5)) or 1.0, 50)
        ax.hist(normal, bins=bins, alpha=0.6, label="normal")
        if anomalous:
            ax.hist(anomalous, bins=bins, alpha=0.6, label="anomalous")
        ax.axvline(test["threshold"], color="k", ls="--", label="threshold")
        ax.set_xlabel("reconstruction error (MSE)")
        ax.set_ylabel("samples")
        ax.legend()
        ax.set_title(f"held-out anomaly scores (ROC-AUC {test['roc_auc']:.3f})")
        atomic_write_bytes(out / "scores.png", _figure_bytes(fig))
        plt.close(fig)
        written.append(str(out / "scores.png"))
    return written


def sample_grid(generated: Any, real: Any, report: dict[str, Any] | None = None, columns: int = 8) -> bytes:
    """A PNG of generated images (rows of `columns`) above a row of real ones, 2 px apart.

    Images are normalized front-end output; they are mapped to 0..255 over the range the
    real images span. Needs no matplotlib.
    """
    from edgekit.datasets.synth import png_bytes

    generated, real = np.asarray(generated, np.float32), np.asarray(real, np.float32)[:columns]
    low = float(min(real.min(), 0.0)) if real.size else 0.0
    high = float(real.max()) if real.size and real.max() > low else 1.0
    height, width, channels = generated.shape[1:]
    rows = [generated[i : i + columns] for i in range(0, len(generated), columns)] + ([real] if len(real) else [])
    canvas = np.full((len(rows) * (height + 2) + (4 if len(real) else 0), columns * (width + 2), channels), 255, np.uint8)
    for r, row in enumerate(rows):
        top = r * (height + 2) + (4 if len(real) and r == len(rows) - 1 else 0)
        for c, image in enumerate(row):
            pixels = np.clip((image - low) / (high - low) * 255.0 + 0.5, 0, 255).astype(np.uint8)
            canvas[top : top + height, c * (width + 2) : c * (width + 2) + width] = pixels
    return png_bytes(canvas if channels == 3 else np.repeat(canvas[..., :1], 3, axis=-1))


def write_markdown(report: dict[str, Any]) -> str:
    recipe, training, test = report["recipe"], report["training"], report["test"]
    lines = [f"# Training report: {recipe['name']}", "", recipe["title"], "",
             f"- data: `{report['data']['source']}`" + (" (synthesized)" if report["data"]["synthesized"] else ""),
             f"- split: {report['data']['train']['samples']} train, {report['data']['validation_split']['samples']} "
             f"validation, {report['data']['test_split']['samples']} test"
             + (f" (`--test-data {report['data']['test_source']}`)" if report["data"].get("test_source", "carved from "
                "the data") != "carved from the data" else ""),
             f"- model: {report['model']['architecture']['name']}, {report['model']['parameters']:,} parameters, "
             f"input {tuple(report['model']['input_shape'])}",
             f"- training: {training['epochs_run']} of {training['epochs_planned']} epochs, batch "
             f"{training['batch_size']}, {training['seconds']:.1f} s ({training['seconds_per_epoch']:.2f} s/epoch), "
             f"{report['strategy']['description']}"]
    for note in report["data"]["notes"]:
        lines.append(f"- note: {note}")
    lines.append("")
    if "accuracy" in test:
        lines += [f"Held-out accuracy **{test['accuracy']:.2%}** on {test['samples']} samples "
                  f"(macro F1 {test['macro_f1']:.3f}; validation {report['validation']['accuracy']:.2%}).", "",
                  "| class | precision | recall | F1 | support |", "|---|---:|---:|---:|---:|"]
        for name, c in test["per_class"].items():
            lines.append(f"| {name} | {c['precision']:.3f} | {c['recall']:.3f} | {c['f1']:.3f} | {c['support']} |")
    elif "rmse" in test:
        lines += [f"Held-out RMSE **{test['rmse']:.4g}**, MAE {test['mae']:.4g}, R² {test['r2']:.3f}, MAPE "
                  f"{test['mape_pct']:.2f}% on {test['samples']} samples (predicting the training mean: RMSE "
                  f"{test['baseline_rmse']:.4g}; validation RMSE {report['validation']['rmse']:.4g})."]
    elif "diversity_rms" in test:
        lines += [f"{test['samples']} generated images: pixel mean {test['pixel_mean']['generated']:.3f} (real "
                  f"{test['pixel_mean']['real']:.3f}), diversity {test['diversity_rms']['generated']:.3f} (real "
                  f"{test['diversity_rms']['real']:.3f}; near 0 is mode collapse), distance to the nearest training "
                  f"image {test['nearest_train_rms']['generated']:.3f} (held-out real images: "
                  f"{test['nearest_train_rms']['real_heldout']:.3f}; near 0 is copying). Samples: `samples.png` "
                  "(last row: real images)."]
    else:
        lines += [f"Held-out ROC-AUC **{test['roc_auc']:.4f}** on {test['samples']} samples; threshold "
                  f"{test['threshold']:.6g}, accuracy at the threshold {test['accuracy_at_threshold']:.2%}."]
    lines += ["", "| epoch | seconds | " + " | ".join(k for k in training["history"][0] if k not in ("epoch", "seconds"))
              + " |" if training["history"] else ""]
    if training["history"]:
        keys = [k for k in training["history"][0] if k not in ("epoch", "seconds")]
        lines.append("|---:|---:|" + "---:|" * len(keys))
        for h in training["history"]:
            lines.append(f"| {h['epoch']} | {h['seconds']:.1f} | " + " | ".join(f"{h.get(k, float('nan')):.4g}"
                                                                              for k in keys) + " |")
    if report.get("prune"):
        from edgekit.prune.run import markdown

        lines += ["", *markdown(report["prune"])]
    for plot in report.get("outputs", {}).get("plots", []):
        lines += ["", f"![{Path(plot).stem}]({Path(plot).name})"]
    return "\n".join(lines) + "\n"
