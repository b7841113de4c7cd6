"""The import rules of docs/DESIGN.md section 2, read from the source (AST), lazy imports included.

The device side (what a Raspberry Pi installs with the device extra alone) never imports the
host side or TensorFlow/Keras, at module level or inside a function: not directly, and not
through another edgekit module it imports. The one documented exception is the last-resort
``tf-lite`` backend, which runs a ``.tflite`` through ``tensorflow.lite`` where nothing else
is installed. No library module imports the command line, and there are no import cycles.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.env import REPO

PACKAGE = REPO / "edgekit"
DEVICE_SIDE = ("edgekit.runtime", "edgekit.bench", "edgekit.bundle", "edgekit.features", "edgekit.spec",
               "edgekit.contract", "edgekit.devices", "edgekit.stats", "edgekit.eval", "edgekit.datasets",
               "edgekit.presets", "edgekit.deploy", "edgekit.ssh")
HOST_SIDE = ("edgekit.train", "edgekit.convert", "edgekit.prune", "edgekit.demo", "edgekit.keras_env")
HEAVY = ("tensorflow", "keras", "tf_keras", "tf2onnx", "tensorflow_model_optimization")
# module -> the heavy libraries it may import, and why
EXCEPTIONS = {"edgekit.runtime.backends.tf_lite": {"tensorflow"}}  # the last-resort tf.lite backend


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _imports(name: str) -> set[str]:
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    return imports_in(path.read_text("utf-8"), name, package)


def imports_in(source: str, name: str, package: str) -> set[str]:
    """Every module `source` (module `name` in `package`) imports, anywhere in its body, lazy
    imports in functions included (absolute names; edgekit names resolved to the module, or
    the package, that exists)."""
    targets: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                targets.add(full if full in MODULES else base)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in ("import_module", "__import__", "require"):  # importlib and edgekit._optional.require
                targets.add(node.args[0].value)
    resolved = set()
    for target in targets:
        if target.split(".")[0] != "edgekit":
            resolved.add(target)
            continue
        while target and target not in MODULES:
            target = target.rpartition(".")[0]
        if target and target != name:
            resolved.add(target)
    return resolved


GRAPH = {name: _imports(name) for name in MODULES}


def _within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def _reach(start: str) -> dict[str, list[str]]:
    """Every edgekit module `start` imports, directly or through others, with one import chain to it."""
    chains = {start: [start]}
    todo = [start]
    while todo:
        current = todo.pop()
        for target in GRAPH[current]:
            if target in MODULES and target not in chains:
                chains[target] = [*chains[current], target]
                todo.append(target)
    return chains


DEVICE_MODULES = sorted(name for name in MODULES if _within(name, DEVICE_SIDE))


def test_the_rules_see_every_device_package():
    for package in DEVICE_SIDE:
        assert package in MODULES, f"{package} is not a module of edgekit: update DEVICE_SIDE"
    assert "edgekit.runtime.backends.tf_lite" in MODULES, "the documented tf.lite exception moved: update EXCEPTIONS"
    assert len(DEVICE_MODULES) > 30


@pytest.mark.parametrize("module", DEVICE_MODULES)
def test_device_side_never_reaches_the_host_side_or_tensorflow(module):
    problems = []
    for reached, chain in _reach(module).items():
        if _within(reached, HOST_SIDE) or reached == "edgekit.cli":
            problems.append(f"imports the host side {reached} ({' -> '.join(chain)})")
        allowed = EXCEPTIONS.get(reached, set())
        for target in GRAPH[reached]:
            top = target.split(".")[0]
            if top in HEAVY and top not in allowed:
                problems.append(f"imports {target} ({' -> '.join(chain)})")
    assert not problems, f"{module}: " + "; ".join(sorted(problems))


def test_the_tf_lite_exception_is_the_only_one_and_is_real():
    # the exception is used (else the rule is looser than it needs to be) ...
    assert "tensorflow" in {t.split(".")[0] for t in GRAPH["edgekit.runtime.backends.tf_lite"]}
    # ... and nothing else on the device side imports TensorFlow
    others = [name for name in DEVICE_MODULES if name not in EXCEPTIONS
              and any(t.split(".")[0] in HEAVY for t in GRAPH[name])]
    assert others == []


def test_the_checker_catches_lazy_relative_and_by_name_imports():
    source = ("def load():\n    import tensorflow as tf\n    from ...train import run\n"
              "    return tf, run, importlib.import_module('keras'), require('tf2onnx', 'converting')\n")
    found = imports_in(source, "edgekit.runtime.sources.camera", "edgekit.runtime.sources")
    assert {"tensorflow", "edgekit.train.run", "keras", "tf2onnx"} <= found


def test_no_library_module_imports_the_command_line():
    importers = sorted(name for name, targets in GRAPH.items() if "edgekit.cli" in targets and name != "edgekit.__main__")
    assert importers == []


def test_no_import_cycles():
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH[node]:
            if target not in MODULES:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            # a package that imports its own plugin modules (a registry) is not a cycle
            if len(component) > 1 and not (len(component) == 2 and (
                    component[0].startswith(component[1] + ".") or component[1].startswith(component[0] + "."))):
                cycles.append(sorted(component))

    for name in MODULES:
        if name not in index:
            visit(name)
    assert cycles == []
