"""A trained model's recipe and data, for the verbs that fine-tune it (`edgekit prune`,
`edgekit qat`): the ``report.json`` `edgekit train` left next to the model, ``--recipe``
and ``--data``, and the preprocessing of the model's contract."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from edgekit.contract import Contract, read_contract, sidecar_path
from edgekit.errors import InputError
from edgekit.train.recipes import Recipe, parse_recipe


def training_report(model: Path) -> tuple[Path, dict[str, Any]] | None:
    """``report.json`` next to `model` and its content, when it names a recipe; else None."""
    path = model.parent / "report.json"
    try:
        report = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(report, dict) or not isinstance(report.get("recipe"), dict) or \
            not isinstance(report["recipe"].get("values"), dict):
        return None
    return path, report


def resolve_recipe(model: Path, data: Path | None, named: Recipe | None, found: tuple[Path, dict[str, Any]] | None,
                   verb: str, generator_hint: str | None = None) -> tuple[Recipe, Path]:
    """The recipe and the data path: ``--recipe`` (`named`) and ``--data`` (`data`), or the
    training report's (`found`, from `training_report`).

    The preprocessing always comes from the model's contract when it has one: it holds the
    normalization fitted on the training split.

    Args:
        verb: the command, for the messages (``edgekit prune``).
        generator_hint: what to do instead with a GAN generator, which cannot be fine-tuned.

    Raises:
        InputError: no recipe to be found, no data, or a task that cannot be fine-tuned.
    """
    if named is not None:
        recipe = named
    elif found is not None:
        recipe = parse_recipe(found[1]["recipe"]["values"], f"{found[0]}: recipe")
    else:
        raise InputError(f"model {model}", expected="the folder edgekit train wrote (report.json next to the "
                         "model names the recipe), or --recipe NAME|FILE", found=f"no report.json in "
                         f"{model.parent}", hint="pass --recipe with the recipe the model was trained with")
    if not recipe.kind.fine_tunable:
        raise InputError(f"recipe {recipe.name}", expected="a classification, regression or anomaly model",
                         found="a GAN generator (fine-tuning it needs its discriminator and the GAN loop)",
                         hint=generator_hint)
    sidecar = sidecar_path(model)
    if sidecar.is_file():
        recipe = dataclasses.replace(recipe, preprocess=read_contract(sidecar).preprocess)
    if data is None and found is not None:
        source = (found[1].get("data") or {}).get("source")
        data = Path(source) if source else None
        if data is not None and not data.is_absolute() and not data.exists():
            data = model.parent / data.name if (model.parent / data.name).exists() else data
    if data is None or not data.exists():
        raise InputError(f"{verb} --data", expected="the training data (a folder or file as for edgekit train "
                         "--data)", found=f"no such path {data}" if data is not None else "no --data and no training "
                         "report naming the data", hint="pass --data PATH")
    return recipe, data


def source_contract(model: Path, recipe: Recipe, class_names: tuple[str, ...]) -> Contract:
    """The contract a model derived from `model` starts from: `model`'s own, else the
    recipe's preprocessing and postprocessing with the data's class names."""
    source = sidecar_path(model)
    if source.is_file():
        return dataclasses.replace(read_contract(source), path=None)
    return Contract(recipe.preprocess, recipe.postprocess, tuple(class_names) if recipe.kind.class_labels else None)
