"""A real sshd on a loopback port with throwaway keys, and the client configuration that reaches it."""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from edgekit.bench import remote
from tests.support.cli import run_cli


@dataclass
class Sshd:
    """A running sshd and the client side that reaches it."""

    client_config: Path  # for --ssh-config: aliases edgekit-a, edgekit-b (this sshd), edgekit-dead (closed port)
    remote_tmp: Path  # TMPDIR of the sessions
    closed_port: int
    log: Path

    def leftovers(self) -> list[str]:
        return sorted(p.name for p in self.remote_tmp.iterdir() if p.name.startswith(remote.TEMP_PREFIX))

    def bench(self, *args: str, quiet: bool = False) -> subprocess.CompletedProcess[str]:
        result = run_cli(*(["-q"] if quiet else []), "bench", *args, "--ssh-config", str(self.client_config),
                         timeout=120)
        return subprocess.CompletedProcess(args, result.code, result.stdout, result.stderr)


def wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"sshd exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"sshd did not listen on port {port}: {log.read_text()[-2000:]}")
