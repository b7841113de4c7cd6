"""``jsonl:FILE``: results as JSON lines in a file (created or truncated)."""

from __future__ import annotations

from pathlib import Path

from edgekit.errors import InputError
from edgekit.runtime.sinks.base import LinesSink, Sink, SinkPlugin


def _jsonl(path: str) -> Sink:
    try:
        handle = Path(path).open("w", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"sink jsonl:{path}", expected="a writable file", found=exc.strerror or str(exc)) from exc
    return LinesSink(handle, owned=True)


PLUGIN = SinkPlugin(form="jsonl:FILE", help="JSON lines in a file", open=_jsonl)
