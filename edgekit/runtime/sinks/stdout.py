"""``stdout``: results as JSON lines on standard output."""

from __future__ import annotations

import sys

from edgekit.runtime.sinks.base import LinesSink, Sink, SinkPlugin


def _stdout(_rest: str) -> Sink:
    return LinesSink(sys.stdout, owned=False)


PLUGIN = SinkPlugin(form="stdout", help="JSON lines on standard output", open=_stdout)
