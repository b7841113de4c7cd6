"""edgekit: carry a deep-learning model from training to a small device and prove it works there.

The top-level package imports nothing heavy: TensorFlow, ONNX Runtime and OpenCV are
loaded lazily by the functions that need them.
"""

from edgekit.errors import (
    EdgekitError,
    ExitCode,
    GateError,
    InputError,
    IntegrityError,
    MissingDependencyError,
    UnsafeModelError,
)

__version__ = "0.1.0"

__all__ = [
    "EdgekitError",
    "ExitCode",
    "GateError",
    "InputError",
    "IntegrityError",
    "MissingDependencyError",
    "UnsafeModelError",
    "__version__",
]
