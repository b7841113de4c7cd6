"""docs/preprocess.md, the spec dataclasses and the manifest schema say the same thing."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from edgekit.bundle.schema import manifest_schema
from edgekit.presets import PRESETS
from edgekit.spec import PREPROCESSORS, AudioPreprocess, ImagePreprocess, _plain

DOC = Path(__file__).resolve().parents[2] / "docs" / "preprocess.md"
ROW = re.compile(r"^\| `([a-z_]+)` \|(.*)\|\s*$")


def documented() -> dict[str, dict[str, list[str]]]:
    """kind -> key -> the row's cells after the key (meaning, unit, default, example)."""
    tables: dict[str, dict[str, list[str]]] = {}
    kind = None
    for line in DOC.read_text("utf-8").splitlines():
        heading = re.match(r"^## kind: ([a-z]+)$", line)
        if heading:
            kind = heading.group(1)
            tables[kind] = {}
        elif line.startswith("## "):
            kind = None
        elif kind is not None and (row := ROW.match(line)):
            assert row.group(1) not in tables[kind], f"{kind}.{row.group(1)} documented twice"
            tables[kind][row.group(1)] = [cell.strip() for cell in row.group(2).split("|")]
    return tables


def test_every_kind_has_a_table():
    assert set(documented()) == set(PREPROCESSORS)


@pytest.mark.parametrize("kind", list(PREPROCESSORS))
def test_documented_keys_are_the_spec_fields(kind):
    fields = {f.name for f in dataclasses.fields(PREPROCESSORS[kind])} | {"kind"}
    assert set(documented()[kind]) == fields


@pytest.mark.parametrize("kind", list(PREPROCESSORS))
def test_documented_defaults_are_the_spec_defaults(kind):
    cls = PREPROCESSORS[kind]
    for field in dataclasses.fields(cls):
        meaning, unit, default, example = documented()[kind][field.name]
        assert meaning and unit and example, f"{kind}.{field.name}: an empty cell"
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            assert default == "required", f"{kind}.{field.name}"
            continue
        value = yaml.safe_load(default.strip("`"))
        assert value == _plain(field.default), f"{kind}.{field.name}: documented {value!r}, spec {field.default!r}"
    assert documented()[kind]["kind"][2] == "required"


@pytest.mark.parametrize("kind", list(PREPROCESSORS))
def test_the_schema_covers_each_documented_key(kind):
    schema = manifest_schema()["$defs"][f"preprocess_{kind}"]
    assert set(schema["properties"]) == set(documented()[kind])
    required = {k for k, cells in documented()[kind].items() if cells[2] == "required"}
    assert set(schema["required"]) == required


def test_the_keys_written_only_when_set_are_listed():
    text = " ".join(DOC.read_text("utf-8").split())
    paragraph = text.split("Keys added after the first release (", 1)[1].split(")", 1)[0]
    listed = set(re.findall(r"`([a-z_]+)`", paragraph))
    assert listed == set(AudioPreprocess.LATER_KEYS) | set(ImagePreprocess.LATER_KEYS)


def test_the_presets_table_lists_every_preset():
    rows = re.findall(r"^\| `([a-z0-9-]+)` \| (image|audio|sensor|none) \|", DOC.read_text("utf-8"), re.M)
    assert [name for name, _ in rows] == list(PRESETS)
    assert all(PRESETS[name].keys["kind"] == kind for name, kind in rows)
