"""The bundle contract: round trips, verification before parsing, atomic writes."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgekit.bundle import (
    MANIFEST_NAME,
    Manifest,
    Variant,
    manifest_schema,
    open_bundle,
    validate,
    write_bundle,
)
from edgekit.errors import InputError, IntegrityError
from edgekit.spec import TensorSpec
from tests.support.bundles import rewrite, simple_manifest
from tests.support.strategies import manifests


@pytest.fixture
def good_bundle(tmp_path: Path) -> Path:
    manifest, payloads = simple_manifest()
    path = tmp_path / "good.edgekit"
    write_bundle(path, manifest, payloads)
    return path


# ---------------------------------------------------------------------------
# round trips


@given(manifests())
@settings(max_examples=60)
def test_manifest_round_trip_through_a_bundle(tmp_path_factory, case):
    manifest, payloads = case
    path = tmp_path_factory.mktemp("rt") / "x.edgekit"
    written = write_bundle(path, manifest, payloads)
    loaded = open_bundle(path)
    assert loaded.manifest.to_dict() == written.to_dict()
    assert loaded.manifest == written
    for variant in manifest.variants:
        assert loaded.variant_bytes(variant.name) == payloads[variant.file]


@given(manifests())
@settings(max_examples=40)
def test_written_manifests_match_the_published_schema(case):
    jsonschema = pytest.importorskip("jsonschema")
    manifest, payloads = case
    from edgekit.bundle import FileEntry, sha256_bytes

    document = json.loads(json.dumps(Manifest(**{
        **manifest.__dict__,
        "files": {k: FileEntry(sha256_bytes(v), len(v)) for k, v in payloads.items()},
    }).to_dict()))
    jsonschema.Draft202012Validator(manifest_schema()).validate(document)
    assert validate(document) == []


MUTATION_VALUES = [None, -5, 0, 3, 1.5, "x", "", True, [], {}, ["x"], {"kind": "image"}, "0" * 64, 2]


@st.composite
def mutated_documents(draw):
    manifest, payloads = draw(manifests())
    from edgekit.bundle import FileEntry, sha256_bytes

    document = json.loads(json.dumps(Manifest(**{
        **manifest.__dict__,
        "files": {k: FileEntry(sha256_bytes(v), len(v)) for k, v in payloads.items()},
    }).to_dict()))
    for _ in range(draw(st.integers(1, 3))):
        # walk to a random container, then delete or replace one of its entries
        node = document
        for _depth in range(draw(st.integers(0, 5))):
            children = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
            children = [(k, v) for k, v in children if isinstance(v, (dict, list)) and v]
            if not children:
                break
            node = draw(st.sampled_from(children))[1]
        keys = list(node.keys()) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            continue
        key = draw(st.sampled_from(keys))
        if isinstance(node, dict) and draw(st.booleans()):
            del node[key]
        else:
            node[key] = copy.deepcopy(draw(st.sampled_from(MUTATION_VALUES)))
    return document


@given(mutated_documents())
@settings(max_examples=300)
def test_device_validator_agrees_with_jsonschema(document):
    """Devices validate without jsonschema; both must reach the same verdict."""
    jsonschema = pytest.importorskip("jsonschema")
    reference = jsonschema.Draft202012Validator(manifest_schema()).is_valid(document)
    assert (validate(document) == []) == reference, validate(document)


def test_schema_is_a_valid_draft_2020_12_schema():
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(manifest_schema())


def test_same_content_gives_identical_bytes(tmp_path):
    manifest, payloads = simple_manifest()
    a, b = tmp_path / "a.edgekit", tmp_path / "b.edgekit"
    write_bundle(a, manifest, payloads)
    write_bundle(b, manifest, payloads)
    assert a.read_bytes() == b.read_bytes()


def test_writer_refuses_inconsistent_input(tmp_path):
    manifest, payloads = simple_manifest()
    with pytest.raises(InputError, match="listed in files"):
        write_bundle(tmp_path / "x.edgekit", manifest, {"models/tflite-fp32.tflite": b"x"})
    with pytest.raises(InputError, match="unreferenced"):
        write_bundle(tmp_path / "x.edgekit", manifest, {**payloads, "extra.bin": b"x"})
    bad_labels = Manifest(**{**manifest.__dict__, "labels": ("only-one",)})
    with pytest.raises(InputError, match="3 labels"):
        write_bundle(tmp_path / "x.edgekit", bad_labels, payloads)
    assert not list(tmp_path.iterdir()), "nothing may be left behind by a refused write"


# ---------------------------------------------------------------------------
# verification: every failure is an IntegrityError naming what did not match


def test_verified_bundle_loads(good_bundle):
    bundle = open_bundle(good_bundle)
    assert bundle.manifest.variant_names == ["tflite-fp32", "onnx-fp32"]
    assert bundle.variant_bytes("onnx-fp32").startswith(b"onnx-model-bytes")


def test_model_member_swapped(good_bundle, tmp_path):
    bad = rewrite(good_bundle, tmp_path / "bad.edgekit", members={"models/onnx-fp32.onnx": b"evil" * 250})
    with pytest.raises(IntegrityError, match="models/onnx-fp32.onnx is 1000 bytes, the manifest says 1024"):
        open_bundle(bad)


def test_model_member_same_size_different_bytes(good_bundle, tmp_path):
    original = zipfile.ZipFile(good_bundle).read("models/onnx-fp32.onnx")
    flipped = bytes([original[0] ^ 1]) + original[1:]
    bad = rewrite(good_bundle, tmp_path / "bad.edgekit", members={"models/onnx-fp32.onnx": flipped})
    with pytest.raises(IntegrityError, match="has sha256 .* the manifest says"):
        open_bundle(bad)


def test_byte_flipped_on_disk_is_refused(good_bundle, tmp_path):
    data = bytearray(good_bundle.read_bytes())
    member_offset = data.index(b"onnx-model-bytes")
    data[member_offset + 5] ^= 0x40
    bad = tmp_path / "flip.edgekit"
    bad.write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        open_bundle(bad)


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.999])
def test_truncated_bundle(good_bundle, tmp_path, keep):
    """A bundle cut short (a copy that did not finish) is a damaged file (exit 1), not one
    that "failed verification" (exit 3: hashes, members or signature that do not match)."""
    data = good_bundle.read_bytes()
    bad = tmp_path / "trunc.edgekit"
    bad.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(InputError, match="trunc.edgekit: expected an edgekit bundle .a zip archive., found a zip "
                                         "archive cut short or damaged.*copy it again") as caught:
        open_bundle(bad)
    assert not isinstance(caught.value, IntegrityError) and "verification" not in str(caught.value)


def test_renamed_member(good_bundle, tmp_path):
    bad = rewrite(good_bundle, tmp_path / "bad.edgekit", rename={"models/onnx-fp32.onnx": "models/other.onnx"})
    with pytest.raises(IntegrityError, match=r"listed but absent \['models/onnx-fp32.onnx'\]; present but not listed \['models/other.onnx'\]"):
        open_bundle(bad)


def test_extra_member(good_bundle, tmp_path):
    bad = rewrite(good_bundle, tmp_path / "bad.edgekit", members={"payload.sh": b"#!/bin/sh\n"})
    with pytest.raises(IntegrityError, match=r"present but not listed \['payload.sh'\]"):
        open_bundle(bad)


def test_missing_member(good_bundle, tmp_path):
    bad = rewrite(good_bundle, tmp_path / "bad.edgekit", drop={"models/tflite-fp32.tflite"})
    with pytest.raises(IntegrityError, match="listed but absent"):
        open_bundle(bad)


def test_duplicate_member(good_bundle, tmp_path):
    bad = tmp_path / "dup.edgekit"
    with zipfile.ZipFile(good_bundle) as zin, zipfile.ZipFile(bad, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename))
        with pytest.warns(UserWarning):
            zout.writestr("models/onnx-fp32.onnx", b"second copy")
    with pytest.raises(IntegrityError, match="duplicate archive members"):
        open_bundle(bad)


def test_manifest_not_json(good_bundle, tmp_path):
    bad = rewrite(good_bundle, tmp_path / "bad.edgekit", manifest=b"{not json")
    with pytest.raises(IntegrityError, match="manifest.json is not valid JSON"):
        open_bundle(bad)


@pytest.mark.parametrize(("version", "fragment"), [(3, "newer edgekit"), ("1", "damaged"), (None, "damaged")])
def test_unknown_schema_version(good_bundle, tmp_path, version, fragment):
    document = json.loads(zipfile.ZipFile(good_bundle).read(MANIFEST_NAME))
    document["schema_version"] = version
    bad = rewrite(good_bundle, tmp_path / "bad.edgekit", manifest=json.dumps(document).encode())
    with pytest.raises(IntegrityError, match=f"unknown bundle schema.*{fragment}"):
        open_bundle(bad)


def test_not_an_edgekit_manifest(good_bundle, tmp_path):
    bad = rewrite(good_bundle, tmp_path / "bad.edgekit", manifest=b'{"format": "something-else"}')
    with pytest.raises(IntegrityError, match="not an edgekit bundle"):
        open_bundle(bad)


def test_schema_violation_is_reported_with_its_path(good_bundle, tmp_path):
    document = json.loads(zipfile.ZipFile(good_bundle).read(MANIFEST_NAME))
    document["variants"][1]["inputs"][0]["dtype"] = "float64"
    bad = rewrite(good_bundle, tmp_path / "bad.edgekit", manifest=json.dumps(document).encode())
    with pytest.raises(IntegrityError, match=r"\$\.variants\[1\]\.inputs\[0\]\.dtype: expected one of"):
        open_bundle(bad)


def test_path_traversal_member_names_are_refused(good_bundle, tmp_path):
    document = json.loads(zipfile.ZipFile(good_bundle).read(MANIFEST_NAME))
    document["files"]["../escape.onnx"] = document["files"].pop("models/onnx-fp32.onnx")
    document["variants"][1]["file"] = "../escape.onnx"
    bad = rewrite(good_bundle, tmp_path / "bad.edgekit", manifest=json.dumps(document).encode(),
                  rename={"models/onnx-fp32.onnx": "../escape.onnx"})
    with pytest.raises(IntegrityError, match="key '../escape.onnx'"):
        open_bundle(bad)


def test_zero_byte_and_random_bundles(tmp_path):
    """Files that are not zip archives at all: one line, exit 1, never "tampered with"."""
    cases = {"empty": (b"", "found an empty file (0 bytes); copy it again, or rebuild it"),
             "noise": (b"\x93\x01" + os.urandom(4094), "found 4096 bytes that are not a zip archive (they start 93 01"),
             "text": (b"hello\n", "found 6 bytes of text ('hello'), not a zip archive; give the path of a .edgekit bundle")}
    for name, (data, found) in cases.items():
        path = tmp_path / f"{name}.edgekit"
        path.write_bytes(data)
        with pytest.raises(InputError, match="expected an edgekit bundle") as caught:
            open_bundle(path)
        assert not isinstance(caught.value, IntegrityError) and found in str(caught.value), caught.value
        assert "tampered" not in str(caught.value)


def test_cli_says_a_file_that_is_not_a_bundle_is_an_error_not_a_refusal(tmp_path):
    from tests.support.cli import assert_one_line_error, run_cli

    fake = tmp_path / "fake.edgekit"
    fake.write_text("hello\n")
    for command in (("inspect", str(fake)), ("verify", str(fake)), ("run", str(fake), "--source", "stdin")):
        assert_one_line_error(run_cli(*command), 1, "edgekit: error: bundle", "fake.edgekit: expected an edgekit "
                              "bundle (a zip archive), found 6 bytes of text ('hello'), not a zip archive; give the path")


def test_missing_path_and_directory_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="no such file") as info:
        open_bundle(tmp_path / "absent.edgekit")
    assert not isinstance(info.value, IntegrityError)
    folder = tmp_path / "dir.edgekit"
    folder.mkdir()
    with pytest.raises(InputError, match="found a directory"):
        open_bundle(folder)


# ---------------------------------------------------------------------------
# atomic writes


WRITER = textwrap.dedent(
    """
    import sys
    from edgekit.bundle import Manifest, Variant, write_bundle
    from edgekit.spec import TensorSpec
    path = sys.argv[1]
    size = int(sys.argv[2])
    spec = (TensorSpec("x", (1, 4), "float32"),)
    for i in range(1, 1000):
        v = Variant("tflite-fp32", "tflite", "models/m.tflite", "fp32", spec, spec)
        write_bundle(path, Manifest(name=f"gen{i}", variants=(v,)), {"models/m.tflite": bytes([i % 256]) * size})
    """
)


def test_writer_killed_mid_write_leaves_the_old_bundle(tmp_path):
    path = tmp_path / "model.edgekit"
    spec = (TensorSpec("x", (1, 4), "float32"),)
    old = Manifest(name="old", variants=(Variant("tflite-fp32", "tflite", "models/m.tflite", "fp32", spec, spec),))
    write_bundle(path, old, {"models/m.tflite": b"old" * 100})

    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(48 * 1024 * 1024)])
    temps: list[Path] = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            temps = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
            if temps and temps[0].stat().st_size > 1024 * 1024:
                break
            time.sleep(0.001)
        assert temps, "the writer never started a temp file"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    # The final name holds a complete bundle: the old one, or a complete newer one.
    survivor = open_bundle(path)
    name = survivor.manifest.name
    assert name == "old" or name.startswith("gen")
    if name == "old":
        assert survivor.read("models/m.tflite") == b"old" * 100
    else:
        i = int(name[3:])
        assert survivor.read("models/m.tflite") == bytes([i % 256]) * 48 * 1024 * 1024
    leftovers = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers, "SIGKILL mid-write leaves the dead writer's temp file"

    # The next write cleans up after the dead writer.
    write_bundle(path, old, {"models/m.tflite": b"old" * 100})
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert open_bundle(path).manifest.name == "old"


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    manifest, payloads = simple_manifest()
    path = tmp_path / "keep.edgekit"
    write_bundle(path, manifest, payloads)
    before = path.read_bytes()

    import edgekit.bundle.archive as archive

    def broken_add(zf, name, data):
        if name.endswith(".onnx"):
            raise OSError(28, "No space left on device")
        zf.writestr(name, data)

    monkeypatch.setattr(archive, "_add", broken_add)
    with pytest.raises(InputError, match="No space left on device.*free disk space"):
        write_bundle(path, manifest, payloads)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.edgekit"]


def test_output_directory_must_exist(tmp_path):
    manifest, payloads = simple_manifest()
    with pytest.raises(InputError, match="create it first"):
        write_bundle(tmp_path / "missing" / "x.edgekit", manifest, payloads)
