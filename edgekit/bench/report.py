"""Bench reports: the JSON document (the stable form), and table, CSV, Markdown and plot
renderings of it. Remote runs bring back the same document, so every rendering works on
documents from several hosts.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import math
from collections.abc import Callable, Sequence
from typing import Any

from edgekit.bench.harness import MODES, BenchResult, Unit, latency_stats
from edgekit.bench.hostmatch import NOT_ON_DEVICE
from edgekit.choices import Choice
from edgekit.devices import BUDGET_KEYS, Budgets
from edgekit.errors import InputError

SCHEMA_VERSION = 1
MB = 1024.0 * 1024.0
HOST_INDEPENDENT = ("size_kb",)
"""Budget keys that are the same on every host (a file's size), so a run on another host
than the device still checks them; the others are the device's to measure."""


def _baseline_for(unit: Unit, units: Sequence[Unit], wanted: str | None) -> Unit | None:
    """The unit `unit` is compared with: same thread count; the variant (or file) named
    `wanted`, else the fp32 variant (TFLite first), else the first unit."""
    peers = [u for u in units if u.threads == unit.threads and not u.error]
    if not peers:
        return None
    if wanted:
        named = [u for u in peers if wanted in (u.variant, u.label.split(" @")[0], u.target)]
        return named[0] if named else None
    fp32 = [u for u in peers if u.info.get("precision") == "fp32"]
    fp32.sort(key=lambda u: (u.info.get("format") != "tflite", units.index(u)))
    return fp32[0] if fp32 else peers[0]


def _energy(unit: Unit, mode: str, idle: Any) -> dict[str, Any] | None:
    from edgekit.bench.energy import energy_per_inference

    readings = unit.readings.get(mode) or []
    count = sum(len(w) for w in unit.times_ns.get(mode, []))
    if not readings or not count:
        return None
    energy = energy_per_inference(readings, idle, count)
    return None if energy is None else energy.to_dict()


def energy_mj(energy: dict[str, Any] | None) -> tuple[float | None, str | None]:
    """The energy figure to show and compare: net mJ per inference when an idle baseline
    was subtracted, else gross; with which of the two it is."""
    if not energy:
        return None, None
    if energy["net_mj_per_inference"] is not None:
        return energy["net_mj_per_inference"], "net"
    return energy["gross_mj_per_inference"], "gross"


def summarize(result: BenchResult) -> dict[str, Any]:
    """The report as a JSON-ready document (schema in the README, "edgekit bench --format json")."""
    from edgekit import __version__

    rows = []
    for unit in result.units:
        info = unit.info
        row: dict[str, Any] = {
            "label": unit.label, "target": unit.target, "variant": info.get("variant", unit.variant),
            "format": info.get("format"), "precision": info.get("precision"), "package": info.get("package"),
            "backend": info.get("backend"), "threads": unit.threads,
            "size_bytes": info.get("size_bytes"), "gzip_bytes": info.get("gzip_bytes"),
            "load_ms": info["load_s"] * 1e3 if "load_s" in info else None,
            "first_inference_ms": info["first_inference_s"] * 1e3 if "first_inference_s" in info else None,
            "memory": _memory(unit), "error": unit.error,
            # the interpreter's threads and the front end's numpy/BLAS threads (edgekit.runtime.threads)
            "thread_settings": info.get("thread_settings"),
        }
        for mode in MODES:
            windows = unit.times_ns.get(mode)
            if not windows:
                row[mode] = None
                continue
            stats = latency_stats(windows)
            stats["cpu_seconds"] = unit.cpu_s.get(mode)
            stats["warmup"] = unit.warmup.get(mode)
            stats["energy"] = _energy(unit, mode, result.idle)
            row[mode] = stats
        rows.append(row)
    for unit, row in zip(result.units, rows, strict=True):
        base = _baseline_for(unit, result.units, result.config.baseline)
        row["baseline"] = base.label if base is not None else None
        base_row = rows[result.units.index(base)] if base is not None else None
        for mode in MODES:
            if row[mode] is None:
                continue
            ref = base_row[mode] if base_row is not None else None
            row[mode]["ratio_to_baseline"] = (row[mode]["median_ms"] / ref["median_ms"]
                                              if ref and ref["median_ms"] > 0 else None)
        row["budget"] = check_budgets(row, result.budgets)
    config = result.config
    doc = {
        "schema": SCHEMA_VERSION,
        "tool": f"edgekit {__version__}",
        "host": result.host,
        "started": datetime.datetime.fromtimestamp(result.started, datetime.timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(result.seconds, 3),
        "partial": result.partial,
        "interrupted": result.interrupted,
        "errors": list(result.errors),
        "protocol": {"windows": config.windows, "runs": config.runs,
                     "duration_s": None if config.runs is not None else (config.duration or 2.0),
                     "warmup_runs": config.warmup_runs, "warmup_seconds": config.warmup_seconds,
                     "order": "interleaved, shuffled per window", "seed": config.seed, "modes": list(config.modes),
                     "workers": "one process per variant and thread count"},
        "device": result.profile.name if result.profile else None,
        "budgets": result.budgets.to_dict(),
        "environment": result.environment,
        "energy": {"meter": result.meter, "idle": result.idle.to_dict() if result.idle is not None else None},
        "results": rows,
        "warnings": list(result.warnings),
    }
    mark_device_match(doc, result.device_match)
    return doc


def mark_device_match(doc: dict[str, Any], match: dict[str, Any] | None) -> None:
    """Record `match` (`edgekit.bench.hostmatch.DeviceMatch.to_dict`, None without a
    profile) in `doc`; when the run was not on the device, every budget verdict but the
    host-independent keys becomes "not measured on the device", and energy estimated from
    the profile's power figures is left out with the reason (its CPU time is this host's).
    Energy a meter measured stays, as this host's."""
    doc["device_match"] = match
    if match is None or match["matches"]:
        return
    budgets = Budgets(**doc["budgets"])
    for row in doc["results"]:
        row["budget"] = check_budgets(row, budgets, on_device=False)
    meter = doc["energy"].get("meter") or {}
    if meter.get("meter") not in (None, "none") and not meter.get("measured"):
        for row in doc["results"]:
            for mode in MODES:
                if row.get(mode):
                    row[mode]["energy"] = None
        doc["energy"]["omitted"] = (f"{NOT_ON_DEVICE}, and not estimated: {match['device']}'s power figures "
                                    "apply to its own CPU time, not this host's; measure on the device")


def _memory(unit: Unit) -> dict[str, Any]:
    info, memory = unit.info, unit.memory
    before, loaded, peak = info.get("rss_before_load"), info.get("rss_after_load"), memory.get("peak_rss")
    return {
        "rss_before_load_mb": before / MB if before else None,
        "model_load_mb": (loaded - before) / MB if before and loaded else None,
        "peak_rss_mb": peak / MB if peak else None,
        "peak_over_start_mb": (peak - before) / MB if peak and before else None,
    }


def check_budgets(row: dict[str, Any], budgets: Budgets, on_device: bool = True) -> dict[str, Any]:
    """Compare one result row with the budgets: ``status`` pass / fail / n/a, what is over,
    and what could not be checked (e.g. energy without a meter). Off the device
    (`on_device` False) only `HOST_INDEPENDENT` keys are checked; the others are listed in
    ``not_on_device`` and, unless one checked key is over, the status is "not measured on
    the device"."""
    limits = {k: v for k, v in budgets.to_dict().items() if v is not None}
    if not limits or row.get("error"):
        return {"status": "n/a", "over": [], "unchecked": [], "not_on_device": []}
    invoke = row.get("invoke") or {}
    values = {
        "latency_ms": invoke.get("median_ms"),
        "size_kb": row["size_bytes"] / 1024.0 if row.get("size_bytes") is not None else None,
        "memory_mb": row["memory"].get("peak_rss_mb"),
        "energy_mj": energy_mj(invoke.get("energy"))[0],
    }
    over, unchecked, elsewhere = [], [], []
    for key in BUDGET_KEYS:
        if key not in limits:
            continue
        value = values[key]
        if not on_device and key not in HOST_INDEPENDENT:
            elsewhere.append(key)
        elif value is None:
            unchecked.append(key)
        elif value > limits[key]:
            over.append(f"{key} {value:.4g} > {limits[key]:g}")
    status = "fail" if over else NOT_ON_DEVICE if elsewhere else "pass"
    return {"status": status, "over": over, "unchecked": unchecked, "not_on_device": elsewhere}


def budget_failures(docs: Sequence[dict[str, Any]]) -> list[str]:
    """``"host: label (latency_ms 12.3 > 10)"`` for every row over budget."""
    failures = []
    for doc in docs:
        prefix = f"{doc['host']}: " if doc.get("host") else ""
        for row in doc["results"]:
            if row["budget"]["status"] == "fail":
                failures.append(f"{prefix}{row['label']} ({'; '.join(row['budget']['over'])})")
    return failures


# renderings -------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


COLUMNS = (
    ("variant", lambda r: r["label"]),
    ("size KB", lambda r: _fmt(r["size_bytes"] / 1024.0 if r["size_bytes"] is not None else None, 1)),
    ("gzip KB", lambda r: _fmt(r["gzip_bytes"] / 1024.0 if r["gzip_bytes"] is not None else None, 1)),
    ("load ms", lambda r: _fmt(r["load_ms"], 1)),
    ("1st ms", lambda r: _fmt(r["first_inference_ms"], 2)),
    ("median ms", lambda r: _fmt((r["invoke"] or {}).get("median_ms"))),
    ("p90 ms", lambda r: _fmt((r["invoke"] or {}).get("p90_ms"))),
    ("p99 ms", lambda r: _fmt((r["invoke"] or {}).get("p99_ms"))),
    ("cv", lambda r: _fmt((r["invoke"] or {}).get("cv"), 3)),
    ("x base", lambda r: _fmt((r["invoke"] or {}).get("ratio_to_baseline"), 2)),
    ("e2e ms", lambda r: _fmt((r["e2e"] or {}).get("median_ms"))),
    ("e2e x", lambda r: _fmt((r["e2e"] or {}).get("ratio_to_baseline"), 2)),
    ("peak MB", lambda r: _fmt(r["memory"]["peak_rss_mb"], 1)),
    ("mJ/inf", lambda r: _energy_cell(r)),
    ("budget", lambda r: "ERROR" if r["error"] else r["budget"]["status"]),
)


def _energy_cell(row: dict[str, Any]) -> str:
    energy = (row["invoke"] or {}).get("energy")
    value, kind = energy_mj(energy)
    if value is None:
        return "-"
    return f"{value:.4g} {kind}{' (est.)' if not energy['measured'] else ''}"


def _table_rows(doc: dict[str, Any]) -> list[list[str]]:
    return [[cell(row) for _name, cell in COLUMNS] for row in doc["results"]]


def render_table(docs: Sequence[dict[str, Any]]) -> str:
    """A readable fixed-width table per host, with the environment and energy method."""
    out = []
    for doc in docs:
        env = doc["environment"]
        host = doc.get("host") or "local"
        if not env and not doc["results"]:  # a host that failed before measuring anything
            out.extend([f"{host}: nothing measured", *(f"FAILED {e}" for e in doc["errors"]),
                        "PARTIAL: this host's run failed before measuring; other hosts' results are kept", ""])
            continue
        out.extend(_preamble(doc))
        cpu = env.get("cpu_model") or env.get("machine") or "?"
        out.append(f"{host}: {cpu}, {env.get('cores') or '?'} cores, governor {env.get('governor') or '?'}, "
                   f"threads {','.join(str(t) for t in env.get('threads', []))}")
        protocol = doc["protocol"]
        amount = f"{protocol['runs']} runs" if protocol["runs"] else f"{protocol['duration_s']:g} s"
        out.append(f"protocol: warm-up >= {protocol['warmup_runs']} runs and {protocol['warmup_seconds']:g} s; "
                   f"{amount} per variant in {protocol['windows']} interleaved windows; one worker process each")
        header = [name for name, _cell in COLUMNS]
        rows = _table_rows(doc)
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
        out.append("  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths,
                                                                                                   strict=True))))
        for row in rows:
            out.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths,
                                                                                                     strict=True))))
        out.extend(_footnotes(doc))
        out.append("")
    if len(docs) > 1:
        out.extend(_hosts_table(docs))
    return "\n".join(out).rstrip() + "\n"


def _hosts_table(docs: Sequence[dict[str, Any]]) -> list[str]:
    """Median invoke (and end-to-end) latency in ms, one column per host."""
    hosts = [doc.get("host") or "local" for doc in docs]
    labels = list(dict.fromkeys(row["label"] for doc in docs for row in doc["results"]))
    cells = []
    for label in labels:
        line = [label]
        for doc in docs:
            row = next((r for r in doc["results"] if r["label"] == label), None)
            if row is None or row["error"] or not row.get("invoke"):
                line.append("failed" if row is not None and row["error"] else "-")
                continue
            e2e = (row.get("e2e") or {}).get("median_ms")
            line.append(_fmt(row["invoke"]["median_ms"]) + (f" / {_fmt(e2e)}" if e2e is not None else ""))
        cells.append(line)
    header = ["median ms (invoke / e2e)", *hosts]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(header)]
    lines = ["hosts side by side:", "  ".join(h.ljust(w) if i == 0 else h.rjust(w)
                                              for i, (h, w) in enumerate(zip(header, widths, strict=True)))]
    lines += ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True)))
              for line in cells]
    return lines


def _preamble(doc: dict[str, Any]) -> list[str]:
    """The lines before a host's table: where it ran when that is not the device, and the
    warnings (threads beyond the host's cores)."""
    match = doc.get("device_match") or {}
    lines = [match["summary"]] if match.get("summary") else []
    return lines + [f"warning: {w}" for w in doc.get("warnings", [])]


def _blas_note(settings: dict[str, Any]) -> str:
    """The front end's BLAS threads as a bench worker set them, in a few words."""
    libraries = ", ".join(f"{lib.get('library')} {lib.get('version') or ''}".strip() for lib in settings.get("blas", []))
    if not settings.get("blas_limited"):
        return "not limited (threadpoolctl not installed or no BLAS library found)"
    return f"{settings.get('front_end_blas_threads')} thread(s) ({libraries})"


def _footnotes(doc: dict[str, Any]) -> list[str]:
    notes = []
    match = doc.get("device_match") or {}
    if match.get("differences"):
        notes.append(f"not {match['device']}: {'; '.join(match['differences'])}")
    notes.extend(f"device note: {n}" for n in match.get("notes", []))
    blas = sorted({_blas_note(r["thread_settings"]) for r in doc["results"] if r.get("thread_settings")})
    if blas:
        notes.append(f"threads: interpreter as in the threads column; front end (numpy/BLAS): {'; '.join(blas)}")
    heaps = {r["thread_settings"].get("steady_heap") for r in doc["results"] if r.get("thread_settings")}
    if True in heaps:  # edgekit.runtime.process
        notes.append("heap: glibc's thresholds fixed in the workers, as edgekit run and serve fix theirs (temporaries "
                     "under 8 MiB stay in the heap)")
    bases = sorted({r["baseline"] for r in doc["results"] if r.get("baseline")})
    if bases:
        notes.append(f"x base: median latency relative to {', '.join(bases)} (same thread count)")
    meter = doc["energy"]["meter"]
    idle = doc["energy"]["idle"]
    if doc["energy"].get("omitted"):
        notes.append(f"energy: {doc['energy']['omitted']}")
    elif meter and meter.get("meter") != "none":
        method = meter.get("method") or ""
        label = "measured" if meter.get("measured") else ("" if "not measured" in method else "ESTIMATED, ")
        idle_text = f"idle {idle['watts']:.3f} W subtracted ({idle['method']})" if idle and idle.get("watts") \
            is not None else "no idle baseline"
        notes.append(f"energy: {label}{', ' if label == 'measured' else ''}{method}; {idle_text}")
        rates = {((r["invoke"] or {}).get("energy") or {}).get("sample_rate_hz") for r in doc["results"]}
        rates.discard(None)
        if rates:
            notes.append(f"energy sampling: {', '.join(f'{x:.0f} Hz' for x in sorted(rates))}")
        notes.extend(f"energy note: {n}" for n in meter.get("notes", []))
        if match and not match.get("matches") and meter.get("measured"):
            notes.append(f"energy note: measured on this host, {NOT_ON_DEVICE} ({match['device']})")
    else:
        notes.append("energy: no meter (" + "; ".join((meter or {}).get("notes", [])) + ")")
    for row in doc["results"]:
        if row["budget"]["over"]:
            notes.append(f"OVER BUDGET {row['label']}: {'; '.join(row['budget']['over'])}")
        if row["budget"]["unchecked"]:
            notes.append(f"budget not checked for {row['label']}: {', '.join(row['budget']['unchecked'])} "
                         "(not measured)")
    elsewhere = list(dict.fromkeys(k for row in doc["results"] for k in row["budget"].get("not_on_device", [])))
    if elsewhere:
        checked = [k for k in HOST_INDEPENDENT if doc["budgets"].get(k) is not None]
        notes.append(f"budgets {NOT_ON_DEVICE} ({match.get('device')}): {', '.join(elsewhere)}"
                     + (f"; {', '.join(checked)} checked (the same on every host)" if checked else ""))
    notes.extend(f"FAILED {e}" for e in doc["errors"])
    if doc["partial"]:
        notes.append("PARTIAL: " + ("interrupted; " if doc["interrupted"] else "")
                     + "the figures above are what was measured before the failure")
    return notes


def render_markdown(docs: Sequence[dict[str, Any]]) -> str:
    out = []
    for doc in docs:
        header = [name for name, _cell in COLUMNS]
        preamble = _preamble(doc)
        for line in preamble:  # paragraphs of their own, before the host's table
            out.extend([line, ""])
        out.append(f"**{doc.get('host') or 'local'}**\n")
        out.append("| " + " | ".join(header) + " |")
        out.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
        for row in _table_rows(doc):
            out.append("| " + " | ".join(row) + " |")
        out.append("")
        out.extend(f"- {note}" for note in _footnotes(doc))
        out.append("")
    return "\n".join(out)


CSV_FIELDS = ("host", "label", "variant", "format", "precision", "threads", "size_bytes", "gzip_bytes", "load_ms",
              "first_inference_ms", "mode", "runs", "min_ms", "median_ms", "mean_ms", "std_ms", "p90_ms", "p99_ms",
              "max_ms", "cv", "throughput_per_s", "median_of_window_medians_ms", "ratio_to_baseline", "baseline",
              "peak_rss_mb", "energy_mj_per_inference", "energy_kind", "energy_measured", "budget", "error", "on_device")


def render_csv(docs: Sequence[dict[str, Any]]) -> str:
    """One row per host, variant, thread count and mode."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for doc in docs:
        for row in doc["results"]:
            for mode in MODES:
                stats = row.get(mode)
                if stats is None and not (mode == "invoke" and row["error"]):
                    continue
                stats = stats or {}
                energy = stats.get("energy") or {}
                value, kind = energy_mj(energy)
                writer.writerow({
                    "host": doc.get("host") or "local", "label": row["label"], "variant": row["variant"],
                    "format": row["format"], "precision": row["precision"], "threads": row["threads"],
                    "size_bytes": row["size_bytes"], "gzip_bytes": row["gzip_bytes"], "load_ms": row["load_ms"],
                    "first_inference_ms": row["first_inference_ms"], "mode": mode,
                    **{k: stats.get(k) for k in ("runs", "min_ms", "median_ms", "mean_ms", "std_ms", "p90_ms",
                                                  "p99_ms", "max_ms", "cv", "throughput_per_s",
                                                  "median_of_window_medians_ms", "ratio_to_baseline")},
                    "baseline": row["baseline"], "peak_rss_mb": row["memory"]["peak_rss_mb"],
                    "energy_mj_per_inference": value,
                    "energy_kind": kind,
                    "energy_measured": energy.get("measured") if energy else None,
                    "budget": row["budget"]["status"], "error": row["error"],
                    "on_device": (doc.get("device_match") or {}).get("matches"),
                })
    return buffer.getvalue()


def render_json(docs: Sequence[dict[str, Any]]) -> str:
    """The document itself (one host), or ``{"hosts": [...]}`` (several)."""
    return json.dumps(docs[0] if len(docs) == 1 else {"hosts": list(docs)}, indent=2, sort_keys=True) + "\n"


class ReportFormat(Choice):
    """The values of ``edgekit bench --format``."""

    TABLE = "table", "a fixed-width table per host, with the environment and the energy method"
    JSON = "json", "the report document (stable, documented in the README)"
    CSV = "csv", "one row per host, variant, thread count and mode"
    MARKDOWN = "markdown", "the table and its notes in Markdown"


RENDERERS: dict[ReportFormat, Callable[[Sequence[dict[str, Any]]], str]] = {
    ReportFormat.TABLE: render_table,
    ReportFormat.JSON: render_json,
    ReportFormat.CSV: render_csv,
    ReportFormat.MARKDOWN: render_markdown,
}
"""The renderer of each ``--format``."""


def render(docs: Sequence[dict[str, Any]], fmt: str) -> str:
    """Render in `fmt`, one of `ReportFormat` (``table``, ``json``, ``csv`` or ``markdown``).

    Raises:
        InputError: an unknown format (listing the valid ones).
    """
    try:
        renderer = RENDERERS[ReportFormat(fmt)]
    except ValueError:
        raise InputError(f"unrecognized report format {fmt!r}", expected=f"one of {[f.value for f in ReportFormat]}",
                         found=repr(fmt)) from None
    return renderer(docs)


def plot(docs: Sequence[dict[str, Any]], path: str) -> None:
    """Latency distribution per variant (box p25..p75 with the median, whiskers p1..p99,
    a dot at the maximum) and, with several thread counts, median latency against threads."""
    from edgekit._optional import require

    matplotlib = require("matplotlib", "plotting bench results")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweep = any(len({r["threads"] for r in doc["results"]}) > 1 for doc in docs)
    fig, axes = plt.subplots(1, 2 if sweep else 1, figsize=(12 if sweep else 7, 4.5), squeeze=False)
    ax = axes[0][0]
    labels, stats = [], []
    for doc in docs:
        for row in doc["results"]:
            invoke = row.get("invoke")
            if not invoke:
                continue
            name = (f"{doc['host']}: " if doc.get("host") else "") + row["label"]
            labels.append(name)
            stats.append({"label": name, "med": invoke["median_ms"], "q1": invoke["p25_ms"],
                          "q3": invoke["p75_ms"], "whislo": invoke["p1_ms"], "whishi": invoke["p99_ms"],
                          "fliers": [invoke["max_ms"]]})
    if stats:
        ax.bxp(stats, orientation="horizontal", showfliers=True)
        if max(s["fliers"][0] for s in stats) > 20 * min(s["whislo"] for s in stats):
            ax.set_xscale("log")
    ax.set_xlabel("invoke latency, ms (box p25-p75, median, whiskers p1-p99, dot max)")
    ax.set_title("latency per variant")
    if sweep:
        ax2 = axes[0][1]
        for doc in docs:
            by_variant: dict[str, list[tuple[int, float]]] = {}
            for row in doc["results"]:
                if row.get("invoke"):
                    key = (f"{doc['host']}: " if doc.get("host") else "") + row["label"].split(" @")[0]
                    by_variant.setdefault(key, []).append((row["threads"], row["invoke"]["median_ms"]))
            for key, points in by_variant.items():
                points.sort()
                ax2.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=key)
        ax2.set_xticks(sorted({r["threads"] for doc in docs for r in doc["results"]}))
        ax2.set_xlabel("threads")
        ax2.set_ylabel("median invoke latency, ms")
        ax2.set_title("thread sweep")
        ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
