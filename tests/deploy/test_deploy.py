"""`edgekit deploy` and `edgekit status HOST` through a real sshd on a loopback port.

The sshd fixture (tests/support/sshd.py) gives aliases ``edgekit-a`` ... ``edgekit-d``, each
a "device" with its own ``XDG_DATA_HOME`` (so its own ``~/.local/share/edgekit``), and
``edgekit-dead`` (a closed port). The device's edgekit is this venv's (``--remote-python``).
Faults on the device side (a copy corrupted on the device's disk, an edgekit without
``status``) come from small wrapper scripts used as the device's edgekit command.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgekit.bundle import write_bundle
from edgekit.bundle.archive import sha256_file
from edgekit.deploy import layout
from tests.support.bundles import simple_manifest
from tests.support.cli import run_cli
from tests.support.env import need_module
from tests.support.sshd import REMOTE_EDGEKIT, Sshd, running_sshd

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory):
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


def make_bundle(path: Path, seed: int, name: str = "demo", size: int = 0) -> Path:
    """A small valid bundle (integrity only: its model bytes are not real models)."""
    manifest, payloads = simple_manifest(name)
    payloads = {k: v + seed.to_bytes(4, "big") + os.urandom(size) for k, v in payloads.items()}
    write_bundle(path, manifest, payloads)
    return path


def rid(bundle: Path) -> str:
    return layout.release_id(sha256_file(bundle))


def deploy(sshd: Sshd, *args: str, remote: str = REMOTE_EDGEKIT):
    return run_cli("deploy", *args, "--ssh-config", str(sshd.client_config), "--remote-python", remote,
                   "--skip-self-check", timeout=120)


def app_dir(sshd: Sshd, host: str, app: str) -> Path:
    return sshd.data_home(host) / "edgekit" / app


def links(folder: Path) -> tuple[str | None, str | None]:
    return layout.link_release(folder, "current"), layout.link_release(folder, "previous")


def wrapper(tmp_path: Path, name: str, body: str) -> str:
    """An edgekit command for the device that does `body` first (a device-side fault)."""
    path = tmp_path / name
    path.write_text(f"#!/bin/sh\n{body}\nexec {REMOTE_EDGEKIT} \"$@\"\n")
    path.chmod(0o755)
    return str(path)


@pytest.mark.system
def test_deploy_to_one_host_installs_verifies_and_switches(sshd, tmp_path):
    first, second = make_bundle(tmp_path / "v1.edgekit", 1), make_bundle(tmp_path / "v2.edgekit", 2)
    result = deploy(sshd, str(first), "edgekit-a", "--app", "one")
    assert result.code == 0, result.stderr
    folder = app_dir(sshd, "edgekit-a", "one")
    assert os.readlink(folder / "current") == f"releases/{rid(first)}"  # relative, as the contract says
    assert (folder / "releases" / rid(first) / "bundle.edgekit").read_bytes() == first.read_bytes()
    assert links(folder) == (rid(first), None)
    assert "deployed" in result.stdout and "no edgekit serve runs" in result.stdout
    assert "self-check skipped" in result.stdout
    result = deploy(sshd, str(second), "edgekit-a", "--app", "one")
    assert result.code == 0, result.stderr
    assert links(folder) == (rid(second), rid(first))
    assert [p.name for p in (folder / "releases").iterdir() if p.name.startswith(".")] == []
    # the device's own view, over ssh
    status = run_cli("status", "edgekit-a", "--json", "--app", "one", "--ssh-config", str(sshd.client_config),
                     "--remote-python", REMOTE_EDGEKIT)
    assert status.code == 0, status.stderr
    entry = json.loads(status.stdout)["hosts"][0]["status"]["apps"][0]
    assert (entry["current"], entry["previous"], entry["service"]) == (rid(second), rid(first), "not running")
    assert entry["serve"] is None and entry["health"] is None


@pytest.mark.system
def test_two_hosts_keep_n_releases_and_roll_back(sshd, tmp_path):
    bundles = [make_bundle(tmp_path / f"v{i}.edgekit", 10 + i) for i in range(3)]
    for bundle in bundles:
        result = deploy(sshd, str(bundle), "edgekit-a", "edgekit-b", "--app", "two", "--keep", "2")
        assert result.code == 0, result.stderr
    ids = [rid(b) for b in bundles]
    for host in ("edgekit-a", "edgekit-b"):
        folder = app_dir(sshd, host, "two")
        assert links(folder) == (ids[2], ids[1])
        assert sorted(p.name for p in (folder / "releases").iterdir()) == sorted(ids[1:])
    # a rollback: current goes back to previous; previous to the one before, when it is kept
    result = deploy(sshd, "--rollback", "edgekit-a", "--app", "two")
    assert result.code == 0, result.stderr
    assert links(app_dir(sshd, "edgekit-a", "two")) == (ids[1], None)
    assert links(app_dir(sshd, "edgekit-b", "two")) == (ids[2], ids[1])
    result = deploy(sshd, "--rollback", "edgekit-a", "--app", "two")
    assert result.code == 1 and "expected a previous release on the host" in result.stdout
    assert links(app_dir(sshd, "edgekit-a", "two")) == (ids[1], None)  # nothing changed


@pytest.mark.system
def test_a_copy_corrupted_on_the_device_is_refused_and_nothing_switches(sshd, tmp_path):
    good, other = make_bundle(tmp_path / "good.edgekit", 20), make_bundle(tmp_path / "other.edgekit", 21)
    assert deploy(sshd, str(good), "edgekit-c", "--app", "bad").code == 0
    # the device's disk flips a byte of the uploaded file before edgekit verifies it
    flip = wrapper(tmp_path, "flip", 'if [ "$2" = verify ]; then printf X | dd of="$3" bs=1 seek=300 '
                                      "conv=notrunc 2>/dev/null; fi")
    result = deploy(sshd, str(other), "edgekit-c", "--app", "bad", remote=flip)
    assert result.code == 3, result.stderr
    assert "refused" in result.stdout and "nothing was switched" in result.stdout
    folder = app_dir(sshd, "edgekit-c", "bad")
    assert links(folder) == (rid(good), None)
    assert sorted(p.name for p in (folder / "releases").iterdir()) == [rid(good)]  # the copy is gone


@pytest.mark.system
def test_missing_or_older_edgekit_on_the_device_is_one_line_with_the_install_command(sshd, tmp_path):
    bundle = make_bundle(tmp_path / "b.edgekit", 30)
    result = deploy(sshd, str(bundle), "edgekit-d", remote=str(tmp_path / "no-such-edgekit"))
    assert result.code == 1
    row = [line for line in result.stdout.splitlines() if line.startswith("edgekit-d")]
    assert len(row) == 1 and "pip install" in row[0] and "--remote-python" in row[0]
    older = wrapper(tmp_path, "older", 'case " $* " in *" status "*) exit 2;; esac')  # an edgekit from before `status`
    result = deploy(sshd, str(bundle), "edgekit-d", remote=older)
    assert result.code == 1 and "without it" in result.stdout and "pip install --upgrade" in result.stdout
    assert not app_dir(sshd, "edgekit-d", "demo").exists()  # nothing half-installed


@pytest.mark.system
def test_an_unreachable_host_in_a_fleet_and_max_failures(sshd, tmp_path):
    bundle = make_bundle(tmp_path / "f.edgekit", 40)
    fleet = ("edgekit-dead", "edgekit-a", "edgekit-b")
    result = deploy(sshd, str(bundle), *fleet, "--app", "fleet", "--concurrency", "1", "--max-failures", "0")
    assert result.code == 4
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert "failed" in rows["edgekit-dead"] and "reachable host" in rows["edgekit-dead"]
    assert "not started" in rows["edgekit-a"] and "--max-failures 0" in rows["edgekit-a"]
    assert not app_dir(sshd, "edgekit-a", "fleet").exists()
    result = deploy(sshd, str(bundle), *fleet, "--app", "fleet", "--max-failures", "1", "--json")
    assert result.code == 4
    outcomes = {h["host"]: h["outcome"] for h in json.loads(result.stdout)["hosts"]}
    assert outcomes == {"edgekit-dead": "failed", "edgekit-a": "deployed", "edgekit-b": "deployed"}
    # a failed canary stops the rest
    result = deploy(sshd, str(bundle), *fleet, "--app", "canary", "--canary", "1")
    assert result.code == 4 and "the canary host(s) failed" in result.stdout
    assert not app_dir(sshd, "edgekit-a", "canary").exists()


@pytest.mark.system
def test_a_host_key_or_login_failure_is_one_row_naming_the_fix(sshd, tmp_path):
    bundle = make_bundle(tmp_path / "k.edgekit", 45)
    result = deploy(sshd, str(bundle), "edgekit-a", "--app", "keys", "--ssh-option", "StrictHostKeyChecking=yes",
                    "--ssh-option", f"UserKnownHostsFile={tmp_path / 'empty_known_hosts'}")
    assert result.code == 1 and "Host key verification failed" in result.stdout
    assert "the host key is unknown or changed" in result.stdout
    result = deploy(sshd, str(bundle), "edgekit-a", "--app", "keys", "--ssh-option", "User=edgekit-nobody")
    assert result.code == 1 and "Permission denied" in result.stdout and "ssh-copy-id" in result.stdout
    assert not app_dir(sshd, "edgekit-a", "keys").exists()


@pytest.mark.system
def test_inventory_hosts_with_port_and_group(sshd, tmp_path):
    bundle = make_bundle(tmp_path / "i.edgekit", 50)
    ini = tmp_path / "hosts.ini"
    ini.write_text(f"[cams]\nfront ansible_host=edgekit-c ansible_port={sshd.port}\n"
                   "[mics]\nback ansible_host=edgekit-dead\n")
    result = deploy(sshd, str(bundle), "--inventory", str(ini), "--limit", "cams", "--app", "inv")
    assert result.code == 0, result.stderr
    assert result.stdout.splitlines()[1].startswith("front ") and "back" not in result.stdout
    assert links(app_dir(sshd, "edgekit-c", "inv")) == (rid(bundle), None)


@pytest.mark.long
@pytest.mark.system
def test_sigkill_while_uploading_keeps_the_release_and_the_next_deploy_cleans_up(sshd, tmp_path):
    old, new = make_bundle(tmp_path / "old.edgekit", 60), make_bundle(tmp_path / "new.edgekit", 61, size=8 << 20)
    assert deploy(sshd, str(old), "edgekit-b", "--app", "kill").code == 0
    folder = app_dir(sshd, "edgekit-b", "kill")
    command = [sys.executable, "-m", "edgekit", "deploy", str(new), "edgekit-b", "--app", "kill", "--skip-self-check",
               "--ssh-config", str(sshd.client_config), "--remote-python", REMOTE_EDGEKIT]
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list((folder / "releases").glob(".tmp-*")):
        time.sleep(0.002)
    os.killpg(proc.pid, signal.SIGKILL)  # deploy and its ssh/scp children, as a lost terminal would
    proc.wait(timeout=10)
    assert list((folder / "releases").glob(".tmp-*")), "the kill came after the upload"
    assert links(folder) == (rid(old), None)
    assert (folder / "releases" / rid(old) / "bundle.edgekit").read_bytes() == old.read_bytes()
    result = deploy(sshd, str(new), "edgekit-b", "--app", "kill")
    assert result.code == 0, result.stderr
    assert links(folder) == (rid(new), rid(old))
    assert not list((folder / "releases").glob(".tmp-*"))


def test_an_unsigned_bundle_where_a_key_is_required_is_refused_before_any_host(tmp_path, cli):
    bundle = make_bundle(tmp_path / "u.edgekit", 70)
    assert cli("keygen", "-o", str(tmp_path / "k")).code == 0
    result = cli("deploy", str(bundle), "edgekit-dead", "--public-key", str(tmp_path / "k.pub"))
    assert result.code == 3 and "signature" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_bad_app_name_or_host_is_one_line(tmp_path, cli):
    bundle = make_bundle(tmp_path / "n.edgekit", 80)
    result = cli("deploy", str(bundle), "pi@board", "--app", "../etc")
    assert result.code == 1 and "app name" in result.stderr
    result = cli("deploy", str(bundle), "--", "-oProxyCommand=touch /tmp/x")
    assert result.code == 1 and "an ssh destination" in result.stdout  # that host's row, its code


# with a real edgekit serve on the "device" ----------------------------------------------


def start_serve(folder: Path, rows: Path, log: Path) -> subprocess.Popen:
    """`edgekit serve APP_DIR` as the unit starts it (without systemd: the test is the supervisor)."""
    env = {**os.environ, "XDG_CACHE_HOME": str(log.parent / "cache")}
    env.pop("NOTIFY_SOCKET", None)
    with log.open("w") as err:
        return subprocess.Popen([REMOTE_EDGEKIT, "-q", "serve", str(folder), "--source",
                                 f"csv:{rows}?loop=1&rate=40", "--sink", f"jsonl:{log.parent / 'results.jsonl'}",
                                 "--port", "0"], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=err)


def wait_health(folder: Path, release: str, proc: subprocess.Popen, log: Path, timeout: float = 60) -> dict:
    from edgekit.deploy.status import app_status

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-2000:]
        entry = app_status(folder)
        if (entry["health"] or {}).get("status") == "ok" and entry["health"]["release"] == release:
            return entry
        time.sleep(0.1)
    pytest.fail(f"serve did not serve {release}: {app_status(folder)} {log.read_text()[-2000:]}")


@pytest.mark.system
def test_deploy_waits_for_the_service_and_rolls_back_a_release_it_does_not_take(sshd, tmp_path):
    need_module("onnxruntime", 'pip install "edgekit-ml[onnx]"')
    need_module("prometheus_client", 'pip install "edgekit-ml[onnx]"')
    from tests.bundle.test_signing import make_bundle as onnx_bundle
    from tests.runtime.test_serve import with_self_check

    v1 = with_self_check(onnx_bundle(tmp_path / "v1.edgekit", "svc"))
    v2 = with_self_check(onnx_bundle(tmp_path / "v2.edgekit", "svc"), offset=1e-7)  # a different file
    wrong = with_self_check(onnx_bundle(tmp_path / "wrong.edgekit", "svc"), offset=1.0)  # computes something else
    rows = tmp_path / "rows.csv"
    rows.write_text("a,b\n" + "".join(f"{i},{i % 3}\n" for i in range(40)))
    host, folder = "edgekit-d", app_dir(sshd, "edgekit-d", "svc")
    full = ("--ssh-config", str(sshd.client_config), "--remote-python", REMOTE_EDGEKIT, "--timeout", "30",
            "--settle", "1")
    result = run_cli("deploy", str(v1), host, *full, timeout=120)  # with the self-check on the device
    assert result.code == 0, result.stderr
    assert "self-check" not in result.stdout  # run, not skipped
    log = tmp_path / "serve.log"
    proc = start_serve(folder, rows, log)
    try:
        wait_health(folder, rid(v1), proc, log)
        result = run_cli("deploy", str(v2), host, *full, timeout=120)
        assert result.code == 0, result.stderr
        assert f"serving {rid(v2)}" in result.stdout
        # the device's self-check refuses it before anything is switched
        result = run_cli("deploy", str(wrong), host, *full, timeout=120)
        assert result.code == 3 and "self-check" in result.stdout and "nothing was switched" in result.stdout
        assert links(folder) == (rid(v2), rid(v1))
        # skipped by deploy, the service refuses it (its own self-check): deploy rolls back
        result = run_cli("deploy", str(wrong), host, *full, "--skip-self-check", timeout=120)
        assert result.code == 4, result.stdout + result.stderr
        assert "rolled back" in result.stdout and "refused" in result.stdout, result.stdout
        assert links(folder) == (rid(v2), rid(v1))
        assert wait_health(folder, rid(v2), proc, log)["health"]["results"] > 0
        # --rollback: back to v1, served
        result = run_cli("deploy", "--rollback", host, "--app", "svc", *full, timeout=120)
        assert result.code == 0 and f"serving {rid(v1)}" in result.stdout, result.stdout + result.stderr
        status = run_cli("status", host, "--ssh-config", str(sshd.client_config), "--remote-python", REMOTE_EDGEKIT)
        assert status.code == 0
        row = next(line for line in status.stdout.splitlines() if line.startswith(host))
        assert "serving" in row and f"last update {rid(v1)} taken" in row, status.stdout
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.system
def test_source_without_a_reachable_systemd_switches_nothing(sshd, tmp_path):
    systemctl = shutil.which("systemctl")
    if systemctl and subprocess.run([systemctl, "--user", "show-environment"], capture_output=True,
                                    check=False).returncode == 0:
        pytest.skip("this machine runs a user systemd: the test would start a real unit here")
    first, second = make_bundle(tmp_path / "s1.edgekit", 90), make_bundle(tmp_path / "s2.edgekit", 91)
    assert deploy(sshd, str(first), "edgekit-b", "--app", "unit").code == 0
    result = deploy(sshd, str(second), "edgekit-b", "--app", "unit", "--source", "csv:/tmp/rows.csv")
    folder = app_dir(sshd, "edgekit-b", "unit")
    units = sshd.config_home("edgekit-b") / "systemd" / "user"
    if systemctl is None:  # no systemd at all: deployed, and the row says to start serve yourself
        assert result.code == 0 and "no systemctl on the host" in result.stdout
        assert links(folder) == (rid(second), rid(first))
    else:  # systemctl without a user manager (a container, no lingering): one line, nothing switched
        assert result.code == 1, result.stdout + result.stderr
        assert "loginctl enable-linger" in result.stdout and "nothing was switched" in result.stdout
        assert links(folder) == (rid(first), None)
        assert not (units / "edgekit-serve-unit.service").exists()
    assert not list((folder / "releases").glob(".tmp-*")) and not list(folder.glob(".*.new"))


@pytest.mark.long
@pytest.mark.system
def test_install_puts_edgekit_into_a_venv_only_when_asked(sshd, tmp_path):
    on_path = subprocess.run(["ssh", "-F", str(sshd.client_config), "edgekit-c", "command -v edgekit"],
                             capture_output=True, text=True, check=False)
    if on_path.returncode == 0:
        pytest.skip(f"edgekit is on the PATH of ssh sessions here ({on_path.stdout.strip()})")
    bundle = make_bundle(tmp_path / "w.edgekit", 100)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--disable-pip-version-check",
                            "-w", str(tmp_path / "dist"), str(REPO)], capture_output=True, text=True, check=False)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("edgekit_ml-*.whl"))
    venv = sshd.data_home("edgekit-c") / "edgekit" / "venv"
    options = ("--ssh-config", str(sshd.client_config), "--skip-self-check", "--app", "inst")
    # without --install: one line, nothing installed
    result = run_cli("deploy", str(bundle), "edgekit-c", *options)
    assert result.code == 1 and "--install" in result.stdout and not venv.exists()
    # a broken wheel: pip fails, the venv it made is removed
    broken = tmp_path / "broken" / wheel.name
    broken.parent.mkdir()
    broken.write_bytes(b"not a zip")
    result = run_cli("deploy", str(bundle), "edgekit-c", *options, "--install", str(broken), timeout=300)
    assert result.code == 1 and "--install" in result.stdout and not venv.exists(), result.stdout
    assert not list(venv.parent.glob(".wheel-*"))
    # the real wheel with the onnx extra: installed, said in the row, and found by the next deploy
    result = run_cli("deploy", str(bundle), "edgekit-c", *options, "--install", f"{wheel}[onnx]", timeout=600)
    assert result.code == 0, result.stdout + result.stderr
    assert "installed edgekit" in result.stdout and str(venv) in result.stdout
    assert (venv / "bin" / "edgekit").is_file()
    assert links(app_dir(sshd, "edgekit-c", "inst")) == (rid(bundle), None)
    result = run_cli("deploy", str(make_bundle(tmp_path / "w2.edgekit", 101)), "edgekit-c", *options)
    assert result.code == 0 and "installed" not in result.stdout, result.stdout


@pytest.mark.long
@pytest.mark.system
def test_a_full_disk_on_the_device_keeps_the_release_and_leaves_no_partial_copy(tmp_path):
    small, big = make_bundle(tmp_path / "small.edgekit", 110), make_bundle(tmp_path / "big.edgekit", 111, size=4 << 20)
    (tmp_path / "sshd").mkdir()
    with running_sshd(tmp_path / "sshd", file_size_limit=2 << 20) as full:  # files above 2 MB cannot be written
        assert deploy(full, str(small), "edgekit-a", "--app", "disk").code == 0
        result = deploy(full, str(big), "edgekit-a", "--app", "disk")
        folder = app_dir(full, "edgekit-a", "disk")
        assert result.code == 1 and "upload failed" in result.stdout and "keeps its release" in result.stdout
        assert links(folder) == (rid(small), None)
        assert sorted(p.name for p in (folder / "releases").iterdir()) == [rid(small)]  # no partial copy left


def stopping_mv(folder: Path, marker: Path) -> None:
    """An ``mv`` for the device that, renaming the link named in `marker`'s ``.target`` file,
    writes its pid to `marker` and waits there (the test kills it: the switch dies at that step)."""
    folder.mkdir()
    (folder / "mv").write_text(
        "#!/bin/sh\n"
        f"target=$(cat {marker}.target 2>/dev/null)\n"
        'case " $* " in *" $target "*) [ -n "$target" ] && { '
        f"echo $$ > {marker}.tmp && /bin/mv {marker}.tmp {marker}; exec sleep 600; }} ;; esac\n"
        'exec /bin/mv "$@"\n')
    (folder / "mv").chmod(0o755)


@pytest.mark.long
@pytest.mark.system
def test_sigkill_while_switching_keeps_serving_and_the_next_deploy_completes(tmp_path):
    need_module("onnxruntime", 'pip install "edgekit-ml[onnx]"')
    need_module("prometheus_client", 'pip install "edgekit-ml[onnx]"')
    from tests.bundle.test_signing import make_bundle as onnx_bundle
    from tests.runtime.test_serve import with_self_check

    bundles = [with_self_check(onnx_bundle(tmp_path / f"v{i}.edgekit", "sw"), offset=i * 1e-7) for i in range(3)]
    rows = tmp_path / "rows.csv"
    rows.write_text("a,b\n" + "".join(f"{i},{i % 3}\n" for i in range(40)))
    marker = tmp_path / "stopped"
    stopping_mv(tmp_path / "bin", marker)
    (tmp_path / "sshd").mkdir()
    with running_sshd(tmp_path / "sshd", path_first=tmp_path / "bin") as server:
        folder = app_dir(server, "edgekit-a", "sw")
        assert deploy(server, str(bundles[0]), "edgekit-a", "--app", "sw").code == 0
        log = tmp_path / "serve.log"
        proc = start_serve(folder, rows, log)
        try:
            wait_health(folder, rid(bundles[0]), proc, log)
            serving = bundles[0]
            # stop before `previous` is renamed, then between `previous` and `current`
            for link, new in ((layout.PREVIOUS, bundles[1]), (layout.CURRENT, bundles[2])):
                before = links(folder)
                marker.with_suffix(".target").write_text(link)
                command = [sys.executable, "-m", "edgekit", "deploy", str(new), "edgekit-a", "--app", "sw",
                           "--skip-self-check", "--ssh-config", str(server.client_config),
                           "--remote-python", REMOTE_EDGEKIT]
                deployer = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                            start_new_session=True)
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and not marker.exists() and deployer.poll() is None:
                    time.sleep(0.005)
                assert marker.exists(), f"deploy never reached the rename of {link}"
                os.killpg(deployer.pid, signal.SIGKILL)  # deploy and its ssh, as a lost terminal would
                deployer.wait(timeout=10)
                os.kill(int(marker.read_text()), signal.SIGKILL)  # and the device's switch dies at that step
                marker.unlink()
                marker.with_suffix(".target").unlink()
                # the release was verified and in place; the link being renamed was not
                assert (folder / "releases" / rid(new) / "bundle.edgekit").is_file()
                current, previous = links(folder)
                assert current == rid(serving), (link, links(folder))
                assert previous == (before[1] if link == layout.PREVIOUS else rid(serving))
                first = wait_health(folder, rid(serving), proc, log)["health"]["results"]
                time.sleep(0.5)
                assert wait_health(folder, rid(serving), proc, log)["health"]["results"] > first  # still serving
                # the next deploy completes, cleans up, and the service takes it
                result = deploy(server, str(new), "edgekit-a", "--app", "sw")
                assert result.code == 0, result.stdout + result.stderr
                assert links(folder) == (rid(new), rid(serving))
                assert not list(folder.glob(".*.new")) and not list((folder / "releases").glob(".tmp-*"))
                wait_health(folder, rid(new), proc, log)
                serving = new
        finally:
            proc.terminate()
            proc.wait(timeout=30)


@pytest.mark.long
@pytest.mark.system
def test_a_release_taken_then_hanging_is_rolled_back_and_the_old_one_serves_after_a_restart(sshd, tmp_path):
    need_module("onnxruntime", 'pip install "edgekit-ml[onnx]"')
    need_module("prometheus_client", 'pip install "edgekit-ml[onnx]"')
    from edgekit.bundle import open_bundle
    from edgekit.deploy.status import app_status
    from tests.bundle.test_signing import make_bundle as onnx_bundle
    from tests.runtime.test_serve import hanging_onnx, with_self_check

    good = with_self_check(onnx_bundle(tmp_path / "good.edgekit", "hang"))
    bad = onnx_bundle(tmp_path / "bad.edgekit", "hang")  # passes its self-check, hangs on rows above 30
    opened = open_bundle(bad)
    write_bundle(bad, opened.manifest, {opened.manifest.variants[0].file: hanging_onnx(base=30.0)})
    bad = with_self_check(bad)
    rows = tmp_path / "rows.csv"
    rows.write_text("a,b\n" + "".join(f"{i},{i % 3}\n" for i in range(40)))
    host, folder = "edgekit-c", app_dir(sshd, "edgekit-c", "hang")
    full = ("--ssh-config", str(sshd.client_config), "--remote-python", REMOTE_EDGEKIT, "--timeout", "30")
    assert run_cli("deploy", str(good), host, *full, timeout=120).code == 0
    log = tmp_path / "serve.log"
    os.environ["WATCHDOG_USEC"] = "2000000"  # as systemd's WatchdogSec=2: a hang is declared after 1 s
    try:
        proc = start_serve(folder, rows, log)
    finally:
        del os.environ["WATCHDOG_USEC"]
    try:
        wait_health(folder, rid(good), proc, log)
        deployer = subprocess.Popen([sys.executable, "-m", "edgekit", "deploy", str(bad), host, *full], cwd=REPO,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # the supervisor's part (systemd's watchdog): restart the service once it hangs and
        # deploy has switched `current` back
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            health = app_status(folder)["health"] or {}
            if health.get("status") == "stalled" and links(folder)[0] == rid(good):
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"no stall and rollback: {app_status(folder)}")
        proc.kill()
        proc.wait(timeout=10)
        proc = start_serve(folder, rows, log)
        out, err = deployer.communicate(timeout=120)
        assert deployer.returncode == 4, out + err
        assert "taken, then stalled" in out and "does not return" in out and "serving again after" in out, out
        assert links(folder) == (rid(good), None)
        wait_health(folder, rid(good), proc, log)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.system
def test_a_device_command_given_with_a_variable_or_tilde_is_resolved_for_the_unit(sshd):
    from edgekit.deploy import DeployConfig, Target
    from edgekit.deploy.push import Device

    home = sshd.data_home("edgekit-b")
    (home / "bin").mkdir(exist_ok=True)
    link = home / "bin" / "edgekit"
    link.unlink(missing_ok=True)
    link.symlink_to(REMOTE_EDGEKIT)
    config = DeployConfig(remote_command="$XDG_DATA_HOME/bin/edgekit", ssh_config=sshd.client_config)
    device = Device(Target("edgekit-b"), config, lambda _m: None)
    device.probe(None)
    assert device.edgekit == str(link)  # what ExecStart gets: systemd expands neither $VAR nor ~ as a shell would


@pytest.mark.system
def test_one_deploy_per_app_at_a_time_and_a_dead_ones_lock_is_taken_over(sshd, tmp_path):
    first, second = make_bundle(tmp_path / "l1.edgekit", 120), make_bundle(tmp_path / "l2.edgekit", 121)
    assert deploy(sshd, str(first), "edgekit-a", "--app", "lock").code == 0
    folder = app_dir(sshd, "edgekit-a", "lock")
    assert not (folder / layout.LOCK).exists()  # released
    # a deploy in progress elsewhere (a live holder): refused in one row, nothing touched
    (folder / layout.LOCK).mkdir()
    (folder / layout.LOCK / "owner").write_text("build-server 4242 abcdef\n")
    (folder / "releases" / ".tmp-theirs-x").mkdir()
    result = deploy(sshd, str(second), "edgekit-a", "--app", "lock")
    assert result.code == 1, result.stdout
    assert "no other deploy of the app in progress" in result.stdout and "build-server 4242" in result.stdout
    assert (folder / "releases" / ".tmp-theirs-x").is_dir() and links(folder) == (rid(first), None)
    # one left by a deploy of this machine whose process is gone: taken over
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (folder / layout.LOCK / "owner").write_text(f"{socket.gethostname()} {dead.stdout.strip()} 0123\n")
    result = deploy(sshd, str(second), "edgekit-a", "--app", "lock")
    assert result.code == 0, result.stdout + result.stderr
    assert links(folder) == (rid(second), rid(first)) and not (folder / layout.LOCK).exists()
    assert not list((folder / "releases").glob(".tmp-*"))
