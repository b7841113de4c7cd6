"""Result sinks, from spec strings: one registry keyed by the spec's scheme.

    from edgekit.runtime.sinks import open_sink
    sink = open_sink("jsonl:results.jsonl")
    for name, plugin in SINKS.items():               # what the command line offers
        print(name, plugin.form, plugin.help)

One file per kind of sink: `stdout` (JSON lines), `jsonl` (``jsonl:FILE``), `mqtt`
(``mqtt://`` and ``mqtts://``; paho-mqtt is imported when one is opened). Apps that embed
the runtime can pass results to a function with `CallbackSink`.

Adding a sink: a module beside these with a `SinkPlugin` (shared types come from
`edgekit.runtime.sinks.base`), and one line in `SINKS`.
"""

from __future__ import annotations

from edgekit.errors import InputError
from edgekit.runtime.sinks import jsonl, mqtt, stdout
from edgekit.runtime.sinks.base import CallbackSink, LinesSink, Sink, SinkPlugin

# scheme -> plugin, in the order errors list the forms
SINKS: dict[str, SinkPlugin] = {
    "stdout": stdout.PLUGIN,
    "jsonl": jsonl.PLUGIN,
    "mqtt": mqtt.MQTT,
    "mqtts": mqtt.MQTTS,
}
FORMS = list(dict.fromkeys(plugin.form for plugin in SINKS.values()))

__all__ = ["FORMS", "SINKS", "CallbackSink", "LinesSink", "Sink", "SinkPlugin", "open_sink"]


def open_sink(spec: str) -> Sink:
    """Open a sink from its spec string.

    Raises:
        InputError: an unknown form (listing the valid ones) or an unwritable file.
    """
    scheme, _, rest = spec.partition(":")
    plugin = SINKS.get(scheme)
    if plugin is None:
        raise InputError(f"unrecognized sink {spec!r}", expected=f"one of {FORMS}", found=repr(spec))
    sink = plugin.open(spec if plugin.url else rest)
    sink.spec = spec
    return sink
