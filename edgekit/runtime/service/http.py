"""`GET /healthz` (JSON) and `GET /metrics` (Prometheus text, prometheus-client with the
service's own `CollectorRegistry`) from a daemon thread (`http.server`)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from edgekit.errors import InputError
from edgekit.runtime.service.state import ServiceState


class _Collector:
    """The metrics read from the state at each scrape: the source's and sink's own counters,
    the model and update info, uptime."""

    def __init__(self, state: ServiceState) -> None:
        self.state = state

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        state = self.state
        control = state.control
        counters = getattr(getattr(control, "source", None), "counters", None)
        sink = getattr(control, "sink", None)
        with state.lock:
            results, release, variant, sha, backend = (state.results, state.release, state.variant,
                                                       state.model_sha256, state.backend)
            last = dict(state.last_update) if state.last_update else None
        yield CounterMetricFamily("edgekit_results", "Results delivered by the model", value=results)
        for name, text, value in (
                ("edgekit_dropped", "Inputs the source dropped (frames, audio chunks)", counters and counters.dropped),
                ("edgekit_malformed", "Malformed inputs the source skipped", counters and counters.malformed),
                ("edgekit_reconnects", "Times the source reconnected", counters and counters.reconnects),
                ("edgekit_sink_undelivered", "Results the sink could not deliver", sink and sink.dropped)):
            yield CounterMetricFamily(name, text, value=value or 0)
        info = GaugeMetricFamily("edgekit_model_info", "The model serving (value 1)",
                                 labels=["release", "variant", "sha256", "backend"])
        if variant is not None:
            info.add_metric([release or "", variant, sha or "", backend or ""], 1)
        yield info
        yield GaugeMetricFamily("edgekit_uptime_seconds", "Seconds since the service started", value=state.uptime())
        yield GaugeMetricFamily("edgekit_busy_seconds", "Seconds the current input has been processing (0 while "
                                "waiting for input; growing: a hung model)", value=state.busy_s())
        idle = state.idle_s()
        if idle is not None:
            yield GaugeMetricFamily("edgekit_idle_seconds", "Seconds since the source delivered an input",
                                    value=idle)
        update = GaugeMetricFamily("edgekit_last_update_info", "The last model update tried (value 1)",
                                   labels=["release", "outcome"])
        if last is not None:
            update.add_metric([last["release"] or "", last["outcome"]], 1)
        yield update


def start_http(state: ServiceState, host: str, port: int) -> ThreadingHTTPServer:
    """Serve /healthz and /metrics on host:port (0: any free port) from a daemon thread.

    Raises:
        InputError: the address cannot be bound (in use, not this host's).
    """
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    state.registry.register(_Collector(state))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                code, body = state.health()
                self._reply(code, "application/json", json.dumps(body, sort_keys=True).encode() + b"\n")
            elif path == "/metrics":
                self._reply(200, CONTENT_TYPE_LATEST, generate_latest(state.registry))
            else:
                self._reply(404, "text/plain; charset=utf-8", b"not found: GET /healthz or /metrics\n")

        def _reply(self, code: int, content_type: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - no access log on stderr
            pass

    try:
        server = ThreadingHTTPServer((host, port), Handler)
    except OSError as exc:
        raise InputError(f"HTTP address {host}:{port}", expected="an address this host can listen on",
                         found=exc.strerror or str(exc), hint="pick another --port (0: any free port) or --host") from exc
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="edgekit-serve-http", daemon=True).start()
    return server
