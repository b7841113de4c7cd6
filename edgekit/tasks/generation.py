"""Generation: a generator (the DCGAN's) maps latent vectors to images; trained by the
adversarial loop, judged by diversity and distance to the training images, converted
without a gate basis (there is no right answer to compare with, only the float model)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgekit.contract import Contract
from edgekit.spec import ImagePreprocess, NoPreprocess
from edgekit.tasks.base import Features, Log, Predict, Task, with_drop

HELDOUT_LATENTS = 256  # latent vectors in heldout.npz, the variants' validation inputs


def latent_vectors(count: int, latent: int, seed: int) -> np.ndarray:
    """Standard-normal latent vectors from a fixed seed (the held-out 'inputs' of a generator)."""
    return np.random.default_rng(seed).standard_normal((count, latent)).astype(np.float32)


def pipeline_range(spec: ImagePreprocess) -> tuple[float, float]:
    """The range of normalized pixels (over every channel) an image front end produces."""
    mean, std = np.asarray(spec.mean, np.float64), np.asarray(spec.std, np.float64)  # one value, or per channel
    return float(np.min((0.0 - mean) / std)), float(np.max((255.0 * spec.scale - mean) / std))


def generation_figures(fake: np.ndarray, real: np.ndarray, train_images: np.ndarray) -> dict[str, Any]:
    """Whether generated images are images rather than noise, one image, or copies."""
    flat_fake = fake.reshape(len(fake), -1).astype(np.float64)
    flat_real = real.reshape(len(real), -1).astype(np.float64)
    flat_train = train_images.reshape(len(train_images), -1).astype(np.float64)

    def mean_pairwise(a: np.ndarray) -> float:
        a = a[:128]
        d = np.sqrt(np.maximum(((a[:, None, :] - a[None, :, :]) ** 2).mean(-1), 0.0))
        return float(d[np.triu_indices(len(a), 1)].mean()) if len(a) > 1 else 0.0

    def nearest(a: np.ndarray, b: np.ndarray) -> float:
        a = a[:128]
        d2 = (a**2).mean(1)[:, None] + (b**2).mean(1)[None, :] - 2.0 * (a @ b.T) / a.shape[1]
        return float(np.sqrt(np.maximum(d2.min(axis=1), 0.0)).mean())

    return {
        "samples": int(len(fake)),
        "pixel_mean": {"generated": float(flat_fake.mean()), "real": float(flat_real.mean())},
        "pixel_std": {"generated": float(flat_fake.std()), "real": float(flat_real.std())},
        # spread among samples: near 0 means mode collapse (one image for every latent)
        "diversity_rms": {"generated": mean_pairwise(flat_fake), "real": mean_pairwise(flat_real)},
        # distance to the closest training image: near 0 means copies of the training set
        "nearest_train_rms": {"generated": nearest(flat_fake, flat_train), "real_heldout": nearest(flat_real, flat_train)},
    }


class Generation(Task):
    name = "generation"
    adversarial = True
    data_kinds = ("image",)  # the GAN learns images
    fine_tunable = False
    has_drop_basis = False
    explain_drop = True

    def private_options(self, recipe: Any, train_y: np.ndarray) -> dict[str, Any]:
        if isinstance(recipe.preprocess, ImagePreprocess):
            return {"_output_range": pipeline_range(recipe.preprocess)}
        return {}

    def evaluate(self, model: Any, recipe: Any, parts: Any, features: Features, predict: Predict,
                 log: Log) -> dict[str, Any]:
        import time

        started = time.perf_counter()
        real, train_images = features(parts.test), features(parts.train)
        latent = int(model.inputs[0].shape[-1])
        fake = predict(model, latent_vectors(HELDOUT_LATENTS, latent, int(recipe.train["seed"]) + 1))
        figures = generation_figures(fake, real, train_images)
        figures["seconds"] = round(time.perf_counter() - started, 3)
        figures["grid"] = {"generated": fake[:64], "real": real[:16]}  # drawn into samples.png, then dropped
        log(f"  generated {figures['samples']} images: diversity {figures['diversity_rms']['generated']:.3f} "
            f"(real {figures['diversity_rms']['real']:.3f}), distance to the nearest training image "
            f"{figures['nearest_train_rms']['generated']:.3f} (held-out real "
            f"{figures['nearest_train_rms']['real_heldout']:.3f})")
        return {"test": figures, "validation": {}}

    def contract(self, recipe: Any, class_names: Sequence[str], evaluation: Mapping[str, Any]) -> Contract:
        # a generator's input is the latent vector, not an image: nothing to preprocess on the device
        return Contract(NoPreprocess(), recipe.postprocess)

    def heldout(self, model: Any, recipe: Any, parts: Any) -> dict[str, np.ndarray]:
        # validation inputs of the variants: latent vectors from a fixed seed
        latent = int(model.inputs[0].shape[-1])
        return {"x": latent_vectors(HELDOUT_LATENTS, latent, int(recipe.train["seed"]) + 2)}

    def calibration(self, model: Any, recipe: Any, parts: Any) -> dict[str, np.ndarray]:
        # calibration inputs of the variants: latent vectors from a seed of their own
        latent = int(model.inputs[0].shape[-1])
        return {"x": latent_vectors(HELDOUT_LATENTS, latent, int(recipe.train["seed"]) + 3)}

    def fidelity(self, reference: Any, outputs: Sequence[np.ndarray], x: np.ndarray, labels: np.ndarray | None,
                 class_names: Sequence[str] | None) -> dict[str, Any]:
        return with_drop({"drop_pts": None, "drop_basis": None}, None)
