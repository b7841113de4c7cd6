"""QAT figures (issue 21): post-training int8, the auto-fallback and quantization-aware
training side by side on the failing case, QAT against post-training on every recipe, and
the training time QAT adds per epoch.

    python tools/qat_figures.py [-o out/bench/qat] [--case RECIPE] [--recipes all|a,b]
                                [--epochs N] [--qat-epochs N] [--samples N]

1. The failing case (``--case``, default ic-mobilenetv2): `edgekit train`, then `edgekit
   convert` three ways on the same held-out split (every sample validates; calibration on
   the validation split): post-training (tflite-int8, onnx-int8), ``--auto-fallback
   --max-accuracy-drop PTS`` (whatever the current convert does: its table is printed as
   it is), and `edgekit qat` with its int8 export. Accuracy is against the labels.
2. Every recipe: post-training tflite-int8 against the int8 `edgekit qat --export` keeps
   (QAT, or post-training where QAT was worse on the validation split), with the two
   validation figures the choice was made on (a GAN generator has no labels to fine-tune
   against: listed, skipped).
3. Seconds per epoch, float against QAT, on the failing case's model: one epoch of each in
   turn, three times, in this process (the machine is shared: the load is printed).

Everything goes through edgekit's library entry points (train, convert, qat), as the
commands do.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgekit.convert.run import ConvertConfig, convert  # noqa: E402
from edgekit.train.config import QatConfig, TrainConfig  # noqa: E402
from edgekit.train.qat_run import HIGHER_IS_BETTER, qat  # noqa: E402
from edgekit.train.recipes import load_recipe, recipe_names  # noqa: E402
from edgekit.train.run import train  # noqa: E402


def quiet(_line: str) -> None:
    pass


def load() -> str:
    return "load average " + ", ".join(f"{v:.2f}" for v in os.getloadavg())


def trained(recipe: str, folder: Path, epochs: int | None, samples: int | None, data: Path | None = None,
            overrides: tuple[str, ...] = ()) -> Path:
    model = folder / f"{recipe}.keras"
    if not model.is_file():
        command = (f"edgekit train {recipe} -o {folder}" + (f" --data {data}" if data else "")
                   + "".join(f" --set {o}" for o in overrides)
                   + (f" --epochs {epochs}" if epochs else "") + (f" --samples {samples}" if samples and not data else ""))
        print(f"  {command}", flush=True)
        train(TrainConfig(recipe=recipe, output=folder, data=data, epochs=epochs, overrides=overrides,
                          synth_samples=None if data else samples, progress_bar=False, command=command), log=quiet)
    return model


def converted(model: Path, bundle: Path, variants: tuple[str, ...], gate: float | None,
              fallback: bool = False) -> Any:
    folder = model.parent
    heldout, calibration = folder / "heldout.npz", folder / "calibration.npz"
    if model.is_dir():  # a QAT SavedModel: its own split files
        heldout = folder / f"{model.name}.heldout.npz"
        calibration = folder / f"{model.name}.calibration.npz"
    with np.load(heldout, allow_pickle=False) as arrays:
        count = len(arrays["x"])
    return convert(ConvertConfig(model=model, output=bundle, variants=variants, data=heldout,
                                 calibration_data=calibration, validation_samples=count,
                                 max_accuracy_drop=gate, auto_fallback=fallback), log=quiet)


def float_accuracy(model: Path) -> tuple[float, int]:
    report = json.loads((model.parent / "report.json").read_text())
    return float(report["test"]["accuracy"]), int(report["test"]["samples"])


def headline(variant: Any) -> tuple[str, float | None, bool]:
    """The variant's held-out figure against the labels: (name, value, higher is better)."""
    metrics = variant.metrics or {}
    for name, higher in HIGHER_IS_BETTER.items():
        if metrics.get(name) is not None:
            return name, float(metrics[name]), higher
    return "-", None, True


def exposures(samples: int, seed: int = 0, darkest: float = 0.01, glare: float = 0.06,
              patch: int = 24) -> tuple[Any, Any, Any]:
    """The failing case's data: edgekit's synthetic shapes (32x32 RGB) as a camera sees them
    at exposures from `darkest` to full contrast (log-uniform), a fraction `glare` of them
    with a saturated glare patch (a `patch`-pixel 0/255 checkerboard). Wide activation ranges across
    samples: one int8 scale per tensor, calibrated on the brightest and glaring images,
    leaves few levels to the dim ones."""
    from edgekit.datasets import shapes

    x, y, names = shapes.generate(samples, size=32, seed=seed)
    rng = np.random.default_rng(seed + 7)
    contrast = np.exp(rng.uniform(np.log(darkest), 0, (len(x), 1, 1, 1)))
    x = np.clip(np.round(128 + contrast * (x.astype(np.float32) - 128)), 0, 255).astype(np.uint8)
    rows, cols = np.mgrid[0:32, 0:32]
    board = ((rows // 2 + cols // 2) % 2 * 255).astype(np.uint8)[..., None]
    for i in np.flatnonzero(rng.random(len(x)) < glare):
        r, c = rng.integers(0, 33 - patch, 2)
        x[i, r : r + patch, c : c + patch] = board[r : r + patch, c : c + patch]
    return x, y, names


def rows_of(label: str, report: Any) -> list[tuple[str, str, int, float | None]]:
    rows = []
    for v in report.variants:
        accuracy = headline(v)[1]
        name = v.name + (f" ({v.precision})" if v.precision not in ("int8",) else "")
        if v.error:
            name += f": {str(v.error)[:80]}"
        rows.append((label, name, len(v.data) if v.data else 0, accuracy))
    return rows


def print_rows(rows: list[tuple[str, str, int, float | None]], reference: float) -> None:
    print(f"  {'method':26} {'variant':40} {'size':>10} {'accuracy':>9} {'vs float':>9}")
    for method, variant, size, accuracy in rows:
        acc = f"{accuracy:.2%}" if accuracy is not None else "-"
        delta = f"{100 * (accuracy - reference):+.2f}" if accuracy is not None else "-"
        print(f"  {method:26} {variant:40} {size / 1024:8.1f}KiB {acc:>9} {delta:>9}")


def failing_case(args: argparse.Namespace, out: Path) -> Path:
    folder = out / args.case
    data = None
    if args.exposures:
        data = out / "exposures.npz"
        if not data.is_file():
            x, y, names = exposures(args.exposures, darkest=args.darkest, glare=args.glare, patch=args.patch)
            np.savez_compressed(data, x=x, y=y, classes=np.array(names))
        print(f"  data: {data}: {args.exposures} shapes at exposures {args.darkest:g}..1 (log-uniform), "
              f"{args.glare:.0%} with a {args.patch}x{args.patch} glare patch")
    model = trained(args.case, folder, args.epochs, args.samples, data, tuple(args.case_set))
    reference, samples = float_accuracy(model)
    print(f"\n== the failing case: {args.case} ({samples} held-out samples, float accuracy {reference:.2%}; {load()})")
    rows: list[tuple[str, str, int, float | None]] = [("float (Keras)", "-", model.stat().st_size, reference)]
    ptq = converted(model, out / f"{args.case}-ptq.edgekit", ("tflite-fp32", "tflite-int8", "onnx-int8"), 100.0)
    rows += rows_of("post-training", ptq)
    fallback = converted(model, out / f"{args.case}-fallback.edgekit", ("tflite-int8",), args.max_drop, fallback=True)
    rows += rows_of(f"--auto-fallback ({args.max_drop:g} pt)", fallback)
    t0 = time.perf_counter()
    result = qat(QatConfig(model=model, epochs=args.qat_epochs, progress_bar=False, export=out / f"{args.case}-qat.edgekit",
                           variants=("tflite-int8", "onnx-int8"), max_accuracy_drop=100.0), log=quiet)
    seconds = time.perf_counter() - t0
    choice = result.report["export"]["choice"]
    kept = "QAT" if choice["quantization"] == "qat" else "post-training kept"
    rows += rows_of(f"qat --export: {kept} ({result.report['fine_tuning']['epochs']} ep)", result.bundle)
    print_rows(rows, reference)
    print(f"  QAT: fake-quantized model {result.report['held_out']['after']:.2%} held-out; "
          f"{seconds:.0f} s in all; the export kept {choice['quantization']}: validation "
          + "; ".join(f"{n} QAT {_fmt(f['qat'])} vs post-training {_fmt(f['post_training'])}"
                      for n, f in choice["validation"].items()))
    print(f"\n  the --auto-fallback run's own table (edgekit convert {model} --variants tflite-int8 --auto-fallback "
          f"--max-accuracy-drop {args.max_drop:g}):")
    for line in fallback.render().splitlines():
        print("    " + line)
    return model


def every_recipe(args: argparse.Namespace, out: Path) -> None:
    names = recipe_names() if args.recipes == "all" else args.recipes.split(",")
    print(f"\n== every recipe: post-training tflite-int8 against qat --export tflite-int8 ({args.recipe_epochs or 'the recipe'} "
          f"training epoch(s), {args.qat_epochs or 'the recipe'} QAT epoch(s); {load()})")
    print(f"  {'recipe':22} {'metric':9} {'PTQ int8':>9} {'export':>9} {'gain':>9}  {'kept':13} validation: "
          "QAT vs PTQ int8  (held-out figures against the labels; the export is `edgekit qat --export`, which keeps "
          "QAT only where it does better on the validation split; gain > 0: the export is better)")
    for name in names:
        recipe = load_recipe(name)
        if not recipe.kind.fine_tunable:
            print(f"  {name:22} skipped: a {recipe.task} model (fine-tuning a GAN generator needs its discriminator)")
            continue
        folder = out / "recipes" / name
        try:
            model = trained(name, folder, args.recipe_epochs, args.recipe_samples)
            ptq = converted(model, folder / "ptq.edgekit", ("tflite-int8",), None)
            result = qat(QatConfig(model=model, epochs=args.qat_epochs, progress_bar=False,
                                   export=folder / "qat.edgekit", variants=("tflite-int8",), max_accuracy_drop=None),
                         log=quiet)
            metric, a, higher = headline(ptq.variants[0])
            _m, b, _h = headline(result.bundle.variants[0])
            choice = result.report["export"]["choice"]
            kept = "QAT" if choice["quantization"] == "qat" else "post-training"
            val = choice["validation"]["tflite-int8"]
            note = ", ".join(f"{v.name}: {v.precision}" for v in (*ptq.variants, *result.bundle.variants)
                             if v.precision != "int8")
            better = "-" if a is None or b is None else f"{(b - a) if higher else (a - b):+.4f}"
            print(f"  {name:22} {metric:9} {_fmt(a):>9} {_fmt(b):>9} {better:>9}  {kept:13} "
                  f"{_fmt(val['qat'])} vs {_fmt(val['post_training'])}  {note}", flush=True)
        except Exception as exc:  # noqa: BLE001 - a figure script reports every recipe
            print(f"  {name:22} failed: {type(exc).__name__}: {' '.join(str(exc).split())[:160]}", flush=True)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def epoch_times(model_path: Path, repeats: int = 3) -> None:
    """One epoch of float training and one of QAT, in turn, on the same data and batches."""
    from edgekit.convert.source import LoadConfig, SourceModel
    from edgekit.keras_env import import_keras
    from edgekit.progress import no_progress
    from edgekit.train import fit
    from edgekit.train import qat as fake
    from edgekit.train.qat_run import _resolve

    keras = import_keras()
    import tensorflow as tf

    config = QatConfig(model=model_path)
    recipe, data = _resolve(config)
    with SourceModel(LoadConfig(model_path, export=False)) as source:
        model = source.keras_model
    prepared = fit.prepare_for_model(recipe, data, model, model_path.name, None, quiet, no_progress)
    parts, input_shape, classes = prepared.parts, prepared.input_shape, prepared.classes
    batch = int(recipe.train["batch_size"])
    qmodel = fake.quantize_model(model).model
    fake.calibrate(qmodel, fit.fit_dataset(tf, parts.train, recipe, input_shape, batch, False, classes, 0), 4)
    for m in (model, qmodel):
        fit.compile_model(keras, m, recipe, 1e-4)
    dataset = fit.fit_dataset(tf, parts.train, recipe, input_shape, batch, True, classes, 0)
    for m in (model, qmodel):  # tracing and the first epoch's cache fill, not measured
        m.fit(dataset, epochs=1, verbose=0)
    times: dict[str, list[float]] = {"float": [], "qat": []}
    for _ in range(repeats):
        for label, m in (("float", model), ("qat", qmodel)):
            t0 = time.perf_counter()
            m.fit(dataset, epochs=1, verbose=0)
            times[label].append(time.perf_counter() - t0)
    f, q = float(np.median(times["float"])), float(np.median(times["qat"]))
    print(f"\n== training time per epoch ({model_path.name}, {len(parts.train)} training samples, batch {batch}, "
          f"{repeats} interleaved repeats; {load()})")
    print(f"  float {f:.2f} s/epoch (runs {', '.join(f'{t:.2f}' for t in times['float'])}); QAT {q:.2f} s/epoch "
          f"(runs {', '.join(f'{t:.2f}' for t in times['qat'])}): QAT adds {q - f:.2f} s per epoch, x{q / f:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", type=Path, default=Path("out/bench/qat"))
    parser.add_argument("--case", default="ic-mobilenetv2")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs of the failing case")
    parser.add_argument("--samples", type=int, default=None, help="synthetic samples per class of the failing case")
    parser.add_argument("--exposures", type=int, default=3000, help="the failing case's data: this many shapes at "
                        "varied exposures with some glare (0: the recipe's own synthetic data)")
    parser.add_argument("--darkest", type=float, default=0.01, help="the dimmest exposure (contrast factor)")
    parser.add_argument("--glare", type=float, default=0.06, help="fraction of images with a glare patch")
    parser.add_argument("--patch", type=int, default=24, help="side of the glare patch in pixels")
    parser.add_argument("--case-set", action="append", default=None, metavar="KEY=VALUE",
                        help="recipe overrides of the failing case (repeatable; default: architecture.activation=relu, "
                        "unbounded activations: the wide ranges)")
    parser.add_argument("--qat-epochs", type=int, default=None, help="QAT epochs (default: the recipe's)")
    parser.add_argument("--max-drop", type=float, default=0.5, help="the fallback's --max-accuracy-drop")
    parser.add_argument("--recipes", default="all", help="recipes to compare, comma-separated, or all ('' none)")
    parser.add_argument("--recipe-epochs", type=int, default=None,
                        help="training epochs of every recipe (default: the recipe's own; 3 makes a quick look, "
                        "where QAT's fine-tuning is mostly more training)")
    parser.add_argument("--recipe-samples", type=int, default=None)
    parser.add_argument("--recipes-only", action="store_true", help="skip the failing case and the epoch times")
    args = parser.parse_args()
    if args.case_set is None:
        args.case_set = ["architecture.activation=relu"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    args.output.mkdir(parents=True, exist_ok=True)
    if not args.recipes_only:
        model = failing_case(args, args.output)
        epoch_times(model)
    if args.recipes:
        every_recipe(args, args.output)


if __name__ == "__main__":
    main()
