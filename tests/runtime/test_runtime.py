"""The on-device runtime: load, predict, stream, sources and sinks, `edgekit run`."""

from __future__ import annotations

import importlib.util
import itertools
import json
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from edgekit.errors import InputError, IntegrityError, ShapeError
from edgekit.runtime import load
from edgekit.runtime.postprocess import PosteriorSmoother
from edgekit.runtime.sources import Item, open_source
from edgekit.runtime.tensors import quantize
from edgekit.spec import PostprocessKind, PostprocessSpec
from tests.support.cli import assert_one_line_error, run_cli

pytestmark = pytest.mark.tf  # the bundles are made by the converter


def first_image(folder: Path) -> Path:
    return sorted(folder.rglob("*.png"))[0]


def test_load_picks_the_smallest_precision_that_runs(runtime_bundles):
    model = load(runtime_bundles.shapes)
    assert model.variant.name == "tflite-int8"
    assert model.package == "ai-edge-litert"
    assert "smallest precision" in model.reason


def test_variant_and_backend_can_be_forced(runtime_bundles):
    assert load(runtime_bundles.shapes, variant="tflite-fp32").variant.name == "tflite-fp32"
    onnx = load(runtime_bundles.shapes, backend="onnxruntime")
    assert onnx.variant.name == "onnx-int8" and onnx.package == "onnxruntime"
    assert load(runtime_bundles.shapes, prefer=("onnx-fp32", "tflite-fp32")).variant.name == "onnx-fp32"
    with pytest.raises(InputError, match="'tflite-int8'"):
        load(runtime_bundles.shapes, variant="tflite-int4")
    with pytest.raises(InputError, match="expected a onnx variant"):
        load(runtime_bundles.shapes, variant="tflite-fp32", backend="onnxruntime")
    with pytest.raises(InputError, match="unrecognized backend"):
        load(runtime_bundles.shapes, backend="tensorrt")


def test_predict_accepts_paths_bytes_and_arrays(runtime_bundles):
    import cv2

    model = load(runtime_bundles.shapes, variant="tflite-fp32")
    path = first_image(runtime_bundles.shapes_images)
    by_path = model.predict(path)
    by_bytes = model.predict(path.read_bytes())
    rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    by_array = model.predict(rgb)
    assert by_path.label == by_bytes.label == by_array.label == path.parent.name
    assert by_path.score == pytest.approx(by_array.score)
    assert len(by_path.top_k) == 4 and by_path.top_k[0].label == by_path.label
    data = json.loads(by_path.to_json())
    assert data["kind"] == "classification" and data["variant"] == "tflite-fp32"
    assert data["top_k"][0] == {"label": by_path.label, "score": by_path.top_k[0].score}
    assert set(data["latency"]) == {"preprocess_ms", "inference_ms", "postprocess_ms", "total_ms"}


def test_int8_variant_agrees_with_float_on_real_images(runtime_bundles):
    fp32 = load(runtime_bundles.shapes, variant="tflite-fp32")
    int8 = load(runtime_bundles.shapes, variant="tflite-int8")
    onnx = load(runtime_bundles.shapes, variant="onnx-int8")
    files = sorted(runtime_bundles.shapes_images.rglob("*.png"))[:60]
    labels = [fp32.predict(f).label for f in files]
    assert np.mean([int8.predict(f).label == lab for f, lab in zip(files, labels, strict=True)]) >= 0.9
    assert np.mean([onnx.predict(f).label == lab for f, lab in zip(files, labels, strict=True)]) >= 0.9
    assert np.mean([lab == f.parent.name for f, lab in zip(files, labels, strict=True)]) >= 0.8


def test_predict_tensor_equals_predict(runtime_bundles):
    model = load(runtime_bundles.shapes, variant="tflite-int8")
    path = first_image(runtime_bundles.shapes_images)
    features = model.preprocessor.features(path)
    assert model.predict_tensor(features[0]).score == model.predict(path).score
    assert model.predict_tensor(features).label == model.predict(path).label
    # the input's own codes, quantized elsewhere, go in as they are: the same result
    codes = quantize(features[0], model.input)
    assert codes.dtype == np.int8
    by_codes = model.predict_tensor(codes, quantized=True)
    assert (by_codes.label, by_codes.score, by_codes.top_k) == (model.predict(path).label, model.predict(path).score,
                                                                model.predict(path).top_k)
    with pytest.raises(ShapeError, match=r"quantized tensor: expected dtype int8.*found dtype float32"):
        model.predict_tensor(features[0], quantized=True)


def test_wrong_shape_or_dtype_is_a_value_error_naming_both(runtime_bundles):
    model = load(runtime_bundles.shapes, variant="tflite-fp32")
    with pytest.raises(ValueError, match=r"expected shape \(16, 16, 3\).*found shape \(8, 8, 3\)"):
        model.predict_tensor(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ShapeError, match="numeric"):
        model.predict_tensor(np.array(["a"] * 768).reshape(16, 16, 3))
    with pytest.raises(ValueError, match="image"):
        model.predict(np.array([["x"]]))
    sensor = load(runtime_bundles.sensor)
    with pytest.raises(ValueError, match=r"expected shape \(N, 20, 3\)"):
        sensor.predict(np.zeros((19, 3)))
    with pytest.raises(ValueError, match="missing \\['az'\\]"):
        sensor.predict({"ax": np.zeros(20), "ay": np.zeros(20)})


def test_one_model_shared_by_threads_gives_sequential_results(runtime_bundles):
    model = load(runtime_bundles.shapes, variant="tflite-fp32")
    files = sorted(runtime_bundles.shapes_images.rglob("*.png"))[:24]
    expected = {f: model.predict(f).score for f in files}
    got: dict[Path, float] = {}
    errors: list[BaseException] = []

    def work(chunk: list[Path]) -> None:
        try:
            for _ in range(5):
                for f in chunk:
                    got[f] = model.predict(f).score
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(files[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert got == expected


def test_tampered_bundle_is_refused_before_parsing(runtime_bundles, tmp_path):
    bad = tmp_path / "bad.edgekit"
    with zipfile.ZipFile(runtime_bundles.shapes) as zin, zipfile.ZipFile(bad, "w") as zout:
        for name in zin.namelist():
            data = zin.read(name)
            zout.writestr(name, data[:-1] + bytes([data[-1] ^ 1]) if name.endswith("int8.tflite") else data)
    with pytest.raises(IntegrityError, match="sha256"):
        load(bad)
    result = run_cli("run", str(bad), "--source", f"images:{runtime_bundles.shapes_images}")
    assert_one_line_error(result, 3, "refused")


def test_sensor_predict_by_channel_name_equals_by_order(runtime_bundles):
    model = load(runtime_bundles.sensor)
    window = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    by_order = model.predict(window)
    by_name = model.predict({"az": window[:, 2], "ax": window[:, 0], "ay": window[:, 1]})
    assert by_order.score == by_name.score and by_order.label in ("idle", "walk")


def test_predict_takes_a_path_to_an_audio_file(runtime_bundles, tmp_path, monkeypatch):
    """A path (or the bytes) of a WAV file is read like the wav: source reads it: channels
    averaged, resampled to the model's rate; `read_audio` gives what predict takes. Other
    formats need soundfile; without it, one line. Anything else predict cannot take is a
    ShapeError that says what it takes."""
    import wave

    from edgekit.runtime import read_audio

    model = load(runtime_bundles.kws)
    t = np.arange(8000) / 8000
    stereo = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.1 * np.sin(2 * np.pi * 880 * t)], axis=1)
    path = tmp_path / "clip.wav"
    with wave.open(str(path), "wb") as w:  # 8 kHz, 2 channels, 16-bit
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes((stereo * 32767).round().astype("<i2").tobytes())
    samples, rate = read_audio(path)
    assert rate == 8000 and samples.shape == (8000,) and samples.dtype == np.float32
    assert np.allclose(samples, stereo.mean(axis=1), atol=1e-4)
    resampled, new_rate = read_audio(str(path), sample_rate=16000)
    assert new_rate == 16000 and resampled.shape == (16000,)
    by_path = model.predict(path)
    expected = [score for _, score in by_path.top_k]
    for other in (str(path), path.read_bytes(), (samples, 8000), (resampled, 16000), resampled):
        result = model.predict(other)
        assert [score for _, score in result.top_k] == pytest.approx(expected) and result.label == by_path.label

    if importlib.util.find_spec("soundfile") is not None:
        import soundfile

        flac = tmp_path / "clip.flac"
        soundfile.write(flac, stereo, 8000)
        assert [score for _, score in model.predict(flac).top_k] == pytest.approx(expected, abs=0.02)
    monkeypatch.setitem(sys.modules, "soundfile", None)  # the device extra alone: no decoder
    ogg = tmp_path / "clip.ogg"
    ogg.write_bytes(b"OggS" + bytes(100))
    with pytest.raises(InputError, match=r"clip\.ogg: expected PCM WAV.*found Ogg data.*convert it to WAV"):
        model.predict(ogg)
    with pytest.raises(InputError, match="expected a readable file"):
        model.predict(tmp_path / "missing.wav")
    for bad, found in ((["a", "b"], "dtype <U1; for a file, pass its path"), (np.zeros((100, 2)), "x.mean"),
                       ((np.zeros(10), "16k"), "rate of type str"), ({"left": [0.0]}, "dict")):
        with pytest.raises(ShapeError, match="expected a path to an audio file") as caught:
            model.predict(bad)
        assert found in str(caught.value)


# ---------------------------------------------------------------------------
# streams


def test_wav_source_stamps_blocks_with_audio_time(tmp_path):
    """Read far faster than real time, a WAV file's blocks still carry audio time, so
    smoothing and suppression windows (in ms) mean what they mean on a microphone."""
    from edgekit.features.audio import write_wav

    wav = tmp_path / "ten.wav"
    write_wav(wav, np.zeros(10 * 16000, np.float32), 16000)
    items = list(open_source(f"wav:{wav}?chunk_ms=100"))
    stamps = np.array([item.timestamp for item in items])
    assert len(items) == 100
    assert np.allclose(np.diff(stamps), 0.1)
    assert stamps[-1] - stamps[0] == pytest.approx(9.9)
    assert abs(stamps[0] - 0.1 - time.time()) < 60  # the run's start plus the audio time


def test_file_sources_loop_on_request(tmp_path):
    """``?loop=1`` replays images, sensor rows (header read again) and audio (time running
    on); a file with nothing readable ends instead of spinning; a bad value is one error."""
    import cv2

    from edgekit.features.audio import write_wav

    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("a", "b"):
        cv2.imwrite(str(folder / f"{name}.png"), np.full((4, 4, 3), 10, np.uint8))
    names = [item.name for item in itertools.islice(open_source(f"images:{folder}?loop=1"), 5)]
    assert names == ["a.png", "b.png", "a.png", "b.png", "a.png"]

    csv = tmp_path / "imu.csv"
    csv.write_text("ax,ay,az\n1,2,3\n4,5,6\n")
    rows = [item.payload for item in itertools.islice(open_source(f"csv:{csv}?loop=1"), 5)]
    assert rows == [{"ax": 1.0, "ay": 2.0, "az": 3.0}, {"ax": 4.0, "ay": 5.0, "az": 6.0}] * 2 + [rows[0]]
    junk = tmp_path / "junk.csv"
    junk.write_text("ax,ay\nnot,numbers\n")
    assert list(open_source(f"csv:{junk}?loop=1")) == []

    wav = tmp_path / "one.wav"
    write_wav(wav, np.zeros(16000, np.float32), 16000)
    stamps = np.array([item.timestamp for item in itertools.islice(open_source(f"wav:{wav}?loop=1"), 25)])
    assert np.allclose(np.diff(stamps), 0.1)  # 2.5 s of audio time from a 1 s file

    with pytest.raises(InputError, match="loop=0 or loop=1"):
        open_source(f"csv:{csv}?loop=yes")


def test_audio_stream_slides_a_window_every_hop(runtime_bundles, tmp_path):
    from edgekit.features.audio import write_wav

    wav = tmp_path / "speech.wav"
    write_wav(wav, 0.1 * np.random.default_rng(0).standard_normal(3 * 16000), 16000)
    model = load(runtime_bundles.kws)
    results = list(model.stream(open_source(f"wav:{wav}?chunk_ms=100"), hop_ms=250))
    # first window full after 1 s, then one result per 250 ms: (3000 - 1000) / 250 + 1
    assert len(results) == 9
    assert [r.sequence for r in results] == list(range(9))
    assert [r.source for r in results] == [f"speech.wav@{1 + 0.25 * k:.3f}s" for k in range(9)]  # window ends
    assert all(r.detected is not None for r in results)  # smoothing on: detection events
    # label/score: the top class, background or not; the keyword: the best non-background class
    assert all(r.label == r.top_k[0].label and r.score == r.top_k[0].score for r in results)
    assert all(r.keyword in ("yes", "no") and r.keyword_score <= r.score for r in results)
    line = json.loads(results[0].to_json())
    assert line["keyword"] == results[0].keyword and line["keyword_score"] == results[0].keyword_score


@pytest.mark.parametrize("rate", [16000, 8000])
def test_audio_results_are_stamped_with_their_window_end(runtime_bundles, rate):
    """Whatever the chunking and the hop, each result carries the time of its window's
    last sample (items are stamped with their last sample's time, as the wav and mic
    sources do), so stamps step by exactly the hop; the window of the first second ends at 1 s."""
    model = load(runtime_bundles.kws)
    audio = 0.1 * np.random.default_rng(1).standard_normal(3 * rate).astype(np.float32)
    start = 1_800_000_000.0  # seconds since the epoch when the stream's first sample was heard
    for chunk_ms, hop_ms in itertools.product((30, 100, 250, 700), (100, 250, 300)):
        chunk = rate * chunk_ms // 1000
        items = [Item((audio[i : i + chunk], rate), start + (i + len(audio[i : i + chunk])) / rate, f"a@{i / rate}s")
                 for i in range(0, len(audio), chunk)]
        results = list(model.stream(items, hop_ms=hop_ms))
        ends = 1.0 + hop_ms / 1000 * np.arange(len(results))
        assert len(results) == int((3000 - 1000) / hop_ms) + 1, (chunk_ms, hop_ms)
        assert np.allclose([r.timestamp - start for r in results], ends, rtol=0, atol=1e-6), (chunk_ms, hop_ms)
        assert [r.source for r in results] == [f"a@{end:.3f}s" for end in ends]


def test_run_keeps_latency_percentiles_in_fixed_memory():
    """A run that lasts for months keeps a uniform sample of 10,000 latencies, not all of them."""
    from edgekit.runtime.run import Reservoir

    reservoir = Reservoir()
    values = np.random.default_rng(1).exponential(1.0, 200_000)
    for value in values:
        reservoir.add(float(value))
    assert reservoir.seen == 200_000 and len(reservoir.values) == 10_000
    for q in (50, 99):  # a uniform sample: percentiles within a few percent
        assert np.percentile(reservoir.values, q) == pytest.approx(np.percentile(values, q), rel=0.05)
    late = Reservoir()
    for value in [0.0] * 100_000 + [1.0] * 100_000:  # later results are sampled as much as early ones
        late.add(value)
    assert np.mean(late.values) == pytest.approx(0.5, abs=0.03)


def test_posterior_smoothing_detects_once_then_suppresses():
    spec = PostprocessSpec(kind=PostprocessKind.CLASSIFICATION, smoothing_ms=300, suppression_ms=1000,
                           background_labels=("_silence_",), score_threshold=0.6)
    smoother = PosteriorSmoother(spec, ("_silence_", "yes", "no"))
    events = []
    for step in range(30):  # 100 ms steps; "yes" is said from 0.5 s to 2.5 s
        t = step * 100.0
        scores = np.array([0.1, 0.85, 0.05]) if 500 <= t < 2500 else np.array([0.9, 0.05, 0.05])
        fields = smoother.update(t, scores)
        if fields["detected"]:
            events.append((t, fields["keyword"]))
    assert events == [(700.0, "yes"), (1700.0, "yes")]  # smoothed >= 0.6 at 700 ms; suppressed for 1 s


def test_sensor_stream_windows_with_stride(runtime_bundles, tmp_path):
    csv = tmp_path / "imu.csv"
    rows = ["ax,ay,az"] + [f"{i * 0.1:.2f},{-i * 0.1:.2f},1.0" for i in range(50)]
    rows.insert(10, "1.0,not-a-number,2.0")
    rows.insert(20, "1.0,2.0")
    csv.write_text("\n".join(rows) + "\n")
    model = load(runtime_bundles.sensor)
    source = open_source(f"csv:{csv}")
    results = list(model.stream(source))
    assert len(results) == 4  # windows end at rows 20, 30, 40, 50
    assert source.counters.malformed == 2


def test_sensor_rows_without_a_channel_end_the_stream_first_then_are_counted(runtime_bundles, tmp_path):
    from edgekit.errors import ShapeError

    model = load(runtime_bundles.sensor)
    wrong = tmp_path / "wrong.csv"  # a recording from another device: no row ever fits
    wrong.write_text("gx,gy,gz\n" + "".join(f"{i},0,1\n" for i in range(30)))
    with pytest.raises(ShapeError, match="no ax, ay, az"):
        list(model.stream(open_source(f"csv:{wrong}")))
    glitchy = tmp_path / "glitchy.jsonl"  # a long run where the sensor once drops a field
    lines = [json.dumps({"ax": i * 0.1, "ay": 0.0, "az": 1.0}) for i in range(40)]
    lines[25] = json.dumps({"ax": 2.5, "az": 1.0})
    lines[33] = "[1.0, 2.0]"  # not an object: the source's own malformed count
    glitchy.write_text("\n".join(lines) + "\n")
    source = open_source(f"csv:{glitchy}")
    results = list(model.stream(source))
    assert len(results) == 2  # 38 good rows: windows end at good rows 20 and 30
    assert source.counters.malformed == 2


def test_stream_accepts_plain_items(runtime_bundles):
    model = load(runtime_bundles.shapes)
    files = sorted(runtime_bundles.shapes_images.rglob("*.png"))[:3]
    results = list(model.stream([Item(f, 123.0, f.name) for f in files]))
    assert [r.source for r in results] == [f.name for f in files]
    assert all(r.timestamp == 123.0 for r in results)


# ---------------------------------------------------------------------------
# edgekit run


def test_run_images_to_a_jsonl_sink(runtime_bundles, tmp_path):
    out = tmp_path / "results.jsonl"
    result = run_cli("run", str(runtime_bundles.shapes), "--source", f"images:{runtime_bundles.shapes_images}",
                     "--sink", f"jsonl:{out}", "--variant", "onnx-int8", "--limit", "25")
    assert result.code == 0, result.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 25 and all(line["variant"] == "onnx-int8" for line in lines)
    summary = result.stderr.strip().splitlines()[-1]
    assert summary.startswith("25 results in") and "p50" in summary and "p99" in summary
    assert "dropped frames 0, malformed files 0, reconnects 0" in summary


def test_run_stdin_json_lines(runtime_bundles):
    import subprocess
    import sys

    from tests.support.env import REPO

    lines = "\n".join(json.dumps({"ax": i * 0.1, "ay": 0.0, "az": 1.0}) for i in range(40)) + "\nnot json\n"
    proc = subprocess.run([sys.executable, "-m", "edgekit", "run", str(runtime_bundles.sensor), "--source", "stdin"],
                          input=lines, capture_output=True, text=True, cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.strip().splitlines()) == 3  # windows end at rows 20, 30, 40
    assert "malformed lines 1" in proc.stderr


def test_a_recording_with_label_and_timestamp_columns_replays_as_recorded(runtime_bundles, tmp_path):
    """The form `edgekit train --data` takes (channels plus label, timestamp, subject columns,
    in any order) gave "0 results ... malformed lines 100" and exit 0: the model now takes
    its channels by name and ignores the rest."""
    recording = tmp_path / "walk.csv"
    rows = ["timestamp,subject,az,label,ax,ay"]
    rows += [f"{i * 0.02:.2f},s01,1.0,walk,{i * 0.1:.2f},{-i * 0.1:.2f}" for i in range(40)]
    recording.write_text("\n".join(rows) + "\n")
    result = run_cli("run", str(runtime_bundles.sensor), "--source", f"csv:{recording}")
    assert result.code == 0, result.stderr
    assert len(result.stdout.strip().splitlines()) == 3  # windows end at rows 20, 30, 40
    assert "malformed lines 0" in result.stderr
    jsonl = tmp_path / "walk.jsonl"  # the same as JSON lines with a text field
    jsonl.write_text("".join(json.dumps({"t": i, "label": "walk", "ax": i * 0.1, "ay": 0.0, "az": 1.0}) + "\n"
                             for i in range(40)))
    assert len(list(load(runtime_bundles.sensor).stream(open_source(f"csv:{jsonl}")))) == 3


def test_json_array_lines_are_rows_in_channel_order(runtime_bundles, tmp_path):
    """JSON arrays on stdin were swallowed: the first line taken for a CSV header, the rest
    counted malformed, exit 0. They are rows of values in the model's channel order."""
    lines = tmp_path / "rows.jsonl"
    lines.write_text("".join(json.dumps([i * 0.1, 0.0, 1.0]) + "\n" for i in range(40)) + '["a", 1, 2]\n')
    source = open_source(f"csv:{lines}")
    results = list(load(runtime_bundles.sensor).stream(source))
    assert len(results) == 3  # windows end at rows 20, 30, 40
    assert source.counters.malformed == 1


def test_a_source_that_gives_nothing_usable_is_an_error_not_zero_results(runtime_bundles, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("ax,ay,az\n" + "".join(f"{i},x,1\n" for i in range(30)))
    assert_one_line_error(run_cli("run", str(runtime_bundles.sensor), "--source", f"csv:{bad}"), 1,
                          "gave no results", "30 malformed", "ax")
    short = tmp_path / "short.csv"  # readable, but shorter than one window
    short.write_text("ax,ay,az\n" + "".join(f"{i},0,1\n" for i in range(5)))
    assert_one_line_error(run_cli("run", str(runtime_bundles.sensor), "--source", f"csv:{short}"), 1,
                          "gave no results", "at least 20 rows")
    broken = tmp_path / "images"
    broken.mkdir()
    for name in ("a.png", "b.jpg"):
        (broken / name).write_bytes(b"not an image at all")
    assert_one_line_error(run_cli("run", str(runtime_bundles.shapes), "--source", f"images:{broken}"), 1,
                          "gave no results", "image that decodes", "2 malformed")


def test_unknown_source_and_sink_list_the_valid_forms(runtime_bundles):
    assert_one_line_error(run_cli("run", str(runtime_bundles.shapes), "--source", "webcam"), 1,
                          "unrecognized source 'webcam'", "images:DIR")
    assert_one_line_error(run_cli("run", str(runtime_bundles.shapes), "--source", "stdin", "--sink", "kafka://x"),
                          1, "unrecognized sink", "jsonl:FILE")


def test_generation_result_carries_the_tensor_and_a_compact_json_form():
    from edgekit.runtime.postprocess import postprocess
    from edgekit.runtime.results import Latency, Result

    spec = PostprocessSpec(kind=PostprocessKind.GENERATION)
    image = np.linspace(0, 1, 2 * 3 * 3, dtype=np.float32).reshape(1, 2, 3, 3)
    fields = postprocess(np.zeros((1, 8), np.float32), [image], spec, ())
    assert fields["output"].shape == (2, 3, 3) and fields["output"].dtype == np.float32
    result = Result(kind="generation", latency=Latency(0, 0, 0), variant="tflite-int8", timestamp=0.0, **fields)
    line = json.loads(result.to_json())
    assert line["output"]["shape"] == [2, 3, 3] and len(line["output"]["values"]) == 18
    assert line["output"]["min"] == 0.0 and line["output"]["max"] == 1.0 and line["output"]["mean"] == 0.5
    assert line["output"]["values"][1] == round(1 / 17, 4)  # 5 significant digits of the largest value (1.0)
    broken = Result(kind="generation", latency=Latency(0, 0, 0), variant="x", timestamp=0.0,
                    output=np.array([np.nan, 2.0, np.inf], np.float32))
    assert json.loads(broken.to_json())["output"]["values"] == [None, 2.0, None]  # valid JSON, no NaN
