"""Energy meters against sysfs fixture trees in the kernel's exact formats and a stand-in vcgencmd.

The fixture trees under ``fixtures/sysfs`` mirror real machines (class symlinks into
``devices/``); each test copies its tree so it can change counters between start and stop.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from edgekit.bench import meters
from edgekit.bench.energy import energy_per_inference
from edgekit.bench.meters import MeterConfig, MeterName, open_meter
from edgekit.bench.meters import base as meter_base
from edgekit.bench.meters.android import AndroidMeter
from edgekit.bench.meters.base import EnergyReading, IdleBaseline, integrate_trapezoid
from edgekit.bench.meters.estimate import EstimateMeter
from edgekit.bench.meters.hwmon import HwmonMeter, hwmon_channels
from edgekit.bench.meters.rapl import RaplMeter, rapl_delta_uj
from edgekit.bench.meters.rpi5 import parse_pmic_adc, pmic_power
from edgekit.devices import load_profile
from edgekit.errors import InputError
from tests.support.env import REPO

FIXTURES = REPO / "tests" / "fixtures" / "sysfs"

# Sum of V x I over the twelve rails of the Pi 5 fixture that have both readings
# (EXT5V_V and BATT_V have no current), worked out by hand from the fixture's numbers.
PI5_FIXTURE_WATTS = 3.5977465778827202


def tree(tmp_path: Path, name: str) -> Path:
    """A private copy of a fixture tree (symlinks kept, as in /sys)."""
    root = tmp_path / name
    shutil.copytree(FIXTURES / name, root, symlinks=True)
    return root


def write(path: Path, value: object) -> None:
    """Replace a sysfs attribute atomically: a real one never reads half-written."""
    temporary = path.with_name(path.name + ".new")
    temporary.write_text(f"{value}\n")
    os.replace(temporary, path)


@pytest.fixture
def pi5_path(tmp_path, monkeypatch):
    """The stand-in vcgencmd first on PATH, printing outputs from a writable copy."""
    root = tree(tmp_path, "pi5")
    monkeypatch.setenv("PATH", f"{root / 'usr' / 'bin'}{os.pathsep}{os.environ.get('PATH', os.defpath)}")
    monkeypatch.setenv("VCGENCMD_OUTPUTS", str(root / "usr" / "share" / "vcgencmd"))
    return root


@pytest.fixture
def no_vcgencmd(tmp_path, monkeypatch):
    """A PATH without vcgencmd, so auto selection does not depend on the test machine."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


# ---------------------------------------------------------------------------
# arithmetic


def test_trapezoid_integrates_known_power_curves():
    assert integrate_trapezoid([(0.0, 1.0), (1.0, 3.0), (3.0, 3.0)]) == pytest.approx(2.0 + 6.0)
    assert integrate_trapezoid([(10.0, 0.0), (12.0, 4.0)]) == pytest.approx(4.0)  # a ramp: half of 2 s x 4 W
    assert integrate_trapezoid([(5.0, 7.0)]) == 0.0


def test_rapl_delta_undoes_one_wraparound():
    assert rapl_delta_uj(100, 350, 1000) == (250, False)
    assert rapl_delta_uj(900, 50, 1000) == (150, True)
    with pytest.raises(InputError, match="max_energy_range_uj"):
        rapl_delta_uj(900, 50, None)


def test_gross_and_net_energy_per_inference():
    readings = [EnergyReading(10.0, 2.0, "rapl", "rapl: test", None, True, 2),
                EnergyReading(12.0, 2.0, "rapl", "rapl: test", None, True, 2, ("a note",))]
    baseline = IdleBaseline(4.0, 3.0, "rapl: idle", True)
    result = energy_per_inference(readings, baseline, inferences=100)
    assert result is not None
    assert result.gross_joules == pytest.approx(22.0)
    assert result.net_joules == pytest.approx(22.0 - 4.0 * 4.0)
    assert result.gross_j_per_inference == pytest.approx(0.22)
    assert result.net_mj_per_inference == pytest.approx(60.0)
    assert result.mean_watts == pytest.approx(5.5)
    assert result.label == "measured"
    assert result.windows == 2 and result.idle_watts == 4.0
    assert "a note" in result.notes
    data = result.to_dict()
    assert data["label"] == "measured" and data["net_mj_per_inference"] == pytest.approx(60.0)


def test_net_below_idle_is_reported_not_hidden():
    readings = [EnergyReading(7.0, 2.0, "hwmon", "hwmon: x", 20.0, True, 41)]
    result = energy_per_inference(readings, IdleBaseline(4.0, 3.0, "idle", True), inferences=10)
    assert result is not None and result.net_joules == pytest.approx(-1.0)
    assert any("below zero" in note for note in result.notes)


def test_no_baseline_gives_gross_only_and_none_meter_gives_nothing():
    readings = [EnergyReading(3.0, 1.0, "hwmon", "hwmon: x", 20.0, True, 21)]
    result = energy_per_inference(readings, None, inferences=3)
    assert result is not None and result.net_joules is None and result.gross_j_per_inference == pytest.approx(1.0)
    none = open_meter("none")
    none.start()
    assert energy_per_inference([none.stop()], none.idle_baseline(), inferences=5) is None


# ---------------------------------------------------------------------------
# rapl


def test_rapl_counts_package_and_dram_once_across_a_wraparound(tmp_path):
    root = tree(tmp_path, "rapl")
    meter = open_meter("rapl", MeterConfig(root=root))
    assert isinstance(meter, RaplMeter)
    assert [z.zone for z in meter.zones] == ["intel-rapl:0", "intel-rapl:0:2"]
    meter.start()
    zones = root / "sys" / "class" / "powercap"
    write(zones / "intel-rapl:0" / "energy_uj", 1_500_000)  # wrapped past 262143328850
    write(zones / "intel-rapl:0:0" / "energy_uj", 101_000_000)  # core: inside the package
    write(zones / "intel-rapl:0:1" / "energy_uj", 2_500_000)  # uncore: inside the package
    write(zones / "intel-rapl:0:2" / "energy_uj", 5_250_000)  # dram: outside the package
    write(zones / "intel-rapl:1" / "energy_uj", 60_000_000)  # psys: contains the package
    write(zones / "intel-rapl-mmio:0" / "energy_uj", 99_000_000)  # the package again, via MMIO
    reading = meter.stop()
    # package: 1500000 + 262143328850 - 262143000000 = 1828850 uJ; dram: 250000 uJ
    assert reading.joules == pytest.approx(1.82885 + 0.25, abs=1e-12)
    assert reading.measured and reading.sample_rate_hz is None and reading.samples == 2
    assert any("intel-rapl:0 counter wrapped" in n for n in reading.notes)
    notes = " ".join(reading.notes)
    for left_out in ("intel-rapl:0:0 (core)", "intel-rapl:0:1 (uncore)", "intel-rapl:1 (psys)", "intel-rapl-mmio:0"):
        assert left_out in notes
    assert "package-0" in reading.method and "dram" in reading.method


def test_rapl_second_window_without_wrap(tmp_path):
    root = tree(tmp_path, "rapl")
    meter = RaplMeter(root)
    package = root / "sys" / "class" / "powercap" / "intel-rapl:0" / "energy_uj"
    write(package, 1_000_000)
    meter.start()
    write(package, 4_000_000)
    reading = meter.stop()
    assert reading.joules == pytest.approx(3.0)
    assert not any("wrapped" in n for n in reading.notes)


def test_rapl_permission_denied_says_how_to_grant_access(tmp_path, monkeypatch):
    root = tree(tmp_path, "rapl")
    if os.geteuid() == 0:
        # root reads any file, so stand in for the kernel's EACCES on energy_uj
        real = meter_base.read_text

        def denied(path):
            if path.name == "energy_uj":
                raise PermissionError(13, "Permission denied", str(path))
            return real(path)

        monkeypatch.setattr(meter_base, "read_text", denied)
    else:
        for path in (root / "sys" / "devices").rglob("energy_uj"):
            path.chmod(0o200)
    with pytest.raises(InputError) as info:
        open_meter("rapl", MeterConfig(root=root))
    message = str(info.value)
    assert "permission denied" in message
    assert "root" in message and "Linux 5.10" in message
    assert "chmod a+r /sys/class/powercap/intel-rapl:*/energy_uj" in message
    auto = open_meter("auto", MeterConfig(root=root))
    assert auto.name == "none"
    assert "chmod a+r" in auto.notes[-1] and "rapl (permission denied)" in auto.notes[-1]


def test_rapl_absent(tmp_path):
    with pytest.raises(InputError, match="no RAPL zones"):
        RaplMeter(tmp_path)


# ---------------------------------------------------------------------------
# hwmon


def test_hwmon_ina219_power_input_in_microwatts(tmp_path):
    root = tree(tmp_path, "hwmon-ina219")
    meter = open_meter("hwmon", MeterConfig(root=root, interval_s=0.02))
    assert isinstance(meter, HwmonMeter)
    assert meter.read_watts() == pytest.approx(2.613248)  # power1_input 2613248 uW
    assert "ina219 (hwmon2) channel 1" in meter.method and "power1_input" in meter.method
    assert any("only power rail" in n for n in meter.notes)
    meter.start()
    time.sleep(0.2)
    reading = meter.stop()
    assert reading.joules == pytest.approx(2.613248 * reading.seconds, rel=1e-9)
    assert reading.samples >= 3 and reading.sample_rate_hz is not None and reading.sample_rate_hz > 5


def test_hwmon_ina3221_jetson_rails(tmp_path):
    root = tree(tmp_path, "hwmon-ina3221")
    channels = hwmon_channels(root)
    # curr4 (the summation channel) must not be paired with in4 (channel 1's shunt voltage)
    assert [(c.channel, c.label) for c in channels] == [(1, "VDD_IN"), (2, "VDD_CPU_GPU_CV"), (3, "VDD_SOC")]
    meter = HwmonMeter(root)
    assert meter.channel.label == "VDD_IN"
    assert meter.read_watts() == pytest.approx(1180 * 5072 / 1e6)  # curr1 mA x in1 mV
    assert "curr1_input mA x in1_input mV" in meter.method
    assert any("board-input rail 'VDD_IN'" in n for n in meter.notes)
    assert HwmonMeter(root, rail="VDD_SOC").read_watts() == pytest.approx(610 * 5056 / 1e6)
    assert HwmonMeter(root, rail="hwmon1/2").channel.label == "VDD_CPU_GPU_CV"
    with pytest.raises(InputError, match="VDD_IN") as info:
        HwmonMeter(root, rail="VDD_GPU")
    assert "no such rail" in str(info.value)


def test_hwmon_without_labels_takes_the_highest_rail(tmp_path):
    root = tree(tmp_path, "hwmon-ina3221")
    for label in (root / "sys" / "class" / "hwmon" / "hwmon1").glob("in*_label"):
        label.unlink()
    meter = HwmonMeter(root)
    assert meter.channel.channel == 1
    assert any("highest power" in n and "5.98 W" in n for n in meter.notes)


def test_hwmon_sampling_follows_a_power_change(tmp_path):
    root = tree(tmp_path, "hwmon-ina219")
    power = root / "sys" / "class" / "hwmon" / "hwmon2" / "power1_input"
    write(power, 1_000_000)
    meter = HwmonMeter(root, interval_s=0.01)
    meter.start()
    time.sleep(0.4)
    write(power, 3_000_000)
    time.sleep(0.4)
    reading = meter.stop()
    # about 0.4 s at 1 W and 0.4 s at 3 W: a mean near 2 W, whatever the scheduler did
    assert reading.watts is not None and 1.6 < reading.watts < 2.4
    assert reading.samples > 20


def test_hwmon_bridges_a_failed_read_but_not_a_lost_sensor(tmp_path):
    root = tree(tmp_path, "hwmon-ina219")
    power = root / "sys" / "class" / "hwmon" / "hwmon2" / "power1_input"
    meter = HwmonMeter(root, interval_s=0.01)
    meter.start()
    write(power, "")  # what a failed I2C transfer looks like to the parser
    time.sleep(0.1)
    write(power, 2_613_248)
    time.sleep(0.1)
    reading = meter.stop()
    assert any("could not be read and were skipped" in n for n in reading.notes)
    assert reading.joules == pytest.approx(2.613248 * reading.seconds, rel=1e-9)
    meter.start()
    power.unlink()
    time.sleep(0.05)
    with pytest.raises(InputError, match="readable power sensor"):
        meter.stop()


def test_hwmon_idle_baseline(tmp_path):
    meter = HwmonMeter(tree(tmp_path, "hwmon-ina219"), interval_s=0.02)
    baseline = meter.idle_baseline(0.15)
    assert baseline.watts == pytest.approx(2.613248)
    assert baseline.measured and baseline.seconds >= 0.15


def test_hwmon_absent_and_ignores_non_power_sensors(tmp_path):
    root = tree(tmp_path, "hwmon-ina219")
    shutil.rmtree(root / "sys" / "devices" / "platform")
    (root / "sys" / "class" / "hwmon" / "hwmon2").unlink()
    assert hwmon_channels(root) == []  # cpu_thermal has temperatures only
    with pytest.raises(InputError, match="INA-family"):
        HwmonMeter(root)


# ---------------------------------------------------------------------------
# rpi5


def test_pmic_read_adc_is_parsed_and_summed():
    text = (FIXTURES / "pi5" / "usr" / "share" / "vcgencmd" / "pmic_read_adc").read_text()
    rails = parse_pmic_adc(text)
    assert rails["VDD_CORE"] == {"A": pytest.approx(2.84163), "V": pytest.approx(0.87968)}
    assert rails["EXT5V"] == {"V": pytest.approx(5.125584)}
    watts, used = pmic_power(rails)
    assert watts == pytest.approx(PI5_FIXTURE_WATTS, rel=1e-12)
    assert len(used) == 12 and "EXT5V" not in used and "BATT" not in used
    core, only = pmic_power(rails, ["VDD_CORE"])
    assert only == ["VDD_CORE"] and core == pytest.approx(2.84163 * 0.87968)
    assert parse_pmic_adc('error=1 error_msg="Command not registered"\n') == {}


def test_rpi5_meter_samples_vcgencmd_on_path(pi5_path):
    meter = open_meter("rpi5", MeterConfig(interval_s=0.05))
    assert meter.executable == str(pi5_path / "usr" / "bin" / "vcgencmd")
    assert meter.read_watts() == pytest.approx(PI5_FIXTURE_WATTS)
    assert "12 rails" in meter.method and any("PMIC rails only" in n for n in meter.notes)
    meter.start()
    time.sleep(0.3)
    reading = meter.stop()
    assert reading.joules == pytest.approx(PI5_FIXTURE_WATTS * reading.seconds, rel=1e-9)
    assert reading.samples >= 3 and reading.measured


def test_rpi5_meter_follows_the_core_rail(pi5_path):
    outputs = pi5_path / "usr" / "share" / "vcgencmd" / "pmic_read_adc"
    meter = open_meter("rpi5", MeterConfig(rail="VDD_CORE", interval_s=0.02))
    assert meter.read_watts() == pytest.approx(2.84163 * 0.87968)
    outputs.write_text(outputs.read_text().replace("current(7)=2.84163000A", "current(7)=5.68326000A"))
    assert meter.read_watts() == pytest.approx(5.68326 * 0.87968)


def test_rpi5_meter_on_a_pi_4_or_without_vcgencmd(pi5_path, monkeypatch, tmp_path):
    (pi5_path / "usr" / "share" / "vcgencmd" / "pmic_read_adc").unlink()  # the firmware lacks the command
    with pytest.raises(InputError, match="Command not registered"):
        open_meter("rpi5")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(InputError, match="raspi-utils"):
        open_meter("rpi5")


# ---------------------------------------------------------------------------
# android

BATTERY_WATTS = 0.452 * 3.87125  # 452 mA at 3.87125 V in every battery fixture


def test_android_microamps_with_the_kernel_sign(tmp_path):
    meter = AndroidMeter(tree(tmp_path, "power-supply-ua"), interval_s=0.02)
    assert meter.read_watts() == pytest.approx(BATTERY_WATTS)
    assert any("read as µA" in n for n in meter.notes)
    assert not any("inverted" in n for n in meter.notes)
    meter.start()
    time.sleep(0.1)
    reading = meter.stop()
    assert reading.joules == pytest.approx(BATTERY_WATTS * reading.seconds, rel=1e-9)


def test_android_inverted_sign_is_normalised_and_said(tmp_path):
    meter = AndroidMeter(tree(tmp_path, "power-supply-inverted"))
    assert meter.read_watts() == pytest.approx(BATTERY_WATTS)
    assert any("positive while discharging" in n and "normalised" in n for n in meter.notes)


def test_android_milliamps_are_detected(tmp_path):
    meter = AndroidMeter(tree(tmp_path, "power-supply-ma"))
    assert meter.read_watts() == pytest.approx(BATTERY_WATTS)
    assert any("read as mA" in n for n in meter.notes)
    forced = AndroidMeter(tree(tmp_path, "power-supply-ua"), current_unit="uA")
    assert forced.read_watts() == pytest.approx(BATTERY_WATTS)


def test_android_refuses_a_charging_battery(tmp_path):
    with pytest.raises(InputError, match="Discharging") as info:
        open_meter("android", MeterConfig(root=tree(tmp_path, "power-supply-charging")))
    assert "unplug" in str(info.value)


def test_android_without_status_assumes_and_says_so(tmp_path):
    root = tree(tmp_path, "power-supply-inverted")
    (root / "sys" / "class" / "power_supply" / "battery" / "status").unlink()
    meter = AndroidMeter(root)
    assert meter.read_watts() == pytest.approx(BATTERY_WATTS)
    assert any("assumed discharging" in n for n in meter.notes)


# ---------------------------------------------------------------------------
# estimate


def stat_line(pid: int, utime: int, stime: int) -> str:
    # /proc/PID/stat; the command name may hold spaces and parentheses
    return (f"{pid} (my (odd) worker) S 1 {pid} {pid} 0 -1 4194560 1523 0 0 0 {utime} {stime} 0 0 20 0 3 0 "
            "987654 123456789 4321 18446744073709551615 1 1 0 0 0 0 0 16781312 17642 0 0 0 17 1 0 0 0 0 0\n")


def test_estimate_uses_profile_power_and_process_cpu_time(tmp_path):
    profile = load_profile("raspberry-pi-4")
    stat = tmp_path / "proc" / "4242" / "stat"
    stat.parent.mkdir(parents=True)
    stat.write_text(stat_line(4242, 250, 50))
    meter = open_meter("estimate", MeterConfig(root=tmp_path, profile=profile, pid=4242))
    assert isinstance(meter, EstimateMeter) and not meter.measured
    meter.start()
    stat.write_text(stat_line(4242, 650, 90))
    reading = meter.stop()
    cpu = 440 / os.sysconf("SC_CLK_TCK")
    assert meter.last_cpu_seconds == pytest.approx(cpu)
    assert reading.joules == pytest.approx(2.7 * reading.seconds + (6.4 - 2.7) * cpu / 4)
    assert not reading.measured
    assert "not measured" in reading.method
    assert any(n.startswith("ESTIMATED") for n in reading.notes)
    assert any("pidramble" in n for n in reading.notes)  # the figures' source travels with them

    baseline = meter.idle_baseline(5.0, sleep=lambda s: pytest.fail("an estimate has nothing to wait for"))
    assert baseline.watts == 2.7 and not baseline.measured
    result = energy_per_inference([reading], baseline, inferences=10)
    assert result is not None and result.label == "estimated" and result.notes[0].startswith("ESTIMATED")
    assert result.net_joules == pytest.approx((6.4 - 2.7) * cpu / 4)


def test_estimate_of_this_process(tmp_path):
    meter = EstimateMeter(idle_w=1.0, active_w=5.0, cores=2)
    meter.start()
    deadline = time.process_time() + 0.1
    while time.process_time() < deadline:
        pass
    reading = meter.stop()
    assert meter.last_cpu_seconds >= 0.1
    assert reading.joules == pytest.approx(1.0 * reading.seconds + 4.0 * meter.last_cpu_seconds / 2)


def test_estimate_needs_a_profile():
    with pytest.raises(InputError, match="raspberry-pi-4") as info:
        open_meter("estimate")
    assert "--device" in str(info.value)


# ---------------------------------------------------------------------------
# selection


def test_auto_picks_the_first_usable_meter_and_says_why(tmp_path, no_vcgencmd):
    assert open_meter("auto", MeterConfig(root=tree(tmp_path, "rapl"))).name == "rapl"
    hwmon = open_meter("auto", MeterConfig(root=tree(tmp_path, "hwmon-ina3221")))
    assert hwmon.name == "hwmon"
    assert hwmon.notes[0].startswith("auto: chose hwmon; skipped rapl (no RAPL zones)")
    assert open_meter("auto", MeterConfig(root=tree(tmp_path, "power-supply-ua"))).name == "android"
    profile = load_profile("pi-zero-2w")
    assert open_meter("auto", MeterConfig(root=tmp_path / "nothing", profile=profile)).name == "estimate"
    none = open_meter("auto", MeterConfig(root=tmp_path / "nothing"))
    assert none.name == "none"
    assert "estimate (no --device profile)" in none.notes[-1]


def test_auto_on_a_pi_5(pi5_path):
    meter = open_meter("auto", MeterConfig(root=pi5_path))
    assert meter.name == "rpi5"


def test_unknown_meter_lists_the_valid_ones():
    with pytest.raises(InputError, match="unrecognized meter 'joulescope'") as info:
        open_meter("joulescope")
    for name in ("auto", "none", "rapl", "hwmon", "rpi5", "android", "estimate"):
        assert name in str(info.value)
    assert {m.value for m in MeterName} == set(meters.METER_NAMES)
