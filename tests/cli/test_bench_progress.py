"""``edgekit bench``'s progress bar: drawn on a terminal, absent from a log or a pipe (Click
prints a bar's label alone on a line where stderr is not a terminal)."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

from tests.support.cli import run_cli
from tests.support.env import REPO
from tests.support.fuzzing import SEEDS

BUNDLE = SEEDS / "bundle" / "image.edgekit"  # 14 KB, committed: tflite-fp32 runs in microseconds
QUICK = ("bench", str(BUNDLE), "--variants", "tflite-fp32", "--mode", "invoke", "--duration", "0.05", "--windows", "1",
         "--warmup", "1", "--warmup-seconds", "0", "--idle-seconds", "0")


def test_no_stray_progress_line_when_stderr_is_not_a_terminal():
    result = run_cli(*QUICK)
    assert result.code == 0, result.stderr
    assert "tflite-fp32 @1t" in result.stdout
    assert result.stderr == "", result.stderr  # was "bench\n"


def test_the_bar_is_drawn_on_a_terminal():
    main, other = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "edgekit", *QUICK], stdout=subprocess.DEVNULL, stderr=other,
                              cwd=REPO, timeout=300, check=False, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        os.close(other)
        other = -1
        drawn = b""
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the child's end is closed
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(main)
        if other >= 0:
            os.close(other)
    assert proc.returncode == 0, drawn
    assert b"bench  [" in drawn and b"tflite-fp32 @1t invoke window 1/1" in drawn, drawn


def test_the_loaders_progress_off_a_terminal_passes_the_items_and_prints_nothing(capfd):
    """train's and eval's data bars (`edgekit.cli.progress`) did print their label alone."""
    from edgekit.cli import progress

    assert list(progress(iter(range(5)), "reading data", 5)) == [0, 1, 2, 3, 4]
    assert capfd.readouterr().err == ""
