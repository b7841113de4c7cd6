"""The Raspberry Pi's ``vcgencmd``: found on ``PATH`` and run, for the environment and the rpi5 meter."""

from __future__ import annotations

import shutil
import subprocess

from edgekit.errors import InputError


def vcgencmd_path(explicit: str | None = None) -> str | None:
    """``vcgencmd`` as given, or found on ``PATH`` (None when absent)."""
    if explicit:
        return explicit
    return shutil.which("vcgencmd")


def run_vcgencmd(executable: str, *args: str, timeout: float = 5.0) -> str:
    """Run vcgencmd and return its stdout.

    Raises:
        InputError: it could not run or exited non-zero.
    """
    try:
        proc = subprocess.run([executable, *args], capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise InputError(f"`vcgencmd {' '.join(args)}`", expected="it to run", found=str(exc)) from exc
    if proc.returncode != 0:
        detail = (proc.stderr.strip() or proc.stdout.strip() or f"exit code {proc.returncode}").splitlines()[0]
        raise InputError(f"`vcgencmd {' '.join(args)}`", expected="exit code 0", found=detail,
                         hint="vcgencmd needs access to /dev/vcio: add the user to the video group")
    return proc.stdout
