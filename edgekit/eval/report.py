"""The eval report: its JSON form (`to_dict`, documented in `edgekit.eval`), its table
(`render`), and the files ``-o DIR`` gets (``eval.json``, a confusion-matrix PNG per
variant), each written atomically."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path
from typing import Any

from edgekit._optional import extra_install
from edgekit.bundle.atomic import atomic_write_bytes
from edgekit.errors import InputError, MissingDependencyError
from edgekit.eval.kinds import MEASURES
from edgekit.eval.table import number, percent, table
from edgekit.stats import CONFIDENCE

SCHEMA = 1
PLOT_HINT = f"confusion-matrix PNGs need matplotlib: {extra_install('plot')}; the figures above are complete"


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
        measure = MEASURES[self.task]
        header, rows = measure.summary(ok)
        lines += table(["variant", "backend", "samples", *header],
                       [[v.variant, v.backend or "-", str(v.samples), *row] for v, row in zip(ok, rows, strict=True)])
        if measure.per_class:
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
        lines += [f"note: {n}" for n in [*measure.notes(ok), *self.notes]]
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
        if MEASURES[self.task].per_class:
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
# the confusion matrix


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
