"""`edgekit inspect`: describe any model file or bundle edgekit deals with.

Formats: ``.tflite``, ``.onnx``, ``.keras``, ``.h5``, SavedModel directories and
``.edgekit`` bundles. Native parsing happens in a child process (see `isolate`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

from edgekit.bundle import BUNDLE_SUFFIX, open_bundle
from edgekit.errors import InputError, MissingDependencyError
from edgekit.inspection.isolate import describe_in_process, describe_isolated
from edgekit.inspection.report import ModelInfo, human_bytes, render_model

MODEL_SUFFIXES = {".tflite": "tflite", ".onnx": "onnx", ".keras": "keras", ".h5": "keras", ".hdf5": "keras"}
SUPPORTED = [".tflite", ".onnx", ".keras", ".h5", "SavedModel directory", BUNDLE_SUFFIX]


@dataclasses.dataclass(frozen=True)
class InspectConfig:
    """Options of `edgekit inspect`.

    Attributes:
        path: what to inspect.
        isolate: parse native formats in a child process (always on from the CLI).
        timeout_s: how long a parser may take before it is killed.
    """

    path: Path
    isolate: bool = True
    timeout_s: float = 600.0


def detect_kind(path: Path) -> str:
    """Which describer handles `path`: bundle, tflite, onnx, keras or savedmodel.

    Raises:
        InputError: missing path, empty file, unsupported type.
    """
    if not path.exists():
        raise InputError(f"{path}", expected="an existing file or directory", found="no such path", hint="check the path")
    if path.is_dir():
        if (path / "saved_model.pb").exists():
            return "savedmodel"
        raise InputError(f"{path}", expected=f"a model file ({', '.join(SUPPORTED)})",
                         found="a directory without saved_model.pb", hint="pass the model file itself")
    if not path.is_file():
        raise InputError(f"{path}", expected="a regular file", found="a special file")
    suffix = path.suffix.lower()
    if suffix == BUNDLE_SUFFIX:
        return "bundle"
    if suffix not in MODEL_SUFFIXES:
        raise InputError(f"{path}", expected=f"one of {SUPPORTED}", found=f"a {suffix or 'suffix-less'} file",
                         hint="rename the file if its extension is wrong")
    if path.stat().st_size == 0:
        raise InputError(f"{path}", expected="a non-empty model file", found="0 bytes",
                         hint="the file is truncated; export or copy it again")
    return MODEL_SUFFIXES[suffix]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _describe(kind: str, config: InspectConfig, *, path: Path | None = None, data: bytes | None = None,
              label: str | None = None) -> ModelInfo:
    if config.isolate:
        return describe_isolated(kind, path=path, data=data, label=label, timeout=config.timeout_s)
    return describe_in_process(kind, path=path, data=data)


def inspect_path(config: InspectConfig) -> dict[str, Any]:
    """Describe `config.path`.

    Returns:
        The JSON-ready report documented in the README ("inspect --json").

    Raises:
        InputError: missing/unsupported/corrupt input (exit 1).
        IntegrityError: a bundle that fails verification (exit 3).
    """
    path = config.path
    kind = detect_kind(path)
    if kind == "bundle":
        return _inspect_bundle(config)
    report: dict[str, Any] = {"path": str(path), "kind": "model"}
    if path.is_file():
        report["size_bytes"] = path.stat().st_size
        report["sha256"] = _sha256(path)
    else:
        report["size_bytes"] = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        report["sha256"] = None
    info = _describe(kind, config, path=path)
    report.update(info.to_dict())
    return report


def _inspect_bundle(config: InspectConfig) -> dict[str, Any]:
    bundle = open_bundle(config.path)  # raises IntegrityError (exit 3) before parsing anything
    manifest = bundle.manifest
    variants = []
    for variant in manifest.variants:
        entry = manifest.files[variant.file]
        item: dict[str, Any] = {
            "name": variant.name,
            "format": variant.format,
            "precision": variant.precision,
            "file": variant.file,
            "size_bytes": entry.size,
            "sha256": entry.sha256,
            "metrics": dict(variant.metrics),
        }
        try:
            info = _describe(variant.format, config, data=bundle.read(variant.file),
                             label=f"{config.path.name}:{variant.file}")
        except MissingDependencyError as exc:
            # Describe from the manifest; say what would give the full picture.
            info = ModelInfo(format=variant.format, inputs=variant.inputs, outputs=variant.outputs,
                             operators={}, parameters=None, macs=None, notes=(str(exc),))
        item.update({k: v for k, v in info.to_dict().items() if k != "format"})
        # The manifest's tensor specs are the contract; show them, and flag drift.
        manifest_io = ([t.to_dict() for t in variant.inputs], [t.to_dict() for t in variant.outputs])
        parsed_io = (item["inputs"], item["outputs"])
        item["inputs"], item["outputs"] = manifest_io
        if _io_signature(parsed_io) != _io_signature(manifest_io):
            item["notes"] = [*item["notes"], "the model file's tensors differ from the manifest's tensor specs"]
        variants.append(item)
    return {
        "path": str(config.path),
        "kind": "bundle",
        "format": "bundle",
        "size_bytes": bundle.size,
        "sha256": bundle.sha256,
        "verified": True,
        "verification": f"schema {manifest.schema_version} valid; {len(manifest.files)} file(s), sizes and sha256 match",
        "name": manifest.name,
        "schema_version": manifest.schema_version,
        "created": manifest.created,
        "variants": variants,
        "preprocess": manifest.preprocess.to_dict(),
        "labels": list(manifest.labels),
        "postprocess": manifest.postprocess.to_dict(),
        "metrics": dict(manifest.metrics),
        "provenance": dict(manifest.provenance),
        "self_check": _self_check(bundle),
    }


def _self_check(bundle: Any) -> dict[str, Any] | None:
    """The manifest's self-check section with the bytes it takes (None: a bundle without one)."""
    spec = bundle.manifest.self_check
    if spec is None:
        return None
    files = bundle.manifest.files  # the manifest refuses a section naming unlisted members
    return {**spec.to_dict(), "size_bytes": sum(files[m].size for m in spec.members())}


def _io_signature(io: tuple[list[dict[str, Any]], list[dict[str, Any]]]) -> tuple:
    def sig(t: dict[str, Any]) -> tuple:
        return (tuple(t["shape"]), t["dtype"])

    return tuple(sig(t) for t in io[0]), tuple(sig(t) for t in io[1])


def render_report(report: dict[str, Any]) -> str:
    """Human-readable text for an `inspect_path` report."""
    lines: list[str] = []
    size = human_bytes(report["size_bytes"])
    sha = f", sha256 {report['sha256'][:16]}..." if report.get("sha256") else ""
    if report["kind"] == "bundle":
        lines.append(f"{report['path']}  (edgekit bundle {report['name']!r}, {size}{sha})")
        lines.append(f"verification: OK ({report['verification']})")
        lines.append(f"created: {report['created']}")
        pre = dict(report["preprocess"])
        kind = pre.pop("kind")
        lines.append(f"preprocess: {kind}" + (" " + ", ".join(f"{k}={v}" for k, v in pre.items()) if pre else ""))
        labels = report["labels"]
        shown = ", ".join(labels[:12]) + (f", ... ({len(labels)} in all)" if len(labels) > 12 else "")
        lines.append(f"labels: {shown if labels else '(none)'}")
        post = report["postprocess"]
        lines.append("postprocess: " + ", ".join(f"{k}={v}" for k, v in post.items() if v is not None))
        lines.append(f"variants: {len(report['variants'])}")
        for item in report["variants"]:
            lines.append(f"  {item['name']}  ({item['format']}, {item['precision']}, {human_bytes(item['size_bytes'])},"
                         f" sha256 {item['sha256'][:16]}...)")
            info = ModelInfo.from_dict({**item, "format": item["format"]})
            lines += render_model(info, indent="    ")
            for key, value in item["metrics"].items():
                lines.append(f"    metric {key}: {value}")
        check = report.get("self_check")
        if check is None:
            lines.append("self-check: none (a bundle built before self-checks: rebuild it with edgekit convert)")
        else:
            lines.append(f"self-check: {len(check['ids'])} {check['source']} sample(s)"
                         + (f" with their raw inputs ({', '.join(check['ids'][:3])})" if check["raw"] else "")
                         + f", expected outputs of {', '.join(check['variants'])}"
                         f" ({human_bytes(check['size_bytes'])}); run it with edgekit verify BUNDLE --run")
        if report["metrics"]:
            lines.append("metrics:")
            lines += [f"  {k}: {v}" for k, v in report["metrics"].items()]
        prov = report["provenance"]
        source = prov.get("source") or {}
        lines.append(f"provenance: created {prov.get('created')}"
                     + (f" from {source.get('path')} ({source.get('format')})" if source else "")
                     + (f" by `{prov['command']}`" if prov.get("command") else ""))
        tools = prov.get("tools", {})
        lines.append("  tools: " + ", ".join(f"{k} {v}" for k, v in tools.items()))
        return "\n".join(lines)
    lines.append(f"{report['path']}  ({report['format']}, {size}{sha})")
    lines += render_model(ModelInfo.from_dict(report))
    return "\n".join(lines)


__all__ = ["InspectConfig", "ModelInfo", "detect_kind", "inspect_path", "render_report"]
