"""Recipes that hold on real data: label-preserving augmentation by default, and
``edgekit train --test-data`` (the user's own test split for the held-out figures,
heldout.npz and the export check; one clear line when it does not fit the training data).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgekit.errors import InputError
from edgekit.progress import no_progress
from edgekit.train.recipes import load_recipe, recipe_names
from tests.support.cli import run_cli
from tests.train.test_train import assert_one_error_line, write_images

# recipes whose data stay what they are when mirrored, each with the reason in its YAML
MIRROR_SAFE = {"vww-mobilenet": "person", "gan-dcgan": "mirror"}
# ic-resnet8 shrunk to a few hundred parameters: one epoch on a dozen images takes seconds
TINY_IMAGE = ("--epochs", "1", "--set", "train.batch_size=8", "--set", "architecture.filters=[4,4,4]")


def test_image_classification_does_not_flip_unless_asked():
    recipe = load_recipe("ic-resnet8")
    assert recipe.augment["flip"] is False  # a mirrored 2, 3, 5, 7 or 9 is another shape
    assert load_recipe("ic-resnet8", ["augment.flip=true"]).augment["flip"] is True
    for name in recipe_names():
        recipe = load_recipe(name)
        if recipe.augment["flip"]:
            assert name in MIRROR_SAFE, f"{name} flips images by default"
            assert MIRROR_SAFE[name] in recipe.path.read_text().split("\naugment:")[0].lower(), name


def test_the_image_recipe_trains_long_enough_with_early_stopping_and_a_schedule():
    train = load_recipe("ic-resnet8").train
    assert train["patience"] > 0 and train["monitor"].startswith("val_")
    assert train["schedule"] in ("cosine", "step") and train["epochs"] > train["patience"]
    # an explicit --epochs (the demo's and the tests' tiny runs) still caps the run
    assert load_recipe("ic-resnet8", ["train.epochs=1"]).train["epochs"] == 1


@pytest.fixture(scope="module")
def image_split(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("split")
    train = write_images(root / "train", ("bright", "dark"), (32, 32), per_class=6)
    # its own images (other sizes, another count): the held-out figures must come from these
    test = write_images(root / "test", ("bright", "dark"), (20, 24), per_class=4)
    return train, test


@pytest.mark.tf
@pytest.mark.slow
def test_test_data_is_the_held_out_split(image_split, tmp_path):
    train, test = image_split
    out = tmp_path / "out"
    result = run_cli("-q", "train", "ic-resnet8", "--data", str(train), "--test-data", str(test), "-o", str(out),
                     *TINY_IMAGE)
    assert result.code == 0, result.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["test"]["samples"] == 8 and report["data"]["test_source"] == str(test)
    # the carved split is gone: every training image is training or validation
    assert report["data"]["train"]["samples"] + report["data"]["validation_split"]["samples"] == 12
    assert report["data"]["test_split"]["per_class"] == {"bright": 4, "dark": 4}
    with np.load(out / "heldout.npz") as heldout:  # what --export validates on
        assert len(heldout["x"]) == 8 and heldout["x"].shape[1:] == (32, 32, 3)
    assert f"on 8 samples of {test}" in result.stdout
    assert f"8 test (`--test-data {test}`)" in (out / "report.md").read_text()


@pytest.mark.tf
def test_a_test_set_with_other_classes_is_one_line(image_split, tmp_path):
    train, _ = image_split
    test = write_images(tmp_path / "test", ("bright", "purple"), (32, 32), per_class=2)
    assert_one_error_line(run_cli("-q", "train", "ic-resnet8", "--data", str(train), "--test-data", str(test), "-o",
                                  str(tmp_path / "out"), *TINY_IMAGE),
                          f"--test-data {test}", "['purple'] not in the training data", "['bright', 'dark']")
    assert not (tmp_path / "out" / "ic-resnet8.keras").exists()


@pytest.mark.tf
def test_a_test_set_of_another_shape_or_the_training_data_itself_is_refused(tmp_path):
    from edgekit.train import fit
    from edgekit.train.data import load_raw

    recipe = load_recipe("ad-autoencoder")
    np.savez(tmp_path / "train.npz", x=np.zeros((20, 640), np.float32))
    np.savez(tmp_path / "test.npz", x=np.zeros((5, 64), np.float32), y=np.zeros(5, np.int64))
    raw = load_raw(tmp_path / "train.npz", recipe)
    with pytest.raises(InputError) as caught:
        fit.attach_test_data(raw, recipe, tmp_path / "test.npz", lambda _m: None, no_progress)
    text = str(caught.value)
    assert "--test-data" in text and "(640,)" in text and "(64,)" in text and "\n" not in text
    with pytest.raises(InputError, match="the --data path itself"):  # the training data as their own test
        fit.prepare_data(recipe, tmp_path / "train.npz", lambda _m: None, no_progress, tmp_path / "train.npz")
