"""The service form of `edgekit run`: `edgekit serve` (README, ``edgekit serve``).

    from edgekit.runtime.service import ServeConfig, serve
    summary = serve(ServeConfig(target=Path("~/.local/share/edgekit/kws"), source="mic"))

Modules: `notify` (the systemd notify protocol), `state` (serve.json, /healthz and the
metrics' values), `http` (/healthz, /metrics), `update` (releases, hot updates), `serve`
(the loop, signals, the threads). No TensorFlow, no host-side imports.
"""

from edgekit.runtime.service.serve import DEFAULT_PORT, ServeConfig, serve

__all__ = ["DEFAULT_PORT", "ServeConfig", "serve"]
