"""The system ``ssh`` and ``scp``, for the commands that work on another machine
(`edgekit bench --remote`, `edgekit deploy`, `edgekit status HOST`).

The system client does the work, so ``~/.ssh/config``, keys, agents and jump hosts behave
as they do in a terminal; ``BatchMode=yes`` makes a missing key fail at once instead of
waiting for a password nobody will type. Standard library only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence

from edgekit.errors import InputError

CONNECT_TIMEOUT_S = 10
# ssh notices a host that vanished mid-run after SERVER_ALIVE_INTERVAL_S * SERVER_ALIVE_COUNT
SERVER_ALIVE_INTERVAL_S = 15
SERVER_ALIVE_COUNT = 4
UNREACHABLE = 255  # ssh's own exit code: no connection, no login, or the connection dropped


def last_line(text: str) -> str:
    """ssh's (or the host's) last meaningful stderr line."""
    lines = [line.strip() for line in text.replace("\r", "\n").splitlines()]
    lines = [line for line in lines if line and not line.startswith("Warning: Permanently added")]
    return lines[-1][:300] if lines else ""


def scp_host(host: str) -> str:
    """`host` for an scp destination: an IPv6 address in brackets (``user@[::1]``)."""
    user, at, name = host.rpartition("@")
    if ":" in name and not name.startswith("["):
        name = f"[{name}]"
    return f"{user}{at}{name}"


def check_destination(host: str, what: str) -> None:
    """Refuse a host that is not an ssh destination (before ssh sees it: ``-oProxyCommand=...``
    would be an option).

    Raises:
        InputError: empty, starts with ``-`` or contains white space.
    """
    if not host or host.startswith("-") or any(c.isspace() for c in host):
        raise InputError(f"{what} {host!r}", expected="an ssh destination such as pi@raspberrypi.local",
                         found=repr(host))


class Ssh:
    """ssh and scp command lines for one host.

    Args:
        host: an ssh destination: ``USER@HOST``, ``HOST`` or a ``Host`` alias of the ssh config.
        ssh_options: extra ``-o OPTION`` for ssh and scp (e.g. ``Port=2222``).
        ssh_config: an ssh configuration file used instead of ``~/.ssh/config`` (``-F``).
        what: how the host was given, for the error of a bad destination (``--remote``, ``host``).

    Raises:
        InputError: a host that is not an ssh destination, or no ssh/scp on this machine.
    """

    def __init__(self, host: str, ssh_options: Sequence[str] = (),
                 ssh_config: str | os.PathLike[str] | None = None, *, what: str = "host") -> None:
        check_destination(host, what)
        missing = [p for p in ("ssh", "scp") if shutil.which(p) is None]
        if missing:
            raise InputError("ssh client", expected="the OpenSSH client (ssh and scp) on this machine",
                             found=f"no {' or '.join(missing)} on PATH", hint="apt-get install openssh-client")
        self.host = host
        # BatchMode first (ssh keeps the first value it sees): never wait for a password.
        options = ["-o", "BatchMode=yes"]
        if ssh_config is not None:
            options = ["-F", os.fspath(ssh_config), *options]
        for option in ssh_options:
            options += ["-o", option]
        options += ["-o", f"ConnectTimeout={CONNECT_TIMEOUT_S}", "-o", f"ServerAliveInterval={SERVER_ALIVE_INTERVAL_S}",
                    "-o", f"ServerAliveCountMax={SERVER_ALIVE_COUNT}"]
        self.options = options

    def share_connection(self, control_dir: str) -> None:
        """Run every later ssh and scp over one connection (OpenSSH's ControlMaster), its socket
        in `control_dir` (a private folder); `close` ends it. Saves a login per step."""
        self.options += ["-o", "ControlMaster=auto", "-o", f"ControlPath={control_dir}/%C",
                         "-o", "ControlPersist=120"]  # ends by itself if close() never runs (SIGKILL)
        self._shared = True

    def close(self) -> None:
        """End the shared connection, if any (best effort)."""
        if getattr(self, "_shared", False):
            subprocess.run(["ssh", *self.options, "-O", "exit", self.host], stdin=subprocess.DEVNULL,
                           capture_output=True, check=False, timeout=10)
            self._shared = False

    def run(self, command: str, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        """Run shell text on the host (stdin closed, so concurrent hosts never read the terminal).

        A `timeout` that passes is returned as ssh exit code 255 with a line saying so.
        """
        argv = ["ssh", *self.options, self.host, command]
        try:
            return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(argv, UNREACHABLE, "", f"no answer from {self.host} within {timeout:g} s")

    def unreachable(self, proc: subprocess.CompletedProcess[str]) -> InputError:
        """The error of an ssh that could not log in (exit code 255)."""
        line = last_line(proc.stderr) or f"ssh exit code {proc.returncode}"
        hint = f"check that `ssh {self.host} true` works without a prompt (keys, agent and ~/.ssh/config are used)"
        if "Host key verification failed" in proc.stderr:
            hint = f"the host key is unknown or changed: connect once with `ssh {self.host}` and check it"
        elif "Permission denied" in proc.stderr:
            hint = f"install your public key on the host (ssh-copy-id {self.host}) or load it into ssh-agent"
        return InputError("ssh", expected="a reachable host that accepts key login without a prompt",
                          found=line, hint=hint)

    def scp(self, files: Sequence[str], destination: str) -> None:
        """Copy local `files` to `destination` (a directory ending in ``/`` or a file path) on the host.

        Raises:
            InputError: scp failed (connection, permissions, space).
        """
        # absolute local paths: scp would take a name with ':' before any '/' for a host
        proc = subprocess.run(["scp", "-q", *self.options, *(os.path.abspath(f) for f in files),
                               f"{scp_host(self.host)}:{destination}"], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            line = last_line(proc.stderr) or f"scp exit code {proc.returncode}"
            raise InputError("scp", expected=f"scp into {destination} to succeed",
                             found=line, hint="check the connection and the free space on the host")
