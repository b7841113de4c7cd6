"""The systemd unit deploy writes (checked by systemd-analyze verify), Ansible inventories,
and `edgekit status` on this device without a service."""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgekit.deploy import layout, read_inventory, unit
from edgekit.deploy.status import app_status, local_status
from edgekit.errors import InputError
from tests.support.cli import run_cli
from tests.support.env import need_program

EDGEKIT = str(Path(sys.executable).parent / "edgekit")  # ExecStart's program must exist for verify


def analyze(tmp_path: Path, text: str, system: bool) -> subprocess.CompletedProcess[str]:
    tool = need_program("systemd-analyze", "apt-get install systemd")
    path = tmp_path / ("system" if system else "user") / "edgekit-serve-demo.service"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "SYSTEMD_LOG_COLOR": "0"}
    return subprocess.run([tool, *([] if system else ["--user"]), "verify", str(path)], capture_output=True,
                          text=True, env=env, timeout=60, check=False)


@pytest.mark.system
@pytest.mark.parametrize("system", [True, False], ids=["system", "user"])
def test_the_unit_passes_systemd_analyze_verify(tmp_path, system):
    command = unit.exec_start(EDGEKIT, "/home/pi/.local/share/edgekit/demo", "csv:/tmp/rows.csv?rate=40&loop=1",
                              port=8780, sink="jsonl:/tmp/results 1.jsonl", public_key="/k/signer.pub")
    text = unit.render("demo", "/home/pi/.local/share/edgekit/demo", command, system=system, user=getpass.getuser())
    result = analyze(tmp_path, text, system)
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr
    assert "Type=notify" in text and "WatchdogSec=" in text and "Restart=on-failure" in text
    assert "RestartSec=5" in text and "StartLimitBurst=5" in text
    assert ("User=" in text) is system and ("multi-user.target" in text) is system
    # the checker is not blind: a bad value is reported
    result = analyze(tmp_path, text.replace("RestartSec=5", "RestartSec=soon"), system)
    assert "RestartSec" in result.stderr or "sec value" in result.stderr


def test_exec_start_keeps_specifiers_and_variables_literal():
    command = unit.exec_start("/opt/edgekit", "/d", "csv:/x%20y.csv?rate=$RATE", port=1)
    assert '"csv:/x%%20y.csv?rate=$$RATE"' in command and command.startswith("/opt/edgekit serve /d --source")


def test_ini_inventory_groups_children_vars_and_limit(tmp_path):
    path = tmp_path / "hosts"
    path.write_text("""# fleet
edge0 ansible_host=10.0.0.9
[cams]
cam1 ansible_host=10.0.0.1 ansible_port=2222
cam2 ansible_user=root
[cams:vars]
ansible_user=pi
[mics]
mic1
[all_devices:children]
cams
mics
""")
    targets = read_inventory(path)
    assert [(t.name, t.destination, t.ssh_options) for t in targets] == [
        ("edge0", "10.0.0.9", ()), ("cam1", "pi@10.0.0.1", ("Port=2222",)), ("cam2", "root@cam2", ()),
        ("mic1", "mic1", ())]
    assert [t.name for t in read_inventory(path, "all_devices")] == ["cam1", "cam2", "mic1"]
    with pytest.raises(InputError, match="a group of"):
        read_inventory(path, "nope")
    path.write_text("[cams]\ncam1 ansible_port=http\n")
    with pytest.raises(InputError, match="ansible_port"):
        read_inventory(path)


def test_yaml_inventory(tmp_path):
    path = tmp_path / "hosts.yml"
    path.write_text("""all:
  vars: {ansible_user: pi}
  hosts:
    gw: {ansible_host: 192.168.1.2}
  children:
    cams:
      hosts:
        cam1: {ansible_port: 2200}
        cam2:
      vars: {ansible_user: cam}
""")
    targets = read_inventory(path)
    assert [(t.name, t.destination, t.ssh_options) for t in targets] == [
        ("gw", "pi@192.168.1.2", ()), ("cam1", "cam@cam1", ("Port=2200",)), ("cam2", "cam@cam2", ())]
    assert [t.name for t in read_inventory(path, "cams")] == ["cam1", "cam2"]
    path.write_text("all: [1, 2]\n")
    with pytest.raises(InputError, match="Ansible inventory"):
        read_inventory(path)


def test_status_of_this_device_without_a_service(tmp_path):
    base = tmp_path / "edgekit"
    folder = base / "demo"
    (folder / "releases" / "aaaa").mkdir(parents=True)
    os.symlink("releases/aaaa", folder / "current")
    doc = local_status(base=base)
    assert [(a["app"], a["current"], a["previous"], a["service"]) for a in doc["apps"]] == [
        ("demo", "aaaa", None, "not running")]
    # a serve.json left by a process that is gone
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    (folder / layout.STATE_NAME).write_text(json.dumps({"pid": int(dead.stdout), "port": 1, "release": "aaaa"}))
    assert app_status(folder)["service"] == "stopped"
    (folder / layout.STATE_NAME).write_text("{not json")
    assert app_status(folder)["service"] == "not running"
    with pytest.raises(InputError, match="no such folder"):
        local_status("other", base=base)
    result = run_cli("status", "--app", "other", env={"XDG_DATA_HOME": str(tmp_path)})
    assert result.code == 1 and len(result.stderr.strip().splitlines()) == 1 and "edgekit deploy" in result.stderr
    result = run_cli("status", env={"XDG_DATA_HOME": str(tmp_path)})
    assert result.code == 0 and "demo" in result.stdout and "aaaa" in result.stdout


@pytest.mark.parametrize("name", ["", ".hidden", "-x", "a/b", "..", "x" * 65, "a b"])
def test_app_names_that_cannot_be_a_folder_are_refused(name):
    with pytest.raises(InputError, match="app name"):
        layout.check_app_name(name)
