"""Every audio front-end option against the library it imitates, and numpy against TensorFlow.

The cases and references are in `tests.support.frontend_parity` (``tools/frontend_parity.py``
prints the same figures).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edgekit.features import audio
from edgekit.spec import AudioPreprocess
from tests.support import frontend_parity

CASES = frontend_parity.cases()


@pytest.mark.tf
@pytest.mark.parametrize("case", CASES, ids=[c.option.split(" (")[0] for c in CASES])
def test_option_matches_its_reference_and_tensorflow(case):
    pytest.importorskip("librosa")
    pytest.importorskip("scipy")
    figures = frontend_parity.measure(case)
    if figures.vs_reference is not None:
        assert figures.fraction(figures.vs_reference) <= frontend_parity.TOLERANCE, figures
    assert figures.fraction(figures.vs_tensorflow) <= frontend_parity.TOLERANCE, figures


def test_the_dcase_preset_gives_640_value_vectors_of_5_frames():
    from edgekit.presets import preset_spec

    spec = preset_spec("dcase2020-t2-logmel", clip_samples=16000)
    clip = frontend_parity.parity_clip(1.0)
    vectors = audio.features(clip, spec)
    assert vectors.shape == (spec.frames - 4, 640) == (spec.num_frames, spec.num_features)
    frames = audio.features(clip, dataclasses.replace(spec, stack_frames=1))
    for t in range(5):  # vector i is frames i..i+4, frame after frame
        np.testing.assert_array_equal(vectors[:, 128 * t : 128 * (t + 1)], frames[t : t + len(vectors)])


def test_a_symmetric_window_is_numpy_s():
    np.testing.assert_allclose(audio._window("hann", 400, False), np.hanning(400), atol=1e-15)
    np.testing.assert_allclose(audio._window("hamming", 400, False), np.hamming(400), atol=1e-15)
    np.testing.assert_array_equal(audio._window("hann", 1, False), [1.0])


def test_the_default_spec_computes_what_it_computed_before():
    """Old bundles: the defaults of every new key leave the features unchanged (values
    recorded with the front end before the new keys existed)."""
    clip = frontend_parity.parity_clip(1.0)
    features = audio.features(clip, AudioPreprocess())
    assert features.shape == (49, 10)
    recorded = [20.351696014404297, 1.6878622770309448, 0.8725957870483398]
    np.testing.assert_allclose(features[[0, 24, 48], [0, 1, 9]], recorded, rtol=1e-6, atol=1e-5)


@pytest.mark.tf
def test_the_speech_commands_preset_is_close_to_audio_ops():
    """The preset imitates the speech_commands example's audio_ops MFCC; docs/preprocess.md
    gives the measured gap (filterbank bin range and log floor)."""
    largest, median, span = frontend_parity.audio_ops_difference()
    assert largest <= 0.02 * span and median <= 0.005 * span
