"""The self-check every bundle carries (issue 19): convert stores a sample and each
variant's expected output; `edgekit.runtime.selfcheck` and `edgekit verify --run` run it
here and compare. Real bundles (the session's converted ones), real interpreters, real
rewritten archives."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from edgekit.bundle import MANIFEST_NAME, Manifest, open_bundle
from edgekit.bundle.selfcheck import array_bytes, read_array
from edgekit.errors import IntegrityError
from edgekit.runtime import load
from edgekit.runtime.selfcheck import NoSelfCheck, SelfCheckFailed, check_bundle, self_check
from tests.support.bundles import rehashed
from tests.support.cli import run_cli

pytestmark = pytest.mark.tf


def _manifest(path) -> dict:
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read(MANIFEST_NAME))


def _member(path, name) -> bytes:
    with zipfile.ZipFile(path) as archive:
        return archive.read(name)


def test_converted_bundles_self_check_on_every_variant_through_both_backends(runtime_bundles):
    shapes = open_bundle(runtime_bundles.shapes)
    check = shapes.manifest.self_check
    assert check is not None and check.source == "data"  # real images from --data, named
    assert all(i.endswith(".png") for i in check.ids) and len(check.raw) == len(check.ids) == 2
    assert set(check.variants) == set(shapes.manifest.variant_names)
    assert all(m in shapes.manifest.files for m in check.members())  # hashed like every member
    bases = {name: e.basis[0] for name, e in check.variants.items()}
    assert bases["tflite-int8"] == "step" and bases["tflite-fp32"] == "relative"

    checked = check_bundle(shapes)
    assert [r.variant for r in checked.reports] == ["tflite-fp32", "tflite-int8", "onnx-fp32", "onnx-int8"]
    assert {r.backend for r in checked.reports} == {"ai-edge-litert", "onnxruntime"}
    assert checked.ok and not checked.not_here
    for report in checked.reports:
        assert report.max_abs_error <= report.tolerance and report.frontend_error is not None
        assert report.samples == 2
    # another thread count computes the same within the tolerance
    assert check_bundle(shapes, threads=2).ok

    for path, source in ((runtime_bundles.kws, "random"), (runtime_bundles.sensor, "random")):
        bundle = open_bundle(path)
        assert bundle.manifest.self_check.source == source
        assert check_bundle(bundle).ok

    # the contract's form: a loaded model, as serve and deploy call it
    model = load(runtime_bundles.shapes, variant="onnx-int8")
    report = self_check(model)
    assert report.ok and report.variant == "onnx-int8" and "ok" in report.summary()

    # inspect shows it (text and JSON), with the bytes it takes
    shown = run_cli("inspect", str(runtime_bundles.shapes), "--json").json()["self_check"]
    assert shown["ids"] == list(check.ids) and set(shown["variants"]) == set(check.variants)
    assert 0 < shown["size_bytes"] < runtime_bundles.shapes.stat().st_size
    text = run_cli("inspect", str(runtime_bundles.shapes)).stdout
    assert "self-check: 2 data sample(s) with their raw inputs" in text and "verify BUNDLE --run" in text


def test_a_wrong_expectation_re_hashed_is_caught(runtime_bundles, tmp_path):
    source = runtime_bundles.shapes
    name = "selfcheck/tflite-int8/output-0.npy"
    expected = read_array(_member(source, name), name)
    step = _manifest(source)["self_check"]["variants"]["tflite-int8"]["tolerance"][0]
    wrong = expected.copy()
    wrong.flat[0] += 3 * step  # three quantization steps off
    bad = rehashed(source, tmp_path / "wrong.edgekit", members={name: array_bytes(wrong)})
    bundle = open_bundle(bad)  # hashes match: only running it tells
    with pytest.raises(SelfCheckFailed) as caught:
        self_check(load(bad, variant="tflite-int8"))
    assert caught.value.exit_code == 3 and caught.value.report.max_abs_error == pytest.approx(3 * step, rel=1e-3)
    checked = check_bundle(bundle, backend="litert")
    assert [r.ok for r in checked.reports] == [True, False]

    result = run_cli("verify", str(bad), "--run")
    assert result.code == 3, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].endswith("unsigned") and len(lines) == 5
    assert [line.rsplit(": ", 1)[-1] for line in lines[1:]] == ["ok", "FAILED", "ok", "ok"]
    error = result.stderr.strip().splitlines()
    assert len(error) == 1 and "self-check of variant tflite-int8 (ai-edge-litert) failed" in error[0]


def test_a_model_swapped_for_another_of_the_same_shape_is_caught(runtime_bundles, tmp_path):
    # onnx-int8 in onnx-fp32's place: a valid model, same float input and output, re-hashed
    source = runtime_bundles.shapes
    swapped = rehashed(source, tmp_path / "swapped.edgekit",
                       members={"models/onnx-fp32.onnx": _member(source, "models/onnx-int8.onnx")})
    result = run_cli("verify", str(swapped), "--run", "--variant", "onnx-fp32")
    assert result.code == 3, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1].endswith("FAILED")
    assert "self-check of variant onnx-fp32 (onnxruntime) failed" in result.stderr


def test_a_front_end_that_computes_something_else_is_caught(runtime_bundles, tmp_path):
    source = runtime_bundles.sensor
    raw = read_array(_member(source, "selfcheck/raw-0.npy"), "raw")
    bad = rehashed(source, tmp_path / "frontend.edgekit", members={"selfcheck/raw-0.npy": array_bytes(raw + 0.5)})
    with pytest.raises(SelfCheckFailed, match="front end"):
        self_check(load(bad, variant="onnx-fp32"))


def test_a_bundle_without_a_sample_loads_and_says_how_to_rebuild(runtime_bundles, tmp_path):
    def old(document: dict) -> None:  # as an edgekit before self-checks wrote it
        del document["self_check"]
        document["schema_version"] = 1

    source = runtime_bundles.sensor
    drop = {n for n in zipfile.ZipFile(source).namelist() if n.startswith("selfcheck/")}
    before = rehashed(source, tmp_path / "old.edgekit", drop=drop, edit=old)
    model = load(before)  # old bundles still load and run
    assert model.predict(np.zeros((20, 3), np.float32)).label in ("idle", "walk")
    with pytest.raises(NoSelfCheck) as caught:
        self_check(model)
    assert caught.value.exit_code == 1

    result = run_cli("verify", str(before), "--run")
    assert result.code == 1
    assert result.stdout.strip().endswith("unsigned")  # the integrity line still comes first
    error = result.stderr.strip().splitlines()
    assert len(error) == 1 and "has no self-check sample" in error[0] and "rebuild it" in error[0]
    assert run_cli("verify", str(before)).code == 0  # without --run: integrity only, as before


def test_the_manifest_refuses_a_self_check_naming_unlisted_members(runtime_bundles):
    document = _manifest(runtime_bundles.sensor)
    del document["files"]["selfcheck/input.npy"]
    with pytest.raises(IntegrityError, match="self_check"):
        Manifest.from_dict(document)
    document = _manifest(runtime_bundles.sensor)
    document["self_check"]["variants"]["nope"] = document["self_check"]["variants"]["onnx-fp32"]
    with pytest.raises(IntegrityError, match="nope"):
        Manifest.from_dict(document)
    document = _manifest(runtime_bundles.sensor)
    assert document["schema_version"] == 2  # what carries a self_check; version 1 has none
    document["schema_version"] = 1
    with pytest.raises(IntegrityError, match="no self_check section in a schema_version 1 manifest"):
        Manifest.from_dict(document)
