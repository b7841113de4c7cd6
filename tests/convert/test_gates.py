"""The accuracy gate judges a drop with its noise: one sample over the budget passes, a
variant clearly worse than allowed fails (exit 4) with the table printed before the error.

The model and data (tests/support/gate_case.py) need no training: each boundary sample in
the validation split is exactly one sample the int8 variant gets wrong.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.bundle import open_bundle
from edgekit.stats import RULE
from tests.support.gate_case import ONE_SAMPLE_COUNT, boundary_data, boundary_model

pytestmark = pytest.mark.tf

VARIANTS = ("tflite-fp32", "tflite-int8")


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    root = tmp_path_factory.mktemp("gate")
    model = boundary_model(root / "boundary.keras")
    one = boundary_data(root / "one.npz", ONE_SAMPLE_COUNT, 1)
    bad = boundary_data(root / "bad.npz", ONE_SAMPLE_COUNT, 20)
    assert one == {"validation": 89, "boundary": 1} and bad["boundary"] == 20
    return root, model


@pytest.fixture(scope="module")
def one_sample(case):
    """convert on 89 validation samples of which int8 gets exactly one wrong (1.12 points)."""
    from edgekit.convert.run import ConvertConfig, convert

    root, model = case
    bundle = root / "one.edgekit"
    report = convert(ConvertConfig(model=model, output=bundle, variants=VARIANTS, data=root / "one.npz",
                                   max_accuracy_drop=1.0))
    return report, bundle


def test_one_sample_over_the_budget_passes_the_gate_and_says_why(one_sample):
    report, bundle = one_sample
    int8 = next(v for v in report.variants if v.name == "tflite-int8")
    m = int8.metrics
    assert m["samples"] == 89 and m["drop_basis"] == "accuracy"
    assert m["drop_pts"] == pytest.approx(100 / 89)  # one sample, more than the 1-point budget
    assert m["drop_resolution_pts"] == pytest.approx(100 / 89)
    low, high = m["drop_ci95"]
    assert low < 1.0 < m["drop_pts"] < high and m["drop_method"] == "newcombe-paired"
    assert int8.gate == m["gate"] == "pass" and report.gate_passed
    assert next(v for v in report.variants if v.name == "tflite-fp32").metrics["gate"] == "none"

    table = report.render()
    header = next(line for line in table.splitlines() if line.startswith("variant"))
    assert "95% CI" in header and "1 smp" in header
    row = next(line for line in table.splitlines() if line.startswith("tflite-int8"))
    assert "1.12" in row and f"{low:.1f}..{high:.1f}" in row and row.endswith("pass")
    assert f"gate --max-accuracy-drop 1: passed; a variant {RULE}" in table
    document = report.to_dict()
    assert document["gate"]["rule"] == RULE and document["gate"]["passed"] is True

    manifest = open_bundle(bundle).manifest
    recorded = manifest.variant("tflite-int8").metrics
    assert recorded["drop_ci95"] == m["drop_ci95"] and recorded["gate"] == "pass"
    assert recorded["drop_resolution_pts"] == pytest.approx(100 / 89)


def test_the_runtime_picks_int8_and_states_the_evidence(one_sample):
    from edgekit.runtime.select import choose

    _report, bundle = one_sample
    choice = choose(open_bundle(bundle).manifest)
    assert choice.variant.name == "tflite-int8"
    assert "validated on 89 samples, drop 1.12 points (95% CI " in choice.reason
    assert "1 sample = 1.12 points" in choice.reason


def test_a_clearly_bad_variant_fails_with_the_table_before_the_error(case, tmp_path, capsys):
    from edgekit.cli import main  # in this process: TensorFlow is loaded already

    root, model = case
    out = tmp_path / "bad.edgekit"
    code = main(["-q", "convert", str(model), "-o", str(out), "--data", str(root / "bad.npz"),
                 "--variants", ",".join(VARIANTS), "--max-accuracy-drop", "1"])
    stdout, stderr = capsys.readouterr()
    assert code == 4, stderr
    row = next(line for line in stdout.splitlines() if line.startswith("tflite-int8"))
    assert "22.47" in row and row.endswith("fail")  # 20 of 89
    assert "FAILED for tflite-int8; a variant fails only when the lower end" in stdout
    assert stderr.count("\n") == 1  # the table on stdout, then one line on stderr
    last = stderr.strip()
    assert last.startswith("edgekit: gate failed: accuracy gate failed for tflite-int8; bundle not written: "
                           "expected a drop of at most 1 points beyond noise")
    assert "found tflite-int8 22.47 points (95% CI 14.0..32.2, 1 sample = 1.12 points)" in last
    assert not out.exists()


def test_train_export_validates_on_the_whole_heldout_split(case, tmp_path):
    """`train --export` (its export_bundle): calibration from calibration.npz, every held-out
    sample validates; a failed gate leaves the table in convert.txt, which the error names."""
    from edgekit.train.run import CALIBRATION_FILE, export_bundle, gate_error

    root, model = case
    folder = tmp_path / "train"
    folder.mkdir()
    arrays = np.load(root / "bad.npz")
    np.savez(folder / "heldout.npz", x=arrays["x"], y=arrays["y"])
    ordinary = np.abs(arrays["x"][:, 0, 0]) >= 1.0
    np.savez(folder / CALIBRATION_FILE, x=arrays["x"][ordinary][:40])
    lines: list[str] = []
    report = export_bundle(model, folder, tmp_path / "t.edgekit", {"variants": list(VARIANTS),
                           "max_accuracy_drop": 1.0, "auto_fallback": False}, 0, None, lines.append,
                           lambda items, _label, _total: items)
    assert report.data["validation_samples"] == ONE_SAMPLE_COUNT  # all of them, not a 70% slice
    assert report.data["calibration_samples"] == 40 and report.data["calibration_source"].endswith(CALIBRATION_FILE)
    assert not report.gate_passed
    table = (folder / "convert.txt").read_text()
    assert table.strip() == report.render().strip() and "FAILED for tflite-int8" in table
    error = str(gate_error(report, folder))
    assert "above" not in error and str(folder / "convert.txt") in error
