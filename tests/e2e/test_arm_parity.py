"""The comparison rules of tools/arm_parity.py (make test-arm64): what counts as the same
output on x86 and on an emulated arm64/armv7 install. The emulated runs themselves are
behind the make target (minutes); these are the rules alone."""

from __future__ import annotations

import numpy as np

from tests.support.parity import compare_results, compare_tensors, table


def test_int8_tensors_may_differ_by_one_step_not_two():
    a = np.array([[-128, 0, 5, 127]], np.int8)
    assert compare_tensors(a, a.copy()).ok
    assert compare_tensors(a, np.array([[-127, 1, 4, 127]], np.int8)).ok
    two = compare_tensors(a, np.array([[-128, 2, 5, 127]], np.int8))
    assert not two.ok and "2 steps" in two.detail
    # no wrap-around: -128 vs 127 is 255 steps, not 1
    assert not compare_tensors(np.array([-128], np.int8), np.array([127], np.int8)).ok


def test_float_tensors_within_1e5_of_the_largest_magnitude():
    a = np.array([0.5, 0.25, 1e-9], np.float32)
    assert compare_tensors(a, a + np.float32(4e-6)).ok  # 4e-6 / 0.5 = 8e-6
    assert not compare_tensors(a, a + np.float32(1e-5)).ok  # 2e-5 relative
    assert not compare_tensors(a, a.astype(np.float64)).ok  # dtype differs
    assert not compare_tensors(a, a[:2]).ok  # shape differs
    assert not compare_tensors(a, np.array([0.5, np.nan, 0], np.float32)).ok


def _result(label, score, others=()):
    return {"label": label, "score": score,
            "top_k": [{"label": label, "score": score}, *({"label": k, "score": s} for k, s in others)]}


def test_results_need_identical_labels_and_scores_within_a_step():
    x86 = [_result("cat", 0.5, [("dog", 0.25)]), _result("dog", 0.75)]
    same = [_result("cat", 0.5 + 1 / 256, [("dog", 0.25)]), _result("dog", 0.75)]
    assert compare_results(x86, same, step=1 / 256).ok  # one int8 step
    assert not compare_results(x86, same, step=None).ok  # too far for float outputs
    swapped = [_result("dog", 0.5), _result("dog", 0.75)]
    verdict = compare_results(x86, swapped, step=1 / 256)
    assert not verdict.ok and "label #0" in verdict.detail
    assert not compare_results(x86, x86[:1], step=None).ok  # a result missing
    assert not compare_results([], [], step=None).ok  # nothing ran is no agreement
    # JSON rounding (6 decimals) is allowed on top of the relative tolerance
    assert compare_results([_result("a", 1e-4)], [_result("a", 1e-4 + 9e-7)], step=None).ok


def test_table_aligns_columns():
    text = table([("inspect", "exit 0", "exit 0", "ok")])
    lines = text.splitlines()
    assert lines[0].split() == ["check", "x86", "arm64", "verdict"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert lines[2].index("exit 0") == lines[0].index("x86")
