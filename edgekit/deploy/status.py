"""`edgekit status`: the apps deployed on this device, their releases, the service's state
and health; with hosts, the same document from each host over ssh.

On the device the document comes from the release folders (`edgekit.deploy.layout`),
``serve.json`` (written by `edgekit serve`) and ``GET /healthz`` on the port it names.
Standard library only (device side).
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from edgekit.bundle.atomic import pid_alive
from edgekit.deploy import layout
from edgekit.errors import InputError

HEALTH_TIMEOUT_S = 2.0
SCHEMA = 1


def read_state(app_dir: Path) -> dict[str, Any] | None:
    """``serve.json`` of `app_dir`, or None when absent or unreadable (written atomically, so
    a partial file is not expected; a damaged one reads as absent)."""
    try:
        doc = json.loads((app_dir / layout.STATE_NAME).read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def get_health(port: int, host: str = "127.0.0.1", timeout: float = HEALTH_TIMEOUT_S) -> dict[str, Any]:
    """``GET /healthz`` of a serve on this machine: its JSON with ``http`` (the status code),
    or ``{"status": "unreachable", "reason": ...}``."""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    url = f"http://{host if ':' not in host else f'[{host}]'}:{int(port)}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - a local http URL we build
            code, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        code, body = exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return {"status": "unreachable", "reason": f"{url}: {reason}"}
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        return {"status": "unreachable", "http": code, "reason": f"{url}: HTTP {code}, not a JSON document"}
    doc["http"] = code
    return doc


def app_status(app_dir: Path) -> dict[str, Any]:
    """One app's entry of the status document."""
    state = read_state(app_dir)
    entry: dict[str, Any] = {
        "app": app_dir.name, "dir": str(app_dir),
        "current": layout.link_release(app_dir, layout.CURRENT),
        "previous": layout.link_release(app_dir, layout.PREVIOUS),
        "releases": layout.releases(app_dir),
        "serve": state, "health": None,
    }
    if state is None:
        entry["service"] = "not running"  # no serve.json: serve never ran for this folder
        return entry
    pid = state.get("pid")
    if isinstance(pid, int) and pid > 0 and not pid_alive(pid):
        entry["service"] = "stopped"
        return entry
    port = state.get("port")
    if not isinstance(port, int) or port <= 0:
        entry["service"] = "starting"  # no port chosen yet
        return entry
    health = get_health(port, str(state.get("host") or "127.0.0.1"))
    entry["health"] = health
    entry["service"] = "serving" if health.get("status") == "ok" else str(health.get("status") or "unknown")
    return entry


def local_status(app: str | None = None, base: Path | None = None) -> dict[str, Any]:
    """The status document of this device: every app under the data folder, or `app` alone.

    Raises:
        InputError: `app` given and not deployed here.
    """
    from edgekit import __version__

    base = base or layout.data_dir()
    if app is not None:
        app_dir = base / layout.check_app_name(app)
        if not app_dir.is_dir():
            raise InputError(f"app {app!r}", expected=f"a deployed app under {base}", found="no such folder",
                             hint="deploy it with edgekit deploy BUNDLE HOST --app NAME; edgekit status lists the apps")
        dirs = [app_dir]
    else:
        dirs = layout.apps(base)
    return {"schema": SCHEMA, "host": socket.gethostname(), "edgekit": __version__, "data_dir": str(base),
            "apps": [app_status(d) for d in dirs]}


def find_app(doc: dict[str, Any], app: str) -> dict[str, Any] | None:
    """The entry of `app` in a status document."""
    return next((a for a in doc.get("apps", []) if isinstance(a, dict) and a.get("app") == app), None)


# rendering -----------------------------------------------------------------------------


def _metrics(entry: dict[str, Any]) -> str:
    health = entry.get("health") or {}
    parts = []
    for key, fmt in (("variant", "{}"), ("results", "{} results"), ("uptime_s", "up {:.0f} s")):
        value = health.get(key)
        if value is not None:
            parts.append(fmt.format(value))
    update = (entry.get("serve") or {}).get("last_update")
    if isinstance(update, dict) and update.get("outcome"):
        parts.append(f"last update {update.get('release')} {update['outcome']}")
    reason = health.get("reason")
    if reason and health.get("status") != "ok":
        parts.append(str(reason))
    return ", ".join(parts)


def rows(host: str, doc: dict[str, Any] | None, error: str | None = None) -> list[list[str]]:
    """Table rows (HOST, APP, CURRENT, PREVIOUS, SERVICE, RELEASE SERVED, DETAIL) of one host's document."""
    if doc is None:
        return [[host, "-", "-", "-", "error", "-", error or "no status"]]
    apps = doc.get("apps") or []
    if not apps:
        return [[host, "-", "-", "-", "no apps", "-", f"nothing deployed under {doc.get('data_dir')}"]]
    out = []
    for entry in apps:
        served = (entry.get("health") or {}).get("release") or (entry.get("serve") or {}).get("release")
        out.append([host, str(entry.get("app")), entry.get("current") or "-", entry.get("previous") or "-",
                    str(entry.get("service")), served or "-", _metrics(entry)])
    return out


def table(rows_: list[list[str]], header: tuple[str, ...] = ("HOST", "APP", "CURRENT", "PREVIOUS", "SERVICE",
                                                              "SERVED", "DETAIL")) -> str:
    """Rows as aligned text columns (the last column unpadded)."""
    all_rows = [list(header), *rows_]
    widths = [max(len(r[i]) for r in all_rows) for i in range(len(header) - 1)]
    return "\n".join("  ".join([*(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)), r[-1]]).rstrip() for r in all_rows)
