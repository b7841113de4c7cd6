"""The self-check: run a bundle's stored sample on this device and compare with what the
workstation computed (`edgekit verify --run`, and `serve` / `deploy` before they serve).

    from edgekit.runtime import load
    from edgekit.runtime.selfcheck import self_check, SelfCheckFailed, NoSelfCheck
    model = load("kws.edgekit")
    report = self_check(model)     # raises SelfCheckFailed (exit 3) on a mismatch
    print(report.summary())

`edgekit convert` stores the sample (`edgekit.bundle.selfcheck`): model input tensors,
float, before quantization; the raw inputs they came from when the front end is
edgekit's; every variant's outputs as the workstation's interpreter computed them. The
check takes the path `Model.predict` takes: the raw inputs through this device's front
end (compared with the stored tensors), then the stored tensors quantized with the
variant's input spec, run by the open interpreter, dequantized, and compared with the
variant's expected outputs within its tolerances (one quantization step for a quantized
output, 1e-5 of the largest magnitude for a float one). The interpreter runs the stored
tensors, not the device's own features, so that a front-end difference and an
interpreter difference are told apart.

Never imports TensorFlow (the layer test checks it).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgekit._native import native_stderr_captured
from edgekit.bundle import Bundle
from edgekit.bundle.selfcheck import describe_tolerance, read_array
from edgekit.errors import InputError, IntegrityError
from edgekit.runtime.tensors import dequantize, quantize

if TYPE_CHECKING:
    from edgekit.runtime.model import Model


@dataclasses.dataclass(frozen=True)
class SelfCheckReport:
    """How one variant did on the bundle's sample.

    Attributes:
        variant: the variant checked.
        backend: the interpreter package that ran it (e.g. ``ai-edge-litert``).
        samples: model runs compared (rows of the stored input).
        max_abs_error: the largest difference from the expected output, in the output's
            units, of the output that came closest to its tolerance (inf: NaN or shape
            mismatch).
        tolerance: that output's tolerance (absolute, same units).
        basis: ``step`` (one quantization step) or ``relative`` (1e-5 of the largest magnitude).
        frontend_error: the largest difference between this device's front end on the
            raw sample and the stored input tensor; None when the bundle has no front
            end of edgekit's (no raw sample).
        frontend_tolerance: its tolerance; None likewise.
        seconds: how long the check took.
    """

    variant: str
    backend: str
    samples: int
    max_abs_error: float
    tolerance: float
    basis: str
    frontend_error: float | None = None
    frontend_tolerance: float | None = None
    seconds: float = 0.0

    @property
    def interpreter_ok(self) -> bool:
        return self.max_abs_error <= self.tolerance

    @property
    def frontend_ok(self) -> bool:
        return self.frontend_error is None or self.frontend_error <= (self.frontend_tolerance or 0.0)

    @property
    def ok(self) -> bool:
        return self.interpreter_ok and self.frontend_ok

    def summary(self) -> str:
        """One line: the variant, its error against its tolerance, the front end's, ok or FAILED."""
        line = (f"{self.variant} ({self.backend}): max |error| {_num(self.max_abs_error)} "
                f"{'<=' if self.interpreter_ok else '>'} {_num(self.tolerance)} ({describe_tolerance(self.basis)})")
        if self.frontend_error is not None:
            line += (f", front end {_num(self.frontend_error)} "
                     f"{'<=' if self.frontend_ok else '>'} {_num(self.frontend_tolerance)}")
        return line + f", {self.samples} run{'s' if self.samples != 1 else ''}: " + ("ok" if self.ok else "FAILED")

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "ok": self.ok}


class SelfCheckFailed(IntegrityError):
    """This device does not compute what the workstation computed (exit 3).

    Attributes:
        report: the measured `SelfCheckReport`.
    """

    def __init__(self, report: SelfCheckReport) -> None:
        self.report = report
        if not report.frontend_ok:
            found = (f"the front end's tensor off by {_num(report.frontend_error)} (tolerance "
                     f"{_num(report.frontend_tolerance)})")
            if not report.interpreter_ok:
                found += f" and the outputs off by {_num(report.max_abs_error)} (tolerance {_num(report.tolerance)})"
        else:
            found = f"a max |error| of {_num(report.max_abs_error)}"
        super().__init__(
            f"self-check of variant {report.variant} ({report.backend}) failed",
            expected=f"the workstation's outputs on the bundle's sample within {_num(report.tolerance)} "
                     f"({describe_tolerance(report.basis)})",
            found=found,
            hint="this device computes something else (interpreter or library build, delegate, front end); "
                 "do not serve this variant here: try another (--variant) or the workstation's library versions "
                 "(edgekit inspect BUNDLE lists them)")


class NoSelfCheck(InputError):
    """The bundle carries no sample to check with (made before self-checks existed; exit 1)."""

    def __init__(self, bundle: Bundle, variant: str | None = None) -> None:
        made_by = (bundle.manifest.provenance or {}).get("command")
        rebuild = "rebuild it with this edgekit's convert" + (f" (it was made by: {made_by})" if made_by else
                                                               f" (edgekit convert MODEL -o {bundle.path.name})")
        what = (f"bundle {bundle.path.name} has no self-check sample" if variant is None else
                f"bundle {bundle.path.name} has no self-check expectation for variant {variant}")
        super().__init__(what, expected="a selfcheck/ sample and expected outputs (edgekit convert stores them)",
                         found="none (the bundle was made by an older edgekit)" if variant is None else
                         "expectations for other variants only",
                         hint=f"{rebuild}; or go without it: verify without --run, serve and deploy with "
                              "--skip-self-check")
        self.bundle = bundle


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    return f"{value:.3g}"


def _max_error(got: np.ndarray, want: np.ndarray) -> float:
    """The largest absolute difference; inf for another shape or NaN/inf where the other is finite."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape:
        return float("inf")
    finite = np.isfinite(want)
    if not np.array_equal(np.isfinite(got), finite) or not np.array_equal(got[~finite], want[~finite]):
        return float("inf")
    return float(np.max(np.abs(got[finite] - want[finite]))) if finite.any() else 0.0


def run_self_check(model: Model) -> SelfCheckReport:
    """Run the bundle's sample through `model` and measure it, whatever the outcome.

    Raises:
        NoSelfCheck: the bundle has no sample, or none for this variant.
        IntegrityError: a stored array that does not fit the model (a bundle edited by hand).
    """
    started = time.perf_counter()
    bundle = model.bundle
    spec = bundle.manifest.self_check
    if spec is None:
        raise NoSelfCheck(bundle)
    expectation = spec.variants.get(model.variant.name)
    if expectation is None:
        raise NoSelfCheck(bundle, model.variant.name)
    x = read_array(bundle.read(spec.input), spec.input)
    row_shape = tuple(1 if d < 0 else d for d in model.input.shape[1:])
    if x.ndim < 1 or len(x) == 0 or x.dtype.kind != "f" or int(np.prod(x.shape[1:])) != int(np.prod(row_shape)):
        raise IntegrityError(f"self-check input {spec.input}",
                             expected=f"float rows of the model input {row_shape}",
                             found=f"{x.dtype} {tuple(x.shape)}", hint="rebuild the bundle with edgekit convert")
    x = x.astype(np.float32, copy=False)
    expected = [read_array(bundle.read(name), name) for name in expectation.outputs]

    frontend_error = None
    if spec.raw:
        frontend_error, start = 0.0, 0
        for name, rows in zip(spec.raw, spec.rows, strict=True):
            raw = bundle.read(name) if name.endswith(".wav") else read_array(bundle.read(name), name)
            features = np.asarray(model.preprocessor.features(raw), np.float32)
            want = x[start : start + rows]
            start += rows
            row = int(np.prod(x.shape[1:]))
            got = features.reshape(-1, *x.shape[1:])[:rows] if features.size % row == 0 else features
            frontend_error = max(frontend_error, _max_error(got, want))

    # the interpreter: the stored tensors, quantized as predict quantizes (batch 1)
    runs: list[list[np.ndarray]] = [[] for _ in model.outputs]
    shape = (1, *row_shape)
    for i in range(len(x)):
        tensor = quantize(x[i].reshape(shape), model.input)
        outputs = model.backend.run([tensor])
        for k, (value, out_spec) in enumerate(zip(outputs, model.outputs, strict=True)):
            runs[k].append(dequantize(value, out_spec))
    worst = (-1.0, 0.0, 0.0, expectation.basis[0])  # (ratio, error, tolerance, basis)
    for collected, want, tolerance, basis in zip(runs, expected, expectation.tolerance, expectation.basis,
                                                 strict=True):
        got = np.concatenate(collected) if collected else np.zeros(0, np.float32)
        error = _max_error(got.reshape(want.shape) if got.size == want.size else got, want)
        ratio = error / tolerance if tolerance > 0 else (0.0 if error == 0 else float("inf"))
        if ratio > worst[0]:
            worst = (ratio, error, tolerance, basis)
    return SelfCheckReport(
        variant=model.variant.name, backend=model.package, samples=len(x), max_abs_error=worst[1],
        tolerance=worst[2], basis=worst[3], frontend_error=frontend_error,
        frontend_tolerance=spec.input_tolerance if spec.raw else None,
        seconds=time.perf_counter() - started)


def self_check(model: Model) -> SelfCheckReport:
    """Check that `model` (a loaded bundle variant) computes the bundle's expected outputs.

    Returns:
        The report (``ok`` is True).

    Raises:
        SelfCheckFailed: the front end or the interpreter is off by more than the
            tolerance (an IntegrityError: exit 3).
        NoSelfCheck: the bundle carries no sample (made before self-checks existed), or
            none for this variant (an InputError: exit 1; the hint says how to rebuild).
    """
    report = run_self_check(model)
    if not report.ok:
        raise SelfCheckFailed(report)
    return report


@dataclasses.dataclass(frozen=True)
class BundleCheck:
    """`check_bundle`'s outcome: a report per variant checked, and what cannot run here."""

    reports: tuple[SelfCheckReport, ...]
    not_here: tuple[str, ...]  # variants whose format has no interpreter installed here

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.reports)

    def lines(self) -> list[str]:
        out = [f"self-check {r.summary()}" for r in self.reports]
        if self.not_here:
            out.append(f"self-check not run here (no interpreter for them installed): {', '.join(self.not_here)}")
        return out

    def raise_for_failure(self) -> None:
        """Raises SelfCheckFailed for the first variant that failed (the others are in `lines`)."""
        for report in self.reports:
            if not report.ok:
                raise SelfCheckFailed(report)


def check_bundle(bundle: Bundle, *, variant: str | None = None, backend: str | None = None,
                 threads: int | None = None) -> BundleCheck:
    """Self-check every variant of a verified bundle that runs here (or the one named).

    Args:
        bundle: from `edgekit.bundle.open_bundle` (hashes, and the signature with a key,
            already checked).
        variant: check this variant only.
        backend: use this interpreter (``litert``, ``onnxruntime``...): only the variants
            of its format are checked.
        threads: interpreter threads (default: the interpreter's own choice).

    Raises:
        NoSelfCheck: the bundle has no sample (exit 1).
        InputError / MissingDependencyError: an unknown variant or backend, or nothing
            in the bundle runs here.
    """
    from edgekit.runtime.backends import BACKEND_NAMES, installed_backends, open_backend
    from edgekit.runtime.model import Model
    from edgekit.runtime.select import choose

    manifest = bundle.manifest
    if manifest.self_check is None:
        raise NoSelfCheck(bundle)
    if variant is not None:
        names = [manifest.variant(variant).name]
        not_here: list[str] = []
    else:
        if backend is not None:
            choose(manifest, backend=backend)  # an unknown backend, or none of its format here, raises
        forced = BACKEND_NAMES[backend][0] if backend is not None else None
        installed = installed_backends()
        wanted = [v for v in manifest.variants if forced is None or v.format == forced]
        names = [v.name for v in wanted if installed.get(v.format)]
        not_here = [v.name for v in wanted if not installed.get(v.format)]
        if not names:
            choose(manifest, backend=backend)  # raises: nothing runs here, with the install hint
    reports = []
    for name in names:
        choice = choose(manifest, variant=name, backend=backend)
        with native_stderr_captured():  # LiteRT announces its CPU delegate on stderr
            engine = open_backend(choice.variant.format, bundle.variant_bytes(name), threads=threads,
                                  package=choice.package, outputs=[o.name for o in choice.variant.outputs])
        model = Model(bundle, choice, engine)
        try:
            reports.append(run_self_check(model))
        finally:
            model.close()
    return BundleCheck(tuple(reports), tuple(not_here))


def verify_run(path: str | Path, *, variant: str | None = None, backend: str | None = None,
               public_key: Any = None, threads: int | None = None) -> tuple[Bundle, BundleCheck]:
    """Verify a bundle (hashes; the signature with `public_key`) and self-check it here.

    Raises:
        IntegrityError: verification failed (nothing is run).
        NoSelfCheck, InputError, MissingDependencyError: see `check_bundle`.
    """
    from edgekit.bundle import open_bundle

    bundle = open_bundle(path, public_key=public_key)
    return bundle, check_bundle(bundle, variant=variant, backend=backend, threads=threads)
