"""The systemd unit that runs `edgekit serve` on a device, from the template
``devices/edgekit-serve.service`` (installed with the device profiles). Standard library only."""

from __future__ import annotations

import shlex
from pathlib import Path

from edgekit._datafiles import search_path
from edgekit.errors import InputError

TEMPLATE = "edgekit-serve.service"
ENV_VAR = "EDGEKIT_DEVICES"  # as edgekit.devices: extra folders searched first
SYSTEM_DIR = "/etc/systemd/system"


def unit_name(app: str) -> str:
    """``edgekit-serve-APP.service``."""
    return f"edgekit-serve-{app}.service"


def template_text() -> str:
    """The template's text (the first ``devices/`` folder that has it).

    Raises:
        InputError: no template found (a broken installation).
    """
    for folder in search_path("devices", ENV_VAR):
        path = Path(folder) / TEMPLATE
        if path.is_file():
            return path.read_text()
    raise InputError(f"systemd unit template {TEMPLATE}", expected="the file in edgekit's devices/ folder",
                     found="none", hint="reinstall edgekit (pip install --force-reinstall edgekit-ml)")


def exec_start(edgekit: str, app_dir: str, source: str, *, port: int, sink: str | None = None,
               public_key: str | None = None, skip_self_check: bool = False) -> str:
    """The ExecStart command line (systemd splits it as a shell would for quoted words)."""
    words = [edgekit, "serve", app_dir, "--source", source]
    if sink:
        words += ["--sink", sink]
    words += ["--port", str(port)]
    if public_key:
        words += ["--public-key", public_key]
    if skip_self_check:
        words.append("--skip-self-check")
    # systemd expands $VAR and % specifiers in ExecStart: keep both literal
    return " ".join(_quote(w) for w in words).replace("%", "%%").replace("$", "$$")


def _quote(word: str) -> str:
    return word if word and all(c.isalnum() or c in "/._-:=@+," for c in word) else '"' + \
        word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(app: str, app_dir: str, command: str, *, system: bool, user: str | None = None) -> str:
    """The unit text for `app`: `command` from `exec_start`; `user` (the service's account)
    only for a system unit."""
    values = {"APP": app, "APP_DIR": app_dir, "EXEC_START": command,
              "USER": user if system else None,
              "WANTED_BY": "multi-user.target" if system else "default.target"}
    lines = []
    for line in template_text().splitlines():
        keep = True
        for key, value in values.items():
            if f"@{key}@" in line:
                if value is None:
                    keep = False
                    break
                line = line.replace(f"@{key}@", value)
        if keep:
            lines.append(line)
    return "\n".join(lines) + "\n"


def systemctl(system: bool, *args: str) -> str:
    """A ``systemctl [--user] ARGS`` command line (shell text)."""
    return " ".join(["systemctl", *([] if system else ["--user"]), *(shlex.quote(a) for a in args)])


def unit_dir_sh(system: bool) -> str:
    """The unit folder on the host as shell text (the user's: where ``systemctl --user`` looks,
    ``$XDG_CONFIG_HOME/systemd/user``, by default ``~/.config/systemd/user``)."""
    return SYSTEM_DIR if system else '"${XDG_CONFIG_HOME:-$HOME/.config}/systemd/user"'

