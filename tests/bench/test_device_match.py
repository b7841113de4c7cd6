"""`edgekit bench --device` on a host that is not the device: the report says where it ran,
the device's budgets and energy are "not measured on the device", threads stay within the
host's cores; profile aliases. One short real bench run (the committed fuzz seed bundle, no
TensorFlow); the rest works on its report and on recorded environments."""

from __future__ import annotations

import copy
import csv
import json

import pytest
import yaml

from edgekit.bench import remote
from edgekit.bench.environment import collect_environment
from edgekit.bench.hostmatch import NOT_ON_DEVICE, choose_threads, match_host, normalize_arch
from edgekit.bench.report import mark_device_match, render_csv, render_markdown, render_table
from edgekit.devices import UnknownProfileError, list_profiles, load_profile, resolve_name
from edgekit.errors import ExitCode, InputError
from tests.support.cli import run_cli
from tests.support.env import FIXTURES, REPO
from tests.support.fuzzing import SEEDS

BUNDLE = SEEDS / "bundle" / "image.edgekit"  # 14 KB, committed: tflite-fp32 runs in microseconds
QUICK = ("--variants", "tflite-fp32", "--mode", "invoke", "--duration", "0.1", "--windows", "2",
         "--warmup", "2", "--warmup-seconds", "0.01", "--idle-seconds", "0")
HERE = collect_environment().to_dict()


def pi4_environment() -> dict:
    """What a Raspberry Pi 4 records (the sysfs fixture tree), with its own ``uname -m``."""
    env = collect_environment(FIXTURES / "sysfs" / "pi4").to_dict()
    env["machine"] = "aarch64"
    return env


@pytest.fixture(scope="module")
def off_device(tmp_path_factory):
    """``bench --device rpi4 --meter estimate -o report.json`` on this host; (result, doc)."""
    if match_host(load_profile("raspberry-pi-4"), HERE).matches:
        pytest.skip("this host is a Raspberry Pi 4")
    out = tmp_path_factory.mktemp("off-device") / "report.json"
    result = run_cli("bench", str(BUNDLE), *QUICK, "--device", "rpi4", "--meter", "estimate", "--budget",
                     "size_kb=1", "--format", "json", "-o", str(out))
    return result, json.loads(out.read_text())


def test_the_first_line_says_where_it_ran_and_the_json_why(off_device):
    result, doc = off_device
    match = doc["device_match"]
    assert match["matches"] is False and match["device"] == "raspberry-pi-4" and doc["device"] == "raspberry-pi-4"
    assert match["host"] == {"arch": normalize_arch(HERE["machine"]), "cores": HERE["cores"], "cpu": HERE["cpu_model"]}
    assert match["expected"] == {"arch": "aarch64", "cores": 4, "cpu": ["Cortex-A72"]}
    assert f"CPU {HERE['cpu_model']}, not Cortex-A72" in match["differences"]
    first = (f"ran on {normalize_arch(HERE['machine'])}, {HERE['cores']} cores ({HERE['cpu_model']}), not on raspberry-pi-4 "
             "(aarch64, 4 cores Cortex-A72): latencies are this host's; budgets and energy not measured on the device")
    assert match["summary"] == first
    assert result.stdout.splitlines()[0] == first  # the table shown next to the -o report
    assert render_table([doc]).splitlines()[0] == first
    assert render_markdown([doc]).splitlines()[0] == first
    assert {r["on_device"] for r in csv.DictReader(render_csv([doc]).splitlines())} == {"False"}
    assert first in result.stderr  # said before measuring, also when the report is JSON


def test_budgets_and_estimated_energy_are_not_measured_on_the_device(off_device):
    result, doc = off_device
    assert result.code == ExitCode.GATE, result.stderr  # size_kb=1: the file's size is the same on every host
    budget = doc["results"][0]["budget"]
    assert budget["status"] == "fail" and budget["over"][0].startswith("size_kb ")
    assert budget["not_on_device"] == ["latency_ms", "memory_mb", "energy_mj"]  # rpi4's, never "pass" here
    assert doc["results"][0]["invoke"]["energy"] is None
    assert doc["energy"]["omitted"].startswith(NOT_ON_DEVICE)
    table = render_table([doc])
    assert "ESTIMATED" not in table and "energy: not measured on the device" in table
    assert "budgets not measured on the device (raspberry-pi-4): latency_ms, memory_mb, energy_mj; size_kb checked" \
        in table
    within = copy.deepcopy(doc)  # the same run had the file been within budget
    within["budgets"]["size_kb"] = 1000
    mark_device_match(within, within["device_match"])
    assert within["results"][0]["budget"]["status"] == NOT_ON_DEVICE
    row = next(line for line in render_table([within]).splitlines() if line.startswith("tflite-fp32 @"))
    assert row.endswith(NOT_ON_DEVICE)  # the table's budget cell


def test_the_profile_threads_are_capped_at_the_hosts_cores(off_device):
    _result, doc = off_device
    cores = HERE["cores"]
    assert doc["results"][0]["threads"] == min(4, cores)
    if cores < 4:
        warning = f"threads: raspberry-pi-4's 4 capped at this host's {cores} cores (--threads 4 runs them anyway)"
        assert doc["warnings"] == [warning]
        assert f"warning: {warning}" in render_table([doc]).splitlines()[:3]


def test_thread_counts_beyond_the_cores_get_a_warning():
    pi4 = load_profile("rpi4")
    assert choose_threads((), pi4, 2) == ((2,), [
        "threads: raspberry-pi-4's 4 capped at this host's 2 cores (--threads 4 runs them anyway)"])
    assert choose_threads((), pi4, 8) == ((4,), [])
    assert choose_threads((), None, 2) == ((1,), [])
    threads, warnings = choose_threads((1, 2, 4, 8), pi4, 2)
    assert threads == (1, 2, 4, 8)  # the user's choice runs as asked
    assert warnings == ["--threads 4,8 is more than this host's 2 cores: the threads share cores, so latencies "
                        "rise and scatter"]
    assert choose_threads((4,), None, None) == ((4,), [])  # cores unknown: nothing to compare


def test_hosts_that_are_the_device_and_hosts_that_are_not():
    pi4, x86 = load_profile("raspberry-pi-4"), load_profile("x86-64-linux")
    on_pi = match_host(pi4, pi4_environment())
    assert on_pi.matches and on_pi.summary is None and on_pi.differences == ()
    assert not match_host(load_profile("rpi5"), pi4_environment()).matches  # Cortex-A72, not A76
    assert match_host(x86, {"machine": "AMD64", "cores": 2, "cpu_model": "x"}).matches  # a class: arch only
    assert not match_host(x86, pi4_environment()).matches
    # a 32-bit OS on the Pi: the device, with a note
    arm32 = {**pi4_environment(), "machine": "armv7l", "cpu_model": "ARMv7 Processor rev 3 (v7l)"}
    on_32 = match_host(pi4, arm32)
    assert on_32.matches and "32-bit OS (armv7l)" in on_32.notes[0]
    # ... but not on a board whose cores are not the profile's
    assert not match_host(pi4, {**arm32, "core_types": ["Cortex-A7"]}).matches
    # a host that does not say is not the device
    blind = match_host(pi4, {"machine": "aarch64"})
    assert not blind.matches and "cores unknown (the profile's are 4)" in blind.differences


def test_aliases_resolve_everywhere_and_are_listed():
    assert load_profile("rpi4").name == "raspberry-pi-4" and resolve_name("rpi5") == "raspberry-pi-5"
    assert resolve_name("jetson-orin-nano") == "jetson-orin-nano"
    assert load_profile("android").name == "android-midrange"
    names = {p.name for p in list_profiles()}
    aliases = [a for p in list_profiles() for a in p.aliases]
    assert len(aliases) == len(set(aliases)) and not names & set(aliases)  # each alias names one profile
    assert {"rpi4", "rpi5", "orin-nano", "android"} <= set(aliases)
    listed = run_cli("devices", "list")
    assert listed.code == 0
    assert any(line.startswith("raspberry-pi-4 ") and line.endswith("aliases rpi4, pi4")
               for line in listed.stdout.splitlines())
    shown = run_cli("devices", "show", "rpi4", "--json")
    assert shown.code == 0 and shown.json()["name"] == "raspberry-pi-4" and "rpi4" in shown.json()["aliases"]


@pytest.mark.parametrize("args", [("devices", "show", "rpi3"), ("bench", str(BUNDLE), "--device", "rpi3")])
def test_an_unknown_name_is_one_usage_line_listing_names_and_aliases(args):
    result = run_cli(*args)
    assert result.code == ExitCode.USAGE
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgekit: error: unknown device profile 'rpi3'"), result.stderr
    assert "raspberry-pi-4 (rpi4, pi4)" in lines[0] and "x86-64-linux (x86-64, x86)" in lines[0]
    with pytest.raises(UnknownProfileError):
        load_profile("rpi3")


def test_an_alias_two_profiles_claim_is_refused(tmp_path):
    for name in ("board-a", "board-b"):
        data = yaml.safe_load((REPO / "devices" / "raspberry-pi-4.yaml").read_text())
        data.update(name=name, aliases=["board"])
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(data))
    assert load_profile("board-a", dirs=[tmp_path]).aliases == ("board",)
    with pytest.raises(InputError, match="an alias of board-a, board-b"):
        load_profile("board", dirs=[tmp_path])


def test_a_remote_report_is_matched_with_the_hosts_environment_not_this_ones(off_device):
    """A report from an edgekit that does not match hosts: decided here, from what the host recorded."""
    _result, doc = off_device
    older = copy.deepcopy(doc)
    for key in ("device_match", "warnings"):
        older.pop(key)
    older["energy"].pop("omitted")
    older["results"][0]["budget"] = {"status": "pass", "over": [], "unchecked": []}
    on_pi = copy.deepcopy(older)
    on_pi["environment"] = pi4_environment()
    remote._match_on_host(on_pi)
    assert on_pi["device_match"]["matches"] is True and on_pi["results"][0]["budget"]["status"] == "pass"
    remote._match_on_host(older)  # recorded on a host like this one
    assert older["device_match"]["matches"] is False
    assert older["results"][0]["budget"]["not_on_device"] == ["latency_ms", "memory_mb", "energy_mj"]
    assert render_table([older]).startswith("ran on ")


def test_the_host_gets_the_profiles_name_for_an_alias():
    assert remote._remote_device("rpi4", {}) == "raspberry-pi-4"
    assert remote._remote_device("board-only-the-host-knows", {}) == "board-only-the-host-knows"
    assert remote._remote_device("my.yaml", {"my.yaml": "/tmp/edgekit-bench.X/my.yaml"}) == \
        "/tmp/edgekit-bench.X/my.yaml"
    assert remote._remote_device(None, {}) is None


def test_core_types_are_read_also_where_the_model_name_hides_them():
    from edgekit.bench.environment import arm_core_types

    arm32 = "".join(f"processor\t: {i}\nmodel name\t: ARMv7 Processor rev 3 (v7l)\nCPU implementer\t: 0x41\n"
                    f"CPU part\t: 0xd08\n\n" for i in range(4))  # a 32-bit kernel on a Pi 4
    assert arm_core_types(arm32) == ["Cortex-A72"]
    big_little = "".join(f"processor\t: {i}\nCPU implementer\t: 0x41\nCPU part\t: {part}\n\n"
                         for i, part in enumerate(["0xd05"] * 6 + ["0xd41"] * 2))
    assert arm_core_types(big_little) == ["Cortex-A55", "Cortex-A78"]
    assert arm_core_types("processor\t: 0\nmodel name\t: Intel(R) N100\n\n") == []
    assert collect_environment(FIXTURES / "sysfs" / "pi4").core_types == ("Cortex-A72",)
