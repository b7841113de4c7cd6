"""Training recipes: one YAML file per model family in ``models/``.

A recipe names the architecture and its hyperparameters, the preprocessing spec (the
very spec the bundle carries), the augmentations, the schedule, the metrics and the
default convert variants. Recipes are found by name, first match wins, in: folders the
caller passes, ``EDGEKIT_MODELS`` (``os.pathsep``-separated), the ``models/`` folder of a
source checkout, and the copy installed with the package (``share/edgekit/models``,
declared as data-files in ``pyproject.toml``). A path to a ``.yaml`` file works too.

Overrides (``edgekit train --set train.epochs=3``) address a key by its dotted path; an
unknown path is an error that lists the valid ones. No TensorFlow here.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgekit import _datafiles
from edgekit.errors import InputError
from edgekit.prune.options import IMPORTANCE, SCOPES
from edgekit.spec import PostprocessSpec, PreprocessSpec, preprocess_from_dict
from edgekit.train import architectures

if TYPE_CHECKING:
    from edgekit.tasks import Task

ENV_VAR = "EDGEKIT_MODELS"
SCHEMA_VERSION = 1
DATA_KINDS = ("audio", "image", "sensor", "vector")
SCHEDULES = ("constant", "cosine", "step")
OPTIMIZERS = ("adam", "adamw", "sgd")

# Every key a recipe may have, with its default (None: required). A nested dict is a
# section; `architecture` is free-form below `name` (each builder checks its own keys).
DEFAULTS: dict[str, Any] = {
    "schema": SCHEMA_VERSION,
    "name": None,
    "title": None,
    "task": "classification",
    "data": {
        "kind": None,
        "synth": None,  # the `edgekit datasets synth` task used when --data is absent
        "synth_samples": None,
        "classes": None,  # expected class names (None: whatever the data has)
    },
    "preprocess": None,
    "architecture": None,
    "augment": {
        "time_shift_ms": 0.0,
        "gain_db": 0.0,
        "noise": 0.0,
        "flip": False,
        "translate": 0.0,
        "brightness": 0.0,
        "contrast": 0.0,
        "scale": 0.0,
        "jitter": 0.0,
    },
    "train": {
        "epochs": 20,
        "batch_size": 64,
        "optimizer": "adam",
        "learning_rate": 0.001,
        "weight_decay": 0.0,
        "schedule": "cosine",
        "warmup_epochs": 0,
        "step_epochs": 10,
        "step_factor": 0.1,
        "label_smoothing": 0.0,
        "patience": 0,
        "monitor": "val_loss",
        "validation_split": 0.1,
        "test_split": 0.1,
        "seed": 0,
        "threshold_percentile": 99.0,
    },
    "metrics": ["accuracy"],
    "postprocess": None,
    # pruning before export (edgekit train; the same options as edgekit prune): at most one of
    # sparsity (unstructured, magnitude) and channels (structured, the fraction removed)
    "prune": {
        "sparsity": None,
        "channels": None,
        "epochs": 20,
        "learning_rate": None,  # None: a quarter of train.learning_rate
        "scope": "layer",
        "importance": "l1",
        "skip": [],
        "prune_first": False,
        "prune_last": False,
        "prune_depthwise": False,
        "round_to": 1,
        "block": 1,  # magnitude: prune runs of this many consecutive input channels together
        "distill": 0.0,  # classifiers: weight of the unpruned model's probabilities in the targets
    },
    # quantization-aware fine-tuning (edgekit train --qat, edgekit qat)
    "qat": {
        "epochs": 3,
        "learning_rate": None,  # None: a tenth of train.learning_rate
        "ema_decay": 0.99,  # of the activation ranges' moving averages, per step
    },
    "convert": {
        "variants": ["tflite-int8", "onnx-fp32"],
        "max_accuracy_drop": 1.0,
        "auto_fallback": True,
    },
}
METRICS = ("accuracy", "top2", "auc", "f1", "rmse", "mae", "snr")
_OPTIONAL = frozenset({"synth", "synth_samples", "classes", "postprocess", "sparsity", "channels", "learning_rate"})


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A validated recipe.

    Attributes:
        name: the recipe name (the file name without ``.yaml``).
        title: one line for listings.
        task: ``classification``, ``anomaly`` (an autoencoder trained on normal data),
            ``regression`` (float targets, e.g. forecasting) or ``generation`` (a GAN whose
            generator is the exported model).
        data_kind: ``audio``, ``image``, ``sensor`` or ``vector``.
        preprocess: the bundle's preprocessing spec (sensor mean/std are fit on the
            training split when the recipe leaves them empty).
        postprocess: the bundle's postprocessing spec.
        architecture: builder name and its hyperparameters.
        values: the whole recipe as plain data, overrides applied.
        path: the file it came from.
    """

    name: str
    title: str
    task: str
    data_kind: str
    preprocess: PreprocessSpec
    postprocess: PostprocessSpec
    architecture: Mapping[str, Any]
    values: Mapping[str, Any]
    path: Path | None = None

    @property
    def kind(self) -> Task:
        """The task object (`edgekit.tasks`) that owns what differs between task kinds."""
        from edgekit.tasks import TASKS

        return TASKS[self.task]

    def section(self, name: str) -> Mapping[str, Any]:
        return self.values[name]

    @property
    def train(self) -> Mapping[str, Any]:
        return self.values["train"]

    @property
    def augment(self) -> Mapping[str, Any]:
        return self.values["augment"]

    @property
    def convert(self) -> Mapping[str, Any]:
        return self.values["convert"]

    @property
    def classes(self) -> tuple[str, ...] | None:
        names = self.values["data"]["classes"]
        return tuple(names) if names else None

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(dict(self.values))


# ---------------------------------------------------------------------------
# finding


def search_path(dirs: Iterable[str | os.PathLike[str]] = ()) -> list[Path]:
    """The folders searched for recipes, in order (first match of a name wins)."""
    return _datafiles.search_path("models", ENV_VAR, dirs)


def _recipe_files(dirs: Sequence[str | os.PathLike[str]]) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for folder in search_path(dirs):
        if folder.is_dir():
            for path in sorted(folder.glob("*.yaml")):
                files.setdefault(path.stem, path)
    return files


def recipe_names(dirs: Sequence[str | os.PathLike[str]] = ()) -> list[str]:
    return sorted(_recipe_files(dirs))


# ---------------------------------------------------------------------------
# validating


def _paths(defaults: Mapping[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key, value in defaults.items():
        out.append(prefix + key)
        if isinstance(value, dict):
            out += _paths(value, prefix + key + ".")
    return out


def _merge(defaults: Mapping[str, Any], data: Mapping[str, Any], where: str) -> dict[str, Any]:
    unknown = sorted(set(data) - set(defaults))
    if unknown:
        raise InputError(f"{where}: unknown key {unknown[0]!r}", expected=f"one of {sorted(defaults)}",
                         found=", ".join(repr(k) for k in unknown))
    merged: dict[str, Any] = {}
    for key, default in defaults.items():
        value = data.get(key, default)
        if isinstance(default, dict):
            if value is None:
                value = {}
            if not isinstance(value, Mapping):
                raise InputError(f"{where}.{key}", expected="a mapping", found=type(value).__name__)
            value = _merge(default, value, f"{where}.{key}")
        elif value is None and default is None and key not in _OPTIONAL:
            raise InputError(f"{where}: missing key {key!r}", expected=f"a value for {key}", found="none")
        merged[key] = copy.deepcopy(value)
    return merged


def _number(section: Mapping[str, Any], key: str, where: str, *, integer: bool = False, low: float = 0.0,
            high: float | None = None) -> None:
    value = section[key]
    ok = isinstance(value, int if integer else (int, float)) and not isinstance(value, bool)
    if not ok or value < low or (high is not None and value > high):
        bound = f">= {low:g}" + (f" and <= {high:g}" if high is not None else "")
        raise InputError(f"{where}.{key}", expected=f"{'a whole number' if integer else 'a number'} {bound}",
                         found=repr(value))


def _choice(section: Mapping[str, Any], key: str, choices: Sequence[str], where: str) -> None:
    if section[key] not in choices:
        raise InputError(f"unrecognized {where}.{key}={section[key]!r}", expected=f"one of {list(choices)}",
                         found=repr(section[key]))


def parse_recipe(data: Any, where: str, path: Path | None = None) -> Recipe:
    """Validate a recipe mapping (defaults filled in).

    Raises:
        InputError: unknown or missing keys (listing the valid ones) or bad values.
    """
    if not isinstance(data, Mapping):
        raise InputError(where, expected="a YAML mapping", found=type(data).__name__)
    values = _merge(DEFAULTS, data, where)
    if values["schema"] != SCHEMA_VERSION:
        raise InputError(f"{where}.schema", expected=str(SCHEMA_VERSION), found=repr(values["schema"]))
    from edgekit.tasks import TASKS  # numpy: imported when a recipe is parsed, not to list recipes

    _choice(values, "task", tuple(name for name, task in TASKS.items() if task.trainable), where)
    _choice(values["data"], "kind", DATA_KINDS, f"{where}.data")
    train = values["train"]
    for key in ("epochs", "batch_size", "warmup_epochs", "step_epochs", "patience", "seed"):
        _number(train, key, f"{where}.train", integer=True, low=1 if key in ("epochs", "batch_size", "step_epochs") else 0)
    for key, high in (("learning_rate", 10.0), ("weight_decay", 1.0), ("step_factor", 1.0),
                      ("label_smoothing", 0.5), ("validation_split", 0.5), ("test_split", 0.5),
                      ("threshold_percentile", 100.0)):
        _number(train, key, f"{where}.train", high=high)
    _choice(train, "optimizer", OPTIMIZERS, f"{where}.train")
    _choice(train, "schedule", SCHEDULES, f"{where}.train")
    for key, value in values["augment"].items():
        if key == "flip":
            if not isinstance(value, bool):
                raise InputError(f"{where}.augment.flip", expected="true or false", found=repr(value))
        else:
            _number(values["augment"], key, f"{where}.augment")
    metrics = values["metrics"]
    if not isinstance(metrics, list) or not set(metrics) <= set(METRICS):
        raise InputError(f"{where}.metrics", expected=f"a list of some of {list(METRICS)}", found=repr(metrics))
    architecture = values["architecture"]
    if not isinstance(architecture, Mapping) or not isinstance(architecture.get("name"), str):
        raise InputError(f"{where}.architecture", expected="a mapping with a builder 'name'", found=repr(architecture))
    architectures.options_for(architecture["name"], architecture, f"{where}.architecture")
    check_prune(values["prune"], f"{where}.prune.")
    _number(values["qat"], "epochs", f"{where}.qat", integer=True, low=1)
    _number(values["qat"], "ema_decay", f"{where}.qat", high=0.99999)
    if values["qat"]["learning_rate"] is not None:
        _number(values["qat"], "learning_rate", f"{where}.qat", high=10.0)
    variants = values["convert"]["variants"]
    if not isinstance(variants, list) or not all(isinstance(v, str) for v in variants):
        raise InputError(f"{where}.convert.variants", expected="a list of variant names", found=repr(variants))
    classes = values["data"]["classes"]
    if classes is not None and (not isinstance(classes, list) or len(set(map(str, classes))) != len(classes)
                                or len(classes) < 2):
        raise InputError(f"{where}.data.classes", expected="a list of two or more distinct names", found=repr(classes))
    if classes is not None and not all(isinstance(c, str) and c for c in classes):
        # YAML reads unquoted yes/no/on/off as booleans: a KWS recipe's "no" would become False
        raise InputError(f"{where}.data.classes", expected="class names (strings)", found=repr(classes),
                         hint="quote names YAML reads as other types, e.g. \"no\", \"off\", \"on\", \"yes\", \"1\"")
    preprocess = preprocess_from_dict(values["preprocess"], f"{where}.preprocess")
    expected_kind = {"audio": "audio", "image": "image", "sensor": "sensor", "vector": "none"}[values["data"]["kind"]]
    if preprocess.kind.value != expected_kind:
        raise InputError(f"{where}.preprocess.kind", expected=f"{expected_kind!r} for data.kind "
                         f"{values['data']['kind']!r}", found=repr(preprocess.kind.value))
    kinds = TASKS[values["task"]].data_kinds
    if kinds is not None and values["data"]["kind"] not in kinds:
        raise InputError(f"{where}.data.kind", expected=f"{' or '.join(map(repr, kinds))} for task {values['task']!r}",
                         found=repr(values["data"]["kind"]))
    default_post = {"kind": values["task"]}
    postprocess = PostprocessSpec.from_dict(values["postprocess"] or default_post, f"{where}.postprocess")
    if postprocess.kind.value != values["task"]:
        raise InputError(f"{where}.postprocess.kind", expected=f"{values['task']!r} (the recipe's task)",
                         found=repr(postprocess.kind.value))
    name = str(values["name"])
    return Recipe(name=name, title=str(values["title"]), task=values["task"], data_kind=values["data"]["kind"],
                  preprocess=preprocess, postprocess=postprocess, architecture=dict(architecture), values=values,
                  path=path)


def check_prune(prune: Mapping[str, Any], where: str, sparsity_name: str = "sparsity",
                channels_name: str = "channels") -> None:
    """Check a ``prune`` section (also `edgekit prune`'s options, named as flags there).

    Raises:
        InputError: a value out of range, or both kinds of pruning at once.
    """
    sparsity, channels = prune.get("sparsity"), prune.get("channels")
    for key, value, good in ((sparsity_name, sparsity, lambda v: 0.0 <= v < 1.0),
                             (channels_name, channels, lambda v: 0.0 < v < 1.0)):
        if value is None:
            continue
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not good(float(value)):
            what = ("a sparsity in [0, 1), the fraction of weights set to zero (e.g. 0.8)" if key == sparsity_name
                    else "a fraction in (0, 1) of each layer's channels to remove (e.g. 0.5)")
            raise InputError(f"{where}{key}", expected=what, found=repr(value))
    if sparsity is not None and channels is not None:
        raise InputError(f"{where}{sparsity_name} and {channels_name}", expected="one kind of pruning at a time",
                         found=f"both ({sparsity} and {channels})",
                         hint="prune channels first, then prune the thinner model's weights in a second run")
    for key in ("epochs", "round_to", "block"):
        if key in prune:
            _number(prune, key, where.rstrip("."), integer=True, low=0 if key == "epochs" else 1)
    if "distill" in prune:
        _number(prune, "distill", where.rstrip("."), high=1.0)
    if prune.get("learning_rate") is not None:
        _number(prune, "learning_rate", where.rstrip("."), high=10.0)
    if "scope" in prune:
        _choice(prune, "scope", SCOPES, where.rstrip("."))
    if "importance" in prune:
        _choice(prune, "importance", IMPORTANCE, where.rstrip("."))
    skip = prune.get("skip", [])
    if not isinstance(skip, list) or not all(isinstance(x, str) for x in skip):
        raise InputError(f"{where}skip", expected="a list of layer names", found=repr(skip))
    for key in ("prune_first", "prune_last", "prune_depthwise"):
        if key in prune and not isinstance(prune[key], bool):
            raise InputError(f"{where}{key}", expected="true or false", found=repr(prune[key]))


@functools.lru_cache(maxsize=1)
def _loader() -> Any:
    """A safe YAML loader that also reads ``1e-4`` as a number.

    YAML 1.1 (PyYAML) wants a dot in a float, so ``learning_rate: 1e-4`` or ``--set
    train.learning_rate=1e-4`` would be the string '1e-4'.
    """
    import yaml  # here, not at the top: finding recipes (`recipe_names`) needs no third-party module

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$"),
                                 list("-+0123456789"))
    return Loader


def _safe_load(text: str) -> Any:
    import yaml

    return yaml.load(text, Loader=_loader())  # noqa: S506 - a SafeLoader subclass


def _parse_value(text: str) -> Any:
    import yaml

    try:
        return _safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str], where: str = "--set") -> dict[str, Any]:
    """Apply ``KEY.PATH=VALUE`` overrides (values parsed as YAML) to a raw recipe mapping.

    Raises:
        InputError: malformed override or a path the recipe does not have (lists valid ones).
    """
    result = copy.deepcopy(dict(data))
    valid = _paths(DEFAULTS)
    for override in overrides:
        key, sep, text = override.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(f"{where} {override!r}", expected="KEY=VALUE, e.g. train.epochs=5", found=repr(override))
        parts = key.split(".")
        top = parts[0]
        free = top in ("architecture", "preprocess", "postprocess")  # checked by their own parsers
        if not free and key not in valid:
            same = [p for p in valid if p.startswith(top + ".")] if isinstance(DEFAULTS.get(top), dict) else []
            choices = same or [p for p in valid if "." not in p]
            raise InputError(f"unknown recipe key {key!r} in {where}", expected=f"one of {choices}",
                             found=repr(key), hint="`edgekit train RECIPE --show` prints a recipe")
        target: dict[str, Any] = result
        for part in parts[:-1]:
            node = target.get(part)
            if not isinstance(node, dict):
                node = {}
                target[part] = node
            target = node
        target[parts[-1]] = _parse_value(text)
    return result


def read_recipe_data(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = _safe_load(path.read_text("utf-8"))
    except OSError as exc:
        raise InputError(f"recipe {path}", expected="a readable YAML file", found=exc.strerror or str(exc)) from exc
    except yaml.YAMLError as exc:
        raise InputError(f"recipe {path}", expected="valid YAML", found=" ".join(str(exc).split())[:300]) from exc
    if not isinstance(data, dict):
        raise InputError(f"recipe {path}", expected="a YAML mapping", found=type(data).__name__)
    return data


def load_recipe(name: str, overrides: Sequence[str] = (), dirs: Sequence[str | os.PathLike[str]] = ()) -> Recipe:
    """The recipe `name` (or the recipe file `name`), overrides applied and validated.

    Raises:
        InputError: unknown recipe (lists the valid names), unreadable file, or an
            invalid recipe or override.
    """
    if name.endswith((".yaml", ".yml")) or os.sep in name:
        path = Path(name)
    else:
        files = _recipe_files(dirs)
        if name not in files:
            raise InputError(f"unknown recipe {name!r}", expected=f"one of {sorted(files)}", found=repr(name),
                             hint="`edgekit train --list` shows them, or pass the path of a recipe .yaml file")
        path = files[name]
    data = apply_overrides(read_recipe_data(path), overrides)
    recipe = parse_recipe(data, f"recipe {path.name}", path)
    if not name.endswith((".yaml", ".yml")) and os.sep not in name and recipe.name != path.stem:
        raise InputError(f"recipe {path}: name", expected=f"{path.stem!r} (the file name)", found=repr(recipe.name))
    return recipe


def list_recipes(dirs: Sequence[str | os.PathLike[str]] = ()) -> list[Recipe]:
    return [load_recipe(name, dirs=dirs) for name in recipe_names(dirs)]
