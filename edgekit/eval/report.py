"""The eval report: its JSON form (`to_dict`, documented in `edgekit.eval`), its table
(`render`), and the files ``-o DIR`` gets (``eval.json``, a confusion-matrix PNG per
variant), each written atomically."""

from __future__ import annotations

import dataclasses
import io
import json
import math
from pathlib import Path
from typing import Any

from edgekit.bundle.atomic import atomic_write_bytes
from edgekit.errors import InputError, MissingDependencyError
from edgekit.stats import CONFIDENCE

SCHEMA = 1
PLOT_HINT = 'confusion-matrix PNGs need matplotlib: pip install "edgekit[plot]"; the figures above are complete'


@dataclasses.dataclass(frozen=True)
class VariantResult:
    """One variant's figures.

    Attributes:
        variant: its name.
        backend: the interpreter package that ran it (None when it could not be loaded).
        samples: samples the runtime read and answered.
        skipped: the samples it could not read, with why.
        metrics: the task's figures (see `edgekit.eval`), None when it failed.
        error: why the variant could not run here, else None.
        confusion_png: the confusion matrix written by ``-o DIR`` (classification).
    """

    variant: str
    backend: str | None
    samples: int
    skipped: tuple[str, ...]
    metrics: dict[str, Any] | None
    error: str | None
    confusion_png: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"variant": self.variant, "backend": self.backend, "samples": self.samples,
                "skipped": len(self.skipped), "skipped_examples": list(self.skipped[:5]), "error": self.error,
                "metrics": self.metrics, "confusion_png": self.confusion_png}


@dataclasses.dataclass(frozen=True)
class EvalReport:
    """What `evaluate` measured (see the module `edgekit.eval` for the JSON form)."""

    bundle: Path
    name: str
    task: str
    labels: tuple[str, ...]
    source: str
    form: str
    samples: int
    recordings: int | None
    variants: tuple[VariantResult, ...]
    notes: tuple[str, ...] = ()
    output_dir: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA, "bundle": str(self.bundle), "name": self.name, "task": self.task,
            "labels": list(self.labels), "confidence": CONFIDENCE,
            "data": {"source": self.source, "form": self.form, "samples": self.samples, "recordings": self.recordings},
            "variants": [v.to_dict() for v in self.variants], "notes": list(self.notes),
            "output_dir": None if self.output_dir is None else str(self.output_dir),
        }

    def render(self) -> str:
        """The human table(s): one row per variant, then per-class figures (classification)."""
        recordings = f", {self.recordings} recording(s)" if self.recordings is not None else ""
        lines = [f"eval {self.name} ({self.bundle}), {self.task}, on {self.source}: {self.samples} "
                 f"{'windows' if self.form == 'recordings' else 'samples'} ({self.form}{recordings}); "
                 "95% confidence intervals in brackets"]
        ok = [v for v in self.variants if v.metrics is not None]
        header, rows = SUMMARY[self.task](ok)
        lines += table(["variant", "backend", "samples", *header],
                       [[v.variant, v.backend or "-", str(v.samples), *row] for v, row in zip(ok, rows, strict=True)])
        if self.task == "classification":
            for v in ok:
                assert v.metrics is not None
                lines += ["", f"{v.variant}: per class"]
                lines += table(["class", "support", "predicted", "precision", "recall", "F1"],
                               [[c["label"], str(c["support"]), str(c["predicted"]), percent(c["precision"]),
                                 percent(c["recall"]), number(c["f1"])] for c in v.metrics["per_class"]])
        lines.append("")
        for v in self.variants:
            if v.error is not None:
                lines.append(f"FAILED {v.variant}: {v.error}")
            if v.skipped:
                lines.append(f"note: {v.variant}: {len(v.skipped)} sample(s) unreadable, skipped, e.g. {v.skipped[0]}")
            if v.confusion_png:
                lines.append(f"confusion matrix of {v.variant}: {v.confusion_png}")
        if self.task == "anomaly" and ok and ok[0].metrics and ok[0].metrics["threshold"] is None:
            lines.append("note: the bundle has no postprocess.anomaly_threshold: only ROC-AUC is measured")
        lines += [f"note: {n}" for n in self.notes]
        if self.output_dir is not None:
            lines.append(f"written: {self.output_dir / 'eval.json'}")
        return "\n".join(lines).rstrip() + "\n"

    def write(self, directory: Path) -> EvalReport:
        """Write the confusion-matrix PNGs and ``eval.json`` into `directory` (atomically,
        file by file); returns the report naming them.

        Raises:
            InputError: `directory` cannot be created or written.
        """
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"output folder {directory}", expected="a folder that can be created",
                             found=exc.strerror or str(exc)) from exc
        variants, notes = list(self.variants), list(self.notes)
        if self.task == "classification":
            try:
                for i, v in enumerate(variants):
                    if v.metrics is not None:
                        path = directory / f"confusion-{v.variant}.png"
                        atomic_write_bytes(path, confusion_png(v.metrics["confusion_matrix"],
                                                               f"{self.name} {v.variant}"))
                        variants[i] = dataclasses.replace(v, confusion_png=str(path))
            except MissingDependencyError:
                notes.append(PLOT_HINT)
        report = dataclasses.replace(self, variants=tuple(variants), notes=tuple(notes), output_dir=directory)
        atomic_write_bytes(directory / "eval.json",
                           (json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n").encode())
        return report


# ---------------------------------------------------------------------------
# cells and tables


def percent(figure: dict[str, Any] | None) -> str:
    """``97.3% [94.8, 98.6]`` of a proportion figure."""
    if not figure or figure["value"] is None:
        return "-"
    low, high = figure["ci95"]
    return f"{100 * figure['value']:.1f}% [{100 * low:.1f}, {100 * high:.1f}]"


def number(figure: dict[str, Any] | None, digits: int | None = 3) -> str:
    """``0.973 [0.955, 0.988]`` with `digits` decimals, or (None) the decimals that give the
    value 4 significant digits, for errors in the data's units (RMSE, MAE)."""
    if not figure or figure["value"] is None:
        return "-"
    low, high = figure["ci95"]
    value = figure["value"]
    if digits is None:
        digits = max(0, 3 - math.floor(math.log10(abs(value)))) if value else 3
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Fixed-width columns as in the bench and convert tables: the first left-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths,
                                                                                               strict=True)))
    return [line(header), *(line(r) for r in rows)]


def _classification_rows(variants: list[VariantResult]) -> tuple[list[str], list[list[str]]]:
    recordings = any(v.metrics and v.metrics.get("recordings") for v in variants)
    header = ["accuracy", "macro F1"] + (["recording accuracy", "recordings"] if recordings else [])
    rows = []
    for v in variants:
        m = v.metrics or {}
        row = [percent(m.get("accuracy")), number(m.get("macro_f1"))]
        if recordings:
            rec = m.get("recordings") or {}
            row += [percent(rec.get("accuracy")), str(rec.get("segments", "-"))]
        rows.append(row)
    return header, rows


def _anomaly_rows(variants: list[VariantResult]) -> tuple[list[str], list[list[str]]]:
    rows = []
    for v in variants:
        m = v.metrics or {}
        threshold = m.get("threshold")
        rows.append([number(m.get("roc_auc")), "-" if threshold is None else f"{threshold:.4g}",
                     percent(m.get("threshold_precision")), percent(m.get("threshold_recall"))])
    return ["ROC-AUC", "threshold", "precision at threshold", "recall at threshold"], rows


def _regression_rows(variants: list[VariantResult]) -> tuple[list[str], list[list[str]]]:
    rows = [[number((v.metrics or {}).get("rmse"), None), number((v.metrics or {}).get("mae"), None)]
            for v in variants]
    return ["RMSE", "MAE"], rows


SUMMARY = {"classification": _classification_rows, "anomaly": _anomaly_rows, "regression": _regression_rows}


def confusion_png(matrix: dict[str, Any], title: str) -> bytes:
    """A confusion-matrix heat map (rows: true class, share of the row; cells: counts) as PNG bytes.

    Raises:
        MissingDependencyError: matplotlib is not installed (the ``plot`` extra).
    """
    from edgekit._optional import require

    matplotlib = require("matplotlib", "drawing confusion matrices")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    counts = np.asarray(matrix["rows"], np.int64)
    columns = list(matrix["columns"])
    if counts[:, -1].sum() == 0:  # no answer fell below the score threshold: drop the column
        counts, columns = counts[:, :-1], columns[:-1]
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.5 * len(columns) + 2.5)
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(columns)), columns, rotation=45, ha="right")
    ax.set_yticks(range(len(matrix["labels"])), matrix["labels"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if counts.size <= 400:
        for (row, col), value in np.ndenumerate(counts):
            ax.text(col, row, str(value), ha="center", va="center",
                    color="white" if share[row, col] > 0.5 else "black", fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()
