"""`edgekit deploy`: put a bundle on a device over ssh, switch to it atomically, wait for the
service to serve it, and roll back by itself when it does not; `--rollback`; `status HOST`.

One host, in order (the release layout is `edgekit.deploy.layout`'s):

1. ``edgekit --version`` there (and whether it has ``status``, ``verify --run``, ``serve``,
   ``systemctl``): missing or too old is one line naming the install command;
2. ``releases/.tmp-*`` of interrupted deploys removed; a new ``releases/.tmp-ID-XXXXXX/``;
3. ``scp`` of the bundle (and the public key) into it;
4. ``edgekit verify`` there (``--public-key``; ``--run``, the self-check, when that edgekit
   has it and ``--skip-self-check`` is not given); refused: the folder is removed;
5. the folder renamed to ``releases/ID``; ``previous`` then ``current`` switched (a new link
   renamed over the old one), so a deploy killed at any point leaves ``current`` at a
   complete, verified release;
6. with ``--source``: the systemd unit written, reloaded and enabled before the switch (a
   host whose systemd cannot be reached fails here, nothing switched), started (or
   restarted when it changed) after it;
7. the service's health read there (``edgekit status --json``) until it serves ``ID``
   (``--timeout``); when it does not, ``current`` goes back to the release before and the
   health is waited for again;
8. the releases beyond ``--keep`` removed (never ``current`` or ``previous``).

Device side: standard library and the bundle layer only.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import tempfile
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from edgekit._optional import DISTRIBUTION, extra_install
from edgekit.deploy import layout, unit
from edgekit.deploy.status import find_app
from edgekit.errors import ExitCode, InputError
from edgekit.progress import Log
from edgekit.ssh import UNREACHABLE, Ssh, last_line

INSTALL_HINT = extra_install("litert")
DEFAULT_COMMAND = "edgekit"
VENV = "venv"  # DATA_DIR/venv: where --install puts edgekit
DEFAULT_EXTRAS = "litert"
POLL_S = 0.5
STALLED = "taken, then stalled"  # wait_serving's state for a release the service took and then hung on
STATUS_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Target:
    """One host: an ssh destination and its own options (from an inventory: port, user)."""

    destination: str
    name: str = ""  # how the report names it (the inventory name), default the destination
    ssh_options: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.name or self.destination


@dataclass(frozen=True)
class DeployConfig:
    """What `edgekit deploy` does on every host."""

    bundle: Path | None = None  # None for --rollback
    app: str | None = None
    public_key: Path | None = None
    port: int = 8780
    keep: int = 3
    timeout: float = 60.0
    settle: float = 5.0  # seconds the new release must keep serving (healthy, results going on) to count
    skip_self_check: bool = False
    source: str | None = None
    sink: str | None = None
    system: bool = False
    rollback: bool = False
    remote_command: str = DEFAULT_COMMAND
    ssh_options: tuple[str, ...] = ()
    ssh_config: Path | None = None
    release: str | None = None  # the bundle's release ID (prepare() sets it)
    install: Path | None = None  # an edgekit-ml wheel installed into DATA_DIR/venv where edgekit is missing
    install_extras: str = DEFAULT_EXTRAS


@dataclass
class HostResult:
    """The outcome on one host (a row of the summary)."""

    host: str
    outcome: str  # deployed, rolled back, refused, failed, not started (fleet stopped)
    exit_code: int
    release: str | None = None
    previous: str | None = None
    seconds: float = 0.0
    detail: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.exit_code == ExitCode.OK

    def to_dict(self) -> dict[str, Any]:
        return {"host": self.host, "outcome": self.outcome, "exit_code": self.exit_code, "release": self.release,
                "previous": self.previous, "seconds": round(self.seconds, 3), "detail": self.detail,
                "notes": self.notes}


class HostFailed(Exception):
    """A step failed on one host: the outcome and exit code of its row."""

    def __init__(self, outcome: str, exit_code: int, detail: str, *, installable: bool = False) -> None:
        super().__init__(detail)
        self.outcome, self.exit_code, self.detail = outcome, exit_code, detail
        self.installable = installable  # edgekit missing or too old there: --install would help


@dataclass(frozen=True)
class Probe:
    """What the device has."""

    version: str
    has_verify_run: bool
    has_serve: bool
    has_systemctl: bool
    data_dir: str
    user: str
    status: dict[str, Any]  # `edgekit status --json` there
    tmp: str | None  # the temporary release folder made for the upload

    def running(self, app: str) -> bool:
        """Whether an `edgekit serve` runs for `app` (serve.json with a live process)."""
        entry = find_app(self.status, app) or {}
        return entry.get("service") not in (None, "not running", "stopped")


def bundle_identity(bundle: Path, app: str | None) -> tuple[str, str]:
    """(app name, release ID) of a local bundle, after checking it here (schema and hashes).

    Raises:
        InputError, IntegrityError: not a bundle, or a damaged one (it is not sent).
    """
    from edgekit.bundle import open_bundle
    from edgekit.bundle.archive import sha256_file

    verified = open_bundle(bundle)
    name = layout.check_app_name(app if app is not None else verified.manifest.name)
    return name, layout.release_id(sha256_file(bundle))


class Device:
    """The deploy steps on one host, each one ssh round trip."""

    def __init__(self, target: Target, config: DeployConfig, say: Log) -> None:
        self.target = target
        self.config = config
        self.say = lambda m: say(f"{target.label}: {m}")
        self.ssh = Ssh(target.destination, (*config.ssh_options, *target.ssh_options), config.ssh_config)
        self.edgekit = config.remote_command
        self.lock_owner = f"{socket.gethostname()} {os.getpid()} {uuid.uuid4().hex[:12]}"
        self.locked: str | None = None  # the app's lock folder on the host, while this deploy holds it

    def unlock(self) -> None:
        """Remove the app's deploy lock if this deploy still holds it (best effort: a host that
        no longer answers keeps it until the next deploy takes it over)."""
        if self.locked is None:
            return
        lock, self.locked = shlex.quote(self.locked), None
        try:
            self.sh(f"[ \"$(cat {lock}/owner 2>/dev/null)\" = {shlex.quote(self.lock_owner)} ] && rm -rf {lock}",
                    timeout=STATUS_TIMEOUT_S)
        except HostFailed:
            pass

    def sh(self, script: str, timeout: float | None = STATUS_TIMEOUT_S * 4) -> Any:
        proc = self.ssh.run(script, timeout=timeout)
        if proc.returncode == UNREACHABLE:
            error = self.ssh.unreachable(proc)
            raise HostFailed("failed", ExitCode.ERROR, str(error))
        return proc

    def probe(self, app: str | None, rid: str | None = None, takeover: bool = False) -> Probe:
        """Step 1 (and with `rid`, step 2): what the device has, its status document, the
        app's deploy lock, and a fresh temporary release folder. One round trip; nothing is
        written on the device unless its edgekit is there and new enough.

        Raises:
            HostFailed: edgekit missing or too old there; another deploy of the app in
                progress (its lock held by a live deploy).
        """
        q = shlex.quote
        lines = ['d="${XDG_DATA_HOME:-$HOME/.local/share}/edgekit"']
        if self.edgekit == DEFAULT_COMMAND:  # the venv of an earlier --install first, else PATH's
            e = '"$e"'
            lines += [f'e={DEFAULT_COMMAND}; [ -x "$d/{VENV}/bin/edgekit" ] && e="$d/{VENV}/bin/edgekit"',
                      'echo "EDGEKIT $(command -v "$e" || echo "$e")"']
        else:  # the given command as the unit's ExecStart needs it: ~ expanded, a bare name resolved
            e = self.edgekit
            if len(shlex.split(e)) == 1:
                lines.append(f'echo "EDGEKIT $(command -v {e} || echo {e})"')
        lines += [
            f"v=$({e} --version 2>&1) || {{ echo \"NOEDGEKIT $?\"; printf '%s\\n' \"$v\" | tail -n 1; exit 0; }}",
            'echo "VERSION $v"',
            f"s=$({e} -q status --json 2>&1) "
            "&& echo HAS status || { echo NOSTATUS; printf '%s\\n' \"$s\" | tail -n 1; exit 0; }",
            *([f"{e} serve --help >/dev/null 2>&1 && echo HAS serve"] if self.config.source else []),
            f"{e} verify --help 2>/dev/null | grep -q -- '--run' && echo HAS verify-run",
            "command -v systemctl >/dev/null 2>&1 && echo HAS systemctl",
            'echo "USER $(id -un)"',
            'echo "DATA $d"',
        ]
        if rid is not None and app is not None:
            lock, owner = layout.LOCK, q(self.lock_owner)
            lines += [f'mkdir -p "$d/{app}/{layout.RELEASES}" && cd "$d/{app}" || exit 1',
                      # one deploy per app at a time: mkdir is atomic; a lock left by a dead deploy
                      # (`takeover`) is replaced
                      *([f"rm -rf {lock}"] if takeover else []),
                      f"if mkdir {lock} 2>/dev/null; then printf '%s\\n' {owner} > {lock}/owner; else "
                      f'echo "LOCKED $(( $(date +%s) - $(stat -c %Y {lock} 2>/dev/null || date +%s) )) '
                      f'$(cat {lock}/owner 2>/dev/null)"; exit 0; fi',
                      f"rm -rf {layout.RELEASES}/{layout.TEMP_PREFIX}* .current.new .previous.new",
                      f"t=$(mktemp -d {layout.RELEASES}/{layout.TEMP_PREFIX}{rid}-XXXXXX) || exit 1",
                      'echo "TMP $PWD/$t"']
        lines += ['echo "STATUS $s"', "exit 0"]
        proc = self.sh("\n".join(lines))
        out = proc.stdout.splitlines()
        if proc.returncode != 0 or not out:
            raise HostFailed("failed", ExitCode.ERROR, f"could not prepare the host: "
                                                       f"{last_line(proc.stderr) or proc.returncode}")
        from edgekit import __version__

        if out and out[0].startswith("EDGEKIT "):
            self.edgekit = q(out.pop(0)[8:].strip())
        if out and out[0].startswith("NOEDGEKIT"):
            found = out[1].strip() if len(out) > 1 else out[0]
            raise HostFailed("failed", ExitCode.ERROR, str(InputError(
                f"edgekit on {self.target.label}", expected=f"the command {self.config.remote_command!r}",
                found=found[:200] or "nothing",
                hint=f"nothing is installed for you: install it there with {INSTALL_HINT} (or "
                     f'"{DISTRIBUTION}[onnx]"), pass its path (--remote-python ~/venv/bin/edgekit), or let deploy '
                     "install a wheel into a venv there: --install edgekit_ml-VERSION.whl")), installable=True)
        values = {line.split(" ", 1)[0]: line.split(" ", 1)[1].strip() for line in out if " " in line}
        if "LOCKED" in values and app is not None:
            age, _, holder = values["LOCKED"].partition(" ")
            if not takeover and (holder == self.lock_owner or _stale(values["LOCKED"])):  # ours (after --install), or dead
                return self.probe(app, rid, takeover=True)
            raise HostFailed("failed", ExitCode.ERROR, str(InputError(
                f"deploy of {app} on {self.target.label}", expected="no other deploy of the app in progress",
                found=f"one since {age} s ago (by {holder or 'an unknown deploy'})",
                hint=f"wait for it; if it died on another machine, remove {layout.LOCK} in the app's folder there "
                     f"(it is taken over after {layout.LOCK_STALE_S // 60} minutes)")))
        if values.get("TMP"):
            self.locked = f"{values['DATA']}/{app}/{layout.LOCK}"
        has = {line.split(" ", 1)[1] for line in out if line.startswith("HAS ")}
        version = values.get("VERSION", "?").split()[-1]
        missing = [c for c, ok in (("status", "status" in has), ("serve", "serve" in has or not self.config.source))
                   if not ok]
        if missing:
            raise HostFailed("failed", ExitCode.ERROR, str(InputError(
                f"edgekit on {self.target.label}", expected=f"an edgekit with `{'` and `'.join(missing)}` "
                f"(edgekit {__version__} here)", found=f"edgekit {version} without it",
                hint=f'update it there: pip install --upgrade "{DISTRIBUTION}[litert]" (the same version as here), '
                     "or with --install edgekit_ml-VERSION.whl")), installable=True)
        try:
            status = json.loads(proc.stdout[proc.stdout.index("\nSTATUS ") + 8:])
        except ValueError:
            status = None
        if not isinstance(status, dict):
            raise HostFailed("failed", ExitCode.ERROR, "edgekit status --json on the host printed no document")
        data_dir = values.get("DATA", "")
        if not data_dir.startswith("/"):
            raise HostFailed("failed", ExitCode.ERROR, f"the host's data folder is not an absolute path: "
                                                       f"{data_dir!r} (set HOME or XDG_DATA_HOME there)")
        if version != __version__:
            self.say(f"edgekit {version} there, {__version__} here")
        return Probe(version=version, has_verify_run="verify-run" in has, has_serve="serve" in has,
                     has_systemctl="systemctl" in has, data_dir=data_dir, user=values.get("USER", ""),
                     status=status, tmp=values.get("TMP"))

    def probe_or_install(self, app: str | None, rid: str | None, notes: list[str]) -> Probe:
        """`probe`; where edgekit is missing or too old and ``--install`` names a wheel, the
        wheel is installed into ``DATA_DIR/venv`` first (said in the row's notes)."""
        try:
            return self.probe(app, rid)
        except HostFailed as exc:
            if not (exc.installable and self.config.install is not None):
                raise
        self.install()
        probe = self.probe(app, rid)
        notes.append(f"installed edgekit {probe.version} ({self.config.install.name}[{self.config.install_extras}]) "  # type: ignore[union-attr]
                     f"into {probe.data_dir}/{VENV}")
        return probe

    def install(self) -> None:
        """Copy the wheel and install it with its extras into ``DATA_DIR/venv`` (made with the
        host's python3; ``--system-site-packages`` on 32-bit ARM, where Debian's packages
        provide the runtimes). A failed install removes a venv it made."""
        wheel, extras = self.config.install, self.config.install_extras
        assert wheel is not None
        q = shlex.quote
        self.say(f"installing {wheel.name}[{extras}] into a venv there")
        proc = self.sh("\n".join([
            'd="${XDG_DATA_HOME:-$HOME/.local/share}/edgekit"',
            "command -v python3 >/dev/null 2>&1 || { echo 'no python3 on PATH' >&2; exit 1; }",
            'mkdir -p "$d" && t=$(mktemp -d "$d/.wheel-XXXXXX") || exit 1',
            'echo "TMP $t"']))
        tmp = next((line[4:].strip() for line in proc.stdout.splitlines() if line.startswith("TMP ")), "")
        if proc.returncode != 0 or not tmp.startswith("/"):
            raise HostFailed("failed", ExitCode.ERROR, f"--install: {last_line(proc.stderr) or proc.returncode}")
        try:
            self.ssh.scp([str(wheel)], f"{tmp}/")
        except InputError as exc:
            self.sh(f"rm -rf -- {q(tmp)}")
            raise HostFailed("failed", ExitCode.ERROR, f"--install: {exc}") from None
        target = q(f"{tmp}/{wheel.name}")
        proc = self.sh("\n".join([
            'd="${XDG_DATA_HOME:-$HOME/.local/share}/edgekit"; v="$d/' + VENV + '"; made=0',
            "case $(uname -m) in armv6l|armv7l) ssp=--system-site-packages;; *) ssp=;; esac",
            f'if [ ! -x "$v/bin/pip" ]; then made=1; python3 -m venv $ssp "$v" >{q(tmp)}/log 2>&1 || '
            f'{{ tail -n 2 {q(tmp)}/log >&2; rm -rf "$v" {q(tmp)}; exit 1; }}; fi',
            # the wheel with its extras (dependencies), then this wheel's files even when the
            # same version is there already
            f'{{ "$v/bin/pip" install --disable-pip-version-check --quiet {q(f"{tmp}/{wheel.name}[{extras}]")} && '
            f'"$v/bin/pip" install --disable-pip-version-check --quiet --force-reinstall --no-deps {target}; }} '
            f'>{q(tmp)}/log 2>&1 || {{ grep -v "^WARNING" {q(tmp)}/log | tail -n 2 >&2; '
            f'[ $made = 1 ] && rm -rf "$v"; rm -rf {q(tmp)}; exit 1; }}',
            f"rm -rf {q(tmp)}"]), timeout=None)
        if proc.returncode != 0:
            raise HostFailed("failed", ExitCode.ERROR, f"--install {wheel.name}[{extras}] on the host failed: "
                                                       f"{last_line(proc.stderr) or proc.returncode}")
        self.edgekit = DEFAULT_COMMAND  # the next probe finds the venv's

    # steps ---------------------------------------------------------------------------

    def upload(self, tmp: str) -> None:
        """Step 3: the bundle (and the public key) into the temporary release folder."""
        assert self.config.bundle is not None
        size = self.config.bundle.stat().st_size
        self.say(f"uploading {size / 1e6:.2f} MB to {tmp}")
        try:
            with tempfile.TemporaryDirectory(prefix="edgekit-deploy.") as local:
                names = [Path(local) / layout.BUNDLE_NAME]  # scp keeps the name it is given
                os.symlink(os.path.abspath(self.config.bundle), names[0])
                if self.config.public_key is not None:
                    names.append(Path(local) / "signer.pub")
                    os.symlink(os.path.abspath(self.config.public_key), names[1])
                self.ssh.scp([str(n) for n in names], f"{tmp}/")
        except InputError as exc:
            try:  # a partial copy (a full disk, a dropped link) is not left behind when the host still answers
                self.sh(f"rm -rf -- {shlex.quote(tmp)}")
            except HostFailed:
                pass  # the next deploy removes it
            raise HostFailed("failed", ExitCode.ERROR, f"upload failed ({exc}); the host keeps its release") from None

    def verify_and_switch(self, app_dir: str, tmp: str, rid: str, probe: Probe, notes: list[str],
                          switch: bool = True) -> tuple[str | None, str | None]:
        """Steps 4 and 5: `edgekit verify` on the uploaded copy (refused: the folder is removed,
        nothing switched), ``releases/ID`` from it, and unless not `switch`, ``previous`` and
        ``current`` switched (`switch_to`). Returns the (current, previous) before."""
        q = shlex.quote
        args = [self.edgekit, "-q", "verify", q(f"{tmp}/{layout.BUNDLE_NAME}")]
        if self.config.public_key is not None:
            args += ["--public-key", q(f"{tmp}/signer.pub")]
        if self.config.skip_self_check:
            notes.append("self-check skipped (--skip-self-check)")
        elif probe.has_verify_run:
            args.append("--run")
        else:
            notes.append(f"self-check not run: edgekit {probe.version} there has no verify --run (integrity only)")
        release = f"{layout.RELEASES}/{rid}"
        lines = [f"cd {q(app_dir)} || exit 1",
                 " ".join(args) + f" || {{ r=$?; rm -rf -- {q(tmp)}; echo \"REFUSED $r\"; exit 0; }}"]
        if self.config.public_key is not None:
            lines.append(f"cp {q(tmp)}/signer.pub .signer.pub.new && mv -f .signer.pub.new signer.pub || exit 1")
        lines += [f"rm -f {q(tmp)}/signer.pub",
                  f"if [ -f {release}/{layout.BUNDLE_NAME} ]; then rm -rf -- {q(tmp)}; "
                  f"else rm -rf -- {release} && mv -T {q(tmp)} {release} || exit 1; fi",
                  *(_switch_lines(release) if switch else [])]
        proc = self.sh("\n".join(lines), timeout=None)
        refused = next((line for line in proc.stdout.splitlines() if line.startswith("REFUSED ")), None)
        if refused is not None:
            code = int(refused.split()[1])
            line = last_line(proc.stderr) or last_line(proc.stdout.replace(refused, "")) or f"exit code {code}"
            exit_code = ExitCode.REFUSED if code == ExitCode.REFUSED else ExitCode.ERROR
            raise HostFailed("refused" if exit_code == ExitCode.REFUSED else "failed", exit_code,
                             f"edgekit verify on the host: {line.removeprefix('edgekit: ')}; nothing was switched")
        if proc.returncode != 0:
            raise HostFailed("failed", ExitCode.ERROR, f"could not install or switch the release: "
                                                       f"{last_line(proc.stderr) or proc.returncode}")
        return _was(proc.stdout)

    def switch_to(self, app_dir: str, rid: str) -> tuple[str | None, str | None]:
        """Step 5's switch alone: ``previous`` to the current release, ``current`` to `rid`.
        Returns the (current, previous) before."""
        proc = self.sh("\n".join([f"cd {shlex.quote(app_dir)} || exit 1", *_switch_lines(f"{layout.RELEASES}/{rid}")]))
        if proc.returncode != 0:
            raise HostFailed("failed", ExitCode.ERROR, f"could not switch the release: "
                                                       f"{last_line(proc.stderr) or proc.returncode}")
        return _was(proc.stdout)

    def switch(self, app_dir: str, rid: str | None, previous: str | None) -> None:
        """Point ``current`` at `rid` and ``previous`` at `previous` (None: the link removed),
        each a new link renamed over the old one (rollbacks)."""
        q = shlex.quote
        lines = [f"cd {q(app_dir)} || exit 1"]
        for name, value in ((layout.CURRENT, rid), (layout.PREVIOUS, previous)):
            if value is None:
                lines.append(f"rm -f {name} || exit 1")
            else:
                lines.append(f"ln -sfn {q(layout.RELEASES + '/' + value)} .{name}.new && "
                             f"mv -T .{name}.new {name} || exit 1")
        proc = self.sh("\n".join(lines))
        if proc.returncode != 0:
            raise HostFailed("failed", ExitCode.ERROR, f"could not switch the release: {last_line(proc.stderr)}")

    def links(self, app_dir: str) -> tuple[str | None, str | None, list[str]]:
        """(current, previous, releases newest first) on the host."""
        q = shlex.quote
        proc = self.sh(f"cd {q(app_dir)} 2>/dev/null || exit 0\n"
                       f'echo "CUR $(readlink {layout.CURRENT} 2>/dev/null)"\n'
                       f'echo "PREV $(readlink {layout.PREVIOUS} 2>/dev/null)"\n'
                       f"ls -1t {layout.RELEASES} 2>/dev/null | sed 's/^/REL /'")
        values: dict[str, list[str]] = {}
        for line in proc.stdout.splitlines():
            key, _, value = line.partition(" ")
            values.setdefault(key, []).append(value.strip())
        cur = Path((values.get("CUR") or [""])[0]).name or None
        prev = Path((values.get("PREV") or [""])[0]).name or None
        return cur, prev, [r for r in values.get("REL", []) if r and not r.startswith(".")]

    def write_unit(self, app: str, app_dir: str, probe: Probe, notes: list[str]) -> str | None:
        """Step 6, before the switch: the unit written (a temporary file renamed), systemd
        reloaded and the unit enabled; nothing is written when the host's systemd cannot be
        reached. Returns "changed" or "unchanged", or None without systemctl on the host."""
        cfg = self.config
        key = f"{app_dir}/signer.pub" if cfg.public_key is not None else None
        command = unit.exec_start(self.edgekit, app_dir, cfg.source or "", port=cfg.port, sink=cfg.sink,
                                  public_key=key, skip_self_check=cfg.skip_self_check)
        text = unit.render(app, app_dir, command, system=cfg.system, user=probe.user or None)
        name = unit.unit_name(app)
        if not probe.has_systemctl:
            notes.append("no systemctl on the host: unit not installed; start the service yourself: "
                         f"{self.edgekit} serve {app_dir} --source {cfg.source}")
            return None
        q = shlex.quote
        new = f"{app_dir}/.{name}.new"
        with tempfile.TemporaryDirectory(prefix="edgekit-deploy.") as local:
            path = Path(local) / name
            path.write_text(text)
            self.ssh.scp([str(path)], new)
        script = "\n".join([
            f"{unit.systemctl(cfg.system, 'show-environment')} >/dev/null || {{ rm -f {q(new)}; exit 3; }}",
            f"u={unit.unit_dir_sh(cfg.system)}/{name}",
            'mkdir -p "$(dirname "$u")" || exit 1',
            f'if cmp -s {q(new)} "$u"; then echo UNCHANGED; rm -f {q(new)}; else mv -f {q(new)} "$u" || exit 1; fi',
            f"{unit.systemctl(cfg.system, 'daemon-reload')} || exit 3",
            f"{unit.systemctl(cfg.system, 'enable', name)} >/dev/null || exit 3",
            'echo "UNIT $u"',
        ])
        proc = self.sh(script)
        if proc.returncode != 0:
            line = last_line(proc.stderr) or f"exit code {proc.returncode}"
            hint = ""
            if not cfg.system and "bus" in line.lower():
                hint = f"; a user unit needs the user's systemd: run `loginctl enable-linger {probe.user}` there"
            elif cfg.system:
                hint = "; a system unit needs root on the host (ssh as root) and a running systemd"
            raise HostFailed("failed", ExitCode.ERROR, f"systemd unit {name}: {line}{hint}; nothing was switched")
        path_there = next((line[5:] for line in proc.stdout.splitlines() if line.startswith("UNIT ")), name)
        changed = "unchanged" if "UNCHANGED" in proc.stdout else "changed"
        notes.append(f"unit {path_there} {'written' if changed == 'changed' else 'unchanged'}")
        return changed

    def start_unit(self, app: str, changed: bool) -> None:
        """Step 6, after the switch: the unit started, or restarted when it changed (a running
        service takes the new release by itself)."""
        cfg, name = self.config, unit.unit_name(app)
        script = "\n".join([
            f"if {unit.systemctl(cfg.system, 'is-active', '--quiet', name)}; then",
            f"  {'true' if not changed else unit.systemctl(cfg.system, 'restart', '--no-block', name)} || exit 3",
            f"else {unit.systemctl(cfg.system, 'start', '--no-block', name)} || exit 3; fi",
        ])
        proc = self.sh(script)
        if proc.returncode != 0:
            raise HostFailed("failed", ExitCode.ERROR, f"systemctl start {name}: "
                                                       f"{last_line(proc.stderr) or proc.returncode}")

    def restart_hung(self, app: str, probe: Probe) -> str:
        """Restart the app's unit, whose inference loop hangs (so it cannot swap back by itself;
        systemd's watchdog would restart it within WatchdogSec): "UNIT restarted", or "" when
        there is no unit to restart (a service started by hand)."""
        name = unit.unit_name(app)
        if probe.has_systemctl:
            proc = self.sh(unit.systemctl(self.config.system, "restart", "--no-block", name))
            if proc.returncode == 0:
                return f"{name} restarted"
        return ""

    def status(self, app: str | None = None) -> dict[str, Any]:
        """`edgekit status --json` there (the whole device, or `app`)."""
        command = f"{self.edgekit} -q status --json" + (f" --app {shlex.quote(app)}" if app else "")
        proc = self.sh(command, timeout=STATUS_TIMEOUT_S)
        try:
            doc = json.loads(proc.stdout)
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            line = last_line(proc.stderr) or f"exit code {proc.returncode}"
            raise HostFailed("failed", ExitCode.ERROR, f"edgekit status on the host: {line.removeprefix('edgekit: ')}")
        return doc

    def wait_serving(self, app: str, rid: str, timeout: float, seen: dict[str, Any] | None = None,
                     settle: float = 0.0) -> tuple[bool, str]:
        """Poll the health until the service serves `rid` and has kept serving it for
        `settle` seconds (healthy, its results going on when its source delivers), refuses
        it, stalls on it, or `timeout` passes; (ok, last state). `seen`: the service's last
        update before the switch (an older refusal of the same release is not this one's)."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        serving_since: float | None = None
        while True:
            entry = find_app(self.status(app), app) or {}
            health = entry.get("health") or {}
            if health.get("status") == "ok" and health.get("release") == rid:
                now = time.monotonic()
                serving_since = now if serving_since is None else serving_since
                if now - serving_since >= settle:
                    return True, "serving"
            elif health.get("status") == "stalled" and health.get("release") == rid:
                return False, f"{STALLED}: {str(health.get('reason')).rstrip(': ')}"
            else:
                if serving_since is not None and health.get("release") not in (None, rid):
                    return False, f"taken, then replaced by {health.get('release')}"
                serving_since = None
            update = (entry.get("serve") or {}).get("last_update") or {}
            if update.get("release") == rid and update.get("outcome") == "refused" and update != seen:
                return False, f"refused by the service: {str(update.get('reason')).rstrip(': ')}"
            last = f"{entry.get('service')}" + (f" ({health.get('reason')})" if health.get("reason") else "") + \
                   (f", serving {health.get('release')}" if health.get("release") not in (None, rid) else "")
            if time.monotonic() >= deadline + (settle if serving_since is not None else 0.0):
                return False, last
            time.sleep(POLL_S)

    def prune(self, app_dir: str, keep: int) -> int:
        """Step 8: remove releases beyond the `keep` newest, never current or previous; how many."""
        q = shlex.quote
        proc = self.sh("\n".join([
            f"cd {q(app_dir)} || exit 0",
            f"cur=$(readlink {layout.CURRENT} 2>/dev/null); prev=$(readlink {layout.PREVIOUS} 2>/dev/null); n=0",
            f"for r in $(ls -1t {layout.RELEASES} | tail -n +{keep + 1}); do",
            f'  [ "{layout.RELEASES}/$r" = "$cur" ] || [ "{layout.RELEASES}/$r" = "$prev" ] || '
            f'{{ rm -rf -- "{layout.RELEASES}/$r" && n=$((n+1)); }}',
            'done; echo "REMOVED $n"']))
        removed = next((line.split()[1] for line in proc.stdout.splitlines() if line.startswith("REMOVED ")), "0")
        return int(removed) if removed.isdigit() else 0


def _switch_lines(release: str) -> list[str]:
    """Shell lines (in APP_DIR) that point ``previous`` at the current release and ``current``
    at `release`, each a new link renamed over the old one, printing ``WAS cur|prev``."""
    return [f"cur=$(readlink {layout.CURRENT} 2>/dev/null); prev=$(readlink {layout.PREVIOUS} 2>/dev/null)",
            'echo "WAS $cur|$prev"',
            f'if [ "$cur" != {release} ]; then',
            f'  if [ -n "$cur" ]; then ln -sfn "$cur" .previous.new && mv -T .previous.new {layout.PREVIOUS} '
            "|| exit 1; fi",
            f"  touch {release}",  # the newest, for --keep
            f"  ln -sfn {release} .current.new && mv -T .current.new {layout.CURRENT} || exit 1",
            "fi"]


def _stale(locked: str) -> bool:
    """Whether a lock ("AGE HOST PID TOKEN") was left by a dead deploy: one of this machine
    whose process is gone, or any older than `layout.LOCK_STALE_S`."""
    parts = locked.split()
    if not parts or not parts[0].isdigit() or int(parts[0]) >= layout.LOCK_STALE_S:
        return True
    if len(parts) >= 3 and parts[1] == socket.gethostname() and parts[2].isdigit():
        try:
            os.kill(int(parts[2]), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
    return False


def _was(stdout: str) -> tuple[str | None, str | None]:
    was = next((line[4:] for line in stdout.splitlines() if line.startswith("WAS ")), "|")
    cur, _, prev = was.partition("|")
    return (Path(cur).name or None), (Path(prev).name or None)


def deploy_host(target: Target, config: DeployConfig, say: Log) -> HostResult:
    """Deploy (or with ``config.rollback`` roll back) on one host; never raises for a host's failure."""
    started = time.monotonic()
    notes: list[str] = []
    result = HostResult(target.label, "failed", ExitCode.ERROR, notes=notes)
    try:
        with tempfile.TemporaryDirectory(prefix="edgekit-ssh.") as control:
            device = Device(target, config, say)
            device.ssh.share_connection(control)
            try:
                if config.rollback:
                    _rollback(device, config, result)
                else:
                    _deploy(device, config, result)
            finally:
                device.unlock()
                device.ssh.close()
    except HostFailed as exc:
        result.outcome, result.exit_code, result.detail = exc.outcome, exc.exit_code, exc.detail
    except InputError as exc:
        result.outcome, result.exit_code, result.detail = "failed", int(exc.exit_code), str(exc)
    result.seconds = time.monotonic() - started
    return result


def _deploy(device: Device, config: DeployConfig, result: HostResult) -> None:
    assert config.app is not None and config.release is not None  # prepare() sets both
    app, rid = config.app, config.release
    probe = device.probe_or_install(app, rid, result.notes)
    app_dir = f"{probe.data_dir}/{app}"
    assert probe.tmp is not None
    result.release = rid
    device.upload(probe.tmp)
    changed = None
    if config.source:  # verified, then the unit, then the switch: a refusal leaves the unit as it was
        device.verify_and_switch(app_dir, probe.tmp, rid, probe, result.notes, switch=False)
        changed = device.write_unit(app, app_dir, probe, result.notes)
        cur, prev = device.switch_to(app_dir, rid)
    else:
        cur, prev = device.verify_and_switch(app_dir, probe.tmp, rid, probe, result.notes)
    if cur == rid:
        result.previous = prev
        result.notes.append("already the current release")
    else:
        result.previous = cur
        device.say(f"current -> {rid}" + (f" (previous {cur})" if cur else ""))
    seen = ((find_app(probe.status, app) or {}).get("serve") or {}).get("last_update")
    supervised = changed is not None
    if supervised:
        device.start_unit(app, changed == "changed")
    if not (probe.running(app) or supervised):
        result.outcome, result.exit_code = "deployed", ExitCode.OK
        result.detail = ("switched; no edgekit serve runs for this app on the host (deploy with --source SPEC "
                         "to install its systemd unit, or start edgekit serve APP_DIR)")
    else:
        ok, state = device.wait_serving(app, rid, config.timeout, seen, settle=config.settle)
        if ok:
            result.outcome, result.exit_code, result.detail = "deployed", ExitCode.OK, f"serving {rid}"
        else:
            failed_at = time.monotonic()
            back = result.previous
            why = state if state.startswith(("refused", "taken")) else \
                f"not served within {config.timeout:g} s ({state})"
            device.say(f"{rid} {why}: rolling back to {back or 'nothing'}")
            device.switch(app_dir, back, prev if back else None)
            detail = f"{rid} {why}; rolled back"
            if not back:
                detail += ": no release before it, nothing is current"
            else:
                hung = state.startswith(STALLED)  # a hung loop swaps nothing: its unit is restarted
                restarted = device.restart_hung(app, probe) if hung else ""
                ok_back, state_back = device.wait_serving(app, back, config.timeout)
                detail += (f" to {back}, serving again after {time.monotonic() - failed_at:.1f} s" if ok_back
                           else f" to {back}, which is not serving either ({state_back})")
                if restarted:
                    detail += f" ({restarted})"
                elif hung and not ok_back:
                    detail += f"; no {unit.unit_name(app)} to restart here: restart the hung service"
            result.outcome, result.exit_code, result.detail = "rolled back", ExitCode.GATE, detail
            result.release, result.previous = back, prev
    removed = device.prune(app_dir, config.keep)
    if removed:
        result.notes.append(f"removed {removed} old release(s)")


def _rollback(device: Device, config: DeployConfig, result: HostResult) -> None:
    probe = device.probe(config.app)
    app = config.app
    if app is None:
        apps = [a["app"] for a in probe.status.get("apps", [])]
        if len(apps) != 1:
            raise HostFailed("failed", ExitCode.ERROR, str(InputError(
                "--rollback", expected="one app on the host, or --app NAME",
                found=f"apps {', '.join(apps)}" if apps else "no deployed app")))
        app = apps[0]
    app_dir = f"{probe.data_dir}/{app}"
    cur, prev, rels = device.links(app_dir)
    if prev is None or prev not in rels:
        raise HostFailed("failed", ExitCode.ERROR, str(InputError(
            f"rollback of {app}", expected="a previous release on the host", found="none" if prev is None
            else f"previous -> {prev}, which is not kept", hint="deploy the bundle you want instead")))
    # the release before `prev`: the newest one older than it, other than the current one
    before = next((r for r in rels[rels.index(prev) + 1:] if r != cur), None)
    device.switch(app_dir, prev, before)
    result.release, result.previous = prev, before
    device.say(f"current -> {prev} (was {cur})")
    if not probe.running(app):
        result.outcome, result.exit_code = "rolled back", ExitCode.OK
        result.detail = f"current is {prev} again; no edgekit serve runs for this app on the host"
        return
    ok, state = device.wait_serving(app, prev, config.timeout)
    if ok:
        result.outcome, result.exit_code, result.detail = "rolled back", ExitCode.OK, f"serving {prev}"
    else:
        result.outcome, result.exit_code = "failed", ExitCode.GATE
        result.detail = f"current is {prev}, not served within {config.timeout:g} s ({state})"


def prepare(config: DeployConfig) -> DeployConfig:
    """`config` with the app name filled in from the bundle, which is checked here first.

    Raises:
        InputError, IntegrityError: a bad bundle, app name or public key (nothing is sent).
    """
    if config.rollback:
        return replace(config, app=layout.check_app_name(config.app)) if config.app is not None else config
    if config.bundle is None:
        raise InputError("deploy", expected="a BUNDLE (or --rollback)", found="none")
    if config.public_key is not None:
        from edgekit.bundle import open_bundle

        open_bundle(config.bundle, public_key=config.public_key)  # refused here: not sent anywhere
    app, rid = bundle_identity(config.bundle, config.app)
    if config.install is not None:
        wheel, extras = _wheel(config.install)
        config = replace(config, install=wheel, install_extras=extras)
    if config.keep < 1:
        raise InputError("--keep", expected="at least 1", found=str(config.keep))
    return replace(config, app=app, release=rid)


def host_status(target: Target, config: DeployConfig) -> tuple[dict[str, Any] | None, str | None]:
    """`edgekit status --json` of one host: (document, None), or (None, the error line)."""
    try:
        device = Device(target, config, lambda _m: None)
        doc = device.probe(None).status
        if config.app is not None:
            doc = {**doc, "apps": [a for a in doc.get("apps", []) if a.get("app") == config.app]}
        return doc, None
    except HostFailed as exc:
        return None, exc.detail
    except InputError as exc:
        return None, str(exc)


def _wheel(spec: Path) -> tuple[Path, str]:
    """``--install FILE.whl[EXTRAS]``: the wheel file and its extras (default ``litert``).

    Raises:
        InputError: not an existing edgekit-ml wheel.
    """
    text, extras = str(spec), DEFAULT_EXTRAS
    if text.endswith("]") and "[" in text:
        text, _, extras = text[:-1].rpartition("[")
    path = Path(text)
    dist = DISTRIBUTION.replace("-", "_")
    if not path.is_file() or not path.name.startswith(f"{dist}-") or path.suffix != ".whl":
        raise InputError(f"--install {spec}", expected=f"an existing {dist}-VERSION-...whl file (make wheel builds one)",
                         found="no such file" if not path.exists() else path.name)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+)*", extras):
        raise InputError(f"--install {spec}", expected="extras such as [litert] or [onnx,camera]", found=repr(extras))
    return path, extras
