"""`edgekit demo`: keyword spotting end to end, offline, on synthetic speech.

Stages, each reused on a re-run when its outputs are there and its inputs unchanged
(``OUT/stamps/STAGE.json`` holds a hash of the inputs and options and the sha256 of
every output):

1. data: the ``kws`` dataset (speech from the espeak-ng program or its library from
   espeakng-loader; a tone stand-in without both) in ``OUT/data``
   (`edgekit.datasets.synth`, which reuses a complete dataset itself);
2. train: the ``kws-dscnn`` recipe in ``OUT/train`` (model, contract, report with
   learning curves and confusion matrix, ``heldout.npz`` with the raw test split);
3. prune: with ``prune_channels``, the recipe's prune section through train
   (`edgekit.prune.run.prune_in_child`): channels removed, fine-tuned, measured before
   and after; the bundle is made from the pruned model;
4. convert: the recipe's variants (``tflite-int8``, ``onnx-fp32``) behind its fidelity
   gate into ``OUT/kws-dscnn.edgekit`` (through ``train``'s export; directly through
   `convert` when training was reused);
5. bench: every variant side by side, briefly (``OUT/bench``: JSON, Markdown, plot);
6. stream: a WAV stream of held-out clips only (keywords, unknown words and background,
   separated by quiet noise, with known labels and times) through the runtime with the
   bundle's smoothing and suppression, once per variant; detections scored against the
   ground truth (``OUT/stream``);
7. report: ``OUT/report.md`` (plots linked), ``summary.txt`` and ``summary.json``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgekit import __version__
from edgekit.bundle import atomic_write_bytes, sha256_file
from edgekit.errors import EdgekitError, GateError, InputError
from edgekit.progress import Log, Progress, no_progress

RECIPE = "kws-dscnn"
STAGES = ("data", "train", "convert", "bench", "stream", "report")
BACKGROUND = ("_silence_", "_unknown_")


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    """Options of the demo.

    Attributes:
        output_dir: where everything goes.
        epochs: training epochs (None: the recipe's).
        samples: synthetic clips per class (None: the recipe's ``data.synth_samples``).
        seed: seed of the data, the training and the stream.
        max_accuracy_drop: the fidelity gate in points (None: the recipe's).
        bench_seconds: measured seconds per variant and mode (invoke, end to end).
        prune_channels: fraction of the channels `edgekit prune` removes after training
            (the thinner model is the one converted); None or 0: no pruning.
        stream_per_class: held-out clips per class in the stream (keywords and each of
            ``_unknown_`` and ``_silence_``; fewer when the split has fewer).
        gap_s: range of the quiet-noise gap between clips, seconds.
        tolerance_s: a detection counts for a keyword clip from its start to this long
            after its end (the smoothing window makes detections late).
        hop_ms: the runtime's hop between windows.
        quiet: no progress bars (and a quiet ``edgekit bench``).
        command: the command line, for the provenance.
    """

    output_dir: Path = Path("edgekit-demo")
    epochs: int | None = None
    samples: int | None = None
    seed: int = 0
    max_accuracy_drop: float | None = None
    bench_seconds: float = 1.0
    prune_channels: float | None = 0.5
    stream_per_class: int = 8
    gap_s: tuple[float, float] = (1.0, 2.0)
    tolerance_s: float = 1.0
    hop_ms: float = 250.0
    quiet: bool = False
    command: str = "edgekit demo"


@dataclasses.dataclass(frozen=True)
class StageTime:
    """How long a stage took in this run, and whether its outputs were reused."""

    name: str
    seconds: float
    reused: bool = False
    made_seconds: float | None = None  # when reused: how long it took when it was made

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class DemoResult:
    output: Path
    bundle_path: Path
    report_path: Path
    figures: dict[str, Any]
    stages: list[StageTime]
    seconds: float

    def summary(self) -> str:
        return render_summary(self.figures, self.stages, self.seconds, self.report_path)


# ---------------------------------------------------------------------------
# stamps: skip a stage whose inputs are unchanged and whose outputs are intact


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def _stamp_path(out: Path, stage: str) -> Path:
    return out / "stamps" / f"{stage}.json"


def _reusable(out: Path, stage: str, inputs: str) -> dict[str, Any] | None:
    """The stamp of `stage` when its inputs hash is `inputs` and every output it lists
    is there with the same sha256; else None."""
    try:
        stamp = json.loads(_stamp_path(out, stage).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(stamp, dict) or stamp.get("inputs") != inputs:
        return None
    for name, digest in stamp.get("outputs", {}).items():
        path = out / name
        if not path.is_file() or sha256_file(path) != digest:
            return None
    return stamp


def _write_stamp(out: Path, stage: str, inputs: str, outputs: Sequence[Path], seconds: float) -> None:
    stamp = {"stage": stage, "inputs": inputs, "seconds": round(seconds, 3), "edgekit": __version__,
             "made": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
             "outputs": {str(p.relative_to(out)): sha256_file(p) for p in outputs if p.is_file()}}
    path = _stamp_path(out, stage)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps(stamp, indent=2, sort_keys=True) + "\n").encode())


def _forget(out: Path, *stages: str) -> None:
    for stage in stages:
        _stamp_path(out, stage).unlink(missing_ok=True)


def _prepare(out: Path) -> None:
    from edgekit.train.run import prepare_output

    prepare_output(out, "output directory", hint="choose another -o")


def _write_json(path: Path, value: Any) -> None:
    atomic_write_bytes(path, (json.dumps(value, indent=2, sort_keys=True, default=_plain) + "\n").encode())


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(type(value).__name__)


def _indent(log: Log) -> Log:
    return lambda message: log("      " + message)


# ---------------------------------------------------------------------------
# 1. data


def _data(config: DemoConfig, folder: Path, log: Log, progress: Progress) -> dict[str, Any]:
    from edgekit.datasets.synth import MANIFEST, make_config, synthesize
    from edgekit.train.recipes import load_recipe

    recipe = load_recipe(RECIPE)
    samples = config.samples or int(recipe.values["data"]["synth_samples"])
    synth = make_config(recipe.values["data"]["synth"], samples=samples, seed=config.seed)
    try:
        result = synthesize("kws", folder, synth, log=_indent(log), progress=progress)
    except InputError:
        if not (folder / MANIFEST).is_file():
            raise
        log(f"      {folder} holds a kws dataset with other options (or damaged); making it again")
        result = synthesize("kws", folder, synth, force=True, log=_indent(log), progress=progress)
    manifest = result.manifest
    generator = manifest.get("generator", {})
    return {"path": str(folder), "reused": result.reused, "seconds": result.seconds,
            "made_seconds": manifest.get("seconds"), "samples_total": manifest.get("samples_total"),
            "samples_per_class": manifest.get("samples_per_class"), "classes": manifest.get("classes"),
            "generator": generator.get("name", "?"), "voices": len(generator.get("voices", [])),
            "stand_in": "stand-in" in str(generator.get("name", "")), "install": generator.get("install"),
            "manifest_sha256": sha256_file(folder / MANIFEST)}


# ---------------------------------------------------------------------------
# 2-3. train and convert


def _recipe_overrides(config: DemoConfig) -> list[str]:
    overrides = []
    if config.epochs is not None:
        overrides.append(f"train.epochs={config.epochs}")
    overrides.append(f"train.seed={config.seed}")
    if config.max_accuracy_drop is not None:
        overrides.append(f"convert.max_accuracy_drop={config.max_accuracy_drop}")
    if config.prune_channels:
        overrides.append(f"prune.channels={config.prune_channels}")
        if config.epochs is not None:
            overrides.append(f"prune.epochs={config.epochs}")
    return overrides


def _exported_model(config: DemoConfig, folder: Path) -> Path:
    """The model the bundle is made from: the pruned one when the demo prunes."""
    from edgekit.train.run import pruned_model_path

    return pruned_model_path(folder, RECIPE) if config.prune_channels else folder / f"{RECIPE}.keras"


def _train_outputs(config: DemoConfig, folder: Path) -> list[Path]:
    names = [f"{RECIPE}.keras", f"{RECIPE}.preprocess.yaml", "labels.txt", "heldout.npz", "report.json",
             "report.md", "curves.png", "confusion.png"]
    if config.prune_channels:
        pruned = _exported_model(config, folder)
        stem = pruned.name.removesuffix(".keras")
        names += [pruned.name, f"{stem}.preprocess.yaml", f"{stem}.prune.json"]
    return [folder / name for name in names]


def _convert_table(convert: dict[str, Any]) -> list[str]:
    """Plain-text lines of a convert report (the ``convert.json`` document)."""
    ref = convert["reference"]
    lines = [f"float reference on {convert['data']['validation_samples']} validation clips: "
             f"{ref['metric']} {ref['value']:.2%}"]
    for v in convert["variants"]:
        if v.get("error"):
            lines.append(f"{v['name']:<12} FAILED: {v['error']}")
            continue
        m = v["metrics"]
        ci = m.get("drop_ci95")
        noise = f" (95% CI {ci[0]:.1f}..{ci[1]:.1f})" if ci else ""
        lines.append(f"{v['name']:<12} {v['size_bytes'] / 1024:7.1f} KiB  accuracy {m.get('accuracy', 0):.2%}  "
                     f"drop {m.get('drop_pts', 0):5.2f} pts{noise}  agreement {m.get('top1_agreement', 0):.1%}  "
                     f"gate {v['gate']}")
    gate = convert["gate"]
    lines.append(f"gate --max-accuracy-drop {gate['max_accuracy_drop_pts']:g}: "
                 + ("passed" if gate["passed"] else f"FAILED ({', '.join(gate['failed_variants'])})")
                 + (f"; a variant {gate['rule']}" if gate.get("rule") else ""))
    return lines


def _train_and_convert(config: DemoConfig, out: Path, data: dict[str, Any], bundle: Path, log: Log,
                       progress: Progress) -> list[StageTime]:
    from edgekit.train.recipes import load_recipe

    folder = out / "train"
    recipe = load_recipe(RECIPE, _recipe_overrides(config))
    values = recipe.to_dict()
    convert_values = values.pop("convert")
    train_inputs = _digest({"recipe": values, "dataset": data["manifest_sha256"]})
    train_stamp = _reusable(out, "train", train_inputs)
    epochs = int(recipe.train["epochs"])

    if train_stamp is None:
        log(f"[2/7] train: {RECIPE} for {epochs} epoch(s) on {data['samples_total']} clips -> {folder}")
        _forget(out, "train", "convert")
        bundle.unlink(missing_ok=True)  # a stale bundle must not outlive the model it came from
        from edgekit.train.run import TrainConfig, train

        t0 = time.perf_counter()
        train_config = TrainConfig(recipe=RECIPE, output=folder, data=Path(data["path"]), epochs=config.epochs,
                                   seed=config.seed, overrides=tuple(o for o in _recipe_overrides(config)
                                                                     if o.startswith(("convert.", "prune."))),
                                   export=bundle, progress_bar=not config.quiet, command=config.command,
                                   prune_bench_seconds=config.bench_seconds)
        try:
            result = train(train_config, log=_indent(log), progress=progress)
        except GateError:  # train printed the convert table before raising
            elapsed = time.perf_counter() - t0
            convert_seconds = _convert_seconds(folder)
            _write_stamp(out, "train", train_inputs, _train_outputs(config, folder), elapsed - convert_seconds)
            raise
        elapsed = time.perf_counter() - t0
        convert_seconds = result.bundle.seconds if result.bundle is not None else 0.0
        prune_seconds = float((result.report.get("prune") or {}).get("seconds", 0.0))
        train_time = StageTime("train", elapsed - convert_seconds - prune_seconds)
        _write_stamp(out, "train", train_inputs, _train_outputs(config, folder), train_time.seconds + prune_seconds)
        _log_prune(config, folder, log, prune_seconds)
        convert_time = StageTime("convert", convert_seconds)
        convert_inputs = _convert_inputs(config, folder, convert_values)
        _write_stamp(out, "convert", convert_inputs, [bundle, folder / "convert.json"], convert_seconds)
        log(f"[4/7] convert: done inside train's export ({convert_seconds:.1f} s) -> {bundle}")
        _log_convert(folder, log)
        return [train_time, *([StageTime("prune", prune_seconds)] if config.prune_channels else []), convert_time]

    log(f"[2/7] train: reused {folder / f'{RECIPE}.keras'} (inputs unchanged; made in {train_stamp['seconds']:.1f} s)")
    train_time = StageTime("train", 0.0, reused=True, made_seconds=train_stamp["seconds"])
    stages = [train_time]
    if config.prune_channels:
        log(f"[3/7] prune: reused {_exported_model(config, folder)} (made with the training)")
        stages.append(StageTime("prune", 0.0, reused=True))
    convert_inputs = _convert_inputs(config, folder, convert_values)
    convert_stamp = _reusable(out, "convert", convert_inputs)
    if convert_stamp is not None:
        log(f"[4/7] convert: reused {bundle} (inputs unchanged; made in {convert_stamp['seconds']:.1f} s)")
        return [*stages, StageTime("convert", 0.0, reused=True, made_seconds=convert_stamp["seconds"])]

    from edgekit.train.run import export_bundle, gate_error

    drop = float(convert_values["max_accuracy_drop"])
    variants = tuple(convert_values["variants"])
    model = _exported_model(config, folder)
    log(f"[4/7] convert: {model} -> {bundle} --variants {','.join(variants)} --max-accuracy-drop {drop:g}")
    _forget(out, "convert")
    bundle.unlink(missing_ok=True)
    t0 = time.perf_counter()
    report = export_bundle(model, folder, bundle, convert_values, config.seed, config.command, _indent(log), progress)
    _log_convert(folder, log)
    if not report.gate_passed:
        raise gate_error(report, folder)
    seconds = time.perf_counter() - t0
    _write_stamp(out, "convert", convert_inputs, [bundle, folder / "convert.json"], seconds)
    return [*stages, StageTime("convert", seconds)]


def _log_prune(config: DemoConfig, folder: Path, log: Log, seconds: float) -> None:
    if not config.prune_channels:
        return
    from edgekit.prune.run import render_summary as prune_summary
    from edgekit.prune.run import report_path

    model = _exported_model(config, folder)
    report = json.loads(report_path(model).read_text("utf-8"))
    log(f"[3/7] prune: done inside train ({seconds:.1f} s): {config.prune_channels:.0%} of the channels removed "
        f"-> {model}")
    for line in prune_summary(report, None).splitlines()[1:]:
        log("      " + line.strip())


def _convert_inputs(config: DemoConfig, folder: Path, convert_values: dict[str, Any]) -> str:
    stem = _exported_model(config, folder).name.removesuffix(".keras")
    files = [folder / f"{stem}.keras", folder / f"{stem}.preprocess.yaml", folder / "heldout.npz"]
    return _digest({"convert": convert_values, "files": [sha256_file(p) if p.is_file() else None for p in files]})


def _convert_seconds(folder: Path) -> float:
    try:
        return float(json.loads((folder / "convert.json").read_text("utf-8"))["seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0


def _log_convert(folder: Path, log: Log) -> None:
    try:
        document = json.loads((folder / "convert.json").read_text("utf-8"))
    except (OSError, ValueError):
        return
    for line in _convert_table(document):
        log("      " + line)


# ---------------------------------------------------------------------------
# 4. bench


def _bench(config: DemoConfig, out: Path, bundle: Path, log: Log) -> tuple[StageTime, dict[str, Any]]:
    """``edgekit bench`` on every variant through bench's library function (each variant
    in its own worker process; a worker reads its own peak memory, so this process's
    TensorFlow does not show in it)."""
    folder = out / "bench"
    options = ["--threads", "1", "--duration", f"{config.bench_seconds:g}", "--windows", "5", "--warmup", "10",
               "--warmup-seconds", "0.5", "--meter", "auto", "--idle-seconds", "1", "--seed", str(config.seed)]
    inputs = _digest({"bundle": sha256_file(bundle), "options": options})
    outputs = [folder / "bench.json", folder / "bench.md", folder / "bench.png"]
    stamp = _reusable(out, "bench", inputs)
    if stamp is not None:
        log(f"[5/7] bench: reused {folder / 'bench.json'} (bundle and options unchanged; made in "
            f"{stamp['seconds']:.1f} s)")
        return StageTime("bench", 0.0, True, stamp["seconds"]), json.loads((folder / "bench.json").read_text("utf-8"))
    command = ["edgekit", "bench", str(bundle), *options, "--format", "json", "-o", str(folder / "bench.json")]
    if _has_matplotlib():
        command += ["--plot", str(folder / "bench.png")]
    log(f"[5/7] bench: every variant side by side, {config.bench_seconds:g} s per variant and mode (invoke, end to "
        f"end) in 5 interleaved windows, 1 thread: {' '.join(command)}")
    _forget(out, "bench")
    folder.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    from edgekit.bench.harness import BenchConfig
    from edgekit.bench.report import render_markdown
    from edgekit.bench.run import check_output_paths, collect, publish

    bench_config = BenchConfig(targets=(str(bundle),), threads=(1,), duration=config.bench_seconds, windows=5,
                               warmup_runs=10, warmup_seconds=0.5, meter="auto", idle_seconds=1.0, seed=config.seed)
    plot_path = folder / "bench.png" if _has_matplotlib() else None
    check_output_paths(folder / "bench.json", plot_path)
    docs = collect(bench_config, log=log)
    try:
        _, table = publish(docs, fmt="json", output=folder / "bench.json", plot_path=plot_path)
    except EdgekitError as exc:
        for line in getattr(exc, "report", ("", ""))[1].rstrip().splitlines():
            log("      " + line)
        raise InputError("edgekit bench", expected="every variant measured", found=str(exc),
                         hint=f"what was measured is in {folder / 'bench.json'}") from exc
    for line in table.rstrip().splitlines():
        log("      " + line)
    doc = docs[0]
    atomic_write_bytes(folder / "bench.md", render_markdown([doc]).encode())
    seconds = time.perf_counter() - t0
    _write_stamp(out, "bench", inputs, outputs, seconds)
    return StageTime("bench", seconds), doc


def _has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------------------
# 5. stream


def build_stream(x: np.ndarray, y: np.ndarray, labels: Sequence[str], *, per_class: int, gap_s: tuple[float, float],
                 rate: int, seed: int) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Concatenate held-out clips into one stream with quiet noise between them.

    Takes up to `per_class` clips of every class (keywords, ``_unknown_`` and
    ``_silence_``), in a shuffled order, with a gap of `gap_s` seconds between clips
    (1 s before the first, 2 s after the last).

    Returns:
        ``(samples, truth)``: float32 audio, and one entry per clip with ``start_s``,
        ``end_s``, ``start_sample``, ``end_sample``, ``label``, ``kind`` (``keyword`` or
        ``distractor``) and ``heldout_index``.
    """
    rng = np.random.default_rng([seed, 6])
    chosen: list[int] = []
    for index in range(len(labels)):
        members = np.flatnonzero(y == index)
        chosen.extend(int(i) for i in rng.permutation(members)[:per_class])
    order = [chosen[i] for i in rng.permutation(len(chosen))]

    def quiet(seconds: float) -> np.ndarray:
        level = 10 ** (rng.uniform(-55, -45) / 20)  # dBFS RMS: a quiet room
        return (rng.standard_normal(int(round(seconds * rate))) * level).astype(np.float32)

    pieces = [quiet(1.0)]
    position = len(pieces[0])
    truth = []
    for n, index in enumerate(order):
        clip = np.asarray(x[index], np.float32).reshape(-1)
        label = labels[int(y[index])]
        truth.append({"start_s": round(position / rate, 6), "end_s": round((position + len(clip)) / rate, 6),
                      "start_sample": position, "end_sample": position + len(clip), "label": label, "kind": "distractor" if label in BACKGROUND else "keyword",
                      "heldout_index": index})
        pieces.append(clip)
        position += len(clip)
        gap = quiet(2.0 if n == len(order) - 1 else float(rng.uniform(*gap_s)))
        pieces.append(gap)
        position += len(gap)
    return np.concatenate(pieces), truth


def score_detections(truth: Sequence[dict[str, Any]], detections: Sequence[tuple[float, str]],
                     tolerance_s: float) -> dict[str, Any]:
    """Match detection events to keyword clips.

    A detection at time t (the end of the window that fired it) is a hit when its label
    is that of a keyword clip not hit yet with ``start_s <= t <= end_s + tolerance_s``;
    any other detection is a false alarm: a repeat (the same keyword again), a wrong
    label (another keyword was spoken there), or one where no keyword was spoken (in a
    gap, on ``_unknown_`` or on ``_silence_``). Keyword clips without a hit are misses.
    """
    keywords = [t for t in truth if t["kind"] == "keyword"]
    hit = [False] * len(keywords)
    events = []
    false_alarms = {"repeat": 0, "wrong_label": 0, "no_keyword": 0}
    for time_s, label in sorted(detections):
        near = [i for i, k in enumerate(keywords) if k["start_s"] <= time_s <= k["end_s"] + tolerance_s]
        match = next((i for i in near if not hit[i] and keywords[i]["label"] == label), None)
        if match is not None:
            hit[match] = True
            outcome = "hit"
        elif any(keywords[i]["label"] == label for i in near):
            outcome = "repeat"
        elif near:
            outcome = "wrong_label"
        else:
            outcome = "no_keyword"
        if outcome != "hit":
            false_alarms[outcome] += 1
        events.append({"time_s": round(time_s, 3), "label": label, "outcome": outcome})
    hits = sum(hit)
    alarms = sum(false_alarms.values())
    return {"keywords": len(keywords), "distractors": len(truth) - len(keywords), "detections": len(events),
            "hits": hits, "misses": len(keywords) - hits, "false_alarms": alarms,
            "false_alarm_kinds": false_alarms, "recall": hits / len(keywords) if keywords else None,
            "precision": hits / len(events) if events else None,
            "missed": [{"start_s": k["start_s"], "label": k["label"]} for k, h in zip(keywords, hit, strict=True)
                       if not h],
            "events": events}


def _stream_items(path: Path, chunk_ms: float) -> Iterator[Any]:
    """``wav:PATH`` read by the runtime's WAV source, each chunk stamped with the stream
    time of its last sample (seconds from the start of the file), so the smoothing and
    suppression windows run on audio time, not on how fast the file is read."""
    from edgekit.runtime.sources import Item, open_source

    source = open_source(f"wav:{path}?chunk_ms={chunk_ms:g}")
    consumed = 0
    try:
        for item in source:
            chunk, rate = item.payload
            consumed += len(chunk)
            yield Item(item.payload, consumed / rate, item.name)
    finally:
        source.close()


def _run_stream(bundle: Path, variant: str, wav: Path, jsonl: Path, hop_ms: float, total_chunks: int,
                progress: Progress) -> dict[str, Any]:
    from edgekit.runtime import load
    from edgekit.runtime.sinks import open_sink

    model = load(bundle, variant=variant, threads=1)
    sink = open_sink(f"jsonl:{jsonl}")
    detections: list[tuple[float, str]] = []
    timeline: list[tuple[float, float, str | None]] = []
    latencies: list[float] = []
    t0 = time.perf_counter()
    try:
        for result in model.stream(progress(_stream_items(wav, hop_ms), f"stream {variant}", total_chunks),
                                   hop_ms=hop_ms):
            sink.write(result)
            latencies.append(result.latency.total_ms)
            timeline.append((result.timestamp, float(result.keyword_score or 0.0), result.keyword))
            if result.detected:
                detections.append((result.timestamp, str(result.keyword)))
    finally:
        sink.close()
    seconds = time.perf_counter() - t0
    lat = np.asarray(latencies or [0.0])
    return {"variant": variant, "backend": model.package, "results": len(latencies), "seconds": round(seconds, 3),
            "latency_ms": {"p50": round(float(np.percentile(lat, 50)), 3),
                           "p99": round(float(np.percentile(lat, 99)), 3)},
            "detections": detections, "timeline": timeline}


def _stream(config: DemoConfig, out: Path, bundle: Path, log: Log,
            progress: Progress) -> tuple[StageTime, dict[str, Any]]:
    from edgekit.bundle import open_bundle
    from edgekit.features.audio import write_wav

    folder = out / "stream"
    heldout = out / "train" / "heldout.npz"
    manifest = open_bundle(bundle).manifest
    options = {"per_class": config.stream_per_class, "gap_s": list(config.gap_s), "tolerance_s": config.tolerance_s,
               "hop_ms": config.hop_ms, "seed": config.seed}
    inputs = _digest({"bundle": sha256_file(bundle), "heldout": sha256_file(heldout), "options": options})
    variants = [v.name for v in manifest.variants]
    outputs = [folder / "stream.wav", folder / "truth.json", folder / "scores.json",
               *(folder / f"{name}.jsonl" for name in variants), folder / "stream.png"]
    stamp = _reusable(out, "stream", inputs)
    if stamp is not None:
        log(f"[6/7] stream: reused {folder / 'scores.json'} (bundle, held-out clips and options unchanged; made in "
            f"{stamp['seconds']:.1f} s)")
        return StageTime("stream", 0.0, True, stamp["seconds"]), json.loads((folder / "scores.json").read_text("utf-8"))

    _forget(out, "stream")
    t0 = time.perf_counter()
    spec = manifest.preprocess
    rate = int(spec.sample_rate)  # type: ignore[union-attr]
    with np.load(heldout) as arrays:
        x, y = arrays["x"], arrays["y"]
    labels = list(manifest.labels)
    samples, truth = build_stream(x, y, labels, per_class=config.stream_per_class, gap_s=config.gap_s, rate=rate,
                                  seed=config.seed)
    folder.mkdir(exist_ok=True)
    wav = folder / "stream.wav"
    staged = folder / f".stream.{os.getpid()}.wav"
    try:
        write_wav(staged, samples, rate)
        os.replace(staged, wav)
    finally:
        staged.unlink(missing_ok=True)
    duration = len(samples) / rate
    keywords = sum(t["kind"] == "keyword" for t in truth)
    _write_json(folder / "truth.json", {"wav": wav.name, "sample_rate": rate, "seconds": round(duration, 3),
                                        "source": str(heldout), "note": "held-out (test split) clips only",
                                        "segments": truth})
    log(f"[6/7] stream: {duration:.1f} s of held-out clips ({keywords} keywords, {len(truth) - keywords} "
        f"unknown/silence) in {wav}; edgekit run with each variant, hop {config.hop_ms:g} ms, the bundle's "
        f"smoothing {manifest.postprocess.smoothing_ms:g} ms and suppression {manifest.postprocess.suppression_ms:g} ms")
    total_chunks = int(np.ceil(len(samples) / (rate * config.hop_ms / 1000.0)))
    runs = {}
    for name in variants:
        run = _run_stream(bundle, name, wav, folder / f"{name}.jsonl", config.hop_ms, total_chunks, progress)
        scores = score_detections(truth, run.pop("detections"), config.tolerance_s)
        timeline = run.pop("timeline")
        if name == variants[0]:
            _stream_plot(folder / "stream.png", truth, timeline, scores, manifest.postprocess.score_threshold, name)
        runs[name] = {**run, **scores}
        log(f"      {name}: {scores['hits']} hits, {scores['misses']} misses, {scores['false_alarms']} false alarms "
            f"of {scores['keywords']} keywords ({run['results']} windows in {run['seconds']:.1f} s, "
            f"p50 {run['latency_ms']['p50']:.2f} ms)")
    document = {"wav": str(wav), "seconds": round(duration, 3), "keywords": keywords,
                "distractors": len(truth) - keywords, "options": options,
                "threshold": manifest.postprocess.score_threshold,
                "smoothing_ms": manifest.postprocess.smoothing_ms,
                "suppression_ms": manifest.postprocess.suppression_ms, "variants": runs}
    _write_json(folder / "scores.json", document)
    seconds = time.perf_counter() - t0
    _write_stamp(out, "stream", inputs, outputs, seconds)
    return StageTime("stream", seconds), document


def _stream_plot(path: Path, truth: Sequence[dict[str, Any]], timeline: Sequence[tuple[float, float, str | None]],
                 scores: dict[str, Any], threshold: float | None, variant: str) -> None:
    if not _has_matplotlib():
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    end = max(t["end_s"] for t in truth) + 2.0
    rows = max(1, int(np.ceil(end / 60.0)))
    fig, axes = plt.subplots(rows, 1, figsize=(14, 2.2 * rows), squeeze=False)
    times = np.array([t for t, _s, _l in timeline])
    values = np.array([s for _t, s, _l in timeline])
    colors = {"hit": "tab:green", "repeat": "tab:orange", "wrong_label": "tab:red", "no_keyword": "tab:red"}
    for row in range(rows):
        ax = axes[row][0]
        lo, hi = row * 60.0, min(end, (row + 1) * 60.0)
        for t in truth:
            if t["end_s"] < lo or t["start_s"] > hi:
                continue
            keyword = t["kind"] == "keyword"
            ax.axvspan(t["start_s"], t["end_s"], color="tab:blue" if keyword else "0.8", alpha=0.15 if keyword else 0.4)
            ax.text((t["start_s"] + t["end_s"]) / 2, 1.03, t["label"], ha="center", va="bottom", fontsize=7,
                    clip_on=True, color="tab:blue" if keyword else "0.4")
        mask = (times >= lo) & (times <= hi)
        ax.plot(times[mask], values[mask], lw=0.8, color="k")
        if threshold is not None:
            ax.axhline(threshold, color="0.5", ls="--", lw=0.8)
        for event in scores["events"]:
            if lo <= event["time_s"] <= hi:
                ax.plot(event["time_s"], 0.97, marker="v", color=colors[event["outcome"]], ms=6)
        ax.set_xlim(lo, lo + 60.0)
        ax.set_ylim(0, 1.15)
        ax.set_ylabel("score")
    axes[-1][0].set_xlabel("stream time, s")
    axes[0][0].set_title(f"{variant}: smoothed best keyword score; blue spans keywords, grey unknown/silence; "
                         f"triangles detections (green hit, orange repeat, red false alarm)", fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


# ---------------------------------------------------------------------------
# 6. figures, summary and report


def _figures(config: DemoConfig, out: Path, bundle: Path, data: dict[str, Any], bench: dict[str, Any],
             stream: dict[str, Any]) -> dict[str, Any]:
    from edgekit.bundle import open_bundle

    train_report = json.loads((out / "train" / "report.json").read_text("utf-8"))
    convert = json.loads((out / "train" / "convert.json").read_text("utf-8"))
    manifest = open_bundle(bundle).manifest
    test = train_report["test"]
    rows = {r.get("variant"): r for r in bench.get("results", []) if r.get("threads") == 1}
    variants = []
    for v in convert["variants"]:
        if v.get("error"):
            continue
        row = rows.get(v["name"], {})
        s = stream["variants"].get(v["name"], {})
        variants.append({"name": v["name"], "precision": v["precision"], "size_bytes": v["size_bytes"],
                         "accuracy": v["metrics"].get("accuracy"), "drop_pts": v["metrics"].get("drop_pts"),
                         "gate": v["gate"],
                         "invoke_median_ms": (row.get("invoke") or {}).get("median_ms"),
                         "e2e_median_ms": (row.get("e2e") or {}).get("median_ms"),
                         "stream": {k: s.get(k) for k in ("hits", "misses", "false_alarms", "recall", "precision",
                                                          "latency_ms")}})
    training = train_report["training"]
    notes = []
    if data["stand_in"]:
        notes.append(f"espeak-ng was missing: the keywords are a tone-based stand-in, not speech "
                     f"({data.get('install') or 'sudo apt-get install espeak-ng'}; then delete {data['path']})")
    return {
        "output": str(out), "bundle": str(bundle), "bundle_size_bytes": bundle.stat().st_size,
        "recipe": RECIPE, "classes": list(manifest.labels),
        "data": {k: data[k] for k in ("path", "samples_total", "samples_per_class", "generator", "voices",
                                      "stand_in")},
        "split": {"train": train_report["data"]["train"]["samples"],
                  "validation": train_report["data"]["validation_split"]["samples"], "test": test["samples"]},
        "model": {"parameters": train_report["model"]["parameters"], "keras_path": str(out / "train" / f"{RECIPE}.keras"),
                  "keras_size_bytes": (out / "train" / f"{RECIPE}.keras").stat().st_size,
                  "pruned_size_bytes": (_exported_model(config, out / "train").stat().st_size
                                        if config.prune_channels else None)},
        "training": {"epochs": training["epochs_run"], "seconds_per_epoch": training["seconds_per_epoch"],
                     "strategy": train_report["strategy"]["description"]},
        "prune": train_report.get("prune"),
        "float_accuracy": test["accuracy"], "float_macro_f1": test.get("macro_f1"),
        "validation_accuracy": train_report["validation"]["accuracy"],
        "convert": {"samples": convert["data"]["validation_samples"], "float_accuracy": convert["reference"]["value"],
                    "gate": convert["gate"]},
        "variants": variants,
        "stream": {k: stream[k] for k in ("seconds", "keywords", "distractors", "threshold", "smoothing_ms",
                                          "suppression_ms")} | {"tolerance_s": config.tolerance_s,
                                                                "hop_ms": config.hop_ms},
        "notes": notes,
    }


def _kib(n: int | None) -> str:
    return "-" if n is None else f"{n / 1024:.1f} KiB"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} ms" if value < 1 else f"{value:.2f} ms"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool = False,
           align: str = "") -> list[str]:
    """A plain-text or Markdown table; `align` has ``l`` or ``r`` per column (default:
    the first left, the others right)."""
    align = align or "l" + "r" * (len(headers) - 1)
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" if a == "l" else "---:" for a in align) + "|"]
        return lines + ["| " + " | ".join(row) + " |" for row in rows]
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=True)]
    fmt = "  ".join(f"{{:{'<' if a == 'l' else '>'}{w}}}" for a, w in zip(align, widths, strict=True))
    return [fmt.format(*headers).rstrip()] + [fmt.format(*row).rstrip() for row in rows]


def _model_rows(f: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    headers = ["model", "size", "accuracy", "drop pts", "gate", "invoke p50", "e2e p50", "stream hits", "misses",
               "false alarms"]
    rows = [["keras float32", _kib(f["model"]["keras_size_bytes"]), _pct(f["float_accuracy"]), "-", "-", "-", "-",
             "-", "-", "-"]]
    prune = f.get("prune")
    if prune:
        rows.append(["keras pruned", _kib(f["model"].get("pruned_size_bytes")), _pct(prune["held_out"]["after"]["value"]),
                     "-", "-", "-", "-", "-", "-", "-"])
    for v in f["variants"]:
        s = v["stream"]
        rows.append([v["name"], _kib(v["size_bytes"]), _pct(v["accuracy"]), f"{v['drop_pts']:.2f}", v["gate"],
                     _ms(v["invoke_median_ms"]), _ms(v["e2e_median_ms"]),
                     f"{s['hits']}/{f['stream']['keywords']}", str(s["misses"]), str(s["false_alarms"])])
    return headers, rows


def _stage_rows(stages: Sequence[StageTime], total: float) -> list[list[str]]:
    rows = []
    for stage in stages:
        state = (f"reused (made in {stage.made_seconds:.1f} s)" if stage.reused and stage.made_seconds is not None
                 else "reused" if stage.reused else "")
        rows.append([stage.name, f"{stage.seconds:.1f} s", state])
    rows.append(["total", f"{total:.1f} s", ""])
    return rows


def render_summary(f: dict[str, Any], stages: Sequence[StageTime], total: float, report: Path) -> str:
    """The table `edgekit demo` prints."""
    d, st = f["data"], f["stream"]
    lines = [f"edgekit demo: keyword spotting ({f['recipe']}, {len(f['classes'])} classes) in {f['output']}",
             f"data      {d['samples_total']} clips, {d['samples_per_class']} per class, {d['generator']}"
             + (f" ({d['voices']} voices)" if d["voices"] else "")
             + f"; split {f['split']['train']} train / {f['split']['validation']} validation / "
               f"{f['split']['test']} held out",
             f"model     {f['model']['parameters']:,} parameters, {f['training']['epochs']} epochs "
             f"({f['training']['seconds_per_epoch']:.1f} s/epoch, {f['training']['strategy']}); "
             f"bundle {f['bundle']} ({_kib(f['bundle_size_bytes'])})"]
    if f.get("prune"):
        lines.append("pruning   " + _prune_line(f["prune"]))
    lines.append("")
    headers, rows = _model_rows(f)
    lines += _table(headers, rows)
    gate = f["convert"]["gate"]
    lines += ["",
              f"accuracy: keras on all {f['split']['test']} held-out clips; variants on the {f['convert']['samples']} "
              f"held-out clips convert validates on (keras there: {_pct(f['convert']['float_accuracy'])}), drop in "
              f"points against it; gate --max-accuracy-drop {gate['max_accuracy_drop_pts']:g}: "
              + ("passed" if gate["passed"] else "FAILED"),
              "latency: bench median, 1 thread (interpreter and the front end's numpy/BLAS); invoke = interpreter only, "
              "e2e = with the MFCC front end",
              f"stream: {st['seconds']:.1f} s of held-out clips, {st['keywords']} keywords + {st['distractors']} "
              f"unknown/silence, hop {st['hop_ms']:g} ms, smoothing {st['smoothing_ms']:g} ms, suppression "
              f"{st['suppression_ms']:g} ms, threshold {st['threshold']}; a hit is the right keyword from its clip's "
              f"start to {st['tolerance_s']:g} s after its end",
              ""]
    lines += _table(["stage", "time", ""], _stage_rows(stages, total), align="lrl")
    for note in f["notes"]:
        lines.append(f"note: {note}")
    lines.append(f"report: {report}")
    return "\n".join(lines)


def _prune_line(prune: dict[str, Any]) -> str:
    """One line: what pruning removed and what it cost and bought."""
    held, p, m = prune["held_out"], prune["parameters"], prune["macs"]
    text = (f"{prune['options']['channels']:.0%} of the channels removed, {prune['options']['epochs']} epoch(s) of "
            f"fine-tuning: {p['before']:,} -> {p['after']:,} parameters, {m['before'] / max(m['after'], 1):.2f}x fewer "
            f"MACs, held-out accuracy {_pct(held['before']['value'])} -> {_pct(held['after']['value'])}")
    fp32 = (prune.get("bench") or {}).get("tflite-fp32")
    if fp32:
        text += f"; tflite-fp32 {fp32['unpruned_ms']:.3f} -> {fp32['pruned_ms']:.3f} ms ({fp32['ratio']:.2f}x faster)"
    return text


def _link(path: Path, base: Path) -> str:
    return os.path.relpath(path, base)


def render_report(f: dict[str, Any], stages: Sequence[StageTime], total: float, out: Path,
                  bench: dict[str, Any], stream: dict[str, Any]) -> str:
    """``report.md``: the figures, the stage times and the plots."""
    from edgekit.bench.report import render_markdown

    train = out / "train"
    headers, rows = _model_rows(f)
    d, st, gate = f["data"], f["stream"], f["convert"]["gate"]
    lines = [f"# edgekit demo: keyword spotting ({f['recipe']})", "",
             "Everything here was made on this machine from nothing: synthetic speech, training, conversion "
             "behind the fidelity gate, a benchmark, and the runtime on a stream of held-out keywords.", ""]
    lines += [f"- **data**: {d['samples_total']} clips ({d['samples_per_class']} per class, {len(f['classes'])} "
              f"classes: {', '.join(f['classes'])}) from {d['generator']}" + (f", {d['voices']} voices" if d["voices"]
                                                                             else "")
              + f"; split {f['split']['train']} / {f['split']['validation']} / {f['split']['test']} "
                f"(train / validation / held out). Folder: `{_link(Path(d['path']), out)}`",
              f"- **model**: DS-CNN on MFCC, {f['model']['parameters']:,} parameters, {f['training']['epochs']} epochs "
              f"({f['training']['seconds_per_epoch']:.1f} s/epoch, {f['training']['strategy']}); "
              f"[training report]({_link(train / 'report.md', out)})",
              f"- **bundle**: `{_link(Path(f['bundle']), out)}` ({_kib(f['bundle_size_bytes'])}), gate "
              f"--max-accuracy-drop {gate['max_accuracy_drop_pts']:g}: **{'passed' if gate['passed'] else 'FAILED'}**",
              ""]
    lines += [f"*{note}*" for note in f["notes"]]
    lines += ["## Summary", ""]
    lines += _table(headers, rows, markdown=True)
    lines += ["", f"Accuracy: Keras on all {f['split']['test']} held-out clips; each variant on the "
              f"{f['convert']['samples']} held-out clips `edgekit convert` validates on (Keras on the same clips: "
              f"{_pct(f['convert']['float_accuracy'])}), drop in points against it. Latency: bench median at 1 thread "
              "(the interpreter's and the front end's numpy/BLAS threads; invoke: the interpreter alone; e2e: with the "
              "MFCC front end). Stream: see below.", ""]
    lines += ["## Training", "", f"![learning curves]({_link(train / 'curves.png', out)})", "",
              f"![confusion matrix]({_link(train / 'confusion.png', out)})", ""]
    if f.get("prune"):
        from edgekit.prune.run import markdown

        pruned = _link(Path(f["prune"]["outputs"]["model"]), out)
        lines += [*markdown(f["prune"]), "", f"The bundle is made from the pruned model `{pruned}` (report: "
                  f"`{_link(Path(f['prune']['outputs']['report']), out)}`); the unpruned model's latency above comes "
                  "from `edgekit bench` of both models in one interleaved run.", ""]
    lines += ["## Benchmark", "", f"Full report: [`bench/bench.json`]({_link(out / 'bench' / 'bench.json', out)}).",
              "", render_markdown([bench]).rstrip(), ""]
    if (out / "bench" / "bench.png").is_file():
        lines += [f"![bench latency]({_link(out / 'bench' / 'bench.png', out)})", ""]
    lines += ["## Stream", "",
              f"`{_link(Path(stream['wav']), out)}`: {st['seconds']:.1f} s made of held-out (test split) clips only: "
              f"{st['keywords']} keywords and {st['distractors']} `_unknown_`/`_silence_` clips in shuffled order, "
              "separated by quiet noise; ground truth in `stream/truth.json`. Each variant ran through the runtime "
              f"(`edgekit run` with the bundle's postprocessing: smoothing {st['smoothing_ms']:g} ms, suppression "
              f"{st['suppression_ms']:g} ms, threshold {st['threshold']}) at a hop of {st['hop_ms']:g} ms; results in "
              "`stream/VARIANT.jsonl` (timestamps are seconds from the start of the stream). A detection is a hit when "
              f"its label is that of a keyword clip from the clip's start to {st['tolerance_s']:g} s after its end; "
              "any other detection is a false alarm.", ""]
    srows = []
    for name in [v["name"] for v in f["variants"] if v["name"] in stream["variants"]]:
        s = stream["variants"][name]
        kinds = s["false_alarm_kinds"]
        srows.append([name, str(s["keywords"]), str(s["hits"]), str(s["misses"]), str(s["false_alarms"]),
                      f"{kinds['no_keyword']} / {kinds['wrong_label']} / {kinds['repeat']}", _pct(s["recall"]),
                      _pct(s["precision"]), _ms(s["latency_ms"]["p50"])])
    lines += _table(["variant", "keywords", "hits", "misses", "false alarms", "none / wrong / repeat", "recall",
                     "precision", "p50 per window"], srows, markdown=True)
    if (out / "stream" / "stream.png").is_file():
        lines += ["", f"![stream]({_link(out / 'stream' / 'stream.png', out)})"]
    lines += ["", "## Stages", ""]
    lines += _table(["stage", "time", ""], _stage_rows(stages, total), markdown=True, align="lrl")
    lines += ["", f"Made by `{f.get('command', 'edgekit demo')}` with edgekit {__version__}."]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# the demo


def run_demo(config: DemoConfig, log: Log = print, progress: Progress = no_progress) -> DemoResult:
    """Run the demo, reusing the stages whose inputs are unchanged.

    Raises:
        MissingDependencyError: TensorFlow, ai-edge-litert or onnxruntime is missing.
        InputError: the output directory cannot be created or written.
        GateError: a quantized variant lost more than the gate allows (exit 4); the
            trained model and its report are kept.
        InputError: a variant failed in the benchmark (the bench report is kept).
    """
    out = Path(config.output_dir)
    _prepare(out)
    started = time.perf_counter()
    bundle = out / f"{RECIPE}.edgekit"
    stages: list[StageTime] = []

    t0 = time.perf_counter()
    log(f"[1/7] data: the kws dataset in {out / 'data'}")
    data = _data(config, out / "data", log, progress)
    stages.append(StageTime("data", time.perf_counter() - t0, data["reused"],
                            data["made_seconds"] if data["reused"] else None))
    if data["stand_in"]:
        log("      note: espeak-ng is missing: the keywords are a tone-based stand-in, not speech "
            "(sudo apt-get install espeak-ng)")

    stages.extend(_train_and_convert(config, out, data, bundle, log, progress))
    bench_time, bench = _bench(config, out, bundle, log)
    stages.append(bench_time)
    stream_time, stream = _stream(config, out, bundle, log, progress)
    stages.append(stream_time)

    t0 = time.perf_counter()
    log(f"[7/7] report: {out / 'report.md'}")
    figures = _figures(config, out, bundle, data, bench, stream)
    figures["command"] = config.command
    report_path = out / "report.md"
    stages.append(StageTime("report", time.perf_counter() - t0))
    total = time.perf_counter() - started
    atomic_write_bytes(report_path, render_report(figures, stages, total, out, bench, stream).encode())
    summary = render_summary(figures, stages, total, report_path)
    atomic_write_bytes(out / "summary.txt", (summary + "\n").encode())
    _write_json(out / "summary.json", {**figures, "stages": [s.to_dict() for s in stages], "seconds": round(total, 3)})
    return DemoResult(output=out, bundle_path=bundle, report_path=report_path, figures=figures, stages=stages,
                      seconds=total)
