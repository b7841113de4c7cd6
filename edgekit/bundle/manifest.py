"""The bundle manifest: typed view, strict parsing, and provenance helpers."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import platform
from collections.abc import Mapping
from typing import Any

from edgekit.bundle.schema import FORMAT_NAME, SCHEMA_VERSION, SUPPORTED_SCHEMA_VERSIONS, validate
from edgekit.bundle.selfcheck import SelfCheckSpec
from edgekit.errors import InputError, IntegrityError
from edgekit.spec import (
    NoPreprocess,
    PostprocessSpec,
    PreprocessSpec,
    TensorSpec,
    preprocess_from_dict,
)

MANIFEST_NAME = "manifest.json"


class VariantFormat:
    """Model file formats a variant can have (plain strings in the manifest)."""

    TFLITE = "tflite"
    ONNX = "onnx"
    ALL = (TFLITE, ONNX)
    SUFFIX = {TFLITE: ".tflite", ONNX: ".onnx"}


@dataclasses.dataclass(frozen=True)
class FileEntry:
    sha256: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "size": self.size}


@dataclasses.dataclass(frozen=True)
class Variant:
    """One model file of the bundle and its interface.

    Attributes:
        name: e.g. ``tflite-int8``.
        format: ``tflite`` or ``onnx``.
        file: archive member holding the model bytes.
        precision: e.g. ``fp32``, ``fp16``, ``int8``.
        inputs: input tensor specs, with quantization parameters.
        outputs: output tensor specs.
        metrics: per-variant figures (fidelity from convert, bench results).
    """

    name: str
    format: str
    file: str
    precision: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    metrics: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "format": self.format,
            "file": self.file,
            "precision": self.precision,
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
            "metrics": dict(self.metrics),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> Variant:
        return cls(
            name=data["name"],
            format=data["format"],
            file=data["file"],
            precision=data["precision"],
            inputs=tuple(TensorSpec.from_dict(t, f"{where}.inputs[{i}]") for i, t in enumerate(data["inputs"])),
            outputs=tuple(TensorSpec.from_dict(t, f"{where}.outputs[{i}]") for i, t in enumerate(data["outputs"])),
            metrics=dict(data.get("metrics", {})),
        )


@dataclasses.dataclass(frozen=True)
class Manifest:
    """Everything a device needs to know about a bundle, except the model bytes.

    `files` is filled in by `write_bundle` from the payloads; callers building a new
    bundle leave it empty. `self_check` names the sample and expected outputs under
    ``selfcheck/`` (`edgekit.bundle.selfcheck`); None for bundles made before it existed,
    whose manifest then has no ``self_check`` key at all.
    """

    name: str
    variants: tuple[Variant, ...]
    preprocess: PreprocessSpec = dataclasses.field(default_factory=NoPreprocess)
    labels: tuple[str, ...] = ()
    postprocess: PostprocessSpec = dataclasses.field(default_factory=PostprocessSpec)
    provenance: Mapping[str, Any] = dataclasses.field(default_factory=lambda: make_provenance())
    metrics: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    files: Mapping[str, FileEntry] = dataclasses.field(default_factory=dict)
    created: str = dataclasses.field(default_factory=lambda: utc_now())
    schema_version: int = SCHEMA_VERSION
    self_check: SelfCheckSpec | None = None

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        raise InputError(
            f"unknown variant {name!r} in bundle {self.name!r}",
            expected=f"one of {[v.name for v in self.variants]}",
            found=repr(name),
        )

    @property
    def variant_names(self) -> list[str]:
        return [v.name for v in self.variants]

    def to_dict(self) -> dict[str, Any]:
        document = {
            "format": FORMAT_NAME,
            "schema_version": self.schema_version,
            "name": self.name,
            "created": self.created,
            "files": {k: self.files[k].to_dict() for k in sorted(self.files)},
            "variants": [v.to_dict() for v in self.variants],
            "preprocess": self.preprocess.to_dict(),
            "labels": list(self.labels),
            "postprocess": self.postprocess.to_dict(),
            "provenance": dict(self.provenance),
            "metrics": dict(self.metrics),
        }
        if self.self_check is not None:  # absent, not null, in older bundles: their bytes stay the same
            document["self_check"] = self.self_check.to_dict()
        return document

    @classmethod
    def from_dict(cls, data: Any) -> Manifest:
        """Parse and check a manifest document.

        Raises:
            IntegrityError: unknown format or schema version, schema violations (all of
                them, in one message), or inconsistent references.
        """
        check_schema_version(data)
        problems = validate(data)
        if problems:
            more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
            raise IntegrityError(
                f"bundle manifest does not match schema version {data['schema_version']}",
                found="; ".join(problems[:3]) + more,
                hint="the bundle is damaged or was edited by hand; rebuild it with edgekit convert",
            )
        try:
            manifest = cls(
                name=data["name"],
                variants=tuple(Variant.from_dict(v, f"$.variants[{i}]") for i, v in enumerate(data["variants"])),
                preprocess=preprocess_from_dict(data["preprocess"], "$.preprocess"),
                labels=tuple(data["labels"]),
                postprocess=PostprocessSpec.from_dict(data["postprocess"], "$.postprocess"),
                provenance=dict(data["provenance"]),
                metrics=dict(data["metrics"]),
                files={k: FileEntry(v["sha256"], int(v["size"])) for k, v in data["files"].items()},
                created=data["created"],
                schema_version=data["schema_version"],
                self_check=SelfCheckSpec.from_dict(data["self_check"]) if "self_check" in data else None,
            )
        except InputError as exc:
            raise IntegrityError("bundle manifest is inconsistent", found=str(exc),
                                 hint="rebuild the bundle with edgekit convert") from exc
        manifest.check_references()
        return manifest

    def check_references(self, require_files: bool = True) -> None:
        """Cross-field checks the JSON Schema cannot express."""
        names = [v.name for v in self.variants]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise IntegrityError("bundle manifest", expected="unique variant names", found=f"duplicates {dupes}")
        files_used = [v.file for v in self.variants]
        if len(set(files_used)) != len(files_used):
            raise IntegrityError("bundle manifest", expected="one file per variant",
                                 found="two variants share a file")
        if MANIFEST_NAME in self.files:
            raise IntegrityError("bundle manifest", expected=f"{MANIFEST_NAME} not to list itself",
                                 found=f"{MANIFEST_NAME} in files")
        for v in self.variants:
            if v.format not in VariantFormat.ALL:
                raise IntegrityError(f"variant {v.name!r}", expected=f"format in {list(VariantFormat.ALL)}",
                                     found=repr(v.format))
            if require_files and v.file not in self.files:
                raise IntegrityError(f"variant {v.name!r}", expected=f"its file {v.file!r} listed in files",
                                     found="no such entry")
        if self.self_check is not None and require_files:
            self.self_check.check({v.name: v for v in self.variants}, self.files)
        if self.labels and self.postprocess.kind.value == "classification":
            for v in self.variants:
                classes = v.outputs[0].shape[-1] if v.outputs[0].shape else -1
                if classes > 0 and classes != len(self.labels):
                    raise IntegrityError(
                        f"variant {v.name!r} labels",
                        expected=f"{classes} labels (the size of output {v.outputs[0].name!r})",
                        found=f"{len(self.labels)} labels",
                    )


def check_schema_version(data: Any) -> None:
    """Refuse documents that are not edgekit manifests or come from a newer edgekit."""
    if not isinstance(data, dict):
        raise IntegrityError("bundle manifest", expected="a JSON object", found=type(data).__name__)
    fmt = data.get("format")
    if fmt != FORMAT_NAME:
        raise IntegrityError("bundle manifest", expected=f'"format": "{FORMAT_NAME}"', found=repr(fmt),
                             hint="this file is not an edgekit bundle")
    version = data.get("schema_version")
    if isinstance(version, bool) or version not in SUPPORTED_SCHEMA_VERSIONS:
        hint = ("it was written by a newer edgekit; upgrade edgekit"
                if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION
                else "the bundle is damaged; rebuild it with edgekit convert")
        raise IntegrityError("unknown bundle schema",
                             expected=f"schema_version {' or '.join(map(str, SUPPORTED_SCHEMA_VERSIONS))}",
                             found=repr(version), hint=hint)
    if version < 2 and "self_check" in data:
        raise IntegrityError("bundle manifest", expected="no self_check section in a schema_version 1 manifest",
                             found="one", hint="the bundle was edited by hand; rebuild it with edgekit convert")


def utc_now() -> str:
    """ISO 8601 UTC timestamp, second resolution."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


_TOOL_DISTRIBUTIONS = (
    "numpy", "tensorflow", "tensorflow-cpu", "keras", "onnx", "onnxruntime", "tf2onnx",
    "ai-edge-litert", "tflite-runtime", "ai-edge-quantizer",
)


def tool_versions() -> dict[str, str]:
    """Versions of edgekit, Python and the installed ML libraries (without importing them)."""
    from importlib import metadata

    import edgekit

    versions = {"edgekit": edgekit.__version__, "python": platform.python_version()}
    for dist in _TOOL_DISTRIBUTIONS:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return versions


def make_provenance(
    source: Mapping[str, Any] | None = None,
    command: str | None = None,
    steps: list[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Provenance record: source model, tool versions, command line, time, steps."""
    return {
        "source": dict(source) if source is not None else None,
        "tools": tool_versions(),
        "command": command,
        "created": utc_now(),
        "steps": [dict(s) for s in steps or []],
    }
