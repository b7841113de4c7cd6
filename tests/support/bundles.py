"""Small bundles written by the real writer, and rewriting one member by member (as an
attacker or a bad copy would)."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

from edgekit.bundle import MANIFEST_NAME, Manifest, Variant
from edgekit.spec import PostprocessKind, PostprocessSpec, TensorSpec


def simple_manifest(name: str = "demo") -> tuple[Manifest, dict[str, bytes]]:
    variant = Variant(
        name="tflite-fp32", format="tflite", file="models/tflite-fp32.tflite", precision="fp32",
        inputs=(TensorSpec("x", (-1, 4), "float32"),), outputs=(TensorSpec("y", (-1, 3), "float32"),),
    )
    other = Variant(
        name="onnx-fp32", format="onnx", file="models/onnx-fp32.onnx", precision="fp32",
        inputs=(TensorSpec("x", (-1, 4), "float32"),), outputs=(TensorSpec("y", (-1, 3), "float32"),),
    )
    manifest = Manifest(name=name, variants=(variant, other), labels=("a", "b", "c"),
                        postprocess=PostprocessSpec(kind=PostprocessKind.CLASSIFICATION, top_k=2))
    return manifest, {variant.file: b"TFL3-model-bytes" * 64, other.file: b"onnx-model-bytes" * 64}


def rewrite(src: Path, dst: Path, *, members: dict[str, bytes] | None = None, drop: set[str] = frozenset(),
            rename: dict[str, str] | None = None, manifest: bytes | None = None) -> Path:
    """Copy a bundle archive member by member, applying edits (as an attacker or a bad copy would)."""
    rename = rename or {}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            if info.filename in drop:
                continue
            data = zin.read(info.filename)
            if info.filename == MANIFEST_NAME and manifest is not None:
                data = manifest
            if members and info.filename in members:
                data = members.pop(info.filename)
            zout.writestr(rename.get(info.filename, info.filename), data)
        for name, data in (members or {}).items():
            zout.writestr(name, data)
    return dst


def rehashed(src: Path, dst: Path, *, members: dict[str, bytes] | None = None, drop: set[str] = frozenset(),
             edit: Callable[[dict], None] | None = None) -> Path:
    """Copy a bundle with members replaced or dropped and its manifest's sizes and sha256
    made to match again (`edit` may change the manifest document too): what someone who
    rebuilds the manifest after changing a member makes. Any signature is dropped."""
    import json

    from edgekit.bundle import sha256_bytes
    from edgekit.bundle.archive import write_archive
    from edgekit.bundle.signature import SIGNATURE_NAME

    members = dict(members or {})
    with zipfile.ZipFile(src) as archive:
        content = {name: archive.read(name) for name in archive.namelist()
                   if name not in drop and name not in (MANIFEST_NAME, SIGNATURE_NAME)}
        document = json.loads(archive.read(MANIFEST_NAME))
    content.update(members)
    document["files"] = {name: {"sha256": sha256_bytes(data), "size": len(data)} for name, data in content.items()}
    if edit is not None:
        edit(document)
    raw = (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()
    write_archive(dst, [(MANIFEST_NAME, raw), *sorted(content.items())])
    return dst
