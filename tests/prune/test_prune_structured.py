"""Structured (channel) pruning: plans on the real architectures, exact rebuilds, errors."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from edgekit.errors import InputError
from tests.support.models import save_keras

pytestmark = pytest.mark.tf

# output axis of each producer's kernel (the weight named here)
_OUT_AXIS = {"Conv1D": ("kernel", -1), "Conv2D": ("kernel", -1), "Dense": ("kernel", -1),
             "Conv2DTranspose": ("kernel", -2), "SeparableConv2D": ("pointwise_kernel", -1)}


@pytest.fixture(scope="module")
def keras():
    from edgekit.keras_env import import_keras

    return import_keras()


@pytest.fixture(scope="module")
def structured():
    from edgekit.prune import structured

    return structured


def _architecture(keras, name, input_shape, **options):
    from edgekit.train import architectures

    model = architectures.build(keras, {"name": name, **options}, input_shape, 5, "m")
    _randomize(model)
    return model


def _randomize(model, seed=0):
    """Random BatchNorm statistics and biases, so that slicing them wrongly shows in the outputs."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        values = []
        for variable, value in zip(layer.weights, layer.get_weights(), strict=True):
            if variable.name in ("beta", "moving_mean", "bias"):
                value = rng.normal(0.0, 0.1, value.shape).astype(value.dtype)
            elif variable.name in ("gamma", "moving_variance"):
                value = rng.uniform(0.5, 1.5, value.shape).astype(value.dtype)
            values.append(value)
        layer.set_weights(values)


def _copy(keras, model):
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def _zero(layer, name, index):
    """Set ``weight[index] = 0`` in `layer`'s weight called `name`."""
    values = []
    for variable, value in zip(layer.weights, layer.get_weights(), strict=True):
        if variable.name == name:
            value = value.copy()
            value[index] = 0.0
        values.append(value)
    layer.set_weights(values)


def _zero_downstream(layer, index):
    """Zero what stands between removed channels `index` and the next Conv/Dense: BatchNorm
    beta and mean (its output is then 0), DepthwiseConv biases; follow Flatten's layout."""
    for node in layer._outbound_nodes:
        op = node.operation
        kind = type(op).__name__
        if kind in _OUT_AXIS:
            continue  # a consumer: zero inputs contribute nothing
        following = index
        if kind == "BatchNormalization":
            _zero(op, "beta", index)
            _zero(op, "moving_mean", index)
        elif kind == "DepthwiseConv2D":
            multiplier = op.depth_multiplier
            following = (index[:, None] * multiplier + np.arange(multiplier)).reshape(-1)
            if op.use_bias:
                _zero(op, "bias", following)
        elif kind == "Flatten":
            shape = op.input.shape
            channels, positions = shape[-1], math.prod(shape[1:-1])
            following = (np.arange(positions)[:, None] * channels + index).reshape(-1)
        _zero_downstream(op, following)


def _zeroed_copy(keras, model, plan):
    """A copy of `model` in which the channels the plan removes contribute nothing."""
    copy = _copy(keras, model)
    for group in plan.groups:
        removed = np.array(sorted(set(range(group.channels)) - set(group.keep)))
        for name in group.producers:
            layer = copy.get_layer(name)
            weight, axis = _OUT_AXIS[type(layer).__name__]
            _zero(layer, weight, (Ellipsis, removed, *[slice(None)] * (-axis - 1)))
            if getattr(layer, "use_bias", False):
                _zero(layer, "bias", removed)
            _zero_downstream(layer, removed)
    return copy


def _outputs(model, x):
    return np.asarray(model(x, training=False))


def _mixed_layers(keras):
    """Depthwise with a depth multiplier, SeparableConv, Conv2DTranspose, Flatten into Dense."""
    layers = keras.layers
    inputs = keras.Input((10, 10, 3), name="image")
    x = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(8, 3, name="stem")(inputs)))
    x = layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="depthwise")(x)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    x = layers.SeparableConv2D(8, 3, depth_multiplier=2, name="separable")(x)
    x = layers.Conv2DTranspose(6, 3, name="transposed")(x)
    x = layers.MaxPooling2D()(layers.ZeroPadding2D()(x))
    x = layers.Dense(10, activation="relu", name="hidden")(layers.Flatten()(x))
    model = keras.Model(inputs, layers.Dense(3, name="out")(x))
    _randomize(model)
    return model


CASES = {
    "resnet8": lambda keras: _architecture(keras, "resnet8", (32, 32, 3)),
    "ds_cnn": lambda keras: _architecture(keras, "ds_cnn", (49, 10)),
    "mobilenet": lambda keras: _architecture(keras, "mobilenet", (32, 32, 3), alpha=0.25),
    "cnn1d": lambda keras: _architecture(keras, "cnn1d", (128, 6)),
    "conv_autoencoder": lambda keras: _architecture(keras, "conv_autoencoder", (16, 16, 1), filters=[4, 8]),
    "mixed_layers": _mixed_layers,
    "rnn": lambda keras: _architecture(keras, "rnn", (32, 6), cell="lstm"),  # the LSTM's input kernel is sliced
    "transformer": lambda keras: _architecture(keras, "transformer", (32, 6)),  # only the feed-forward Dense
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_thinner_model_equals_the_original_with_the_removed_channels_zeroed(keras, structured, case):
    model = CASES[case](keras)
    thinner, plan = structured.prune_channels(model, 0.5)
    assert plan.groups
    assert thinner.count_params() < model.count_params()
    x = np.random.default_rng(1).normal(size=(2, *model.input_shape[1:])).astype("float32")
    expected = _outputs(_zeroed_copy(keras, model, plan), x)
    assert not np.allclose(expected, _outputs(model, x), atol=1e-3)  # the zeroing did remove something
    np.testing.assert_allclose(_outputs(thinner, x), expected, atol=2e-5, rtol=1e-4)


@pytest.fixture(scope="module")
def resnet(keras, structured):
    model = _architecture(keras, "resnet8", (32, 32, 3))
    thinner, plan = structured.prune_channels(model, 0.5)
    return model, thinner, plan


def test_resnet8_at_half_halves_every_conv_and_keeps_names_shapes_and_regularizers(keras, resnet, tmp_path):
    model, thinner, plan = resnet
    assert [layer.name for layer in thinner.layers] == [layer.name for layer in model.layers]
    assert thinner.output_shape == model.output_shape and thinner.input_shape == model.input_shape
    for old in model.layers:
        new = thinner.get_layer(old.name)
        if isinstance(old, keras.layers.Conv2D):
            assert new.filters == old.filters // 2
            fan_in = old.kernel.shape[2]
            assert new.kernel.shape[2] == (fan_in if fan_in == 3 else fan_in // 2)  # the image keeps 3 channels
            assert new.kernel_regularizer is not None
            assert new.kernel_regularizer.get_config() == old.kernel_regularizer.get_config()

    def convs(m):
        return sum(layer.count_params() for layer in m.layers if isinstance(layer, keras.layers.Conv2D))

    stem = model.layers[1].count_params()
    # conv-to-conv weights are quartered, the stem (3 input channels) halved
    assert convs(thinner) == (convs(model) - stem) // 4 + stem // 2
    assert 0.2 < thinner.count_params() / model.count_params() < 0.3
    assert {group.to_dict()["after"] * 2 for group in plan.groups} == {group.channels for group in plan.groups}

    path = tmp_path / "thinner.keras"
    save_keras(thinner, path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = np.random.default_rng(2).normal(size=(3, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(_outputs(loaded, x), _outputs(thinner, x), atol=1e-6)


def _producer_behind(keras, tensor):
    """The Conv2D whose channels reach `tensor` through BatchNorm/ReLU."""
    op = tensor._keras_history.operation
    while not isinstance(op, keras.layers.Conv2D):
        tensor = op._inbound_nodes[0].input_tensors[0]
        op = tensor._keras_history.operation
    return op.name


def test_producers_meeting_at_an_add_share_one_group_and_one_set_of_kept_channels(keras, resnet):
    model, thinner, plan = resnet
    adds = [layer for layer in model.layers if isinstance(layer, keras.layers.Add)]
    assert len(adds) == 3
    by_producer = {name: group for group in plan.groups for name in group.producers}
    for add in adds:
        names = [_producer_behind(keras, tensor) for tensor in add._inbound_nodes[0].input_tensors]
        assert len(set(names)) == 2
        assert by_producer[names[0]] is by_producer[names[1]]
    assert sum(len(group.producers) == 2 for group in plan.groups) == 3
    stem = model.layers[1]  # reads the image, so only its output axis is sliced
    keep = list(by_producer[stem.name].keep)
    np.testing.assert_array_equal(thinner.get_layer(stem.name).get_weights()[0],
                                  np.take(stem.get_weights()[0], keep, axis=-1))


def _tiny(keras, first_filters=2):
    layers = keras.layers
    inputs = keras.Input((8, 8, 3), name="image")
    x = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(first_filters, 3, name="narrow")(inputs)))
    x = layers.Conv2D(8, 3, activation="relu", name="wide")(x)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(3, activation="softmax", name="probabilities")(x))


@pytest.mark.parametrize("fraction", [0, 0.0, 1, 1.0, 1.2, -0.5, True, "0.5"])
def test_a_fraction_outside_zero_to_one_is_an_input_error(keras, structured, fraction):
    with pytest.raises(InputError, match="greater than 0 and less than 1"):
        structured.plan_channels(_tiny(keras), fraction)


def test_a_fraction_that_empties_a_layer_names_it_and_the_largest_fraction_that_works(keras, structured):
    model = _tiny(keras)
    with pytest.raises(InputError) as caught:
        structured.plan_channels(model, 0.9)
    message = str(caught.value)
    assert "narrow with 0 of 2 filters" in message
    assert "\n" not in message
    largest = float(re.search(r"at most ([0-9.]+)", message).group(1))
    plan = structured.plan_channels(model, largest)
    assert largest == 0.74 and {len(group.keep) for group in plan.groups} == {1, 2}
    with pytest.raises(InputError, match="wide with 0 of 8 filters"):
        structured.plan_channels(model, 0.5, round_to=16, skip=["narrow"])
    with pytest.raises(InputError, match="narrow with 1 of 2 filters"):
        structured.plan_channels(model, 0.5, min_channels=2)


def test_other_bad_options_are_input_errors(keras, structured):
    model = _tiny(keras)
    with pytest.raises(InputError, match=r"one of \['l1', 'l2', 'bn'\]"):
        structured.plan_channels(model, 0.5, importance="l3")
    with pytest.raises(InputError, match="nope"):
        structured.plan_channels(model, 0.5, skip=["nope"])
    with pytest.raises(InputError, match="round_to"):
        structured.plan_channels(model, 0.5, round_to=0)
    other = _tiny(keras, first_filters=4)
    plan = structured.plan_channels(other, 0.5)
    with pytest.raises(InputError, match="channel plan"):
        structured.rebuild(model, plan)


def test_a_model_with_nothing_to_prune_is_an_input_error(keras, structured):
    inputs = keras.Input((6,))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="probabilities")(inputs))
    with pytest.raises(InputError, match=r"probabilities: its output is the model's output") as caught:
        structured.plan_channels(model, 0.5)
    assert "\n" not in str(caught.value)


def test_left_alone_says_why_for_the_output_unresizable_consumers_ops_and_skip(keras, structured):
    layers = keras.layers
    inputs = keras.Input((16,), name="features")
    x = layers.Dense(10, activation="relu", name="first")(inputs)
    x = layers.Reshape((3, 4))(layers.Dense(12, name="to_reshape")(x))
    x = layers.GlobalAveragePooling1D()(layers.Conv1D(8, 1, name="conv")(x))
    x = layers.Dense(6, name="shifted")(x) + 1.0
    model = keras.Model(inputs, layers.Dense(3, activation="softmax", name="probabilities")(x))
    plan = structured.plan_channels(model, 0.5, skip=["conv"])
    reasons = dict(plan.left_alone)
    assert set(reasons) == {"to_reshape", "conv", "shifted", "probabilities"}
    assert reasons["probabilities"] == "its output is the model's output"
    assert reasons["to_reshape"].startswith("feeds Reshape")
    assert "Keras op" in reasons["shifted"]
    assert reasons["conv"] == "listed in skip"
    assert [group.producers for group in plan.groups] == [("first",)]
    assert plan.to_dict()["left_alone"][-1] == {"layer": "probabilities", "reason": reasons["probabilities"]}
    assert [group.producers for group in structured.plan_channels(model, 0.5).groups] == [("first",), ("conv",)]


def _ranked(keras):
    layers = keras.layers
    inputs = keras.Input((6, 6, 3))
    x = layers.BatchNormalization(name="norm")(layers.Conv2D(4, 1, use_bias=False, name="ranked")(inputs))
    x = layers.Dense(4, name="plain")(layers.GlobalAveragePooling2D()(layers.ReLU()(x)))
    model = keras.Model(inputs, layers.Dense(2, name="out")(layers.ReLU()(x)))
    kernel = np.ones((1, 1, 3, 4), "float32") * np.array([1.0, 5.0, 2.0, 4.0], "float32")
    model.get_layer("ranked").set_weights([kernel])
    gamma = np.array([3.0, -0.1, -2.0, 0.5], "float32")
    norm = model.get_layer("norm")
    norm.set_weights([gamma, *norm.get_weights()[1:]])
    plain = np.ones((4, 4), "float32") * np.array([0.1, 3.0, -0.2, 2.0], "float32")
    model.get_layer("plain").set_weights([plain, np.zeros(4, "float32")])
    return model


@pytest.mark.parametrize(("importance", "ranked", "plain"), [("l1", (1, 3), (1, 3)), ("l2", (1, 3), (1, 3)),
                                                             ("bn", (0, 2), (1, 3))])
def test_importance_keeps_the_largest_filters_or_the_largest_gammas(keras, structured, importance, ranked, plain):
    plan = structured.plan_channels(_ranked(keras), 0.5, importance=importance)
    keep = {group.producers: group.keep for group in plan.groups}
    assert keep == {("ranked",): ranked, ("plain",): plain}
    assert any("plain" in note for note in plan.notes) == (importance == "bn")  # no BatchNorm: ranked by l1


def test_a_sequential_model_is_rebuilt_as_a_thinner_sequential_one(keras, structured):
    layers = keras.layers
    model = keras.Sequential([keras.Input((12, 12, 2)), layers.Conv2D(8, 3, name="a"), layers.BatchNormalization(),
                              layers.ReLU(), layers.MaxPooling2D(), layers.Conv2D(6, 3, activation="relu", name="b"),
                              layers.Flatten(), layers.Dense(4, name="out")])
    _randomize(model)
    thinner, plan = structured.prune_channels(model, 0.5)
    assert isinstance(thinner, keras.Sequential)
    assert (thinner.get_layer("a").filters, thinner.get_layer("b").filters) == (4, 3)
    x = np.random.default_rng(3).normal(size=(2, 12, 12, 2)).astype("float32")
    np.testing.assert_allclose(_outputs(thinner, x), _outputs(_zeroed_copy(keras, model, plan), x), atol=2e-5)


def test_mixed_precision_policies_survive(keras, structured):
    layers = keras.layers
    inputs = keras.Input((8, 8, 3))
    regularizer = keras.regularizers.L2(1e-3)
    x = layers.Conv2D(8, 3, dtype="mixed_float16", kernel_regularizer=regularizer, name="conv")(inputs)
    x = layers.ReLU(dtype="mixed_float16")(layers.BatchNormalization(dtype="mixed_float16")(x))
    x = layers.GlobalAveragePooling2D(dtype="mixed_float16")(x)
    model = keras.Model(inputs, layers.Dense(2, dtype="float32", name="out")(x))
    thinner, _ = structured.prune_channels(model, 0.25)
    conv = thinner.get_layer("conv")
    assert conv.filters == 6 and conv.dtype_policy.name == "mixed_float16"
    assert conv.kernel_regularizer.get_config()["l2"] == pytest.approx(1e-3)
    assert thinner.get_layer("out").dtype_policy.name == "float32"
    assert [layer.name for layer in thinner.layers] == [layer.name for layer in model.layers]  # the input's too


@pytest.mark.parametrize(("name", "shape", "thinned", "alone"), [
    ("transformer", (32, 6), 2, "patch_embedding"),
    ("rnn", (32, 6), 1, "probabilities"),
    ("dense_autoencoder", (20,), 9, "reconstruction"),
    ("mlp", (4, 5), 2, "probabilities"),
])
def test_other_architectures_thin_what_is_safe_and_say_why_for_the_rest(keras, structured, name, shape, thinned,
                                                                          alone):
    model = _architecture(keras, name, shape)
    thinner, plan = structured.prune_channels(model, 0.5)
    assert len(plan.groups) == thinned
    assert alone in dict(plan.left_alone)
    x = np.random.default_rng(4).normal(size=(2, *shape)).astype("float32")
    assert _outputs(thinner, x).shape == _outputs(model, x).shape


def test_skipping_a_depthwise_layer_leaves_its_channel_group_alone(keras, structured):
    model = _mixed_layers(keras)
    plan = structured.plan_channels(model, 0.5, skip=["depthwise"])
    reasons = dict(plan.left_alone)
    assert reasons["depthwise"] == "listed in skip"
    assert reasons["stem"] == "in a group with depthwise (listed in skip)"
    assert "stem" not in {name for group in plan.groups for name in group.producers}
    norm = next(layer.name for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization))
    with pytest.raises(InputError, match=f"expected names of the model's Conv or Dense layers, found {norm}"):
        structured.plan_channels(model, 0.5, skip=[norm])
