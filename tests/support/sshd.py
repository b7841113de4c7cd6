"""A real sshd on a loopback port with throwaway keys, and the client configuration that reaches it.

One sshd serves several "hosts": the client config names aliases (``edgekit-a``,
``edgekit-b``, ...) that reach it, each sending its own ``XDG_DATA_HOME`` and ``XDG_CONFIG_HOME`` (``SetEnv``,
accepted by the sshd), so each alias is a device with its own ``~/.local/share`` and ``~/.config``.
``edgekit-dead`` points at a closed port. Used by the bench --remote and deploy tests.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edgekit.bench import remote
from tests.support.cli import run_cli
from tests.support.env import free_port, need_program

REMOTE_EDGEKIT = str(Path(sys.executable).parent / "edgekit")  # this venv's command, as on a device
HOSTS = ("edgekit-a", "edgekit-b", "edgekit-c", "edgekit-d")


@dataclass
class Sshd:
    """A running sshd and the client side that reaches it."""

    client_config: Path  # for --ssh-config: aliases HOSTS (this sshd), edgekit-dead (closed port)
    remote_tmp: Path  # TMPDIR of the sessions
    closed_port: int
    log: Path
    root: Path
    port: int

    def data_home(self, host: str) -> Path:
        """The XDG_DATA_HOME of `host`'s sessions (its ``~/.local/share``)."""
        return self.root / "hosts" / host / "share"

    def config_home(self, host: str) -> Path:
        """The XDG_CONFIG_HOME of `host`'s sessions (its ``~/.config``)."""
        return self.root / "hosts" / host / "config"

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


def _limit_file_size(limit: int):  # noqa: ANN202 - a preexec_fn
    def apply() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@contextlib.contextmanager
def running_sshd(root: Path, file_size_limit: int | None = None, path_first: Path | None = None) -> Iterator[Sshd]:
    """Start an sshd under `root` (skips, or fails under EDGEKIT_STRICT_TESTS=1, without OpenSSH).
    `file_size_limit` (bytes): RLIMIT_FSIZE of the sshd and so of its sessions (a device whose
    disk fills up). `path_first`: a folder put first on the sessions' PATH (device-side
    commands replaced by the test, e.g. an ``mv`` that stops at a chosen point)."""
    binary = need_program("sshd", "apt-get install openssh-server")
    keygen = need_program("ssh-keygen", "apt-get install openssh-client")
    need_program("ssh", "apt-get install openssh-client")
    need_program("scp", "apt-get install openssh-client")
    if not Path(REMOTE_EDGEKIT).is_file():
        pytest.fail(f"no edgekit command next to {sys.executable}; install the package (pip install -e .)")
    for name in ("host_key", "client_key"):
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-C", f"edgekit test {name}", "-f",
                        str(root / name)], check=True, capture_output=True)
    (root / "authorized_keys").write_text((root / "client_key.pub").read_text())
    remote_tmp = root / "remote-tmp"
    remote_tmp.mkdir()
    if os.geteuid() == 0:
        # sshd started as root insists on its privilege-separation directory, which the
        # service unit normally creates; as another user sshd runs unprivileged without it.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    port, closed_port = free_port(), free_port()
    server_config = root / "sshd_config"
    server_config.write_text("\n".join([
        f"ListenAddress 127.0.0.1:{port}",
        f"HostKey {root / 'host_key'}",
        f"AuthorizedKeysFile {root / 'authorized_keys'}",
        f"PidFile {root / 'sshd.pid'}",
        "StrictModes no",  # the temporary files are not in a home directory
        "UsePAM no",
        "PermitRootLogin prohibit-password",  # the tests may run as root: keys only
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "Subsystem sftp internal-sftp",  # scp speaks SFTP since OpenSSH 9
        f"SetEnv TMPDIR={remote_tmp}" + (f" PATH={path_first}:/usr/local/bin:/usr/bin:/bin" if path_first else ""),
        "AcceptEnv XDG_DATA_HOME XDG_CONFIG_HOME",  # each alias is its own device (~/.local/share, ~/.config)
        "MaxStartups 64:30:100",  # fleets open many sessions at once
        "LogLevel VERBOSE",
    ]) + "\n")
    lines = []
    for host in HOSTS:
        data_home = root / "hosts" / host / "share"
        data_home.mkdir(parents=True)
        lines += [f"Host {host}", "  HostName 127.0.0.1", f"  Port {port}",
                  f"  SetEnv XDG_DATA_HOME={data_home} XDG_CONFIG_HOME={data_home.parent / 'config'}"]
    lines += ["Host edgekit-dead", "  HostName 127.0.0.1", f"  Port {closed_port}"]
    client_config = root / "ssh_config"
    client_config.write_text("\n".join([
        *lines,
        "Host *",
        f"  User {getpass.getuser()}",
        f"  IdentityFile {root / 'client_key'}",
        "  IdentitiesOnly yes",
        "  IdentityAgent none",
        f"  UserKnownHostsFile {root / 'known_hosts'}",
        "  StrictHostKeyChecking accept-new",
        "  LogLevel ERROR",
    ]) + "\n")
    log = root / "sshd.log"
    with log.open("w") as log_file:
        proc = subprocess.Popen([binary, "-D", "-e", "-f", str(server_config)], stdout=log_file,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                preexec_fn=None if file_size_limit is None else _limit_file_size(file_size_limit))
    try:
        wait_for_port(port, proc, log)
        yield Sshd(client_config, remote_tmp, closed_port, log, root, port)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
