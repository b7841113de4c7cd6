"""The benchmark's environment record, read from fixture trees of a Pi 4, an x86 laptop and a phone."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from edgekit._optional import DISTRIBUTION
from edgekit.bench.environment import (
    LIBRARIES,
    collect_environment,
    decode_throttled,
    parse_cpuinfo,
    parse_measure_temp,
    parse_throttled,
)
from tests.support.env import REPO

FIXTURES = REPO / "tests" / "fixtures" / "sysfs"
FILE_FIELDS = ("cpu_model", "board_model", "hardware", "cores", "governor", "cur_freq_mhz", "max_freq_mhz",
               "cpufreq", "temperatures_c", "throttled", "throttle_counts", "os_name", "os_id", "os_version")


@pytest.fixture
def no_vcgencmd(tmp_path, monkeypatch):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def on_path(monkeypatch, folder: Path) -> None:
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ.get('PATH', os.defpath)}")
    monkeypatch.delenv("VCGENCMD_OUTPUTS", raising=False)


def test_raspberry_pi_4(monkeypatch):
    root = FIXTURES / "pi4"
    on_path(monkeypatch, root / "usr" / "bin")  # the stand-in vcgencmd: get_throttled, measure_temp
    env = collect_environment(root)
    assert env.cpu_model == "4x Cortex-A72"  # arm64 cpuinfo has only "CPU part : 0xd08"
    assert env.board_model == "Raspberry Pi 4 Model B Rev 1.4"
    assert env.hardware == "BCM2835"
    assert env.cores == 4
    assert env.governor == "ondemand"
    assert (env.cur_freq_mhz, env.max_freq_mhz) == (600.0, 1800.0)
    assert env.temperatures_c == {"cpu-thermal": pytest.approx(48.686), "vcgencmd measure_temp": 48.7}
    assert env.throttled == {"raw": "0x50005", "now": ["under_voltage", "throttled"],
                             "since_boot": ["under_voltage", "throttled"]}
    assert env.throttle_counts is None
    assert (env.os_name, env.os_id, env.os_version) == ("Debian GNU/Linux 12 (bookworm)", "debian", "12")
    data = json.loads(json.dumps(env.to_dict()))
    assert data["cpufreq"] == [{"policy": "policy0", "cpus": "0 1 2 3", "governor": "ondemand",
                                "cur_mhz": 600.0, "max_mhz": 1800.0}]


def test_x86_laptop(no_vcgencmd):
    env = collect_environment(FIXTURES / "x86")
    assert env.cpu_model == "Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz"
    assert env.cores == 2 and env.board_model is None and env.hardware is None
    assert env.governor == "powersave"
    assert (env.cur_freq_mhz, env.max_freq_mhz) == (2400.0, 4200.0)  # the fastest policy
    # two zones of one type stay apart; thermal_zone3 cannot be read (as a disabled zone) and is left out
    assert env.temperatures_c == {"acpitz": pytest.approx(27.8), "acpitz (thermal_zone1)": pytest.approx(29.8),
                                  "x86_pkg_temp": pytest.approx(54.0)}
    assert env.throttle_counts == {"core_throttle_count": 10, "package_throttle_count": 12}
    assert env.throttled is None
    assert (env.os_name, env.os_version) == ("Ubuntu 24.04.1 LTS", "24.04")


def test_android_big_little(no_vcgencmd):
    env = collect_environment(FIXTURES / "android")
    assert env.cpu_model == "4x Cortex-A55 + 4x Cortex-A78"
    assert env.cores == 8 and env.governor == "schedutil"
    assert env.cpufreq is not None and [p.cpus for p in env.cpufreq] == ["0 1 2 3", "4 5 6 7"]
    assert (env.cur_freq_mhz, env.max_freq_mhz) == (1804.8, 2400.0)
    assert (env.os_name, env.os_id, env.os_version) == ("Android 14", "android", "14")


def test_interpreter_and_libraries_come_from_this_process(no_vcgencmd, tmp_path):
    env = collect_environment(tmp_path)
    assert env.python_version == platform.python_version()
    assert env.python_bits in (32, 64)
    assert env.machine == platform.machine() and env.kernel == platform.release()
    assert env.libraries is not None and tuple(env.libraries) == LIBRARIES
    assert env.libraries["numpy"] == metadata.version("numpy")
    assert env.libraries[DISTRIBUTION] == metadata.version(DISTRIBUTION)
    for name, version in env.libraries.items():
        try:
            assert version == metadata.version(name)
        except metadata.PackageNotFoundError:
            assert version is None


def test_an_empty_root_gives_none_not_errors(tmp_path, monkeypatch):
    outputs = tmp_path / "no-outputs"
    outputs.mkdir()
    on_path(monkeypatch, FIXTURES / "pi5" / "usr" / "bin")
    monkeypatch.setenv("VCGENCMD_OUTPUTS", str(outputs))  # every vcgencmd call fails
    env = collect_environment(tmp_path / "nothing-here")
    for field in FILE_FIELDS:
        assert getattr(env, field) is None, field


def test_garbage_files_give_none_not_errors(tmp_path, monkeypatch):
    root = tmp_path / "root"
    shutil.copytree(FIXTURES / "x86", root, symlinks=True)
    (root / "proc" / "cpuinfo").write_bytes(b"\xff\xfe\x00garbage without colons\n")
    (root / "etc" / "os-release").write_text("this is not a key value file\n")
    (root / "sys" / "devices" / "system" / "cpu" / "online").write_text("zero-three\n")
    for temp in (root / "sys" / "devices" / "virtual" / "thermal").glob("*/temp"):
        temp.write_text("n/a\n")
    for cur in (root / "sys" / "devices" / "system" / "cpu" / "cpufreq").glob("*/scaling_cur_freq"):
        cur.write_text("<unsupported>\n")
    for count in (root / "sys" / "devices" / "system" / "cpu").glob("cpu*/thermal_throttle/*_count"):
        count.write_text("lots\n")
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    (outputs / "get_throttled").write_text("VCHI initialization failed\n")
    (outputs / "measure_temp").write_text("temp=hot\n")
    on_path(monkeypatch, FIXTURES / "pi5" / "usr" / "bin")
    monkeypatch.setenv("VCGENCMD_OUTPUTS", str(outputs))
    env = collect_environment(root)
    assert env.cpu_model is None and env.cores is None
    assert env.os_name is None and env.temperatures_c is None and env.throttled is None
    assert env.cur_freq_mhz is None and env.max_freq_mhz == 4200.0 and env.governor == "powersave"
    assert env.throttle_counts == {"core_throttle_count": 0, "package_throttle_count": 0}


def test_throttled_bits_are_named():
    assert decode_throttled(0) == {"raw": "0x0", "now": [], "since_boot": []}
    assert decode_throttled(0xE0008) == {
        "raw": "0xe0008", "now": ["soft_temperature_limit"],
        "since_boot": ["arm_frequency_capped", "throttled", "soft_temperature_limit"]}
    assert parse_throttled("throttled=0x50005\n")["now"] == ["under_voltage", "throttled"]
    assert parse_throttled('error=1 error_msg="Command not registered"') is None
    assert parse_measure_temp("temp=51.6'C\n") == 51.6
    assert parse_measure_temp("temp=hot") is None


def test_cpuinfo_of_a_32_bit_pi_and_an_unknown_arm_core():
    text = "".join(f"processor\t: {i}\nmodel name\t: ARMv7 Processor rev 3 (v7l)\nBogoMIPS\t: 108.00\n\n"
                    for i in range(4))
    text += "Hardware\t: BCM2711\nRevision\t: c03112\nModel\t\t: Raspberry Pi 4 Model B Rev 1.2\n"
    assert parse_cpuinfo(text) == {"cpu_model": "ARMv7 Processor rev 3 (v7l)", "hardware": "BCM2711",
                                   "board_model": "Raspberry Pi 4 Model B Rev 1.2", "cores": 4}
    vendor = "processor\t: 0\nCPU implementer\t: 0x51\nCPU part\t: 0x805\n\n"
    assert parse_cpuinfo(vendor)["cpu_model"] == "1x CPU implementer 0x51 part 0x805"


def test_collecting_imports_no_inference_library():
    code = ("import sys, json; from edgekit.bench.environment import collect_environment; "
            "env = collect_environment(); "
            "print(json.dumps([m for m in ('numpy', 'onnxruntime', 'ai_edge_litert', 'tflite_runtime', "
            "'tensorflow') if m in sys.modules]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert json.loads(proc.stdout) == []
