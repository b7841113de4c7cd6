"""Streaming figures, quiet and with both cores busy: keyword spotting per hop and per window,
the image path's stages, and predict against a raw interpreter loop (issue 20).

Usage: .venv/bin/python tools/stream_bench.py [--kws BUNDLE] [--json FILE|-] [--rounds 25] [--rebuild]

Every figure is measured twice in one run: on a quiet machine, then with a background load
this script starts and stops itself (two other numpy processes running a matmul loop, with
their BLAS threads: another numerical app on the device). Within a phase the figures that are
compared are measured side by side, interleaved in blocks of 5 calls, and reported as medians;
the keyword-spotting figures each beside the invoke alone (a predict of a whole window
between a stream's hops would evict the stream's state).

1. Keyword spotting (the demo's bundle, edgekit-demo/kws-dscnn.edgekit, when `make demo` made
   it, else the kws-dscnn recipe's DS-CNN with random weights, the same shapes and front end),
   tflite-int8, one interpreter thread: the whole per-hop cost of `Model.stream` (front end,
   invoke, postprocess) at 20 ms and 250 ms hops against the model's int8 invoke (a raw
   set/invoke/get loop), the audio fed as chunks stamped with audio time (as the microphone
   source stamps them: the smoother's window holds 500 ms of results); the real-time factor (compute time per second of audio) with the
   process pinned to one core; end to end per 1 s window (`predict` of a clip).
2. The image path for a 96x96 int8 MobileNet (the vww-mobilenet recipe, alpha 0.25, random
   weights) from a 640x480 frame: decode (a JPEG, as the ``images:`` source reads it), the
   camera source's BGR->RGB, resize, normalize, quantize, the runtime's lean path (resize and
   one table look-up), and `predict`, against invoke.
3. `predict_tensor` against a raw set/invoke/get loop on the same kind of interpreter, for
   models of 0.1 ms and more (and smaller ones, marked); an int8 model both given real values
   (which it quantizes) and given its codes (``quantized=True``, as the raw loop is).

Models are built (TensorFlow, in a child process, so that this process holds only the runtime)
and converted with edgekit convert once, cached under out/stream_bench/. Takes 1-3 minutes
after the first build.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "out" / "stream_bench"
DEMO_KWS = REPO / "edgekit-demo" / "kws-dscnn.edgekit"
FRAME = (480, 640)  # height, width of the camera frame
LOAD = "import numpy as np\na = np.random.default_rng(0).random((400, 400))\nwhile True:\n    a @ a\n"


# -- models ------------------------------------------------------------------------------


def _save_and_convert(keras, model, recipe, labels, out: Path, variants: tuple[str, ...]) -> None:
    import yaml

    from edgekit.convert.run import ConvertConfig, convert

    path = out.with_suffix(".keras")
    with contextlib.redirect_stdout(sys.stderr):
        model.save(path)
    contract = {"preprocess": recipe.preprocess.to_dict(), "postprocess": recipe.postprocess.to_dict(),
                "labels": list(labels)}
    path.with_name(path.stem + ".preprocess.yaml").write_text(yaml.safe_dump(contract))
    convert(ConvertConfig(model=path, output=out, variants=variants, allow_random_calibration=True))


def build(root: Path) -> None:
    """The benchmark's bundles under `root` (needs TensorFlow; run in a child process)."""
    from runtime_bench import build_models  # tools/runtime_bench.py: three tflite-fp32 models

    from edgekit.keras_env import import_keras
    from edgekit.train import architectures
    from edgekit.train.pipeline import model_input_shape
    from edgekit.train.recipes import load_recipe

    keras = import_keras()
    keras.utils.set_random_seed(0)
    root.mkdir(parents=True, exist_ok=True)
    for name, labels, out in (("kws-dscnn", None, root / "kws-dscnn.edgekit"),
                              ("vww-mobilenet", ("no_person", "person"), root / "mobilenet96.edgekit"),
                              ("ic-resnet8", tuple(f"c{i}" for i in range(10)), root / "resnet8.edgekit")):
        if out.exists():
            continue
        recipe = load_recipe(name)
        labels = labels or tuple(recipe.values["data"]["classes"])
        shape = model_input_shape(recipe.preprocess, ())
        model = architectures.build(keras, recipe.architecture, shape, len(labels), recipe.name)
        _save_and_convert(keras, model, recipe, labels, out, ("tflite-int8", "tflite-fp32"))
    runtime = root / "runtime"
    if not (runtime / "mobilenet.edgekit").exists():
        runtime.mkdir(exist_ok=True)
        build_models(keras, runtime)


def ensure_models(rebuild: bool) -> dict[str, Path]:
    names = {"kws": CACHE / "kws-dscnn.edgekit", "mobilenet96": CACHE / "mobilenet96.edgekit",
             "resnet8": CACHE / "resnet8.edgekit", "cnn-32x32": CACHE / "runtime" / "cnn.edgekit",
             "ds-cnn-49x10": CACHE / "runtime" / "dscnn.edgekit",
             "mobilenet-96x96-small": CACHE / "runtime" / "mobilenet.edgekit"}
    if rebuild:
        for path in names.values():
            path.unlink(missing_ok=True)
    if not all(p.exists() for p in names.values()):
        print(f"building and converting the models into {CACHE} (TensorFlow, once)", file=sys.stderr)
        subprocess.run([sys.executable, __file__, "--build", str(CACHE)], check=True)
    return names


# -- measuring ---------------------------------------------------------------------------


@contextlib.contextmanager
def background_load(on: bool) -> Iterator[None]:
    """Two numpy processes running a matmul loop (their BLAS threads on every core), or nothing."""
    if not on:
        yield
        return
    workers = [subprocess.Popen([sys.executable, "-c", LOAD], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL) for _ in range(2)]
    try:
        time.sleep(1.0)  # numpy imported, the loops running
        yield
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=10)


@contextlib.contextmanager
def one_core() -> Iterator[int]:
    """This process pinned to one core (the first it may use) for the block."""
    before = os.sched_getaffinity(0)
    core = min(before)
    os.sched_setaffinity(0, {core})
    try:
        yield core
    finally:
        os.sched_setaffinity(0, before)


def interleaved(calls: dict[str, Callable[[], object]], rounds: int, block: int) -> dict[str, np.ndarray]:
    """Seconds per call of each function, measured in blocks of `block` calls taken in turn,
    `rounds` times (the same conditions for all), after a warm-up of one block each."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():
        for _ in range(block):
            call()
    for _ in range(rounds):
        for name, call in calls.items():
            samples = times[name]
            for _ in range(block):
                t = time.perf_counter()
                call()
                samples.append(time.perf_counter() - t)
    return {name: np.array(samples) for name, samples in times.items()}


def medians(samples: dict[str, np.ndarray]) -> dict[str, float]:
    return {name: float(np.median(values)) for name, values in samples.items()}


def raw_loop(model, variant: str) -> tuple[Callable[[], object], np.ndarray, np.ndarray]:
    """A raw set/invoke/get call on a fresh interpreter of the same bytes (one thread), a
    float input of the model's shape, and that input quantized (what the raw call sets)."""
    from ai_edge_litert.interpreter import Interpreter

    from edgekit.runtime.tensors import quantize

    interpreter = Interpreter(model_content=model.bundle.variant_bytes(variant), num_threads=1)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    x = np.random.default_rng(0).random(tuple(inp["shape"])).astype(np.float32)
    tensor = quantize(x, model.input)  # quantized once: the raw loop gets the model's own dtype

    def call():
        interpreter.set_tensor(inp["index"], tensor)
        interpreter.invoke()
        return interpreter.get_tensor(out["index"])

    return call, x, tensor


def kws_figures(path: Path, rounds: int) -> dict:
    from edgekit.runtime import load
    from edgekit.runtime.sources import Item

    model = load(path, variant="tflite-int8", threads=1)
    spec = model.manifest.preprocess
    rate, clip = spec.sample_rate, spec.clip_samples
    invoke, _, _ = raw_loop(model, "tflite-int8")
    rng = np.random.default_rng(0)
    t = np.arange(rate * 4) / rate
    audio = (0.1 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)

    def hops(hop_ms: float) -> Callable[[], object]:
        hop = int(rate * hop_ms / 1000)
        chunks = [audio[i : i + hop] for i in range(0, audio.size - hop, hop)]

        def source():
            # stamped with audio time, as a microphone stamps its chunks (the time of the last
            # sample): a plain array is stamped when it arrives, and at bench speed the smoother's
            # 500 ms window would then hold hundreds of results instead of 500 ms / hop of them.
            # The items are made ahead, a few seconds of audio at a time (a microphone's come
            # from its own thread): what a hop costs here is the runtime's work alone.
            position = clip
            yield Item(audio[:clip], position / rate, "bench")
            while True:
                batch = []
                for chunk in chunks:
                    position += len(chunk)
                    batch.append(Item(chunk, position / rate, "bench"))
                yield from batch

        stream = model.stream(source(), hop_ms=hop_ms)
        next(stream)  # the first whole window
        return lambda: next(stream)  # one hop of audio in, one result out

    hop20, hop250 = hops(20.0), hops(250.0)
    window = audio[:clip]
    # Each figure is interleaved with the invoke alone, not with the others: a stream's hops
    # follow each other, and a predict of a whole window between two of them evicts the
    # stream's state (the next hop then costs about 1.4x, the one after it 1.07x).
    samples: dict[str, np.ndarray] = {}
    ratios: dict[str, float] = {}
    for name, call in (("hop20", hop20), ("hop250", hop250), ("window", lambda: model.predict(window))):
        pair = interleaved({name: call, "invoke": invoke}, rounds * 8, 5)
        samples[name] = pair[name]
        samples.setdefault("invoke", pair["invoke"])  # the invoke beside the 20 ms hops
        ratios[f"{name}_x_invoke"] = float(np.median(pair[name]) / np.median(pair["invoke"]))
    with one_core():
        pinned = medians(interleaved({"hop20": hop20, "hop250": hop250}, rounds * 8, 5))
    med = medians(samples)
    out = {"bundle": str(path), "variant": model.variant.name, "backend": model.package}
    for name, values in samples.items():  # the median, and the mean: the load shows in the tail
        out[f"{name}_ms"] = med[name] * 1e3
        out[f"{name}_mean_ms"] = float(values.mean()) * 1e3
        out[f"{name}_p90_ms"] = float(np.percentile(values, 90)) * 1e3
    out.update(ratios)
    out.update({"rtf_one_core_hop20": pinned["hop20"] / 0.020, "rtf_one_core_hop250": pinned["hop250"] / 0.250})
    return out


def test_frame() -> np.ndarray:
    """A 640x480 RGB frame with gradients, shapes and sensor noise (a camera's, roughly)."""
    h, w = FRAME
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * 255 // w, y * 255 // h, (x + y) * 255 // (w + h)], -1).astype(np.int32)
    rgb[h // 4 : h // 2, w // 3 : w // 2] = (200, 40, 90)
    rgb += np.random.default_rng(0).integers(-8, 9, rgb.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def image_figures(path: Path, rounds: int) -> dict:
    from PIL import Image

    from edgekit.features import image as image_features
    from edgekit.runtime import load
    from edgekit.runtime.tensors import quantize

    model = load(path, variant="tflite-int8", threads=1)
    spec, front = model.manifest.preprocess, model.preprocessor
    invoke, _, _ = raw_loop(model, "tflite-int8")
    frame = test_frame()
    encoded = io.BytesIO()
    Image.fromarray(frame).save(encoded, "JPEG", quality=90)
    jpeg = encoded.getvalue()
    bgr = np.ascontiguousarray(frame[..., ::-1])
    pixels = image_features.prepare(frame, spec)
    features = image_features.normalize(pixels, spec)
    reported: list[float] = []  # predict's own preprocess_ms (t0 to the model input ready)
    calls: dict[str, Callable[[], object]] = {
        "decode": lambda: image_features.decode_image(jpeg),
        "resize": lambda: image_features.prepare(frame, spec),
        "normalize": lambda: image_features.normalize(pixels, spec),
        "quantize": lambda: quantize(features, model.input),
        "features+quantize": lambda: quantize(front.features(frame), model.input),
        "predict": lambda: reported.append(model.predict(frame).latency.preprocess_ms),
        "invoke": invoke,
    }
    with contextlib.suppress(ImportError):
        import cv2

        calls["camera_bgr2rgb"] = lambda: cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if hasattr(front, "tensor_and_features"):  # the lean path (absent before issue 20)
        calls["lean"] = lambda: front.tensor_and_features(frame, features=False)
        # the same after an invoke, as inside predict: the frame is no longer in the caches
        calls["invoke+lean"] = lambda: (invoke(), front.tensor_and_features(frame, features=False))
    figures = medians(interleaved(calls, rounds * 4, 5))
    inv = figures["invoke"]
    out = {"bundle": str(path), "variant": model.variant.name, "frame": f"{FRAME[1]}x{FRAME[0]}",
           "input": f"{spec.height}x{spec.width}x{spec.channels} {model.input.dtype.value}",
           "jpeg_bytes": len(jpeg)}
    for name, seconds in figures.items():
        out[f"{name}_ms"] = seconds * 1e3
        out[f"{name}_x_invoke"] = seconds / inv
    out["predict_preprocess_x_invoke"] = (figures["predict"] - inv) / inv  # what predict adds to invoke
    out["predict_reported_preprocess_ms"] = float(np.median(reported))
    out["predict_reported_preprocess_x_invoke"] = out["predict_reported_preprocess_ms"] / (inv * 1e3)
    if "invoke+lean" in figures:
        out["lean_after_invoke_ms"] = (figures["invoke+lean"] - inv) * 1e3
        out["lean_after_invoke_x_invoke"] = (figures["invoke+lean"] - inv) / inv
    return out


def floor_call(model, tensor: np.ndarray) -> Callable[[], object]:
    """The least a predict that returns a labelled `Result` does beyond the raw loop, written
    out by hand in one function (no checks, no smoother, no other kinds): the model's input
    tensor set, invoke, the class scores read (`Model._scores`), ranked, a `Result` with its
    latency made. What predict_tensor adds beyond this is the runtime's own cost."""
    from edgekit.runtime.results import ClassScore, Latency, Result

    pc, now, pair = time.perf_counter, time.time, tuple.__new__
    run, scores_of, top = model.backend.run, model._scores, model.postprocess_spec.top_k
    labels = model.labels or tuple(str(i) for i in range(model.outputs[0].shape[-1]))  # unlabelled: the index
    kind, variant, inputs = model._kind, model.variant.name, [tensor]

    def call():
        t0 = pc()
        t1 = pc()
        values = scores_of(run(inputs)[0]).tolist()
        t2 = pc()
        order = sorted(range(len(values)), key=values.__getitem__, reverse=True)
        best = order[0]
        pairs = tuple([pair(ClassScore, (labels[i], values[i])) for i in order[:top]])
        t3 = pc()
        return Result(kind, Latency((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3), variant, now(), 0,
                      labels[best], best, values[best], pairs)

    return call


def predict_figures(bundles: list[tuple[str, Path, str]], rounds: int) -> list[dict]:
    from edgekit.runtime import load

    rows = []
    for name, path, variant in bundles:
        model = load(path, variant=variant, threads=1)
        raw, x, codes = raw_loop(model, variant)
        calls = {"predict_tensor": lambda m=model, x=x: m.predict_tensor(x), "raw": raw,
                 "floor": floor_call(model, codes)}
        quantized = codes.dtype != x.dtype  # an int8 model: also given its codes, as the raw loop is
        if quantized:
            calls["codes"] = lambda m=model, c=codes: m.predict_tensor(c, quantized=True)
        figures = medians(interleaved(calls, rounds * 10, 5))
        for key, given in (("predict_tensor", "real values"), ("codes", "its int8 codes")):
            if key in figures:
                rows.append({"model": name, "variant": variant, "given": given, "raw_ms": figures["raw"] * 1e3,
                             "predict_tensor_ms": figures[key] * 1e3, "ratio": figures[key] / figures["raw"],
                             "overhead_us": (figures[key] - figures["raw"]) * 1e6,
                             "floor_ratio": figures["floor"] / figures["raw"],
                             "floor_us": (figures["floor"] - figures["raw"]) * 1e6})
    return rows


# -- report ------------------------------------------------------------------------------


def render(result: dict) -> str:
    phases = result["phases"]
    q, b = phases["quiet"], phases["busy"]
    lines = [f"edgekit stream bench: {result['cpu']}, {result['cores']} cores, load before start {result['load']}",
             "busy = two other numpy processes running a matmul loop; one interpreter thread everywhere, and one "
             "BLAS thread and a steady heap for the whole process (as edgekit run and serve set them)", ""]
    kq, kb = q["kws"], b["kws"]
    lines += [f"## Keyword spotting ({kq['variant']} on {kq['backend']}; {kq['bundle']})", "",
              "| figure | quiet median | busy median | busy / quiet | quiet mean | busy mean | busy / quiet |",
              "|---|---|---|---|---|---|---|"]
    for label, key in (("int8 invoke (raw set/invoke/get)", "invoke"), ("stream, per 20 ms hop (whole)", "hop20"),
                       ("stream, per 250 ms hop (whole)", "hop250"), ("end to end per 1 s window (predict)", "window")):
        m, n = f"{key}_ms", f"{key}_mean_ms"
        lines.append(f"| {label} | {kq[m]:.3f} ms | {kb[m]:.3f} ms | {kb[m] / kq[m]:.2f}x | {kq[n]:.3f} ms | "
                     f"{kb[n]:.3f} ms | {kb[n] / kq[n]:.2f}x |")
    for label, key, digits in (("20 ms hop / int8 invoke (goal <= 2)", "hop20_x_invoke", 2),
                               ("250 ms hop / int8 invoke", "hop250_x_invoke", 1),
                               ("1 s window (predict) / int8 invoke", "window_x_invoke", 1),
                               ("real-time factor, one core, 20 ms hop", "rtf_one_core_hop20", 4),
                               ("real-time factor, one core, 250 ms hop", "rtf_one_core_hop250", 4)):
        lines.append(f"| {label} | {kq[key]:.{digits}f} | {kb[key]:.{digits}f} | {kb[key] / kq[key]:.2f}x | | | |")
    lines.append("")
    iq, ib = q["image"], b["image"]
    lines += [f"## Image path: {iq['input']} MobileNet ({iq['variant']}) from a {iq['frame']} frame", "",
              "| stage | quiet ms | x invoke | busy ms | x invoke |", "|---|---|---|---|---|"]
    labels = {"invoke": "invoke (raw set/invoke/get)", "decode": f"decode JPEG ({iq['jpeg_bytes']} B; images: source)",
              "camera_bgr2rgb": "camera BGR->RGB (capture thread)", "resize": "resize (prepare)",
              "normalize": "normalize", "quantize": "quantize", "features+quantize": "resize+normalize+quantize",
              "lean": "lean path: resize + table look-up",
              "lean_after_invoke": "  the same after an invoke (invoke + lean - invoke)", "predict": "predict (end to end)"}
    for key, label in labels.items():
        if f"{key}_ms" in iq:
            lines.append(f"| {label} | {iq[key + '_ms']:.3f} | {iq[key + '_x_invoke']:.2f} | "
                         f"{ib[key + '_ms']:.3f} | {ib[key + '_x_invoke']:.2f} |")
    lines += [f"| predict - invoke | {iq['predict_ms'] - iq['invoke_ms']:.3f} | {iq['predict_preprocess_x_invoke']:.2f} | "
              f"{ib['predict_ms'] - ib['invoke_ms']:.3f} | {ib['predict_preprocess_x_invoke']:.2f} |",
              f"| predict's own preprocess_ms (goal <= 0.5x) | {iq['predict_reported_preprocess_ms']:.3f} | "
              f"{iq['predict_reported_preprocess_x_invoke']:.2f} | {ib['predict_reported_preprocess_ms']:.3f} | "
              f"{ib['predict_reported_preprocess_x_invoke']:.2f} |", ""]
    lines += ["## predict_tensor against a raw set/invoke/get loop (goal <= 1.05x for models of 0.1 ms and more)", "",
              "The raw loop is given the model's input tensor (int8: the codes). predict_tensor is given real values "
              "(int8: quantized by it), and for int8 models also the codes (`quantized=True`), as the raw loop.", "",
              "floor: the least a predict returning a labelled Result adds, written out by hand in one function "
              "(`floor_call`), measured beside them.", "",
              "| model | variant | predict_tensor given | raw quiet | ratio quiet | overhead | floor quiet | "
              "raw busy | ratio busy | floor busy |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for rq, rb in zip(q["predict"], b["predict"], strict=True):
        small = "" if rq["raw_ms"] >= 0.1 else " (< 0.1 ms)"
        lines.append(f"| {rq['model']}{small} | {rq['variant']} | {rq['given']} | {rq['raw_ms']:.3f} ms | "
                     f"{rq['ratio']:.3f}x | {rq['overhead_us']:.1f} us | {rq['floor_ratio']:.3f}x "
                     f"({rq['floor_us']:.1f} us) | {rb['raw_ms']:.3f} ms | {rb['ratio']:.3f}x | {rb['floor_ratio']:.3f}x |")
    return "\n".join(lines)


def cpu_name() -> str:
    from edgekit.bench.environment import parse_cpuinfo

    with contextlib.suppress(OSError):
        return parse_cpuinfo(Path("/proc/cpuinfo").read_text())["cpu_model"] or "unknown CPU"
    return "unknown CPU"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kws", type=Path, help=f"a keyword-spotting bundle (default: {DEMO_KWS.relative_to(REPO)} "
                        "when it exists, else the recipe's DS-CNN, built)")
    parser.add_argument("--rounds", type=int, default=25, help="interleaved rounds per figure")
    parser.add_argument("--json", help="also write the figures as JSON to this file (- for stdout)")
    parser.add_argument("--rebuild", action="store_true", help="build and convert the models again")
    parser.add_argument("--build", type=Path, help=argparse.SUPPRESS)  # child process: build and exit
    args = parser.parse_args()
    if args.build is not None:
        build(args.build)
        return 0
    from edgekit.runtime.process import own_process

    models = ensure_models(args.rebuild)
    # the process set as edgekit run and serve set theirs: one BLAS thread for the front end
    # (the runtime's per-call check then costs nothing) and a steady heap (without it a 1 s
    # predict after the 250 ms stream costs 0.56 ms instead of 0.36: edgekit.runtime.process)
    own_process(1)
    kws = args.kws or (DEMO_KWS if DEMO_KWS.exists() else models["kws"])
    predict_models = [("mobilenet 96x96 (vww recipe)", models["mobilenet96"], "tflite-int8"),
                      ("mobilenet 96x96 (vww recipe)", models["mobilenet96"], "tflite-fp32"),
                      ("resnet8 32x32 (ic recipe)", models["resnet8"], "tflite-int8"),
                      ("resnet8 32x32 (ic recipe)", models["resnet8"], "tflite-fp32"),
                      ("mobilenet-96x96 (runtime_bench)", models["mobilenet-96x96-small"], "tflite-fp32"),
                      ("ds-cnn-49x10 (runtime_bench)", models["ds-cnn-49x10"], "tflite-fp32"),
                      ("kws-dscnn (the KWS bundle)", kws, "tflite-int8")]
    result = {"cpu": cpu_name(), "cores": os.cpu_count(), "load": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
              "phases": {}}
    started = time.perf_counter()
    for phase in ("quiet", "busy"):
        with background_load(phase == "busy"):
            figures = {"kws": kws_figures(kws, args.rounds), "image": image_figures(models["mobilenet96"], args.rounds),
                       "predict": predict_figures(predict_models, args.rounds)}
        result["phases"][phase] = figures
    result["seconds"] = time.perf_counter() - started
    print(render(result))
    print(f"\n({result['seconds']:.0f} s)")
    if args.json == "-":
        print(json.dumps(result, indent=1))
    elif args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
