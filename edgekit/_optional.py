"""One helper for optional heavy libraries.

Heavy modules are imported only inside the functions that need them, through
`require`, so that a missing library produces an error naming the exact pip extra
(the pattern of Keras 3 ``utils/module_utils.py``). Nothing is ever installed at run
time.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from edgekit.errors import MissingDependencyError

DISTRIBUTION = "edgekit-ml"
"""The name edgekit is installed under (pyproject.toml's ``[project] name``): the registry's
``edgekit`` is another project. The import package and the command are ``edgekit``."""

# top-level import name -> (pip extra, distribution a user would recognise)
EXTRAS: dict[str, tuple[str, str]] = {
    "ai_edge_litert": ("litert", "ai-edge-litert"),
    "tflite_runtime": ("litert", "tflite-runtime"),
    "onnxruntime": ("onnx", "onnxruntime"),
    "onnx": ("onnx", "onnx"),
    "cv2": ("camera", "opencv-python-headless"),
    "PIL": ("litert", "pillow"),
    "sounddevice": ("audio", "sounddevice"),
    "soundfile": ("audio", "soundfile"),
    "serial": ("sensor", "pyserial"),
    "paho": ("mqtt", "paho-mqtt"),
    "matplotlib": ("plot", "matplotlib"),
    "tensorflow": ("train", "tensorflow"),
    "keras": ("train", "keras"),
    "tf2onnx": ("train", "tf2onnx"),
    "ai_edge_quantizer": ("train", "ai-edge-quantizer"),
    "h5py": ("train", "h5py"),
    "cryptography": ("sign", "cryptography"),
}


def extra_install(extra: str) -> str:
    """The pip command that installs edgekit with `extra`, e.g. ``pip install "edgekit-ml[litert]"``."""
    return f'pip install "{DISTRIBUTION}[{extra}]"'


def install_hint(module: str) -> str:
    """The pip command that provides `module`."""
    extra, _dist = EXTRAS.get(module.split(".")[0], ("all", module))
    return extra_install(extra)


def require(module: str, purpose: str) -> ModuleType:
    """Import `module` or raise `MissingDependencyError` naming the pip extra.

    Args:
        module: dotted module name, e.g. ``"onnxruntime"``.
        purpose: what the caller wanted to do, e.g. ``"reading .onnx files"``.

    Returns:
        The imported module.

    Raises:
        MissingDependencyError: the module (or one of its own imports) is missing.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        _extra, dist = EXTRAS.get(module.split(".")[0], ("all", module))
        raise MissingDependencyError(
            f"{purpose} needs the Python package {dist}",
            expected="it to be importable",
            found=f"ImportError: {exc}",
            hint=f"install it with: {install_hint(module)}",
        ) from exc


def available(module: str) -> bool:
    """True when `module` can be found, without importing it."""
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
