"""The self-check a bundle carries: a sample input and every variant's expected output.

`edgekit convert` stores, under ``selfcheck/`` in the archive, a few model input tensors
(float, before any variant's quantization, so that every variant takes the same file),
the raw inputs they came from when the front end is edgekit's (image, audio or sensor
spec), and, per variant, the outputs the workstation's interpreter computed on them. The
manifest's ``self_check`` section names those members (hashed in ``files`` like every
member) and the tolerance of each output. A device runs the sample through its own
front end and interpreter (`edgekit.runtime.selfcheck`) and compares.

Tolerances follow the arm parity rules (README, "arm64 and 32-bit Raspberry Pi OS"): a
quantized output within one quantization step, a float output within `RTOL` of its
largest magnitude; the front end's tensor likewise within `RTOL` of its largest value.

numpy and the standard library only.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Mapping
from typing import Any

import numpy as np

from edgekit.errors import IntegrityError
from edgekit.spec import TensorSpec

SELF_CHECK_DIR = "selfcheck"
RTOL = 1e-5  # a float tensor: within this fraction of its largest magnitude
STEP = "step"  # basis of a quantized output's tolerance: one quantization step
RELATIVE = "relative"  # basis of a float output's tolerance: RTOL of its largest magnitude
SOURCES = ("data", "random")


@dataclasses.dataclass(frozen=True)
class Expectation:
    """What one variant must compute on the sample.

    Attributes:
        outputs: archive members, one ``.npy`` per model output (in the variant's output
            order), dequantized float32, one row per row of the sample input.
        tolerance: the largest absolute difference allowed, per output, in its units.
        basis: per output, `STEP` (one quantization step) or `RELATIVE` (`RTOL` of the
            largest magnitude).
    """

    outputs: tuple[str, ...]
    tolerance: tuple[float, ...]
    basis: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"outputs": list(self.outputs), "tolerance": list(self.tolerance), "basis": list(self.basis)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Expectation:
        return cls(tuple(data["outputs"]), tuple(float(t) for t in data["tolerance"]),
                   tuple(data.get("basis") or (RELATIVE,) * len(data["outputs"])))


@dataclasses.dataclass(frozen=True)
class SelfCheckSpec:
    """The manifest's ``self_check`` section.

    Attributes:
        input: archive member: float32 ``(rows, *input shape without batch)``, one model
            run (batch 1) per row.
        source: ``data`` (samples of the data convert was given) or ``random`` (seeded
            random raw inputs: there was no data).
        ids: where each raw sample came from (file names, ``index:i``, ``random:i``).
        raw: archive members, one per raw sample (what `Model.predict` takes): a ``.npy``
            array (image pixels, a sensor window), or a 16-bit PCM ``.wav`` file (audio at
            the spec's rate); empty when the bundle has no front end of edgekit's (kind ``none``).
        rows: per raw sample, how many rows of `input` its front end gives (audio of
            stacked-frame vectors gives several); empty without `raw`.
        input_tolerance: the largest absolute difference allowed between the device's
            front end on `raw` and `input`; None without `raw`.
        variants: variant name -> its `Expectation`.
    """

    input: str
    source: str
    variants: Mapping[str, Expectation]
    ids: tuple[str, ...] = ()
    raw: tuple[str, ...] = ()
    rows: tuple[int, ...] = ()
    input_tolerance: float | None = None

    def members(self) -> list[str]:
        """Every archive member the section names."""
        return [self.input, *self.raw, *(m for e in self.variants.values() for m in e.outputs)]

    def to_dict(self) -> dict[str, Any]:
        return {"input": self.input, "source": self.source, "ids": list(self.ids), "raw": list(self.raw),
                "rows": list(self.rows), "input_tolerance": self.input_tolerance,
                "variants": {name: self.variants[name].to_dict() for name in sorted(self.variants)}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SelfCheckSpec:
        return cls(input=data["input"], source=data["source"],
                   variants={k: Expectation.from_dict(v) for k, v in data["variants"].items()},
                   ids=tuple(data.get("ids") or ()), raw=tuple(data.get("raw") or ()),
                   rows=tuple(int(r) for r in data.get("rows") or ()), input_tolerance=data.get("input_tolerance"))

    def check(self, variants: Mapping[str, Any], files: Mapping[str, Any]) -> None:
        """Cross-field checks the schema cannot express.

        Raises:
            IntegrityError: a member not listed in `files`, an expectation for a variant
                the bundle does not have, outputs and tolerances of different lengths,
                raw samples without their row counts.
        """
        missing = sorted(m for m in self.members() if m not in files)
        if missing:
            raise IntegrityError("bundle manifest self_check", expected="every member it names listed in files",
                                 found=f"unlisted {missing}")
        unknown = sorted(set(self.variants) - set(variants))
        if unknown:
            raise IntegrityError("bundle manifest self_check", expected=f"variants of the bundle {sorted(variants)}",
                                 found=f"expectations for {unknown}")
        for name, expectation in self.variants.items():
            outputs = len(variants[name].outputs)
            if not len(expectation.outputs) == len(expectation.tolerance) == len(expectation.basis) == outputs:
                raise IntegrityError(f"bundle manifest self_check of {name!r}",
                                     expected=f"{outputs} output file(s), tolerance(s) and bases (the variant's outputs)",
                                     found=f"{len(expectation.outputs)}, {len(expectation.tolerance)} and "
                                     f"{len(expectation.basis)}")
        if len(self.raw) != len(self.rows) or (self.raw and self.input_tolerance is None):
            raise IntegrityError("bundle manifest self_check", expected="one row count per raw sample and an "
                                 "input_tolerance with raw samples",
                                 found=f"{len(self.raw)} raw, {len(self.rows)} row counts, "
                                 f"input_tolerance {self.input_tolerance}")


def array_bytes(array: np.ndarray) -> bytes:
    """An array as ``.npy`` bytes (no pickles; the same array gives the same bytes)."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def read_array(data: bytes, name: str) -> np.ndarray:
    """The array in ``.npy`` bytes (verified bundle bytes; no pickles).

    Raises:
        IntegrityError: the bytes are not a ``.npy`` array.
    """
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise IntegrityError(f"bundle member {name}", expected="a .npy array", found=str(exc)[:200],
                             hint="rebuild the bundle with edgekit convert") from exc
    if not isinstance(array, np.ndarray):
        raise IntegrityError(f"bundle member {name}", expected="a .npy array", found=type(array).__name__)
    return array


def relative_tolerance(values: np.ndarray) -> float:
    """`RTOL` of the largest magnitude in `values` (`RTOL` itself when they are all 0)."""
    finite = np.asarray(values, np.float64)
    finite = finite[np.isfinite(finite)]
    largest = float(np.max(np.abs(finite))) if finite.size else 0.0
    return RTOL * (largest if largest > 0 else 1.0)


def output_tolerance(expected: np.ndarray, spec: TensorSpec) -> tuple[float, str]:
    """The tolerance of one output: one quantization step (the largest scale of a
    per-axis output) for a quantized output, else `relative_tolerance`."""
    if spec.quantization is not None and np.dtype(spec.dtype.value).kind in "iu":
        return float(max(spec.quantization.scale)), STEP
    return relative_tolerance(expected), RELATIVE


def describe_tolerance(basis: str) -> str:
    return "1 quantization step" if basis == STEP else f"{RTOL:g} x largest output"
