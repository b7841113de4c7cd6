"""Conversion figures on four models shaped like the MLPerf Tiny references.

Usage: .venv/bin/python tools/convert_bench.py [-o out/bench/convert] [--quick]

Trains, on generated data, edgekit's own architectures (`edgekit.train.architectures`): a
ResNet-8 (32x32x3 shapes), a DS-CNN keyword spotter on
49x10 MFCC (tone-keyword WAV files), a MobileNet-style depthwise-separable classifier
(96x96x3 shapes, width 0.25) and a dense autoencoder on 640-dim machine features; runs
`edgekit convert` on each with the default variants and held-out data; prints a
Markdown table of size, ratio to fp32, int8 agreement, task-metric drop and conversion
time, and writes everything as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from edgekit.contract import Contract, sidecar_path, write_contract  # noqa: E402
from edgekit.convert.run import ConvertConfig, convert  # noqa: E402
from edgekit.convert.variants import ConversionOptions  # noqa: E402
from edgekit.datasets import keywords, machine, shapes  # noqa: E402
from edgekit.features import audio as audio_features  # noqa: E402
from edgekit.features.image import normalize  # noqa: E402
from edgekit.keras_env import import_keras  # noqa: E402
from edgekit.spec import AudioPreprocess, ImagePreprocess, NoPreprocess, PostprocessSpec  # noqa: E402
from edgekit.train import architectures  # noqa: E402


def resnet8(keras, classes):
    return architectures.build(keras, {"name": "resnet8"}, (32, 32, 3), classes, "resnet8")


def ds_cnn(keras, classes):
    return architectures.build(keras, {"name": "ds_cnn"}, (49, 10, 1), classes, "ds_cnn")


def mobilenet(keras, classes):
    return architectures.build(keras, {"name": "mobilenet", "alpha": 0.25}, (96, 96, 3), classes, "mobilenet_v1_025")


def autoencoder(keras, dim=640):
    return architectures.build(keras, {"name": "dense_autoencoder"}, (dim,), dim, "dense_autoencoder")


def contract(model_path, preprocess, labels=None, postprocess=None):
    write_contract(sidecar_path(model_path), Contract(preprocess, postprocess, tuple(labels) if labels else None))


def save(model, path):
    with contextlib.redirect_stdout(sys.stderr):
        model.save(path)


def image_case(keras, out, name, build, size, samples, epochs, seed, quick):
    images, labels, names = shapes.generate(samples, size, seed)
    spec = ImagePreprocess(height=size, width=size, scale=1 / 255, mean=(0.5,), std=(0.25,))
    x = normalize(images, spec)
    n = int(0.65 * samples)
    model = build(keras, len(names))
    model.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[:n], labels[:n], epochs=epochs, batch_size=64, verbose=0)
    path = out / f"{name}.keras"
    save(model, path)
    contract(path, spec, names)
    raw = out / f"{name}_heldout.npz"
    np.savez(raw, x=images[n:], y=labels[n:])  # raw uint8 images: convert applies the spec
    return path, raw, model.count_params()


def kws_case(keras, out, epochs, seed, quick):
    per_word = 60 if quick else 250
    waves, labels, words = keywords.generate(per_word, seed=seed, noise_db=(-18.0, -6.0))  # noisy: not too easy
    spec = AudioPreprocess()  # 49 x 10 MFCC, the DS-CNN front end
    features = audio_features.features(waves, spec)[..., None]
    n = int(0.6 * len(waves))
    model = ds_cnn(keras, len(words))
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(features[:n], labels[:n], epochs=epochs, batch_size=64, verbose=0)
    path = out / "ds_cnn.keras"
    save(model, path)
    contract(path, spec, words)
    folder = out / "kws_heldout"
    for i in range(n, len(waves)):  # held-out clips as real WAV files, one folder per word
        (folder / words[labels[i]]).mkdir(parents=True, exist_ok=True)
        audio_features.write_wav(folder / words[labels[i]] / f"{i:05d}.wav", waves[i], spec.sample_rate)
    return path, folder, model.count_params()


def ad_case(keras, out, epochs, seed, quick):
    x_train, _ = machine.generate(1500 if quick else 4000, 0, seed=seed)
    x_test, y_test = machine.generate(500, 500, seed=seed + 1)
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    model = autoencoder(keras)
    model.compile(keras.optimizers.Adam(1e-3), "mse")
    model.fit((x_train - mean) / std, (x_train - mean) / std, epochs=epochs, batch_size=128, verbose=0)
    path = out / "dense_autoencoder.keras"
    save(model, path)
    contract(path, NoPreprocess(), postprocess=PostprocessSpec(kind="anomaly"))
    data = out / "ad_heldout.npz"
    np.savez(data, x=((x_test - mean) / std).astype(np.float32), y=y_test)
    return path, data, model.count_params()


def extra_pass(results, name, params, model_path, data, out, seed, suffix, label, **options) -> None:
    """tflite-fp32 and tflite-int8 again with other options, reported as extra rows."""
    alt = convert(ConvertConfig(model=model_path, output=out / f"{name}_{suffix}.edgekit", data=data,
                                variants=("tflite-fp32", "tflite-int8"), validation_samples=1000, seed=seed, **options))
    alt_dict = alt.to_dict()
    for v in alt_dict["variants"]:
        v["name"] += f" ({label})"
    results.append({"model": name, "parameters": params, "train_seconds": 0.0,
                    "convert_seconds": round(alt.seconds, 1), "report": alt_dict})
    print(alt.render(), file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=Path("out/bench/convert"))
    parser.add_argument("--quick", action="store_true", help="less data and fewer epochs (smoke run)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = args.output
    out.mkdir(parents=True, exist_ok=True)
    keras = import_keras()
    keras.utils.set_random_seed(args.seed)
    q = args.quick
    cases = [
        ("resnet8", lambda: image_case(keras, out, "resnet8", resnet8, 32, 1200 if q else 4500, 3 if q else 12, args.seed, q)),
        ("ds_cnn", lambda: kws_case(keras, out, 3 if q else 20, args.seed, q)),
        ("mobilenet_v1_025", lambda: image_case(keras, out, "mobilenet_v1_025", mobilenet, 96, 600 if q else 3200,
                                                2 if q else 12, args.seed, q)),
        ("dense_autoencoder", lambda: ad_case(keras, out, 5 if q else 30, args.seed, q)),
    ]
    results = []
    for name, make in cases:
        t0 = time.perf_counter()
        print(f"== {name}: training", file=sys.stderr)
        model_path, data, params = make()
        train_s = time.perf_counter() - t0
        print(f"== {name}: converting", file=sys.stderr)
        report = convert(ConvertConfig(model=model_path, output=out / f"{name}.edgekit", data=data,
                                       validation_samples=1000, seed=args.seed))
        results.append({"model": name, "parameters": params, "train_seconds": round(train_s, 1),
                        "convert_seconds": round(report.seconds, 1), "report": report.to_dict()})
        print(report.render(), file=sys.stderr)

        int8 = next((v for v in report.variants if v.name == "tflite-int8" and v.data is not None), None)
        if int8 is not None and (int8.metrics.get("drop_pts") or 0) > 1.0:
            extra_pass(results, name, params, model_path, data, out, args.seed, "fallback",
                       "--max-accuracy-drop 1 --auto-fallback", max_accuracy_drop=1.0, auto_fallback=True)
        if name == "mobilenet_v1_025":  # thin layers: show the per-tensor trade-off too
            extra_pass(results, name, params, model_path, data, out, args.seed, "per_tensor", "per-tensor",
                       options=ConversionOptions(per_channel=False))
    (out / "convert_bench.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")

    print("| model | params | variant | size | x fp32 | int8 agreement | metric | drop (pts) | convert s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        ref = r["report"]["reference"]
        for v in r["report"]["variants"]:
            m = v["metrics"]
            if v["size_bytes"] is None:
                print(f"| {r['model']} | {r['parameters']:,} | {v['name']} | failed: {v['error']} |||||")
                continue
            basis = m.get("drop_basis")
            metric = m.get(basis) if basis and basis != "top1_agreement" else None
            agree = m.get("top1_agreement")
            agree_text = "-" if agree is None else f"{agree:.1%}"
            metric_text = "-" if metric is None else f"{basis} {metric:.3f} (float {ref['value']:.3f})"
            drop_text = "-" if m.get("drop_pts") is None else f"{m['drop_pts']:.2f}"
            print(f"| {r['model']} | {r['parameters']:,} | {v['name']} | {v['size_bytes']:,} B | "
                  f"{v['ratio_to_fp32']:.2f} | {agree_text} | {metric_text} | {drop_text} | {v['seconds']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
