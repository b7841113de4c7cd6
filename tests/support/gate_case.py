"""A classifier and data sets where the accuracy gate is decided by a known number of
validation samples: the tests of the noise-aware gate and `tools/gate_one_sample.py` share it.

The model is one Dense layer with softmax and no training, on windows of one sensor row
of four channels (so that `edgekit run --source csv:FILE` can feed it): class 1 when
``x[0] > 0``.
Ordinary samples sit far from the boundary (``|x[0]|`` in 1..3), where float and int8
agree. A *boundary* sample has ``x[0] = 0.001``, label 1: the float model says class 1
(p = 0.5005), while int8 quantizes the input to 0 (scale about 6/255), the logits tie,
both probabilities dequantize to 0.5 and argmax says class 0. Each boundary sample that
lands in the validation split is exactly one sample the int8 variant gets wrong.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

FEATURES = 4
ONE_SAMPLE_COUNT = 136  # samples whose split validates on 89, as in issue 17 (one sample = 1.12 points)
CONTRACT = ("preprocess: {kind: sensor, channels: [x0, x1, x2, x3], window: 1, stride: 1, mean: [0, 0, 0, 0], "
            "std: [1, 1, 1, 1]}\nlabels: [negative, positive]\n")


def validation_indices(count: int, calibration_fraction: float = 0.3) -> list[int]:
    """The indices of an ``.npz`` of `count` samples that `edgekit convert` validates on
    (its split puts ``index:i`` by a hash; see `edgekit.datasets.loaders.split`)."""
    keys = [int.from_bytes(hashlib.sha256(f"index:{i}".encode()).digest()[:8], "big") for i in range(count)]
    return [i for i in range(count) if (keys[i] % 10_000) / 10_000.0 >= calibration_fraction]


def boundary_model(path: Path) -> Path:
    """Save the one-layer classifier (no training, fixed weights) to `path` (.keras), with
    its contract (``MODEL.preprocess.yaml``: a sensor front end that changes nothing)."""
    import keras

    from tests.support.models import save_keras

    inputs = keras.Input((1, FEATURES), name="x")
    dense = keras.layers.Dense(2, activation="softmax", name="head")
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    weights = np.zeros((FEATURES, 2), np.float32)
    weights[0] = (-1.0, 1.0)  # logits (-x0, x0)
    dense.set_weights([weights, np.zeros(2, np.float32)])
    save_keras(model, path)
    path.with_name(path.name.removesuffix(".keras") + ".preprocess.yaml").write_text(CONTRACT)
    return path


def boundary_data(path: Path, count: int, boundary: int, seed: int = 0) -> dict[str, int]:
    """Write ``x``/``y`` to `path` (.npz): `count` samples, `boundary` of them on the
    boundary and in the validation split (the others in neither place).

    Returns:
        ``validation``: how many samples convert will validate on; ``boundary``: how
        many of those the int8 variant gets wrong.
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, count)
    x = rng.normal(0.0, 1.0, (count, FEATURES)).astype(np.float32)
    x[:, 0] = np.where(y == 1, 1.0, -1.0) * rng.uniform(1.0, 3.0, count)
    validation = validation_indices(count)
    for i in validation[:boundary]:
        x[i, 0], y[i] = 0.001, 1
    np.savez(path, x=x[:, None, :], y=y)
    return {"validation": len(validation), "boundary": min(boundary, len(validation))}
