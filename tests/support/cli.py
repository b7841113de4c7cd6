"""Running the command line as a user would, and checking its one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.support.env import REPO


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self) -> dict:
        return json.loads(self.stdout)


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> CliResult:
    """Run ``python -m edgekit ARGS`` in a fresh process, as a user would."""
    full_env = dict(os.environ)
    full_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if env:
        full_env.update(env)
    proc = subprocess.run([sys.executable, "-m", "edgekit", *args], capture_output=True, text=True,
                          timeout=timeout, env=full_env, cwd=REPO, check=False)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def train_killed_after_an_epoch(args: list[str], out: Path, timeout: float = 300) -> dict:
    """Start ``edgekit -q train ARGS``, SIGKILL it once its checkpoint records an epoch
    (no cleanup runs, as after a power cut); returns the checkpoint's state."""
    import time

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen([sys.executable, "-m", "edgekit", "-q", "train", *args], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state_file = out / "checkpoints" / "state.json"
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if json.loads(state_file.read_text())["epoch"] >= 1:
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.02)
        assert proc.poll() is None, "the training ended before it could be interrupted"
    finally:
        proc.kill()
        proc.wait()
    return json.loads(state_file.read_text())


def assert_one_line_error(result, code: int, *fragments: str) -> None:
    assert result.code == code, (result.code, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("edgekit: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert result.stdout == ""
