"""The README's table of extras names every package each device extra installs (pyproject),
so that a user who reads it knows what lands on a device."""

from __future__ import annotations

import re

import pytest

from tests.support.env import REPO

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

DEVICE_EXTRAS = ("litert", "onnx", "camera", "audio", "sensor", "sign", "mqtt", "plot")


def test_the_readme_table_lists_each_device_extras_packages():
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    rows = dict(re.findall(r"^\| `([a-z]+)` \| ([^|]+) \|", (REPO / "README.md").read_text(), re.MULTILINE))
    missing = {}
    for extra in DEVICE_EXTRAS:
        names = [re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0] for requirement in extras[extra]]
        absent = [name for name in names if name.lower() not in rows[extra].lower()]
        if absent:
            missing[extra] = absent
    assert not missing, f"README extras table lacks {missing}"
