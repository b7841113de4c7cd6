"""What `edgekit inspect` reports, as data (for ``--json``) and as text."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from edgekit.spec import TensorSpec


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """Description of one model file.

    Attributes:
        format: tflite, onnx, keras, h5 or savedmodel.
        inputs / outputs: tensor specs (shape -1 = dynamic).
        operators: operator (or layer class) name -> count.
        parameters: number of weight values, or None when unknown.
        macs: estimated multiply-accumulates per inference (batch 1), or None.
        macs_by_op: the estimate split by operator.
        contains_code: the file carries code (Lambda layer, custom module).
        notes: things the user should know (what was skipped and why).
        details: format-specific extras (opset, producer, signatures, Keras version).
    """

    format: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    operators: Mapping[str, int]
    parameters: int | None
    macs: int | None
    macs_by_op: Mapping[str, int] = dataclasses.field(default_factory=dict)
    contains_code: bool = False
    notes: tuple[str, ...] = ()
    details: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
            "operators": dict(sorted(self.operators.items())),
            "operator_count": sum(self.operators.values()),
            "parameters": self.parameters,
            "macs": self.macs,
            "macs_by_op": dict(sorted(self.macs_by_op.items())),
            "contains_code": self.contains_code,
            "notes": list(self.notes),
            "details": dict(self.details),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelInfo:
        return cls(
            format=data["format"],
            inputs=tuple(TensorSpec.from_dict(t) for t in data["inputs"]),
            outputs=tuple(TensorSpec.from_dict(t) for t in data["outputs"]),
            operators=dict(data["operators"]),
            parameters=data["parameters"],
            macs=data["macs"],
            macs_by_op=dict(data.get("macs_by_op", {})),
            contains_code=bool(data.get("contains_code", False)),
            notes=tuple(data.get("notes", ())),
            details=dict(data.get("details", {})),
        )


# ---------------------------------------------------------------------------
# text rendering


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def human_count(n: int | None) -> str:
    if n is None:
        return "unknown"
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:.2f} {unit} ({n:,})"
    return f"{n:,}"


def format_tensor(t: TensorSpec) -> str:
    shape = "[" + ", ".join("?" if d < 0 else str(d) for d in t.shape) + "]"
    text = f"{t.name}  {shape}  {t.dtype.value}"
    q = t.quantization
    if q is not None:
        if q.per_channel:
            text += f"  quantized per-channel ({len(q.scale)} scales, axis {q.axis})"
        else:
            text += f"  quantized scale={q.scale[0]:.6g} zero_point={q.zero_point[0]}"
    return text


def render_model(info: ModelInfo, indent: str = "") -> list[str]:
    lines = []
    lines.append(f"{indent}inputs:")
    lines += [f"{indent}  {format_tensor(t)}" for t in info.inputs] or [f"{indent}  (unknown)"]
    lines.append(f"{indent}outputs:")
    lines += [f"{indent}  {format_tensor(t)}" for t in info.outputs] or [f"{indent}  (unknown)"]
    ops = sorted(info.operators.items(), key=lambda kv: (-kv[1], kv[0]))
    lines.append(f"{indent}operators: {sum(info.operators.values())}"
                 + (" (" + ", ".join(f"{k} x{v}" for k, v in ops) + ")" if ops else ""))
    lines.append(f"{indent}parameters: {human_count(info.parameters)}")
    lines.append(f"{indent}MACs (estimated, batch 1): {human_count(info.macs)}")
    if info.contains_code:
        lines.append(f"{indent}contains code: YES (not executed; convert/run refuse it without --trust-model-code)")
    for key, value in info.details.items():
        if isinstance(value, (str, int, float)) or (isinstance(value, list) and len(value) <= 6):
            lines.append(f"{indent}{key.replace('_', ' ')}: {value}")
    for note in info.notes:
        lines.append(f"{indent}note: {note}")
    return lines
