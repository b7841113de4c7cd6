"""`edgekit bench --remote USER@HOST`: the same benchmark, run on another machine over SSH.

The system's ``ssh`` and ``scp`` do the work, so ``~/.ssh/config``, keys, agents and jump
hosts behave as they do in a terminal; ``BatchMode=yes`` makes a missing key fail at once
instead of waiting for a password nobody will type. One run on one host:

1. ``REMOTE_COMMAND --version && mktemp -d -t edgekit-bench.XXXXXX``: is edgekit there,
   and a private directory for the files (nothing is installed, ever);
2. ``scp`` every target (and a ``--device`` profile given as a file) into that directory;
3. ``REMOTE_COMMAND -q bench <copied targets> <the options of this run> --format json``;
   the JSON report comes back on stdout, also when the host's run was partial (exit 1)
   or over budget (exit 4);
4. ``rm -rf`` the directory, also after a failure.

The document gets ``host`` and has the host's paths replaced by the local target names,
so the report reads the same as a local one. Whether the run was on the ``--device`` is
decided there, from the host's own environment (an alias is sent as the profile's name,
which older hosts know too); a report from an edgekit that does not decide it is matched
here, against the environment it recorded on the host, never against this machine's.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from edgekit._optional import DISTRIBUTION, extra_install
from edgekit.bench.harness import MODES, BenchConfig, BenchResult
from edgekit.errors import EdgekitError, InputError
from edgekit.progress import Log
from edgekit.ssh import Ssh
from edgekit.ssh import last_line as _last_line

TEMP_PREFIX = "edgekit-bench."
INSTALL_HINT = extra_install("litert")
TARGET_SUFFIXES = (".edgekit", ".tflite", ".onnx")


def run_remote(host: str, config: BenchConfig, remote_command: str = "edgekit", log: Log | None = None, *,
               ssh_options: Sequence[str] = (), ssh_config: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Run `config` on `host` with the edgekit installed there; return its report document.

    Args:
        host: an ssh destination: ``USER@HOST``, ``HOST`` or a ``Host`` alias of the ssh config.
        config: the bench options; the targets are local files, copied to the host.
        remote_command: the edgekit command on the host, as shell text for the host's
            login shell (e.g. ``~/venv/bin/edgekit`` or ``python3 -m edgekit``).
        log: progress messages (one line each).
        ssh_options: extra ``-o OPTION`` for ssh and scp (e.g. ``Port=2222``).
        ssh_config: an ssh configuration file used instead of ``~/.ssh/config`` (``-F``).

    Returns:
        The report document of `edgekit.bench.report.summarize`, from the host, with
        ``host`` set and the host's paths replaced by the local target names.

    Raises:
        InputError: a bad host name or target, no ssh here, an unreachable host, refused
            keys, edgekit missing on the host (the hint gives the install command), a copy
            that failed, or a remote run that failed without a report.
    """
    say = log or (lambda _m: None)
    ssh = _Ssh(host, ssh_options, ssh_config)
    uploads = _uploads(config)
    remote_dir = ssh.make_temp_dir(remote_command, say)
    try:
        remote_paths = ssh.copy(uploads, remote_dir, say)
        device = _remote_device(config.device, remote_paths)
        command = " ".join([remote_command, "-q", "bench",
                            *(shlex.quote(remote_paths[t]) for t in config.targets),
                            *(shlex.quote(a) for a in _bench_arguments(config, device)), "--format", "json"])
        say(f"{host}: running edgekit bench on {len(config.targets)} target(s)")
        proc = ssh.run(command)
        back = {remote: local for local, remote in remote_paths.items()}
        doc = _report(proc)
        if doc is None:
            raise _remote_failure(proc, back)
    finally:
        ssh.remove(remote_dir, say)
    doc = _replace_paths(doc, back)
    doc["host"] = host
    if "device_match" not in doc:  # an edgekit there that does not match hosts with profiles
        _match_on_host(doc)
    return doc


def _match_on_host(doc: dict[str, Any]) -> None:
    """Decide whether `doc`'s run was on its ``device`` from the environment recorded on
    the remote host (with the profile of that name here), and mark the report accordingly."""
    from edgekit.bench.hostmatch import match_host
    from edgekit.bench.report import mark_device_match
    from edgekit.devices import load_profile

    doc.setdefault("warnings", [])
    match = None
    if doc.get("device") and doc.get("environment"):
        try:
            match = match_host(load_profile(doc["device"]), doc["environment"]).to_dict()
        except EdgekitError:
            doc["warnings"].append(f"device profile {doc['device']!r} of the host is not known here: "
                                   "not checked whether the host is that device")
    mark_device_match(doc, match)


def failed_host_document(host: str, config: BenchConfig, error: str) -> dict[str, Any]:
    """The report document of a host where nothing could be measured: the keys of
    `edgekit.bench.report.summarize`, no results, marked partial with `error`, so every
    rendering and the budget check work on it next to the other hosts' documents."""
    from edgekit.bench.report import summarize
    from edgekit.devices import Budgets, load_profile

    profile = None
    if config.device:
        try:
            profile = load_profile(config.device)
        except EdgekitError:
            profile = None  # the error that matters is `error`; the device is only a label here
    budgets = (profile.budgets if profile else Budgets()).overridden(config.budgets or Budgets())
    result = BenchResult(config=config, environment={}, units=[], meter=None, idle=None,  # type: ignore[arg-type]
                         profile=profile, budgets=budgets, started=time.time(), seconds=0.0, host=host,
                         errors=[error])
    doc = summarize(result)
    doc["device"] = profile.name if profile else config.device
    doc["partial"] = True  # no units, so BenchResult.partial alone would say False
    return doc


def _remote_device(device: str | None, remote_paths: Mapping[str, str]) -> str | None:
    """``--device`` for the host: a profile file's copy there, or for an alias the profile's
    name (which an older edgekit there knows too); a name unknown here goes as it is, for
    the host to judge."""
    if device is None or device in remote_paths:
        return remote_paths.get(device, device) if device is not None else None
    from edgekit.devices import resolve_name

    return resolve_name(device)


def _bench_arguments(config: BenchConfig, device: str | None = None) -> list[str]:
    """The `edgekit bench` options that reproduce `config` (without targets, output,
    plot, format or remotes; `meter_root` has no option and stays ``/`` there). `device`
    replaces ``config.device`` (a profile file copied to the host)."""
    args = ["--warmup", str(config.warmup_runs), "--warmup-seconds", _number(config.warmup_seconds),
            "--windows", str(config.windows), "--meter", config.meter, "--seed", str(config.seed),
            "--idle-seconds", _number(config.idle_seconds)]
    if config.variants:
        args += ["--variants", ",".join(config.variants)]
    if config.threads:
        args += ["--threads", ",".join(str(t) for t in config.threads)]
    if config.runs is not None:
        args += ["--runs", str(config.runs)]
    if config.duration is not None:
        args += ["--duration", _number(config.duration)]
    modes = set(config.modes)
    if modes != set(MODES):
        args += ["--mode", config.modes[0]]  # run_bench accepts only these two; one of them here
    if config.baseline:
        args += ["--baseline", config.baseline]
    device = device if device is not None else config.device
    if device:
        args += ["--device", device]
    if config.budgets is not None:
        limits = {k: v for k, v in config.budgets.to_dict().items() if v is not None}
        if limits:
            args += ["--budget", ",".join(f"{k}={_number(v)}" for k, v in limits.items())]
    if config.backend:
        args += ["--backend", config.backend]
    return args


def _number(value: float) -> str:
    return repr(float(value))  # round-trips exactly; Click parses 1e-05 as well


# targets ------------------------------------------------------------------------------


def _uploads(config: BenchConfig) -> list[str]:
    """The local files the host needs: every target, and `--device` when it is a file.

    Raises:
        InputError: a target that does not exist or is not a model file.
    """
    for target in config.targets:
        path = Path(target)
        if not path.is_file():
            raise InputError(f"bench target {target}", expected="an existing .edgekit, .tflite or .onnx file",
                             found="no such file" if not path.exists() else "not a file")
        if path.suffix.lower() not in TARGET_SUFFIXES:
            raise InputError(f"bench target {target}", expected="a .edgekit bundle, a .tflite or an .onnx file",
                             found=f"a {path.suffix or 'suffix-less'} file",
                             hint="convert a Keras model first: edgekit convert MODEL -o OUT.edgekit")
    files = list(dict.fromkeys(config.targets))
    device = config.device
    if device and (device.endswith((".yaml", ".yml")) or os.sep in device) and Path(device).is_file():
        files.append(device)
    return files


def _layout(files: Sequence[str]) -> dict[str, str]:
    """Relative remote name of each local file: its own name, or ``N/name`` when two
    files share a name (the stem names the variants in the report, so it is kept)."""
    names: dict[str, str] = {}
    used: dict[str, int] = {}
    for local in files:
        name = Path(local).name
        count = used.get(name, 0)
        used[name] = count + 1
        names[local] = name if count == 0 else f"{count}/{name}"
    return names


def _replace_paths(value: Any, mapping: Mapping[str, str]) -> Any:
    """`value` with every occurrence of a key of `mapping` in any string replaced (longest first)."""
    keys = sorted(mapping, key=len, reverse=True)
    if isinstance(value, str):
        for key in keys:
            value = value.replace(key, mapping[key])
        return value
    if isinstance(value, dict):
        return {k: _replace_paths(v, mapping) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_paths(v, mapping) for v in value]
    return value


# ssh ----------------------------------------------------------------------------------


class _Ssh(Ssh):
    """The steps of a remote run on one host, over `edgekit.ssh.Ssh`."""

    def __init__(self, host: str, ssh_options: Sequence[str], ssh_config: str | os.PathLike[str] | None) -> None:
        super().__init__(host, ssh_options, ssh_config, what="--remote")

    def make_temp_dir(self, remote_command: str, say: Log) -> str:
        """Check that edgekit runs on the host, then make the run's private directory there."""
        say(f"{self.host}: connecting")
        proc = self.run(f"{remote_command} --version && mktemp -d -t {TEMP_PREFIX}XXXXXX")
        if proc.returncode == 255:
            raise self.unreachable(proc)
        if proc.returncode in (126, 127):  # the shell's "not executable" / "command not found"
            raise InputError("remote edgekit", expected=f"the command {remote_command!r} on the host",
                             found=_last_line(proc.stderr) or f"exit code {proc.returncode} (command not found)",
                             hint=f"nothing is installed for you: install it there with {INSTALL_HINT} "
                                  f'(or "{DISTRIBUTION}[onnx]"), or if it is in a virtual environment, pass its path: '
                                  "--remote-python ~/venv/bin/edgekit")
        lines = [line.strip() for line in proc.stdout.splitlines() if line.strip()]
        if proc.returncode != 0 or not lines:
            raise InputError("remote edgekit",
                             expected=f"`{remote_command} --version` and `mktemp -d` to work on the host",
                             found=_last_line(proc.stderr) or f"exit code {proc.returncode}",
                             hint=f"check the installation there ({INSTALL_HINT}) and --remote-python")
        directory = lines[-1]
        if not directory.startswith("/") or not Path(directory).name.startswith(TEMP_PREFIX):
            raise InputError("remote mktemp", expected="the path of a new temporary directory",
                             found=repr(directory[:200]))
        from edgekit import __version__

        version = lines[-2].split()[-1] if len(lines) > 1 else "?"
        if version != __version__:
            say(f"{self.host}: edgekit {version} there, {__version__} here")
        return directory

    def copy(self, files: Sequence[str], remote_dir: str, say: Log) -> dict[str, str]:
        """Copy `files` into `remote_dir`; returns each local file's path on the host."""
        layout = _layout(files)
        subdirs = sorted({name.split("/")[0] for name in layout.values() if "/" in name})
        if subdirs:
            proc = self.run("mkdir " + " ".join(shlex.quote(f"{remote_dir}/{d}") for d in subdirs))
            if proc.returncode != 0:
                raise self.unreachable(proc) if proc.returncode == 255 else InputError(
                    "remote mkdir", expected=f"mkdir in {remote_dir} to work",
                    found=_last_line(proc.stderr) or f"exit code {proc.returncode}")
        by_dir: dict[str, list[str]] = {}
        for local, name in layout.items():
            by_dir.setdefault(os.path.dirname(name), []).append(local)
        size = sum(Path(f).stat().st_size for f in files)
        say(f"{self.host}: copying {len(files)} file(s), {size / 1e6:.1f} MB")
        for subdir, locals_ in by_dir.items():
            self.scp(locals_, f"{remote_dir}/{subdir}/" if subdir else f"{remote_dir}/")
        return {local: f"{remote_dir}/{name}" for local, name in layout.items()}

    def remove(self, remote_dir: str, say: Log) -> None:
        """Delete the run's directory (best effort: a failure is logged, never raised)."""
        if not remote_dir.startswith("/") or not Path(remote_dir).name.startswith(TEMP_PREFIX):
            return  # never rm -rf anything this module did not create
        try:
            proc = self.run(f"rm -rf -- {shlex.quote(remote_dir)}")
        except OSError as exc:
            say(f"{self.host}: could not remove {remote_dir}: {exc}")
            return
        if proc.returncode != 0:
            say(f"{self.host}: could not remove {remote_dir}: {_last_line(proc.stderr) or proc.returncode}")


def _report(proc: subprocess.CompletedProcess[str]) -> dict[str, Any] | None:
    """The report document on the host's stdout, whatever the exit code (1: partial and
    4: over budget still print it), or None when there is none.

    Raises:
        InputError: a report of another schema version (a different edgekit on the host).
    """
    from edgekit.bench.report import SCHEMA_VERSION

    text = proc.stdout.strip()
    start = text.find("{")
    if start < 0:
        return None
    try:
        doc = json.loads(text[start:])
    except json.JSONDecodeError:
        return None
    if not isinstance(doc, dict) or "results" not in doc:
        return None
    if doc.get("schema") != SCHEMA_VERSION:
        raise InputError("remote bench report", expected=f"schema {SCHEMA_VERSION}",
                         found=f"schema {doc.get('schema')!r} ({doc.get('tool')})",
                         hint="install the same edgekit version on both machines")
    return doc


def _remote_failure(proc: subprocess.CompletedProcess[str], back: Mapping[str, str]) -> InputError:
    """The error of a remote bench that printed no report (the host's paths in its last
    stderr line replaced by the local names, via `back`)."""
    if proc.returncode == 255:
        return InputError("ssh", expected="the connection to stay up during the run",
                          found=_last_line(proc.stderr) or "ssh exit code 255",
                          hint="check the network and the host; the run was not completed")
    line = _replace_paths(_last_line(proc.stderr), back) or "no output"
    hint = "run the same bench on the host to see more (add --verbose)"
    if proc.returncode == 2 and "unknown device profile" in line:  # a name neither here nor there
        hint = "pass a profile the host knows (edgekit devices list there) or the path of a profile .yaml file"
    elif proc.returncode == 2:  # Click's usage error: an option this edgekit knows and that one does not
        hint = f"the host's edgekit may be older than this one: update it there ({INSTALL_HINT})"
    return InputError("remote edgekit bench", expected="a JSON report",
                      found=f"exit code {proc.returncode}: {line}", hint=hint)
