"""Adversarial training for ``task: generation`` recipes (DCGAN).

The generator is the model `edgekit train` saves, converts and bundles; the
discriminator exists only during training (its checkpoint sits next to the generator's
so ``--resume`` continues both). Losses are the non-saturating GAN losses with one-sided
label smoothing (real targets 0.9, Salimans et al. 2016); both networks use Adam with
beta_1 = 0.5 (Radford et al. 2016). The same Keras callbacks as every other recipe see
each epoch (progress line, checkpoint, history).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgekit.keras_env import save_model
from edgekit.train import architectures
from edgekit.train.recipes import Recipe

DISCRIMINATOR_FILE = "discriminator.keras"
REAL_TARGET = 0.9


def _adam(keras: Any, train: Mapping[str, Any]) -> Any:
    return keras.optimizers.Adam(float(train["learning_rate"]), beta_1=0.5)


def make_discriminator(keras: Any, recipe: Recipe, image_shape: tuple[int, ...], train: Mapping[str, Any]) -> Any:
    model = architectures.discriminator(keras, image_shape, recipe.architecture)
    model.compile(optimizer=_adam(keras, train))  # holds the optimizer; the loop computes the losses
    return model


def load_discriminator(keras: Any, folder: Path, recipe: Recipe, image_shape: tuple[int, ...],
                       train: Mapping[str, Any]) -> Any:
    """The checkpointed discriminator (a fresh one when the checkpoint predates it)."""
    path = folder / DISCRIMINATOR_FILE
    if not path.is_file():
        return make_discriminator(keras, recipe, image_shape, train)
    model = keras.models.load_model(path, compile=False)
    model.compile(optimizer=_adam(keras, train))
    return model


def fit(tf: Any, keras: Any, generator: Any, discriminator: Any, dataset: Any, recipe: Recipe, epochs: int,
        initial_epoch: int, callbacks: list[Any], seed: int, checkpoint: Path | None = None) -> None:
    """Alternate discriminator and generator steps over `dataset` (batches of (images, _)).

    Epoch logs: ``d_loss``, ``g_loss``, ``real_score`` and ``fake_score`` (the
    discriminator's mean probability that real / generated images are real).
    """
    train = recipe.train
    latent = int(generator.inputs[0].shape[-1])
    if getattr(generator, "optimizer", None) is None:
        generator.compile(optimizer=_adam(keras, train))
    g_opt, d_opt = generator.optimizer, discriminator.optimizer
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    # grappler's remapper fuses BatchNorm+LeakyReLU in the discriminator and then logs a
    # harmless "remapper failed" error on every trace; it buys nothing at these sizes
    tf.config.optimizer.set_experimental_options({"remapping": False})
    noise = tf.random.Generator.from_seed(seed + 7919 * initial_epoch)

    @tf.function
    def step(real: Any) -> dict[str, Any]:
        count = tf.shape(real)[0]
        z = noise.normal([count, latent])
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = generator(z, training=True)
            real_logits = discriminator(real, training=True)
            fake_logits = discriminator(fake, training=True)
            d_loss = bce(tf.fill(tf.shape(real_logits), REAL_TARGET), real_logits) + \
                bce(tf.zeros_like(fake_logits), fake_logits)
            g_loss = bce(tf.ones_like(fake_logits), fake_logits)
        d_grads = d_tape.gradient(d_loss, discriminator.trainable_variables)
        g_grads = g_tape.gradient(g_loss, generator.trainable_variables)
        d_opt.apply_gradients(zip(d_grads, discriminator.trainable_variables, strict=True))
        g_opt.apply_gradients(zip(g_grads, generator.trainable_variables, strict=True))
        return {"d_loss": d_loss, "g_loss": g_loss, "real_score": tf.reduce_mean(tf.sigmoid(real_logits)),
                "fake_score": tf.reduce_mean(tf.sigmoid(fake_logits))}

    callback_list = keras.callbacks.CallbackList(callbacks, model=generator)
    generator.stop_training = False
    callback_list.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        callback_list.on_epoch_begin(epoch)
        sums: dict[str, float] = {}
        batches = 0
        for index, (images, _targets) in enumerate(dataset):
            callback_list.on_train_batch_begin(index)
            for key, value in step(images).items():
                sums[key] = sums.get(key, 0.0) + float(value)
            batches += 1
            callback_list.on_train_batch_end(index, {k: v / batches for k, v in sums.items()})
        if checkpoint is not None:  # before the callbacks write state.json naming this epoch
            save_discriminator(discriminator, checkpoint)
        callback_list.on_epoch_end(epoch, {k: v / max(batches, 1) for k, v in sums.items()})
        if generator.stop_training:
            break
    callback_list.on_train_end()


def save_discriminator(model: Any, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    save_model(model, folder / DISCRIMINATOR_FILE)


