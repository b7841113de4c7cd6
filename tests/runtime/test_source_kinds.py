"""Sources against bundles, as a new user mixes them up: the kind of input a source gives
(images, audio, rows) checked against what the bundle's preprocessing takes before the
source is opened; every source's query options checked; a WAV clip shorter than one window;
`--hop-ms` where it does nothing or leaves audio unheard; `serve` whose source ends; image
files that do not decode.

The bundles are real and load without TensorFlow: tiny ONNX classifiers built with
onnx.helper (an image, an audio, a sensor and a no-preprocessing one), written by
`write_bundle`, run by onnxruntime.
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import numpy as np
import pytest

from edgekit.bundle import Manifest, Variant, write_bundle
from edgekit.errors import InputError, ShapeError
from edgekit.spec import (
    AudioPreprocess,
    ImagePreprocess,
    NoPreprocess,
    PostprocessKind,
    PostprocessSpec,
    SensorPreprocess,
    TensorSpec,
)
from tests.support.cli import assert_one_line_error, run_cli
from tests.support.env import need_module

need_module("onnxruntime", 'pip install "edgekit-ml[onnx]"')

from edgekit.runtime import load  # noqa: E402 - after the skip for a missing onnxruntime
from edgekit.runtime.run import RunConfig, run  # noqa: E402
from edgekit.runtime.sources import open_source  # noqa: E402

AUDIO = AudioPreprocess(sample_rate=16000, clip_samples=16000, feature="mfcc")  # 49 x 10 MFCC


def classifier_onnx(shape: tuple[int, ...]) -> bytes:
    """Flatten `shape` -> MatMul (features x 3) -> Softmax: a real model onnxruntime runs."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    size = int(np.prod(shape[1:]))
    weights = np.random.default_rng(0).standard_normal((size, 3)).astype(np.float32) / size
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["f"], axis=1), helper.make_node("MatMul", ["f", "w"], ["l"]),
         helper.make_node("Softmax", ["l"], ["y"], axis=-1)],
        "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], [numpy_helper.from_array(weights, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def bundle(path: Path, preprocess, shape: tuple[int, ...]) -> Path:
    variant = Variant(name="onnx-fp32", format="onnx", file="models/onnx-fp32.onnx", precision="fp32",
                      inputs=(TensorSpec("x", shape, "float32"),), outputs=(TensorSpec("y", (1, 3), "float32"),))
    manifest = Manifest(name=path.stem, variants=(variant,), preprocess=preprocess, labels=("p", "q", "r"),
                        postprocess=PostprocessSpec(kind=PostprocessKind.CLASSIFICATION))
    write_bundle(path, manifest, {variant.file: classifier_onnx(shape)})
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The four bundles, and a source of each kind: a PNG folder, a 2 s WAV, a CSV of rows."""
    import cv2

    from edgekit.features.audio import write_wav

    root = tmp_path_factory.mktemp("kinds")
    images = root / "images"
    images.mkdir()
    cv2.imwrite(str(images / "a.png"), np.full((8, 8, 3), 100, np.uint8))
    wav = root / "two.wav"
    write_wav(wav, 0.1 * np.random.default_rng(1).standard_normal(32000).astype(np.float32), 16000)
    rows = root / "rows.csv"
    rows.write_text("a,b\n" + "".join(f"{i},{i % 3}\n" for i in range(8)))
    return {
        "image": bundle(root / "image.edgekit", ImagePreprocess(height=8, width=8), (1, 8, 8, 3)),
        "audio": bundle(root / "audio.edgekit", AUDIO, (1, 49, 10, 1)),
        "sensor": bundle(root / "sensor.edgekit", SensorPreprocess(channels=("a", "b"), window=4, stride=4),
                         (1, 4, 2)),
        "none": bundle(root / "none.edgekit", NoPreprocess(), (1, 2)),
        "images": images, "wav": wav, "rows": rows, "root": root,
    }


@pytest.mark.parametrize(("kind", "source", "takes", "gives"), [
    ("audio", "images:{images}", "audio", "images"),  # PNG pixels streamed as samples: 13 garbage results, exit 0
    ("audio", "csv:{rows}", "audio", "rows of numbers"),
    ("audio", "camera:57?timeout=30", "audio", "images"),  # refused before opening: no 30 s wait for camera 57
    ("image", "wav:{wav}", "images", "audio"),  # was an internal error (ValueError in _pixels)
    ("image", "mic:nothing?timeout=30", "images", "audio"),  # refused before opening: no microphone needed
    ("image", "csv:{rows}", "images", "rows of numbers"),
    ("sensor", "wav:{wav}", "rows of numbers", "audio"),
    ("sensor", "images:{images}", "rows of numbers", "images"),
    ("none", "wav:{wav}", "rows of numbers or images", "audio"),  # was an internal error
])
def test_a_source_of_another_kind_is_refused_before_it_is_opened(files, kind, source, takes, gives):
    spec = source.format(**files)
    with pytest.raises(InputError) as caught:
        run(RunConfig(bundle=files[kind], source=spec))
    message = str(caught.value)
    assert f"source {spec}: expected a source of {takes}, as bundle {kind}.edgekit takes" in message, message
    assert f"found a source of {gives}; use " in message, message


def test_sources_of_the_right_kind_run(files):
    header_free = files["root"] / "plain.csv"  # a bundle without preprocessing takes unnamed rows
    header_free.write_text("".join(f"{i},{i % 3}\n" for i in range(8)))
    for kind, source, results in (("image", "images:{images}", 1), ("audio", "wav:{wav}", 5),
                                  ("sensor", "csv:{rows}", 2), ("none", "csv:{rows}?loop=0", 8)):
        spec = source.format(**{**files, "rows": header_free if kind == "none" else files["rows"]})
        assert run(RunConfig(bundle=files[kind], source=spec, sink="jsonl:/dev/null")).results == results, kind


def test_model_stream_checks_the_source_as_run_does(files):
    """The embedding API: a source of another kind is refused, a short wav clip padded, and
    a spec string (not a source) is one line saying how to open it."""
    from edgekit.features.audio import write_wav

    model = load(files["audio"])
    with pytest.raises(InputError, match=r"expected a source of audio, as bundle audio.edgekit takes .*found a source "
                                         r"of images"):
        next(model.stream(open_source(f"images:{files['images']}")))
    with pytest.raises(InputError, match=r"Model.stream source: expected items, or a source from .*open_source.*found "
                                         r"str 'wav:"):
        next(model.stream(f"wav:{files['wav']}"))
    short = files["root"] / "short-api.wav"
    write_wav(short, 0.3 * np.sin(np.arange(8000) / 5.0).astype(np.float32), 16000)
    got = list(model.stream(open_source(f"wav:{short}")))
    assert len(got) == 1
    assert [s.score for s in got[0].top_k] == pytest.approx([s.score for s in model.predict(str(short)).top_k],
                                                            abs=1e-6)


def test_the_cli_says_it_in_one_line_with_exit_1(files):
    result = run_cli("run", str(files["audio"]), "--source", f"images:{files['images']}")
    assert_one_line_error(result, 1, "expected a source of audio", "found a source of images", "use wav:FILE")


def test_a_payload_of_another_kind_is_a_shape_error_not_a_crash(files):
    """`_pixels` and the no-preprocessing path on an audio chunk ``(samples, rate)``: numpy's
    "inhomogeneous shape" ValueError became one ShapeError naming what was given."""
    chunk = (np.zeros(1600, np.float32), 16000)
    with pytest.raises(ShapeError, match=r"found a tuple of 1600 values and the number 16000 \(audio samples"):
        load(files["image"]).predict(chunk)
    none = load(files["none"])
    with pytest.raises(ShapeError, match="audio samples and their rate"):
        none.predict(chunk)
    with pytest.raises(ShapeError, match=r"found named values \['a', 'b'\].*drop the header"):
        none.predict({"a": 1.0, "b": 2.0})
    assert none.predict(np.array([1.0, 2.0], np.float32)).label in ("p", "q", "r")


@pytest.mark.parametrize(("query", "fragments"), [
    ("chunk_ms=abc", ("expected chunk_ms= a number > 0", "found chunk_ms=abc")),  # was an internal error
    ("chunk_ms=-5", ("expected chunk_ms= a number > 0", "found chunk_ms=-5")),  # was accepted
    ("chunk_ms=0", ("found chunk_ms=0",)),
    ("chunk_ms=nan", ("found chunk_ms=nan",)),
    ("realtime=yes", ("expected realtime=0 or realtime=1", "found realtime=yes")),
    ("realtime=2", ("found realtime=2",)),
    ("realtim=1", ("expected options among: realtime, chunk_ms, loop", "unknown option 'realtim'",
                   "did you mean realtime=?")),  # a typo that ran as fast as possible
    ("bogus=1", ("unknown option 'bogus'",)),
    ("loop=abc", ("expected loop=0 or loop=1",)),
])
def test_wav_options_are_checked(files, query, fragments):
    with pytest.raises(InputError) as caught:
        open_source(f"wav:{files['wav']}?{query}")
    for fragment in fragments:
        assert fragment in str(caught.value), str(caught.value)


@pytest.mark.parametrize(("spec", "fragment"), [
    ("images:{images}?loop=2", "expected loop=0 or loop=1"),
    ("images:{images}?recursive=1", "unknown option 'recursive'"),
    ("csv:{rows}?rate=0", "expected rate= a number > 0"),
    ("csv:{rows}?rate=fast", "found rate=fast"),
    ("csv:{rows}?rat=50", "did you mean rate=?"),
    ("stdin?rate=5", "expected no options (stdin)"),
    ("serial:/dev/null?baud=fast", "expected baud= an integer >= 1"),
    ("serial:/dev/null?timeout=5", "unknown option 'timeout'"),  # read, never used: now refused
    ("mic?rate=8000.5", "expected rate= an integer >= 1"),
    ("mic:0?buffer_s=-1", "expected buffer_s= a number > 0"),
    ("camera:0?timeout=0", "expected timeout= a number > 0"),
    ("camera:0?max_reconnects=-1", "expected max_reconnects= an integer >= 0"),
    ("camera:0?retry=always", "expected retry=forever"),
    ("camera:0?fsp=30", "did you mean fps=?"),
    ("http://127.0.0.1:9/stream?timeout=abc", "found timeout=abc"),
])
def test_every_source_checks_its_options_before_opening(files, spec, fragment):
    """No device or library is needed: options are checked before the source is opened."""
    with pytest.raises(InputError) as caught:
        open_source(spec.format(**files))
    assert fragment in str(caught.value), str(caught.value)


def test_a_wav_clip_shorter_than_one_window_gives_the_result_predict_gives(files, caplog):
    """0.63 s at 16 kHz: the stream never filled a 1 s window ("gave no results", exit 1)
    while predict pads the clip; now the source pads it to one window, and says so."""
    from edgekit.features.audio import write_wav

    short = files["root"] / "short.wav"
    write_wav(short, 0.3 * np.sin(np.arange(10080) / 7.0).astype(np.float32), 16000)
    got = []
    with caplog.at_level(logging.WARNING):
        summary = run(RunConfig(bundle=files["audio"], source=f"wav:{short}", sink="jsonl:/dev/null"),
                      on_result=got.append)
    assert summary.results == 1 and got[0].source == "short.wav@1.000s"
    expected = load(files["audio"]).predict(str(short))
    assert [s.score for s in got[0].top_k] == pytest.approx([s.score for s in expected.top_k], abs=1e-6)
    assert [r.getMessage() for r in caplog.records if "padded" in r.getMessage()] == [
        f"source wav:{short}: 0.63 s of audio (10080 samples at 16000 Hz), shorter than the model's 1.00 s window: "
        "padded with zeros to one window, as predict pads a clip"]


def test_hop_ms_is_said_once_where_it_does_nothing_or_skips_audio(files, caplog):
    with caplog.at_level(logging.WARNING, logger="edgekit.run"):
        assert run(RunConfig(bundle=files["audio"], source=f"wav:{files['wav']}", sink="jsonl:/dev/null",
                             hop_ms=1500)).results == 1  # windows ending at 1 s and 2.5 s: only the first fits
        run(RunConfig(bundle=files["image"], source=f"images:{files['images']}", sink="jsonl:/dev/null", hop_ms=100))
        run(RunConfig(bundle=files["image"], source=f"images:{files['images']}", sink="jsonl:/dev/null"))
        run(RunConfig(bundle=files["audio"], source=f"wav:{files['wav']}", sink="jsonl:/dev/null", hop_ms=1000))
    said = [r.getMessage() for r in caplog.records if r.name == "edgekit.run"]
    assert said == [
        "--hop-ms 1500 is longer than the model's 1000 ms window: 500 ms of audio between two windows is never "
        "heard (a keyword there is missed); use --hop-ms 1000 or less to hear all of it",
        "--hop-ms 100 does nothing here: it sets the step between audio windows, and this bundle takes images "
        "(preprocess: image); every input gives one result"], said


def test_a_file_that_does_not_decode_is_named_once(files, caplog):
    folder = files["root"] / "mixed"
    folder.mkdir()
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    (folder / "good.png").write_bytes((files["images"] / "a.png").read_bytes())
    with caplog.at_level(logging.WARNING, logger="edgekit.images"):
        names = [item.name for item in itertools.islice(open_source(f"images:{folder}?loop=1"), 4)]
    assert names == ["good.png"] * 4
    said = [r.getMessage() for r in caplog.records if r.name == "edgekit.images"]
    assert len(said) == 1 and "broken.jpg" in said[0] and "expected a PNG, JPEG" in said[0], said
    # none decodes: the run's one error line names the file, and no line per file comes before it
    only_broken = files["root"] / "broken"
    only_broken.mkdir()
    (only_broken / "x.jpg").write_bytes(b"not a jpeg")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="edgekit.images"), pytest.raises(
            InputError, match=r"nothing usable \(1 malformed files, 0 dropped; the last: image .*x\.jpg: expected a PNG"):
        run(RunConfig(bundle=files["image"], source=f"images:{only_broken}", sink="jsonl:/dev/null"))
    assert not [r for r in caplog.records if r.name == "edgekit.images"]


def test_serve_checks_its_source_before_serving_and_fails_when_it_ends(files):
    """A source of the wrong kind fails before the "serving" line; a file that ends is a failure
    (exit 1: Restart=on-failure restarts the service), not exit 0."""
    wrong = run_cli("serve", str(files["audio"]), "--source", f"images:{files['images']}", "--port", "0",
                    "--skip-self-check")
    assert_one_line_error(wrong, 1, "expected a source of audio")
    ended = run_cli("serve", str(files["sensor"]), "--source", f"csv:{files['rows']}", "--port", "0",
                    "--skip-self-check", "--sink", "jsonl:/dev/null")
    assert ended.code == 1, ended.stderr
    last = ended.stderr.strip().splitlines()[-1]
    assert last.startswith(f"edgekit: error: source csv:{files['rows']} ended after 2 results: expected a source that "
                           "runs until the service is stopped (SIGTERM)"), ended.stderr
    assert "?loop=1" in last and "Traceback" not in ended.stderr
