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
    "prometheus_client": ("litert", "prometheus-client"),
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


# 32-bit ARM (Raspberry Pi OS armhf): the registry has no wheels of ai-edge-litert, onnxruntime
# or numpy for it; Debian trixie packages onnxruntime (docs/arm.md, make test-armv7).
ARM32 = ("armv7l", "armv6l", "armv8l")
ARM32_ONNX = ('sudo apt install python3-onnxruntime python3-numpy python3-pil (Raspberry Pi OS trixie; '
              'the registry has no 32-bit ARM onnxruntime), then pip install "{dist}[onnx]" in a venv made '
              'with python3 -m venv --system-site-packages (docs/arm.md)')
ARM32_LITERT = ("no TFLite interpreter installs on 32-bit ARM with Python >= 3.10 (ai-edge-litert has no armv7 "
                "wheels, tflite-runtime stops at Python 3.9): run the bundle's onnx variants instead: " + ARM32_ONNX)


def extra_install(extra: str, machine: str | None = None) -> str:
    """The command that installs edgekit with `extra`, e.g. ``pip install "edgekit-ml[litert]"``;
    on 32-bit ARM (`machine`, default this one) the device extras say what works there instead."""
    import platform

    if (machine or platform.machine()) in ARM32 and extra in ("litert", "onnx"):
        return (ARM32_LITERT if extra == "litert" else ARM32_ONNX).format(dist=DISTRIBUTION)
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
