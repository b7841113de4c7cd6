"""The command line reads its choices from the registries and enums that own them: every
registered name is accepted, every choice the CLI offers is registered, and the CLI source
holds no hand-kept list of choices."""

from __future__ import annotations

import re

import click
import pytest

from edgekit.bench import meters
from edgekit.bench.harness import BenchMode
from edgekit.bench.report import RENDERERS, ReportFormat
from edgekit.cli import cli
from edgekit.convert.options import Int8IO, OnnxInt8Mode
from edgekit.prune.options import Importance, Scope
from edgekit.runtime.backends import BACKENDS
from edgekit.train.config import Precision
from tests.support.env import REPO


def _option(command: str, name: str) -> click.Option:
    cmd = cli.commands[command]
    return next(p for p in cmd.params if isinstance(p, click.Option) and name in p.opts)


def _values(enum_type) -> list[str]:
    return [member.value for member in enum_type]


REGISTERED = [
    ("run", "--backend", lambda: list(BACKENDS)),
    ("bench", "--backend", lambda: list(BACKENDS)),
    ("bench", "--meter", lambda: [meters.AUTO, *meters.METERS]),
    ("bench", "--mode", lambda: _values(BenchMode)),
    ("bench", "--format", lambda: [fmt.value for fmt in RENDERERS]),
    ("train", "--precision", lambda: _values(Precision)),
    ("prune", "--scope", lambda: _values(Scope)),
    ("prune", "--importance", lambda: _values(Importance)),
    ("convert", "--int8-io", lambda: _values(Int8IO)),
    ("convert", "--onnx-int8", lambda: _values(OnnxInt8Mode)),
]


@pytest.mark.parametrize(("command", "name", "registered"), REGISTERED, ids=[f"{c} {n}" for c, n, _ in REGISTERED])
def test_cli_choices_are_the_registered_names(command, name, registered):
    option = _option(command, name)
    assert isinstance(option.type, click.Choice)
    assert list(option.type.choices) == list(registered())
    context = click.Context(cli.commands[command])
    for value in registered():  # every registered name is accepted ...
        assert option.type.convert(value, option, context) == value
    with pytest.raises(click.BadParameter):  # ... and nothing else
        option.type.convert("no-such-choice", option, context)


def test_report_formats_all_have_a_renderer():
    assert set(RENDERERS) == set(ReportFormat)


def test_help_texts_come_from_the_registries():
    assert all(plugin.help for plugin in BACKENDS.values())
    assert all(meters.meter_help(name) for name in meters.METER_NAMES)
    help_text = _option("bench", "--meter").help
    for name in meters.METERS:
        assert f"{name}: {meters.meter_help(name)}" in help_text


def test_the_cli_keeps_no_list_of_choices_of_its_own():
    source = (REPO / "edgekit" / "cli.py").read_text("utf-8")
    literal_lists = re.findall(r"click\.Choice\(\s*[\[(]\s*[\"']", source)
    assert literal_lists == []


def test_variants_help_lists_the_registry():
    from edgekit.convert.variants import DEFAULT_VARIANTS, VARIANTS

    record = _option("convert", "--variants").get_help_record(click.Context(cli.commands["convert"]))
    for name in VARIANTS:
        assert name in record[1]
    assert ",".join(DEFAULT_VARIANTS) in record[1].replace("\n", "")
