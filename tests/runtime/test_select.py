"""`edgekit.runtime.select`: the automatic choice follows the gate's noise-aware rule and
says truthfully why, on hand-built manifests (no model bytes, nothing opened)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from edgekit.bundle import Manifest, Variant
from edgekit.runtime import select
from edgekit.stats import accuracy_drop, disagreement


@pytest.fixture(autouse=True)
def both_interpreters(monkeypatch):
    """Both formats run here, whatever this machine has installed."""
    monkeypatch.setattr(select, "installed_backends", lambda: {"tflite": "ai-edge-litert", "onnx": "onnxruntime"})


def measured(name: str, precision: str, ref_correct: np.ndarray | None = None, var_correct: np.ndarray | None = None,
             **extra: Any) -> Variant:
    """A variant whose metrics are what convert records: drop_pts with its interval."""
    metrics: dict[str, Any] = {"samples": len(ref_correct) if ref_correct is not None else 450,
                               "max_abs_error": 1e-6 if precision == "fp32" else 0.02, "identical": False,
                               "drop_basis": "accuracy", **extra}
    if ref_correct is not None:
        drop = accuracy_drop(ref_correct, var_correct)
        metrics.update(drop_pts=drop.value, **drop.to_metrics())
    fmt = name.split("-")[0]
    return Variant(name=name, format=fmt, file=f"models/{name}", precision=precision, inputs=(), outputs=(),
                   metrics=metrics)


def manifest(*variants: Variant, random: bool = False, budget: float | None = None) -> Manifest:
    return Manifest(name="m", variants=variants,
                    metrics={"fidelity_on_random_data": random, "max_accuracy_drop_pts": budget})


def outcomes(n: int, ref_wrong: int = 0, var_wrong: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Paired correctness: the variant gets `var_wrong` of the float model's right answers wrong."""
    ref = np.ones(n, bool)
    ref[:ref_wrong] = False
    var = ref.copy()
    var[ref_wrong : ref_wrong + var_wrong] = False
    return ref, var


def test_one_sample_over_the_budget_is_noise_and_int8_is_chosen():
    # 89 samples, one lost: 1.12 points > the 1-point budget, but within noise
    ref, var = outcomes(89, ref_wrong=5, var_wrong=1)
    bundle = manifest(measured("tflite-int8", "int8", ref, var), measured("onnx-fp32", "fp32", ref, ref), budget=1.0)
    choice = select.choose(bundle)
    assert choice.variant.name == "tflite-int8"
    assert choice.reason.startswith("tflite-int8: smallest precision that runs here; validated on 89 samples, "
                                    "drop 1.12 points (95% CI ")
    assert "1 sample = 1.12 points" in choice.reason and choice.reason.endswith("; via ai-edge-litert")
    assert "passed over" not in choice.reason


def test_a_drop_beyond_noise_goes_to_the_back_and_the_reason_says_why():
    ref, var = outcomes(450, ref_wrong=20, var_wrong=40)
    bundle = manifest(measured("tflite-int8", "int8", ref, var), measured("onnx-fp32", "fp32", ref, ref), budget=1.0)
    choice = select.choose(bundle)
    assert choice.variant.name == "onnx-fp32"
    reason = choice.reason
    assert reason.startswith("onnx-fp32: smallest precision that runs here after passing over tflite-int8; "
                             "float32 like the source model, nothing quantized")
    assert "fidelity drop 0.00" not in reason and "drop 0.00" not in reason
    assert "passed over tflite-int8: its drop 8.89 points (95% CI " in reason
    assert "exceeds the budget of 1 points beyond noise" in reason


def test_the_bundles_own_budget_applies_unless_one_is_given():
    ref, var = outcomes(450, var_wrong=9)  # 2 points, CI about 1.1..3.8
    bundle = manifest(measured("tflite-int8", "int8", ref, var), measured("onnx-fp32", "fp32", ref, ref), budget=5.0)
    assert select.choose(bundle).variant.name == "tflite-int8"
    assert select.choose(bundle, max_drop_pts=0.5).variant.name == "onnx-fp32"


def test_random_calibration_is_never_preferred_silently():
    # convert --allow-random-calibration: int8's figures on random inputs look perfect
    ref, _ = outcomes(400)
    bundle = manifest(measured("tflite-int8", "int8", ref, ref, drop_basis="top1_agreement"),
                      measured("onnx-fp32", "fp32", ref, ref, drop_basis="top1_agreement"), random=True)
    choice = select.choose(bundle)
    assert choice.variant.name == "onnx-fp32"
    assert "validated on random inputs only" in choice.reason
    assert "passed over tflite-int8: calibrated on RANDOM inputs (--allow-random-calibration)" in choice.reason
    assert "drop 0.00" not in choice.reason

    only_int8 = manifest(measured("tflite-int8", "int8", ref, ref), random=True)
    choice = select.choose(only_int8)
    assert choice.variant.name == "tflite-int8"
    assert "calibrated and validated on RANDOM inputs" in choice.reason and "WARNING" in choice.reason


def test_dynamic_range_needs_no_calibration_so_random_data_does_not_demote_it():
    ref, _ = outcomes(400)
    bundle = manifest(measured("tflite-int8", "int8", ref, ref), measured("tflite-dynamic", "dynamic-int8", ref, ref),
                      measured("tflite-fp32", "fp32", ref, ref), random=True)
    choice = select.choose(bundle)
    assert choice.variant.name == "tflite-dynamic"
    assert "passed over tflite-int8: calibrated on RANDOM inputs" in choice.reason


def test_real_validation_beats_an_unmeasured_variant():
    ref, var = outcomes(300, var_wrong=1)
    unmeasured = measured("tflite-int8", "int8", drop_basis=None)  # no drop recorded
    bundle = manifest(unmeasured, measured("onnx-fp32", "fp32", ref, ref))
    choice = select.choose(bundle)
    assert choice.variant.name == "onnx-fp32"
    assert "passed over tflite-int8: no drop measured (no gate basis for this task)" in choice.reason
    # a task with no basis at all (generation): nothing is measured, the smallest runs, saying so
    bundle = manifest(unmeasured, measured("onnx-fp32", "fp32", drop_basis=None))
    choice = select.choose(bundle)
    assert choice.variant.name == "tflite-int8" and "no drop measured" in choice.reason


def test_agreement_basis_speaks_of_disagreement_and_old_bundles_keep_the_bare_rule():
    agree = np.ones(450, bool)
    agree[:3] = False
    drop = disagreement(agree)
    variant = Variant(name="tflite-int8", format="tflite", file="m", precision="int8", inputs=(), outputs=(),
                      metrics={"samples": 450, "drop_pts": drop.value, "drop_basis": "top1_agreement",
                               **drop.to_metrics()})
    choice = select.choose(manifest(variant))
    assert "disagreement with the float model 0.67 points (95% CI 0.2..1.9, 1 sample = 0.22 points)" in choice.reason
    # written before intervals were recorded: judged on the bare figure, and said so
    old = Variant(name="tflite-int8", format="tflite", file="m", precision="int8", inputs=(), outputs=(),
                  metrics={"samples": 89, "drop_pts": 1.12, "drop_basis": "accuracy"})
    fp32 = measured("onnx-fp32", "fp32", *outcomes(89))
    choice = select.choose(manifest(old, fp32))
    assert choice.variant.name == "onnx-fp32" and "1.12 points (no interval recorded)" in choice.reason


def test_forced_and_preferred_choices_state_their_evidence():
    ref, var = outcomes(450, var_wrong=1)
    bundle = manifest(measured("tflite-int8", "int8", ref, var), measured("onnx-fp32", "fp32", ref, ref))
    forced = select.choose(bundle, variant="onnx-fp32")
    assert forced.reason.startswith("onnx-fp32 (forced); float32 like the source model")
    preferred = select.choose(bundle, prefer=("onnx-fp32", "tflite-int8"))
    assert preferred.variant.name == "onnx-fp32" and preferred.reason.startswith("onnx-fp32: device preference;")


def test_a_forced_backend_that_is_missing_or_has_no_variant_says_which(monkeypatch):
    """A device with LiteRT only, asked for --backend onnxruntime, heard "running this
    bundle's onnx, tflite variants: expected an interpreter for onnx"."""
    from edgekit.errors import InputError, MissingDependencyError

    monkeypatch.setattr(select, "installed_backends", lambda: {"tflite": "ai-edge-litert"})
    ref, var = outcomes(450)
    bundle = manifest(measured("tflite-int8", "int8", ref, var), measured("onnx-fp32", "fp32", ref, ref))
    with pytest.raises(MissingDependencyError, match=r"--backend onnxruntime: expected onnxruntime installed \(it "
                                                     r"runs this bundle's onnx variants\), found it is not installed"):
        select.choose(bundle, backend="onnxruntime")
    with pytest.raises(InputError, match=r"--backend onnxruntime: expected a bundle with a onnx variant, found tflite "
                                         r"variants only"):
        select.choose(manifest(measured("tflite-int8", "int8", ref, var)), backend="onnxruntime")


def test_a_regression_drop_speaks_in_percent_of_the_float_rmse():
    metrics = {"samples": 200, "drop_pts": 12.0, "drop_basis": "rmse_increase_pct", "drop_ci95": [8.0, 16.0],
               "drop_resolution_pts": None, "drop_method": "paired-bootstrap"}
    int8 = Variant(name="tflite-int8", format="tflite", file="m", precision="int8", inputs=(), outputs=(),
                   metrics=metrics)
    fp32 = measured("tflite-fp32", "fp32", *outcomes(200))
    choice = select.choose(manifest(int8, fp32, budget=5.0))
    assert choice.variant.name == "tflite-fp32"
    assert ("passed over tflite-int8: its RMSE increase over the float model's 12.00% (95% CI 8.0..16.0) exceeds "
            "the budget of 5% beyond noise") in choice.reason
    assert select.choose(manifest(int8, fp32, budget=10.0)).variant.name == "tflite-int8"  # 8 < 10: within noise


def test_install_hint_on_32_bit_arm_names_what_installs_there():
    """The registry has no armv7 wheels of either interpreter: a 32-bit Pi is told about Debian's
    onnxruntime (what make test-armv7 checks), not a pip line that cannot work there."""
    from edgekit._optional import extra_install

    assert extra_install("onnx", machine="x86_64") == 'pip install "edgekit-ml[onnx]"'
    assert extra_install("litert", machine="aarch64") == 'pip install "edgekit-ml[litert]"'
    assert extra_install("camera", machine="armv7l") == 'pip install "edgekit-ml[camera]"'
    onnx = extra_install("onnx", machine="armv7l")
    assert onnx.startswith("sudo apt install python3-onnxruntime") and "--system-site-packages" in onnx
    litert = extra_install("litert", machine="armv7l")
    assert litert.startswith("no TFLite interpreter installs on 32-bit ARM") and "python3-onnxruntime" in litert
