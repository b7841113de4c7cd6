"""Device profiles: the shipped YAML files, validation, lookup, and an installed copy."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from edgekit import devices
from edgekit.bench.meters import METERS
from edgekit.convert.variants import VARIANTS
from edgekit.devices import (
    Budgets,
    DeviceProfile,
    HostMatch,
    UnknownProfileError,
    load_profile,
    parse_profile,
    profile_names,
    read_profile,
)
from edgekit.errors import InputError
from tests.support.env import REPO

SHIPPED = ["android-midrange", "jetson-orin-nano", "pi-zero-2w", "raspberry-pi-4", "raspberry-pi-5", "x86-64-linux"]


@pytest.fixture(autouse=True)
def no_user_profiles(monkeypatch):
    monkeypatch.delenv(devices.ENV_VAR, raising=False)


def valid() -> dict:
    return yaml.safe_load((REPO / "devices" / "raspberry-pi-4.yaml").read_text())


def test_every_shipped_profile_loads_and_is_consistent():
    assert profile_names() == SHIPPED
    profiles = devices.list_profiles()
    assert [p.name for p in profiles] == SHIPPED
    for p in profiles:
        assert isinstance(p, DeviceProfile)
        assert 1 <= p.threads <= p.cores
        assert set(p.variants) <= set(VARIANTS), p.name
        assert set(p.meters) <= set(METERS) and "estimate" in p.meters, p.name
        assert p.active.watts > p.idle.watts > 0
        assert p.idle.source and p.active.source
        assert p.budgets.latency_ms and p.budgets.size_kb and p.budgets.memory_mb and p.budgets.energy_mj
        assert p.arch in ("aarch64", "x86_64")
        assert Path(p.path or "").parent == REPO / "devices"


def test_published_figures_and_their_sources():
    pi4 = load_profile("raspberry-pi-4")
    assert (pi4.idle.watts, pi4.active.watts) == (2.7, 6.4)
    assert not pi4.idle.uncertain and "pidramble" in pi4.idle.source
    assert pi4.ram_mb == (1024, 2048, 4096, 8192) and pi4.cores == 4
    assert load_profile("raspberry-pi-5").idle.uncertain  # no official figure: marked
    assert "rpi5" in load_profile("raspberry-pi-5").meters
    assert load_profile("jetson-orin-nano").cores == 6
    assert load_profile("x86-64-linux").meters[0] == "rapl"


def test_to_dict_round_trips_through_validation():
    for p in devices.list_profiles():
        data = p.to_dict()
        data.pop("path")
        assert parse_profile(json.loads(json.dumps(data)), p.name) == dataclasses.replace(p, path=None)


def test_describe_and_summary_show_the_figures():
    pi = load_profile("pi-zero-2w")
    text = pi.describe()
    assert "0.6 W" in text and "2.5 W (uncertain)" in text and "source: CNX Software" in text
    assert "budgets:  latency_ms=200, size_kb=4096, memory_mb=128, energy_mj=300" in text
    assert pi.summary().startswith("pi-zero-2w") and "512 MB" in pi.summary()


def test_unknown_profile_lists_the_valid_names():
    with pytest.raises(UnknownProfileError, match="unknown device profile 'raspberry-pi-3'") as info:
        load_profile("raspberry-pi-3")
    assert info.value.exit_code == 2  # an unknown choice, as Click's
    for name in SHIPPED:
        assert name in str(info.value)
    assert "raspberry-pi-4 (rpi4, pi4)" in str(info.value)
    assert "edgekit devices list" in str(info.value)


@pytest.mark.parametrize("change, field", [
    (lambda d: d.pop("cores"), "missing field 'cores'"),
    (lambda d: d.update(gpu="yes"), "unknown field 'gpu'"),
    (lambda d: d["power"]["idle_w"].pop("source"), "missing field 'source'"),
    (lambda d: d["power"].update(active_w={"value": 2.0, "source": "x"}), "power.active_w"),
    (lambda d: d["power"].update(idle_w=2.7), "every power figure needs a source"),
    (lambda d: d.update(threads=8), "threads: expected at most cores=4"),
    (lambda d: d.update(variants=["tflite int8"]), "variants"),
    (lambda d: d["budgets"].update(latency_ms=-1), "budgets.latency_ms: expected a positive number"),
    (lambda d: d["budgets"].update(fps=30), "unknown field 'fps'"),
    (lambda d: d.update(schema=2), "schema"),
    (lambda d: d.update(cores=True), "cores: expected a positive integer"),
    (lambda d: d.update(aliases=["Pi 4"]), "aliases"),
    (lambda d: d.update(aliases=["raspberry-pi-4"]), "aliases: expected a list of other names"),
    (lambda d: d["match"].update(arch="x86_64"), "match.arch: expected the profile's arch 'aarch64'"),
    (lambda d: d["match"].update(cores=2), "match.cores"),
    (lambda d: d["match"].update(gpu="Ampere"), "unknown field 'gpu'"),
    (lambda d: d["match"].update(cpu=[3]), "match.cpu"),
])
def test_invalid_profiles_name_the_field(change, field):
    data = valid()
    change(data)
    with pytest.raises(InputError, match="device profile x.yaml") as info:
        parse_profile(data, "x.yaml")
    assert field in str(info.value)


def test_user_profiles_from_a_folder_or_a_path(tmp_path, monkeypatch):
    data = valid()
    data.update(name="my-board", title="My board", cores=2, threads=2)
    data.pop("match")
    (tmp_path / "my-board.yaml").write_text(yaml.safe_dump(data))
    assert load_profile("my-board", dirs=[tmp_path]).cores == 2
    assert load_profile("my-board", dirs=[tmp_path]).match == HostMatch(arch="aarch64", cores=2)  # the default
    monkeypatch.setenv(devices.ENV_VAR, str(tmp_path))
    assert "my-board" in profile_names() and "raspberry-pi-4" in profile_names()
    assert load_profile(str(tmp_path / "my-board.yaml")).title == "My board"
    (tmp_path / "wrong-name.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(InputError, match="expected 'wrong-name'"):
        read_profile(tmp_path / "wrong-name.yaml")
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n")
    with pytest.raises(InputError, match="valid YAML"):
        load_profile("broken", dirs=[tmp_path])
    with pytest.raises(InputError, match="broken.yaml"):
        devices.list_profiles(dirs=[tmp_path])  # a broken file is an error, never silently skipped


def test_budgets_parse_and_override():
    pi5 = load_profile("raspberry-pi-5").budgets
    assert Budgets.parse("latency_ms=12.5, energy_mj=40") == Budgets(latency_ms=12.5, energy_mj=40.0)
    merged = pi5.overridden(Budgets.parse("latency_ms=20"))
    assert merged == Budgets(latency_ms=20.0, size_kb=32768.0, memory_mb=1024.0, energy_mj=300.0)
    with pytest.raises(InputError, match="KEY one of"):
        Budgets.parse("fps=30")
    with pytest.raises(InputError, match="positive number"):
        Budgets.parse("size_kb=big")


@pytest.mark.slow
def test_an_installed_edgekit_finds_the_profiles(tmp_path):
    """Build a wheel from the source files and install it into a fresh venv: profiles and recipes come along."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "edgekit", src / "edgekit", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "devices", src / "devices")
    shutil.copytree(REPO / "models", src / "models")
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(src)],
                   check=True, capture_output=True, text=True, timeout=600)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([*pip, "--python", str(python), "install", "--no-deps", *map(str, wheels.glob("*.whl"))],
                   check=True, capture_output=True, text=True, timeout=600)
    code = ("import json, edgekit.devices as d, edgekit.train.recipes as r; "
            "print(json.dumps({'names': d.profile_names(), 'path': [str(p) for p in d.search_path()], "
            "'module': d.__file__, 'recipes': r.recipe_names(), 'recipe_path': [str(p) for p in r.search_path()]}))")
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True, cwd="/", check=True,
                          env={"PATH": "/usr/bin:/bin"})
    found = json.loads(proc.stdout)
    assert found["module"].startswith(str(venv))
    assert found["names"] == SHIPPED
    assert found["path"] == [str((venv / "share" / "edgekit" / "devices").resolve())]
    # the training recipes travel the same way (models/*.yaml -> share/edgekit/models)
    assert found["recipes"] == sorted(p.stem for p in (REPO / "models").glob("*.yaml"))
    assert found["recipe_path"] == [str((venv / "share" / "edgekit" / "models").resolve())]
