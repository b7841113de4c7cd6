"""Typed user errors and the exit codes the command line maps them to.

Every user-facing failure is an `EdgekitError` whose message says what was expected,
what was found and what to do. Programming errors are ordinary exceptions and are not
caught here.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Documented process exit codes (README, "Exit codes")."""

    OK = 0
    ERROR = 1  # error in input or environment
    USAGE = 2  # command-line usage (Click's own code)
    REFUSED = 3  # integrity or safety: hash/signature mismatch, model that contains code
    GATE = 4  # a gate failed: accuracy drop or budget exceeded


class EdgekitError(Exception):
    """Base class of all errors meant for the user.

    Args:
        what: the subject, e.g. ``"model file /x/y.tflite"``.
        expected: what edgekit needed.
        found: what it found instead.
        hint: what the user can do about it.
    """

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(
        self,
        what: str,
        *,
        expected: str | None = None,
        found: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.what = what
        self.expected = expected
        self.found = found
        self.hint = hint
        super().__init__(self._compose())

    def _compose(self) -> str:
        detail = []
        if self.expected is not None:
            detail.append(f"expected {self.expected}")
        if self.found is not None:
            detail.append(f"found {self.found}")
        text = f"{self.what}: " + ", ".join(detail) if detail else self.what
        if self.hint:
            text = f"{text}; {self.hint}"
        return text

    def to_dict(self) -> dict:
        """A JSON-ready form, used to carry errors across process boundaries."""
        return {
            "type": type(self).__name__,
            "what": self.what,
            "expected": self.expected,
            "found": self.found,
            "hint": self.hint,
        }

    @staticmethod
    def from_dict(data: dict) -> EdgekitError:
        """Rebuild an error produced by `to_dict` (unknown types become `InputError`)."""
        cls = _ERROR_TYPES.get(str(data.get("type")), InputError)
        return cls(
            str(data.get("what") or "error"),
            expected=data.get("expected"),
            found=data.get("found"),
            hint=data.get("hint"),
        )


class InputError(EdgekitError):
    """Bad input or environment: a missing file, a corrupt model, wrong data (exit 1)."""

    exit_code = ExitCode.ERROR


class ShapeError(InputError, ValueError):
    """An array given to the runtime has the wrong shape or dtype (also a ValueError)."""


class MissingDependencyError(InputError):
    """An optional library is not installed (exit 1); the hint names the pip extra."""


class IntegrityError(EdgekitError):
    """An artifact failed verification: hash, size, schema or signature (exit 3)."""

    exit_code = ExitCode.REFUSED


class UnsafeModelError(IntegrityError):
    """A model carries code (Lambda layer, custom module) and was not trusted (exit 3)."""


class GateError(EdgekitError):
    """A quality or budget gate failed (exit 4)."""

    exit_code = ExitCode.GATE


def text_head(data: bytes, size: int = 24) -> str | None:
    """The first `size` bytes of `data` as text, stripped, when they are printable ASCII (a
    text file where a binary format was expected, for the "found" of an error); else None."""
    head = data[:size]
    if head and all(32 <= b < 127 or b in b"\t\r\n" for b in head):
        return head.decode("ascii").strip()
    return None


_ERROR_TYPES: dict[str, type[EdgekitError]] = {
    cls.__name__: cls
    for cls in (
        EdgekitError,
        InputError,
        ShapeError,
        MissingDependencyError,
        IntegrityError,
        UnsafeModelError,
        GateError,
    )
}
