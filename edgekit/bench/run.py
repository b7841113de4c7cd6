"""`edgekit bench` from configuration to report: local and remote runs, rendering,
output file, plot, and the exit decision (failures, then budgets)."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from edgekit.bench.harness import BenchConfig, UnitProgress, run_bench
from edgekit.bench.report import (
    ReportFormat,
    budget_failures,
    plot,
    render,
    render_table,
    summarize,
)
from edgekit.errors import EdgekitError, GateError, InputError


class BenchFailed(InputError):
    """Some variants or hosts failed; the report (marked partial) was still written."""


def collect(config: BenchConfig, remotes: Sequence[str] = (), remote_command: str = "edgekit",
            progress: UnitProgress | None = None, log: Callable[[str], None] | None = None, *,
            ssh_options: Sequence[str] = (), ssh_config: str | None = None) -> list[dict[str, Any]]:
    """Run locally (no `remotes`) or on every remote host concurrently; one report
    document per host. A host that fails gives a document with its error, so the other
    hosts' results are kept. `ssh_options` (``-o``) and `ssh_config` (``-F``) go to ssh
    and scp."""
    if not remotes:
        return [summarize(run_bench(config, progress=progress, log=log))]
    from edgekit.bench.remote import failed_host_document, run_remote

    docs: list[dict[str, Any]] = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(remotes)) as pool:
        futures = {host: pool.submit(run_remote, host, config, remote_command, log, ssh_options=ssh_options,
                                     ssh_config=ssh_config) for host in remotes}
        for host, future in futures.items():
            try:
                docs.append(future.result())
            except EdgekitError as exc:
                docs.append(failed_host_document(host, config, str(exc)))
    return docs


def bench_main(config: BenchConfig, *, fmt: str = "table", output: Path | None = None, plot_path: Path | None = None,
               remotes: Sequence[str] = (), remote_command: str = "edgekit", progress: UnitProgress | None = None,
               log: Callable[[str], None] | None = None, ssh_options: Sequence[str] = (),
               ssh_config: str | None = None) -> tuple[str, str]:
    """Measure, render in `fmt`, write `output` and `plot_path`; returns ``(text, table)``.

    Raises (after the report is written):
        BenchFailed: a variant or a host failed, or the run was interrupted (exit 1).
        GateError: a variant is over budget (exit 4), naming it.
    """
    check_output_paths(output, plot_path)  # fail before measuring, not after
    docs = collect(config, remotes, remote_command, progress, log, ssh_options=ssh_options, ssh_config=ssh_config)
    return publish(docs, fmt=fmt, output=output, plot_path=plot_path)


def check_output_paths(output: Path | None, plot_path: Path | None) -> None:
    """Raises `InputError` when the report or plot file could not be written after measuring."""
    for path, what in ((output, "report file"), (plot_path, "plot file")):
        if path is not None and not Path(path).resolve().parent.is_dir():
            raise InputError(f"{what} {path}", expected="a path in an existing directory",
                             found=f"no directory {Path(path).parent}", hint="create it first")


def publish(docs: Sequence[dict[str, Any]], *, fmt: str = "table", output: Path | None = None,
            plot_path: Path | None = None) -> tuple[str, str]:
    """Render measured `docs` in `fmt`, write `output` and `plot_path`, then decide: returns
    ``(text, table)``, or raises (after writing) as `bench_main` does."""
    from edgekit.bundle.atomic import atomic_write_bytes

    text = render(docs, fmt)
    table = text if fmt == ReportFormat.TABLE else render_table(docs)
    if output is not None:
        try:
            atomic_write_bytes(output, text.encode("utf-8"))
        except OSError as exc:
            raise InputError(f"report file {output}", expected="a writable path",
                             found=exc.strerror or str(exc)) from exc
    if plot_path is not None:
        plot(docs, str(plot_path))
    partial = [d for d in docs if d["partial"]]
    if partial:
        errors = [f"{d['host'] + ': ' if d.get('host') else ''}{e}" for d in partial for e in d["errors"]]
        if any(d["interrupted"] for d in partial):
            errors.append("interrupted")
        # print the report first, then fail: the caller gets both
        failure = BenchFailed("bench", expected="every variant measured",
                              found="; ".join(errors) or "a partial run",
                              hint="the report keeps what was measured and is marked partial")
        failure.report = (text, table)  # type: ignore[attr-defined]
        raise failure
    over = budget_failures(docs)
    if over:
        gate = GateError("bench budget", expected="every variant within budget", found="over: " + "; ".join(over),
                         hint="pick a smaller variant or device, or change --budget")
        gate.report = (text, table)  # type: ignore[attr-defined]
        raise gate
    return text, table
