"""Fuzz every loader edgekit runs on untrusted bytes (the long run behind ``make fuzz``).

Usage:
    .venv/bin/python tools/fuzz.py [--target NAME|all] [--seconds N] [--seed S] [--corpus DIR]
                                   [--engine builtin|atheris|both] [--json FILE]
    .venv/bin/python tools/fuzz.py --replay [--target NAME|all]
    .venv/bin/python tools/fuzz.py --minimize FILE --target NAME [-o OUT]
    .venv/bin/python tools/fuzz.py --make-seeds [-o tests/fuzz/seeds] [--target mjpeg]

Targets and the contract they check are in ``tests/support/fuzzing.py``: a mutated input must end
in a value or an `EdgekitError`; another exception, a crash or a hang is a failure.

Engines:
    builtin  the harness's seeded mutator (byte-level and structure-aware) in worker
             processes that are respawned after a crash; every target, native parsers
             included. A crash in a step that edgekit itself runs in a child process is
             replayed through that child process and reported as contained when edgekit
             turned it into an error.
    atheris  coverage-guided (libFuzzer, through atheris) on the steps edgekit runs in its
             own process, instrumenting edgekit and the standard library parsers it uses;
             one process per target, restarted after each finding until the time is up.
             Needs ``pip install atheris`` (skipped with a note otherwise).
    both     builtin, then atheris for the same time.

For each target it prints the inputs tried, the distinct outcomes, the outcomes per
step (errors by type), and every failure with the path of its saved reproducer
(``--corpus DIR``, default ``out/fuzz``, as ``DIR/TARGET/KIND-HASH.SUFFIX``). A failure that
is fixed gets its reproducer (minimized with ``--minimize``) copied into
``tests/fuzz/corpus/TARGET/``, which the test suite replays. Exit status 1 when a target
failed (known failures with a pending fix and contained crashes are reported, not counted).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support import fuzzing  # noqa: E402 - the harness the tests share


def _targets(name: str) -> list[str]:
    if name == "all":
        return list(fuzzing.PUBLIC_TARGETS)
    if name not in fuzzing.TARGETS:
        raise SystemExit(f"unknown target {name!r}; expected all or one of {fuzzing.PUBLIC_TARGETS}")
    return [name]


# ---------------------------------------------------------------------------
# builtin engine


def run_builtin(names: list[str], seconds: float, seed: int, corpus: Path) -> list[dict[str, Any]]:
    results = []
    for name in names:
        target = fuzzing.TARGETS[name]
        missing = fuzzing.missing_modules(target)
        if missing:
            print(f"{name}: skipped, needs {missing} (pip install \"edgekit-ml[all]\")", flush=True)
            continue
        print(f"{name}: fuzzing {target.loaders} for {seconds:g} s (builtin engine, seed {seed})", flush=True)
        report = fuzzing.fuzz(name, seconds, seed=seed, save_dir=corpus,
                              progress=lambda r: print(f"  ... {r.inputs} inputs, {len(r.outcomes)} outcomes, "
                                                       f"{len(r.failures)} failure(s)", flush=True))
        print(report.render(), flush=True)
        results.append({"engine": "builtin", **report.to_dict()})
    return results


# ---------------------------------------------------------------------------
# atheris engine

_ATHERIS_INSTRUMENT = ["edgekit", "zipfile", "json", "wave", "csv"]


def atheris_child(name: str, libfuzzer_args: list[str]) -> None:
    """One libFuzzer process: the target's steps that edgekit runs in-process."""
    import resource

    import atheris

    with atheris.instrument_imports(include=_ATHERIS_INSTRUMENT):
        import edgekit.bundle  # noqa: F401
        import edgekit.features.audio  # noqa: F401
        import edgekit.features.image  # noqa: F401
        import edgekit.inspection.keras  # noqa: F401
        import edgekit.runtime  # noqa: F401
        import edgekit.runtime.onnxdata  # noqa: F401
        import edgekit.runtime.sources  # noqa: F401
    from edgekit.runtime.backends import probe

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (min(hard, fuzzing.WORKER_MEMORY_BYTES)
                                            if hard != resource.RLIM_INFINITY else fuzzing.WORKER_MEMORY_BYTES, hard))
    # As edgekit runs the steps: the probe's child process included (a crash in this
    # process is then a real one); its verdicts are cached in the work folder.
    probe.PROBE_TIMEOUT_S = fuzzing.PRODUCTION_TIMEOUT_S
    target = fuzzing.TARGETS[name]
    steps = [s for s in target.steps if s.guided]
    known = fuzzing.known_failures(name) + json.loads(os.environ.get("EDGEKIT_ATHERIS_SEEN", "[]"))
    ws = fuzzing.Workspace(Path(tempfile.mkdtemp(prefix=f"edgekit-atheris-{name}-")), production=True)
    if target.setup is not None:
        target.setup(ws)

    def one(data: bytes) -> None:
        for step in steps:
            outcome = fuzzing._classify(step.name, lambda step=step: step.run(data, ws))  # noqa: SLF001
            if outcome["kind"] == "bug" and fuzzing._known(outcome, known) is None:  # noqa: SLF001
                sys.stderr.write(outcome.get("traceback", ""))
                raise AssertionError(f"{step.name}: {outcome['type']} at {outcome['where']}: {outcome['message']}")

    atheris.Setup([sys.argv[0], *libfuzzer_args], one)
    atheris.Fuzz()


def run_atheris(names: list[str], seconds: float, seed: int, corpus: Path) -> list[dict[str, Any]]:
    try:
        import atheris  # noqa: F401
    except ImportError:
        print("atheris is not installed (pip install atheris); the coverage-guided pass is skipped", flush=True)
        return []
    results = []
    for name in names:
        target = fuzzing.TARGETS[name]
        if fuzzing.missing_modules(target):
            continue
        steps = [s.name for s in target.steps if s.guided]
        if not steps:
            continue
        work = corpus / "atheris" / name
        queue = work / "queue"
        queue.mkdir(parents=True, exist_ok=True)
        for i, data in enumerate(fuzzing.seeds(target)):
            (queue / f"seed-{i}").write_bytes(data)
        print(f"{name}: coverage-guided fuzzing of steps {steps} for {seconds:g} s (atheris, seed {seed})", flush=True)
        started = time.monotonic()
        runs = restarts = 0
        findings: list[dict[str, Any]] = []
        seen: list[dict[str, str]] = []  # findings so far: the next process looks past them
        while (left := seconds - (time.monotonic() - started)) > 1:
            args = [f"-max_total_time={int(left)}", f"-seed={seed + restarts}", "-print_final_stats=1",
                    f"-timeout={int(target.timeout_s * 2)}", "-rss_limit_mb=3072", f"-artifact_prefix={work}/",
                    str(queue)]
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", OPENCV_LOG_LEVEL="OFF", XDG_CACHE_HOME=str(work),
                       EDGEKIT_ATHERIS_SEEN=json.dumps(seen))
            proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--atheris-child", name, "--", *args],
                                  capture_output=True, text=True, env=env, cwd=str(work), check=False)
            runs += sum(int(m) for m in re.findall(r"stat::number_of_executed_units:\s*(\d+)", proc.stderr)) or \
                max([int(m) for m in re.findall(r"#(\d+)\s", proc.stderr)] or [0])
            restarts += 1
            found = [Path(p) if Path(p).is_absolute() else work / p
                     for p in re.findall(r"Test unit written to (\S+)", proc.stderr)]
            if not found:
                if proc.returncode != 0:
                    print(f"  atheris exited with {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}", flush=True)
                break
            for path in found:
                if not path.is_file():
                    continue
                saved = fuzzing.save_reproducer(corpus, name, "atheris", path.read_bytes(), target.suffix)
                path.unlink()
                findings.append(_classify_artifact(name, saved))
                for o in findings[-1]["outcomes"]:
                    if o["kind"] == "bug":
                        seen.append({"kind": "bug", "type": o.get("type", ""), "in": o.get("where", "").split(":")[0],
                                     "fix": "seen"})
        failures = [f for f in findings if f["verdict"] == "failure"]
        print(f"{name}: {runs} inputs in {time.monotonic() - started:.1f} s (atheris, {restarts} process(es)), "
              f"{len(failures)} failure(s), {len(findings) - len(failures)} other finding(s)", flush=True)
        for finding in findings:
            first = finding["outcomes"][0] if finding["outcomes"] else {}
            print(f"  {finding['verdict'].upper()} {first.get('kind')} in step {first.get('step')}: {first.get('type')} "
                  f"at {first.get('where', '')}: {str(first.get('message', ''))[:160]}; reproducer "
                  f"{finding['reproducer']}")
        results.append({"engine": "atheris", "target": name, "inputs": runs, "restarts": restarts,
                        "seconds": round(time.monotonic() - started, 1), "findings": findings})
    return results


def _classify_artifact(name: str, path: Path) -> dict[str, Any]:
    """What an atheris finding is, replayed in the harness: a failure as edgekit runs it
    (child processes included), a crash edgekit contains, or nothing that reproduces."""
    production = fuzzing.replay(name, [path], production=True)[path]
    bad = [o for o in production if o["kind"] in fuzzing.FAILURE_KINDS]
    if bad:
        known = [o for o in bad if fuzzing._known(o, fuzzing.known_failures(name))]  # noqa: SLF001
        return {"reproducer": str(path), "verdict": "known" if len(known) == len(bad) else "failure", "outcomes": bad}
    fast = fuzzing.replay(name, [path], production=False)[path]
    crashed = [o for o in fast if o["kind"] in ("crash", "hang")]
    return {"reproducer": str(path), "verdict": "contained" if crashed else "unreproduced",
            "outcomes": crashed or production}


# ---------------------------------------------------------------------------
# replay and minimize


def run_replay(names: list[str]) -> int:
    bad = 0
    for name in names:
        cases = fuzzing.corpus_cases([name])
        if not cases:
            continue
        outcomes = fuzzing.replay(name, [path for _, path, _ in cases])
        for _, path, note in cases:
            failed = [o for o in outcomes[path] if o["kind"] in fuzzing.FAILURE_KINDS]
            verdict = "FAIL" if failed and not note else ("expected failure" if failed else "ok")
            if note and not failed:
                verdict = "FIXED (remove its expected-failures entry)"
            bad += verdict == "FAIL"
            summary = "; ".join(f"{o['step']}: {o['kind']} {o.get('type', '')}".strip() for o in outcomes[path])
            print(f"{name}/{path.name}: {verdict} ({summary})")
    return 1 if bad else 0


def run_minimize(name: str, path: Path, out: Path | None, seconds: float) -> int:
    data = path.read_bytes()
    smaller = fuzzing.minimize(name, data, seconds=seconds)
    out = out or path.with_name(path.stem + ".min" + path.suffix)
    out.write_bytes(smaller)
    print(f"{path}: {len(data)} -> {len(smaller)} bytes, written to {out}")
    return 0


# ---------------------------------------------------------------------------
# seeds (needs TensorFlow; the committed files are what the tests use)


def _quiet():
    return contextlib.redirect_stdout(sys.stderr)


def keras_models(work: Path) -> dict[str, Path]:
    """Tiny Keras models saved as .keras: an image CNN, an audio CNN, a sensor MLP, a tensor regressor."""
    import keras

    keras.utils.set_random_seed(0)
    out = {}
    inp = keras.Input((8, 8, 3), name="pixels")
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inp)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same", name="dw")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out["image"] = keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="probs")(x))

    inp = keras.Input((11, 5, 1), name="mfcc")
    x = keras.layers.Conv2D(4, 3, activation="relu")(inp)
    out["audio"] = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x)))

    inp = keras.Input((8, 3), name="imu")
    out["sensor"] = keras.Model(inp, keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inp)))

    inp = keras.Input((6,), name="features")
    x = keras.layers.Dense(4, activation="tanh")(inp)
    out["tensor"] = keras.Model(inp, keras.layers.Dense(1)(x))

    paths = {}
    for name, model in out.items():
        paths[name] = work / f"{name}.keras"
        with _quiet():
            model.save(paths[name])
    return paths


def lambda_model(work: Path) -> tuple[Path, Path]:
    """A model with a Lambda layer (its code is never run; the describers report it)."""
    import keras

    inp = keras.Input((4,), name="x")
    y = keras.layers.Lambda(lambda t: t * 2.0, name="double")(inp)
    model = keras.Model(inp, keras.layers.Dense(2)(y))
    paths = (work / "lambda.keras", work / "lambda.h5")
    with _quiet():
        for path in paths:
            model.save(path)
    return paths


def handmade_onnx() -> dict[str, bytes]:
    """ONNX graphs built with onnx.helper: an If with subgraphs, a sparse initializer, a
    Constant node's tensor attribute, a local function, and one with external data."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    weight = numpy_helper.from_array(np.arange(4, dtype=np.float32).reshape(1, 4), "w")
    then_out = helper.make_tensor_value_info("t", TensorProto.FLOAT, [1, 4])
    else_out = helper.make_tensor_value_info("e", TensorProto.FLOAT, [1, 4])
    then_graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["t"])], "then", [], [then_out])
    else_graph = helper.make_graph([helper.make_node("Sub", ["x", "w"], ["e"])], "else", [], [else_out])
    constant = helper.make_node("Constant", [], ["flag"], value=numpy_helper.from_array(np.array(True), "flag_value"))
    branch = helper.make_node("If", ["flag"], ["y"], then_branch=then_graph, else_branch=else_graph)
    graph = helper.make_graph([constant, branch], "branches", [x], [y], initializer=[weight])
    models = {"branches": helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])}

    sparse = helper.make_sparse_tensor(numpy_helper.from_array(np.array([1.0, 2.0], np.float32), "s"),
                                       numpy_helper.from_array(np.array([0, 3], np.int64), "s_idx"), [4])
    v = helper.make_tensor_value_info("v", TensorProto.FLOAT, [4])
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, [4])
    dense = helper.make_node("Constant", [], ["c"], sparse_value=sparse)
    models["sparse"] = helper.make_model(helper.make_graph([dense, helper.make_node("Add", ["v", "c"], ["z"])],
                                                           "sparse", [v], [z]),
                                         opset_imports=[helper.make_opsetid("", 17)])

    function = helper.make_function("local", "double", ["a"], ["b"], [helper.make_node("Add", ["a", "a"], ["b"])],
                                    [helper.make_opsetid("", 17)])
    call = helper.make_node("double", ["x"], ["y"], domain="local")
    models["function"] = helper.make_model(helper.make_graph([call], "calls", [x], [y]), functions=[function],
                                           opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local", 1)])

    external = helper.make_model(helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "ext", [x], [y],
                                                   initializer=[numpy_helper.from_array(np.ones((1, 4), np.float32),
                                                                                        "w")]),
                                 opset_imports=[helper.make_opsetid("", 17)])
    onnx.external_data_helper.set_external_data(external.graph.initializer[0], "weights.bin")
    external.graph.initializer[0].ClearField("raw_data")
    external.graph.initializer[0].data_location = TensorProto.EXTERNAL
    models["external"] = external
    for model in models.values():
        model.ir_version = 8
    return {name: model.SerializeToString() for name, model in models.items()}


def write_pcm(path: Path, width: int, channels: int, rate: int, frames: int) -> None:
    import numpy as np

    t = np.arange(frames) / rate
    wave_ = np.sin(2 * np.pi * 440 * t)[:, None] * np.linspace(0.3, 0.9, channels)[None, :]
    if width == 1:
        raw = (wave_ * 127 + 128).astype(np.uint8).tobytes()
    elif width == 2:
        raw = (wave_ * 32767).astype("<i2").tobytes()
    elif width == 3:
        ints = (wave_ * 8388607).astype("<i4").reshape(-1)
        raw = b"".join(int(v).to_bytes(4, "little", signed=True)[:3] for v in ints)
    else:
        raw = (wave_ * 2147483647).astype("<i4").tobytes()
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(raw)


def images(out: Path) -> None:
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
    # the formats decode_image accepts (edgekit.features.image.check_image_header)
    formats = {"png": {}, "jpg": {}, "bmp": {}, "ppm": {}, "pgm": {"gray": True}, "pbm": {"gray": True},
               "webp": {}, "tiff": {}}
    for ext, how in formats.items():
        image = rgb
        if how.get("gray"):
            image = rgb[..., 0]
        try:
            ok, encoded = cv2.imencode(f".{ext}", image)
        except cv2.error as exc:
            print(f"  image .{ext}: not written by this OpenCV ({str(exc).splitlines()[-1][:80]})")
            continue
        if ok:
            (out / f"rgb8.{ext}").write_bytes(encoded.tobytes())
    ok, rgba = cv2.imencode(".png", np.dstack([rgb, np.full((8, 8, 1), 200, np.uint8)]))
    (out / "rgba8.png").write_bytes(rgba.tobytes())
    ok, gray16 = cv2.imencode(".png", (rgb[..., 0].astype(np.uint16) * 257))
    (out / "gray16.png").write_bytes(gray16.tobytes())
    ok, progressive = cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    (out / "progressive.jpg").write_bytes(progressive.tobytes())


def mjpeg_streams(out: Path) -> None:
    """Multipart MJPEG bodies (what an IP camera sends over HTTP) of small JPEG frames:
    three with Content-Length headers, four without (the reader then looks for the boundary; it
    needs more than its 2 KiB read chunk to find the first frame)."""
    import cv2
    import numpy as np

    def frame(index: int, size: tuple[int, int]) -> bytes:
        w, h = size
        image = np.zeros((h, w, 3), np.uint8)
        image[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
        image[..., 1] = (index * 70) % 255
        cv2.putText(image, str(index), (2, h - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)
        return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 50])[1].tobytes()

    (out / "frames.mjpeg").write_bytes(fuzzing.mjpeg_body([frame(i, (32, 24)) for i in range(3)]))
    (out / "no-length.mjpeg").write_bytes(fuzzing.mjpeg_body([frame(i, (48, 32)) for i in range(4)], lengths=False))


def make_seeds(out: Path) -> None:
    """Write every seed under `out` (one folder per target), replacing what was there."""

    import keras

    from edgekit.bundle.signing import generate_keypair, sign_bundle
    from edgekit.convert.run import ConvertConfig, convert

    for sub in ("bundle", "tflite", "onnx", "keras", "h5", "wav", "image", "sensor", "mjpeg"):
        shutil.rmtree(out / sub, ignore_errors=True)
        (out / sub).mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="edgekit-seeds-") as tmp:
        work = Path(tmp)
        models = keras_models(work)

        contracts = {
            "image": "preprocess: {kind: image, height: 8, width: 8, channels: 3}\nlabels: [circle, square, triangle]\n"
                     "postprocess: {kind: classification, top_k: 2}\n",
            "audio": "preprocess: {kind: audio, sample_rate: 8000, clip_samples: 1600, frame_length: 256,"
                     " frame_step: 128, fft_length: 256, num_mel_bins: 10, num_mfcc: 5, upper_edge_hz: 3800}\n"
                     "labels: [_silence_, 'yes', 'no']\n"
                     "postprocess: {kind: classification, top_k: 2, smoothing_ms: 500, suppression_ms: 1000,"
                     " background_labels: [_silence_]}\n",
            "sensor": "preprocess: {kind: sensor, channels: [ax, ay, az], window: 8, stride: 4, mean: [0, 0, 1],"
                      " std: [1, 1, 1]}\nlabels: [idle, walk]\n",
            "tensor": "postprocess: {kind: regression}\n",
        }
        variants = {"image": ("tflite-fp32", "tflite-int8", "onnx-fp32"), "audio": ("tflite-int8",),
                    "sensor": ("tflite-fp32",), "tensor": ("tflite-fp32", "onnx-fp32")}
        for name, keras_path in models.items():
            contract = work / f"{name}.yaml"
            contract.write_text(contracts[name])
            bundle = out / "bundle" / f"{name}.edgekit"
            with _quiet():
                convert(ConvertConfig(model=keras_path, output=bundle, variants=variants[name], preprocess=contract,
                                      allow_random_calibration=True, calibration_samples=8, validation_samples=8,
                                      command="tools/fuzz_seeds.py"))
        keys = generate_keypair(work / "fuzz")
        signed = out / "bundle" / "signed.edgekit"
        shutil.copy(out / "bundle" / "tensor.edgekit", signed)
        sign_bundle(signed, keys.private)
        shutil.copy(keys.public, out / "bundle" / "fuzz.pub")

        model = keras.saving.load_model(models["image"])
        with _quiet():
            model.export(str(out / "tflite" / "image.tflite"), format="litert")
            model.export(str(out / "onnx" / "image.onnx"), format="onnx")
        from edgekit.bundle import open_bundle

        for name in ("image", "audio", "sensor"):
            bundle = open_bundle(out / "bundle" / f"{name}.edgekit")
            for variant in bundle.manifest.variants:
                suffix = ".tflite" if variant.format == "tflite" else ".onnx"
                target = out / variant.format / f"{name}-{variant.name}{suffix}"
                if variant.format in ("tflite", "onnx") and not target.exists():
                    target.write_bytes(bundle.variant_bytes(variant.name))
        for name, data in handmade_onnx().items():
            (out / "onnx" / f"{name}.onnx").write_bytes(data)

        shutil.copy(models["image"], out / "keras" / "image.keras")
        shutil.copy(models["sensor"], out / "keras" / "sensor.keras")
        lam_keras, lam_h5 = lambda_model(work)
        shutil.copy(lam_keras, out / "keras" / "lambda.keras")
        shutil.copy(lam_h5, out / "h5" / "lambda.h5")
        with _quiet():
            keras.saving.load_model(models["sensor"]).save(out / "h5" / "sensor.h5")

    write_pcm(out / "wav" / "mono16.wav", 2, 1, 8000, 160)
    write_pcm(out / "wav" / "stereo8.wav", 1, 2, 11025, 100)
    write_pcm(out / "wav" / "mono24.wav", 3, 1, 16000, 100)
    write_pcm(out / "wav" / "quad32.wav", 4, 4, 48000, 60)
    images(out / "image")
    mjpeg_streams(out / "mjpeg")

    (out / "sensor" / "header.csv").write_text("# IMU at 50 Hz\nax,ay,az\n" + "".join(
        f"{0.01 * i:.2f},{-0.02 * i:.2f},{1 + 0.001 * i:.3f}\n" for i in range(12)))
    (out / "sensor" / "plain.csv").write_text("".join(f"{i % 3},{i % 5},{i % 7}\n" for i in range(10)))
    (out / "sensor" / "lines.jsonl").write_text("".join(
        f'{{"ax": {0.1 * i:.1f}, "ay": {-0.1 * i:.1f}, "az": 1.0, "t": {i}}}\n' for i in range(10)))
    (out / "sensor" / "reordered.csv").write_text("az,ax,ay\n" + "".join(f"1.0,{i},{-i}\n" for i in range(9)))

    total = 0
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        total += path.stat().st_size
        print(f"{path.relative_to(out)}  {path.stat().st_size} bytes")
    print(f"{total} bytes in all")


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--atheris-child":
        args = sys.argv[3:]
        atheris_child(sys.argv[2], args[1:] if args[:1] == ["--"] else args)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="all", help=f"all or one of {', '.join(fuzzing.PUBLIC_TARGETS)}")
    parser.add_argument("--seconds", type=float, default=60.0, help="per target and engine (default 60)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--corpus", type=Path, default=REPO / "out" / "fuzz",
                        help="where reproducers of failures are saved (DIR/TARGET/...)")
    parser.add_argument("--engine", choices=("builtin", "atheris", "both"), default="builtin")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    parser.add_argument("--replay", action="store_true", help="replay the regression corpus (tests/fuzz/corpus)")
    parser.add_argument("--minimize", type=Path, metavar="FILE", help="shrink a reproducer of --target")
    parser.add_argument("--make-seeds", action="store_true", help="write tests/fuzz/seeds (needs TensorFlow)")
    parser.add_argument("-o", "--out", type=Path, help="output of --minimize or --make-seeds")
    args = parser.parse_args()
    if args.make_seeds:
        out = args.out or REPO / "tests" / "fuzz" / "seeds"
        if args.target == "mjpeg":  # no TensorFlow needed
            shutil.rmtree(out / "mjpeg", ignore_errors=True)
            (out / "mjpeg").mkdir(parents=True)
            mjpeg_streams(out / "mjpeg")
            return 0
        make_seeds(out)
        return 0
    names = _targets(args.target)
    if args.replay:
        return run_replay(names)
    if args.minimize:
        if len(names) != 1:
            raise SystemExit("--minimize needs --target NAME")
        return run_minimize(names[0], args.minimize, args.out, args.seconds)
    results: list[dict[str, Any]] = []
    if args.engine in ("builtin", "both"):
        results += run_builtin(names, args.seconds, args.seed, args.corpus)
    if args.engine in ("atheris", "both"):
        results += run_atheris(names, args.seconds, args.seed, args.corpus)
    print("\nsummary:")
    failed = False
    for r in results:
        if r["engine"] == "builtin":
            counts = {k: sum(1 for f in r["findings"] if f[k]) for k in ("known", "contained")}
            bad = [f for f in r["findings"] if not f["known"] and not f["contained"]]
            failed |= bool(bad)
            print(f"  {r['target']:<8} builtin  {r['inputs']:>9} inputs  {r['distinct_outcomes']:>5} outcomes  "
                  f"{len(bad)} failure(s), {counts['known']} known, {counts['contained']} contained crash(es)")
        else:
            verdicts = [f["verdict"] for f in r["findings"]]
            failed |= "failure" in verdicts
            print(f"  {r['target']:<8} atheris  {r['inputs']:>9} inputs  {'':>14}{verdicts.count('failure')} "
                  f"failure(s), {verdicts.count('known')} known, {verdicts.count('contained')} contained crash(es)"
                  + (f", {verdicts.count('unreproduced')} unreproduced" if "unreproduced" in verdicts else ""))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
