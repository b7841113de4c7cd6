"""The model contract: ``MODEL.preprocess.yaml``, the one file that says how a model's
inputs are made and its outputs read.

`edgekit train` writes it next to the model, `edgekit prune` carries it over with its own
provenance step, `edgekit convert` reads it (or ``--preprocess SPEC.yaml``) and puts it in
the bundle's manifest, and `edgekit demo` and the tools read it through here; nothing else
parses or writes the file. It is either a bare preprocess spec (a mapping with ``kind``) or
the sections ``preprocess``, ``postprocess``, ``labels`` and ``provenance`` (``steps``: a
list of mappings, e.g. the pruning, listed in the bundle's provenance before its convert
step). The keys of each spec are in `edgekit.spec` (docs/preprocess.md); a preprocess
mapping may start from a preset (``preset: NAME`` plus keys that override it,
`edgekit.presets`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from edgekit.errors import InputError
from edgekit.spec import NoPreprocess, PostprocessSpec, PreprocessSpec, preprocess_from_dict

SIDECAR_SUFFIX = ".preprocess.yaml"
SECTIONS = ("preprocess", "postprocess", "labels", "provenance")


@dataclasses.dataclass(frozen=True)
class Contract:
    """What a contract file carries.

    Attributes:
        preprocess: how raw input becomes the model's input tensor.
        postprocess: how outputs become results (None: convert derives it from the task).
        labels: class names, in output order.
        path: the file it was read from.
        steps: the steps that made the model before conversion (``provenance.steps``).
        preprocess_given: the document states the front end (a bare spec, a preset, or a
            ``preprocess`` section; ``kind: none`` included), rather than leaving it out.
    """

    preprocess: PreprocessSpec = dataclasses.field(default_factory=NoPreprocess)
    postprocess: PostprocessSpec | None = None
    labels: tuple[str, ...] | None = None
    path: Path | None = None
    steps: tuple[dict[str, Any], ...] = ()
    preprocess_given: bool = dataclasses.field(default=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The file's sections, in their documented order (plain data, ready for YAML)."""
        document: dict[str, Any] = {"preprocess": self.preprocess.to_dict()}
        if self.postprocess is not None:
            document["postprocess"] = self.postprocess.to_dict()
        if self.labels is not None:
            document["labels"] = list(self.labels)
        if self.steps:
            document["provenance"] = {"steps": [dict(step) for step in self.steps]}
        return document

    def with_step(self, step: Mapping[str, Any]) -> Contract:
        """This contract with one more provenance step."""
        return dataclasses.replace(self, steps=(*self.steps, dict(step)))


def sidecar_path(model: Path) -> Path:
    """Where the contract of `model` lives: ``NAME.preprocess.yaml`` next to ``NAME.keras``."""
    return model.with_name(model.name.removesuffix(model.suffix) + SIDECAR_SUFFIX) if model.suffix else \
        model.with_name(model.name + SIDECAR_SUFFIX)


def contract_from_dict(document: Any, where: str) -> Contract:
    """Parse and check a contract document (a bare preprocess spec, or the sections).

    Raises:
        InputError: not a mapping, an unknown section, or an invalid spec (naming the field).
    """
    if not isinstance(document, dict):
        raise InputError(where, expected="a YAML mapping", found=type(document).__name__)
    if "kind" in document or "preset" in document:
        return Contract(preprocess_from_dict(_with_preset(document, where), where), preprocess_given=True)
    unknown = sorted(set(document) - set(SECTIONS))
    if unknown:
        raise InputError(where, expected=f"sections {', '.join(SECTIONS)}", found=f"unknown sections {unknown}")
    provenance = document.get("provenance") or {}
    steps = provenance.get("steps", []) if isinstance(provenance, dict) else None
    if not isinstance(steps, list) or not all(isinstance(step, dict) for step in steps):
        raise InputError(f"{where}: provenance", expected="a mapping with a list of steps (mappings)",
                         found=repr(provenance)[:100])
    pre = preprocess_from_dict(_with_preset(document.get("preprocess", {"kind": "none"}), f"{where}: preprocess"),
                               f"{where}: preprocess")
    post = PostprocessSpec.from_dict(document["postprocess"], f"{where}: postprocess") if "postprocess" in document \
        else None
    labels = document.get("labels")
    if labels is not None and (not isinstance(labels, list) or not all(isinstance(x, str) for x in labels)):
        raise InputError(f"{where}: labels", expected="a list of strings", found=repr(labels)[:100])
    return Contract(pre, post, tuple(labels) if labels is not None else None, None, tuple(steps),
                    preprocess_given="preprocess" in document)


def _with_preset(data: Any, where: str) -> Any:
    """A preprocess mapping with its ``preset: NAME`` expanded (`edgekit.presets`)."""
    from edgekit.presets import resolve

    return resolve(data, where) if isinstance(data, dict) else data


def read_contract(path: Path | None) -> Contract:
    """Read a contract file (``--preprocess SPEC.yaml`` or a model's sidecar); None: no preprocessing.

    `path` may also name a preset (``--preprocess imagenet``, `edgekit.presets`) when no
    file of that name exists.

    Raises:
        InputError: unreadable YAML, an invalid contract (naming the field), or neither a
            file nor a preset (listing the presets).
    """
    if path is None:
        return Contract()
    if not path.exists() and path.suffix.lower() not in (".yaml", ".yml") and len(path.parts) == 1:
        from edgekit.presets import preset_keys

        keys = preset_keys(str(path), "--preprocess preset (or file)")
        return Contract(preprocess_from_dict(keys, f"preset {path}"), preprocess_given=True)
    try:
        document = yaml.safe_load(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"preprocess file {path}", expected="a readable YAML file",
                         found=" ".join(str(exc).split())[:300]) from exc
    return dataclasses.replace(contract_from_dict(document, f"preprocess file {path}"), path=path)


def write_contract(path: Path, contract: Contract) -> None:
    """Write `contract` to `path` atomically (a reader sees the old file or the new one)."""
    from edgekit.bundle.atomic import atomic_write_bytes

    atomic_write_bytes(path, yaml.safe_dump(contract.to_dict(), sort_keys=False).encode("utf-8"))
