"""Magnitude pruning (`edgekit.prune.magnitude`): the Zhu & Gupta schedule, masks held
through ``model.fit`` with Adam (the variable-constraint path, with and without XLA, under
mixed precision), layer selection on the real architectures, strip and save/load, and the
gzip gain of the sparse kernels.

The models are a few thousand weights trained for a few steps on random data: the tests
check counts of zeros and files, not accuracy.
"""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from edgekit.errors import InputError

pytestmark = pytest.mark.tf


@pytest.fixture(scope="module")
def keras():
    from edgekit.keras_env import import_keras

    return import_keras()


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.random((64, 8, 8, 3), dtype=np.float32), rng.integers(0, 4, 64)


def tiny(keras, name="tiny"):
    """Stem conv, a conv with the user's own MaxNorm, a separable conv, two dense layers."""
    keras.utils.set_random_seed(1)
    layers = keras.layers
    inputs = keras.Input((8, 8, 3))
    x = layers.Conv2D(8, 3, padding="same", name="stem")(inputs)
    x = layers.BatchNormalization()(x)
    theirs = keras.constraints.MaxNorm(0.5, axis=[0, 1, 2])
    x = layers.Conv2D(16, 3, padding="same", name="conv", kernel_constraint=theirs)(x)
    x = layers.SeparableConv2D(16, 3, name="sep")(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(32, name="hidden")(x)
    outputs = layers.Dense(4, activation="softmax", name="classifier", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


def compiled(keras, model, jit_compile=False):
    model.compile(keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy", jit_compile=jit_compile)
    return model


def kernel(model, layer, weight="kernel"):
    return next(v for v in model.get_layer(layer).weights if v.name == weight).numpy()


def zeros(array) -> int:
    return int(array.size - np.count_nonzero(array))


# ---------------------------------------------------------------------------
# the schedule


def test_schedule_is_zhu_gupta_cubic():
    from edgekit.prune.magnitude import Schedule, polynomial_sparsity

    s = Schedule(0.8, begin_step=100, end_step=300, frequency=10)
    assert s.sparsity_at(0) == 0.0 and s.sparsity_at(100) == 0.0
    assert s.sparsity_at(200) == pytest.approx(0.8 * (1 - 0.5**3)) == pytest.approx(0.7)
    assert s.sparsity_at(150) == pytest.approx(0.8 * (1 - 0.75**3))
    assert s.sparsity_at(300) == 0.8 and s.sparsity_at(10_000) == 0.8
    values = [s.sparsity_at(t) for t in range(0, 400)]
    assert all(b >= a for a, b in zip(values, values[1:], strict=False))
    assert polynomial_sparsity(5, begin_step=0, end_step=10, initial=0.2, final=0.6) == pytest.approx(
        0.6 - 0.4 * 0.5**3)
    with pytest.raises(TypeError):
        Schedule(0.5)  # end_step is required


@pytest.mark.parametrize("value", [-0.1, 1.0, 1.5, float("nan")])
def test_bad_sparsity_is_an_input_error(value, keras):
    from edgekit.prune.magnitude import MagnitudePruner, Schedule

    with pytest.raises(InputError, match="sparsity") as info:
        Schedule(value, end_step=10)
    assert "[0, 1)" in str(info.value) and "\n" not in str(info.value)
    pruner = MagnitudePruner(tiny(keras), Schedule(0.5, end_step=10))
    with pytest.raises(InputError, match="sparsity"):
        pruner.update_masks(value)


def test_bad_schedule_and_scope(keras):
    from edgekit.prune.magnitude import MagnitudePruner, Schedule

    with pytest.raises(InputError, match="end step"):
        Schedule(0.5, begin_step=10, end_step=5)
    with pytest.raises(InputError, match="frequency"):
        Schedule(0.5, end_step=5, frequency=0)
    with pytest.raises(InputError, match=r"scope.*\['layer', 'global'\]"):
        MagnitudePruner(tiny(keras), Schedule(0.5, end_step=5), scope="model")


def test_masks_change_only_every_frequency_steps(keras, data):
    """Begin 2, end 9, every 3 steps: masks at steps 2, 5, 8 and (the target) 9, and the
    kernel's zero count between two updates is the last update's."""
    from edgekit.prune.magnitude import MagnitudePruner, Schedule

    model = compiled(keras, tiny(keras))
    schedule = Schedule(0.6, begin_step=2, end_step=9, frequency=3)
    pruner = MagnitudePruner(model, schedule)
    seen = []
    watch = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: seen.append(zeros(kernel(model, "conv"))))
    model.fit(*data, batch_size=8, epochs=2, verbose=0, shuffle=False, callbacks=[pruner.callback(), watch])
    assert pruner.step == 16
    assert [step for step, _ in pruner.updates] == [2, 5, 8, 9]
    size = kernel(model, "conv").size
    expected, current = [], 0
    for step in range(16):
        if step in (2, 5, 8, 9):
            current = round(schedule.sparsity_at(step) * size)
        expected.append(current)
    assert seen == expected


def test_steps_per_execution(keras):
    """Callbacks see one batch per execution of 3 steps: the schedule still counts steps,
    updates at the first step of each period it enters and reaches the target."""
    from edgekit.prune.magnitude import MagnitudePruner, Schedule

    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16), keras.layers.Dense(16),
                              keras.layers.Dense(4)])
    model.compile("adam", "mse", steps_per_execution=3)
    pruner = MagnitudePruner(model, Schedule(0.8, end_step=10, frequency=2))
    model.fit(np.ones((128, 8)), np.ones((128, 4)), batch_size=8, epochs=2, verbose=0, callbacks=[pruner.callback()])
    assert pruner.step == 32
    assert [step for step, _ in pruner.updates] == [0, 3, 6, 9, 12]
    assert zeros(kernel(model, pruner.pruned[0][0])) == round(0.8 * 16 * 16)


# ---------------------------------------------------------------------------
# masks through training


@pytest.mark.parametrize("jit_compile", [False, True])
def test_layer_scope_exact_and_held_through_adam(keras, data, jit_compile):
    from edgekit.prune.magnitude import MagnitudePruner, Schedule

    model = compiled(keras, tiny(keras), jit_compile)
    model.fit(*data, batch_size=16, epochs=1, verbose=0)  # a traced step exists before the pruner
    pruner = MagnitudePruner(model, Schedule(0.8, end_step=4, frequency=2))
    model.fit(*data, batch_size=16, epochs=2, verbose=0, callbacks=[pruner.callback()])
    pruned = pruner.pruned
    assert pruned == [("conv", "kernel"), ("sep", "depthwise_kernel"), ("sep", "pointwise_kernel"),
                      ("hidden", "kernel")]
    before = {}
    for layer, weight in pruned:
        values = kernel(model, layer, weight)
        assert zeros(values) == round(0.8 * values.size), (layer, weight)
        before[layer, weight] = values == 0
    # more steps, no callback: Adam's momentum must not bring a pruned weight back
    model.fit(*data, batch_size=16, epochs=2, verbose=0)
    for layer, weight in pruned:
        values = kernel(model, layer, weight)
        assert np.array_equal(values == 0, before[layer, weight]), (layer, weight)
    # the user's MaxNorm still applies (theirs, then the mask)
    norms = np.sqrt(np.sum(kernel(model, "conv") ** 2, axis=(0, 1, 2)))
    assert norms.max() <= 0.5 + 1e-5
    assert zeros(kernel(model, "stem")) == 0 and zeros(kernel(model, "classifier")) == 0


def test_global_scope_one_threshold(keras, data):
    from edgekit.prune.magnitude import MagnitudePruner, Schedule

    model = compiled(keras, tiny(keras))
    pruner = MagnitudePruner(model, Schedule(0.7, end_step=4, frequency=2), scope="global")
    model.fit(*data, batch_size=16, epochs=2, verbose=0, callbacks=[pruner.callback()])
    report = pruner.report()
    total = sum(row["weights"] for row in report["layers"])
    assert sum(row["zeros"] for row in report["layers"]) == round(0.7 * total)
    assert report["achieved"] == pytest.approx(0.7, abs=1e-3) and report["scope"] == "global"
    spread = [row["sparsity"] for row in report["layers"]]
    assert max(spread) - min(spread) > 0.05, spread
    # one threshold over the magnitudes of all pruned kernels together
    fresh = tiny(keras)
    pruner = MagnitudePruner(fresh, Schedule(0.7, end_step=1), scope="global")
    before = np.concatenate([kernel(fresh, layer, weight).ravel() for layer, weight in pruner.pruned])
    pruner.update_masks(0.7)
    pruner.apply_masks()
    after = np.concatenate([kernel(fresh, layer, weight).ravel() for layer, weight in pruner.pruned])
    assert zeros(after) == round(0.7 * after.size)
    assert np.abs(before[after == 0]).max() <= np.abs(before[after != 0]).min()


def test_mixed_precision(keras, data):
    from edgekit.prune.magnitude import MagnitudePruner, Schedule

    keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        model = tiny(keras)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    compiled(keras, model)
    assert model.get_layer("conv").compute_dtype == "float16"
    pruner = MagnitudePruner(model, Schedule(0.5, end_step=2, frequency=1))
    model.fit(*data, batch_size=16, epochs=2, verbose=0, callbacks=[pruner.callback()])
    for layer, weight in pruner.pruned:
        values = kernel(model, layer, weight)
        assert values.dtype == np.float32 and zeros(values) == round(0.5 * values.size)


def test_exact_count_with_ties(keras):
    from edgekit.prune.magnitude import MagnitudePruner, Schedule

    model = tiny(keras)
    model.get_layer("hidden").kernel.assign(np.ones((16, 32), dtype=np.float32))
    pruner = MagnitudePruner(model, Schedule(0.33, end_step=1))
    pruner.update_masks(0.33)
    pruner.apply_masks()
    assert zeros(kernel(model, "hidden")) == round(0.33 * 16 * 32)


# ---------------------------------------------------------------------------
# which layers


def test_first_and_last_left_alone_with_reasons(keras):
    from edgekit.prune.magnitude import MagnitudePruner, Schedule, select_layers

    model = tiny(keras)
    pruned, left = select_layers(model)
    assert [name for name, _ in pruned] == ["conv", "sep", "sep", "hidden"]
    assert dict(left) == {"stem": "first layer (kept dense by default; --prune-first to include)",
                          "classifier": "last layer (kept dense by default; --prune-last to include)"}
    pruned, left = select_layers(model, include=["stem", "classifier"], skip=["sep"])
    assert [name for name, _ in pruned] == ["stem", "conv", "hidden", "classifier"]
    assert left == [("sep", "listed in skip")]
    pruned, _ = select_layers(model, skip_first=False, skip_last=False, min_weights=500)
    assert [name for name, _ in pruned] == ["conv", "hidden"]  # stem 216, sep 144+256, classifier 128 weights
    with pytest.raises(InputError, match="unknown layer 'nope'") as info:
        MagnitudePruner(model, Schedule(0.5, end_step=1), skip=["nope"])
    assert "stem" in str(info.value) and "hidden" in str(info.value)
    with pytest.raises(InputError, match="unknown layer"):
        select_layers(model, include=["batch_normalization_nope"])
    report = MagnitudePruner(model, Schedule(0.5, end_step=1)).report()
    assert [row["name"] for row in report["left_alone"]] == ["stem", "classifier"]
    assert report["left_alone"][0]["reason"].startswith("first layer")


@pytest.mark.parametrize("name, shape", [("resnet8", (32, 32, 3)), ("ds_cnn", (49, 10))])
def test_real_architectures_prune_every_conv_but_the_first(keras, name, shape):
    from edgekit.prune.magnitude import MagnitudePruner, Schedule
    from edgekit.train import architectures

    model = architectures.build(keras, {"name": name}, shape, 10, "m")
    convs = [layer.name for layer in model.layers
             if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))]
    pruner = MagnitudePruner(model, Schedule(0.5, end_step=10))
    assert [layer for layer, _ in pruner.pruned] == convs[1:]
    assert all(weight == "kernel" for _, weight in pruner.pruned)
    assert [layer for layer, _ in pruner.left_alone] == [convs[0], "probabilities"]
    pruner.update_masks(0.5)
    pruner.apply_masks()
    report = pruner.report()
    assert report["achieved"] == pytest.approx(0.5, abs=1e-4)
    assert 0.3 < report["overall"] < report["achieved"]  # the stem and the classifier stay dense


def test_recurrent_and_attention_kernels_left_alone(keras):
    from edgekit.prune.magnitude import MagnitudePruner, Schedule, select_layers
    from edgekit.train import architectures

    rnn = architectures.build(keras, {"name": "rnn", "cell": "lstm"}, (32, 6), 4, "r")
    with pytest.raises(InputError, match="nothing to prune") as info:
        MagnitudePruner(rnn, Schedule(0.5, end_step=1))
    assert "LSTM: recurrent kernels are not pruned" in str(info.value) and "\n" not in str(info.value)
    pruner = MagnitudePruner(rnn, Schedule(0.5, end_step=1), include=["probabilities"])
    assert pruner.pruned == [("probabilities", "kernel")]
    lstm = next(layer.name for layer in rnn.layers if type(layer).__name__ == "LSTM")  # "lstm_N" later in a session
    with pytest.raises(InputError, match=f"unprunable layer '{lstm}'"):
        select_layers(rnn, include=[lstm])

    transformer = architectures.build(keras, {"name": "transformer", "layers": 1}, (32, 6), 4, "t")
    pruned, left = select_layers(transformer)
    # the feed-forward Dense pair is pruned; the patch embedding and classifier are first and last
    assert len(pruned) == 2 and all(type(transformer.get_layer(n)).__name__ == "Dense" for n, _ in pruned)
    assert ("attention_0", "MultiHeadAttention: attention projections are not pruned") in left


# ---------------------------------------------------------------------------
# strip, save, load


def test_strip_leaves_a_plain_model(keras, data, tmp_path):
    from edgekit.prune.magnitude import MagnitudePruner, Schedule, sparsity_of

    model = compiled(keras, tiny(keras))
    config = json.dumps(model.get_config(), sort_keys=True, default=str)
    pruner = MagnitudePruner(model, Schedule(0.75, end_step=2, frequency=1))
    model.fit(*data, batch_size=16, epochs=1, verbose=0, callbacks=[pruner.callback()])
    pruner.strip()
    assert json.dumps(model.get_config(), sort_keys=True, default=str) == config
    assert model.get_layer("hidden").kernel.constraint is None
    assert type(model.get_layer("conv").kernel.constraint).__name__ == "MaxNorm"
    report = pruner.report()
    path = tmp_path / "pruned.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert json.dumps(loaded.get_config(), sort_keys=True, default=str) == config
    assert np.array_equal(model.predict(data[0], verbose=0), loaded.predict(data[0], verbose=0))
    measured = sparsity_of(loaded)
    assert measured["overall"] == report["overall"]
    rows = {row["name"]: row for row in measured["layers"]}
    for row in report["layers"]:
        assert rows[row["name"]]["zeros"] == row["zeros"]
    assert rows["stem"]["zeros"] == 0
    # the traced step is dropped with the constraints: training again can revive weights
    model.fit(*data, batch_size=16, epochs=1, verbose=0)
    assert zeros(kernel(model, "hidden")) < round(0.75 * 16 * 32)
    with pytest.raises(RuntimeError):
        pruner.callback()


def test_sparse_kernels_gzip_three_times_smaller(keras):
    from edgekit.prune.magnitude import MagnitudePruner, Schedule
    from edgekit.train import architectures

    model = architectures.build(keras, {"name": "resnet8"}, (32, 32, 3), 10, "m")
    pruner = MagnitudePruner(model, Schedule(0.8, end_step=1))
    dense = np.concatenate([kernel(model, layer, weight).ravel() for layer, weight in pruner.pruned])
    pruner.update_masks(0.8)
    pruner.strip()
    kernels = [kernel(model, layer, weight) for layer, weight in pruner.pruned]
    for values in kernels:
        assert zeros(values) == round(0.8 * values.size)
    sparse = np.concatenate([k.ravel() for k in kernels])
    ratio = len(gzip.compress(dense.tobytes())) / len(gzip.compress(sparse.tobytes()))
    assert ratio >= 3.0, ratio


def test_blocks_prune_runs_of_input_channels(keras, data):
    """--block 4: zeros come in runs of 4 input channels (axis -2 of a Keras kernel, the
    innermost axis of TFLite's weights), chosen by mean magnitude, held through training."""
    from edgekit.prune.magnitude import MagnitudePruner, Schedule

    model = compiled(keras, tiny(keras, "blocks"))
    pruner = MagnitudePruner(model, Schedule(0.5, end_step=2, frequency=1), block=4, skip_first=False)
    model.fit(*data, batch_size=16, epochs=2, verbose=0, callbacks=[pruner.callback()])
    pruner.strip()
    conv = kernel(model, "conv")  # (3, 3, 8, 16): two runs of 4 per (h, w, out)
    runs = (conv.reshape(3, 3, 2, 4, 16) == 0)
    assert (runs.all(axis=3) == runs.any(axis=3)).all()  # each run all zero or all kept
    assert runs.all(axis=3).mean() == pytest.approx(0.5, abs=0.02)
    stem = kernel(model, "stem")  # 3 input channels: one short run of 3
    assert ((stem == 0).all(axis=2) == (stem == 0).any(axis=2)).all()
    hidden = kernel(model, "hidden")  # Dense (16, 32): runs along the 16 inputs
    runs = hidden.reshape(4, 4, 32) == 0
    assert (runs.all(axis=1) == runs.any(axis=1)).all() and 0.4 < runs.mean() < 0.6
    with pytest.raises(InputError, match="block"):
        MagnitudePruner(tiny(keras, "bad_block"), Schedule(0.5, end_step=1), block=0)


def test_depthwise_kernels_can_stay_dense(keras):
    """skip_depthwise (edgekit prune's default): depthwise kernels are left with a reason."""
    from edgekit.prune.magnitude import select_layers
    from edgekit.train import architectures

    model = architectures.build(keras, {"name": "ds_cnn", "blocks": 2}, (49, 10), 12, "dw")
    pruned, left = select_layers(model, skip_depthwise=True)
    kinds = {type(model.get_layer(name)).__name__ for name, _ in pruned}
    assert kinds == {"Conv2D"}
    depthwise = [name for name, reason in left if reason.startswith("depthwise kernel")]
    assert len(depthwise) == 2 and all("--prune-depthwise" in r for _, r in left if r.startswith("depthwise"))
    pruned_all, _ = select_layers(model)
    assert len(pruned_all) == len(pruned) + 2
