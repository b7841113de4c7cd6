"""Fleets: hosts from the arguments or an Ansible inventory (INI or YAML), run with a
concurrency limit, a canary group first, and a failure limit that stops the rollout.

Inventory: the hosts of every group (or of ``--limit GROUP``, children included), with
``ansible_host``, ``ansible_port`` and ``ansible_user`` (per host, or in a group's vars).
"""

from __future__ import annotations

import concurrent.futures
import re
import shlex
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.deploy.push import DeployConfig, HostResult, Target
from edgekit.errors import ExitCode, GateError, InputError, IntegrityError
from edgekit.progress import Log

HOST_VARS = ("ansible_host", "ansible_port", "ansible_user")


@dataclass
class _Group:
    hosts: dict[str, dict[str, Any]]
    children: list[str]
    vars: dict[str, Any]


def _bad(path: Path, found: str) -> InputError:
    return InputError(f"inventory {path}", expected="an Ansible inventory (INI or YAML: groups of hosts with "
                      "ansible_host/ansible_port/ansible_user)", found=found)


def _parse_ini(path: Path, text: str) -> dict[str, _Group]:
    groups: dict[str, _Group] = {"ungrouped": _Group({}, [], {})}
    group, kind = "ungrouped", "hosts"
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        header = re.fullmatch(r"\[([^\]:]+)(?::(vars|children))?\]", line)
        if header:
            group, kind = header.group(1).strip(), header.group(2) or "hosts"
            groups.setdefault(group, _Group({}, [], {}))
            continue
        if line.startswith("["):
            raise _bad(path, f"line {number}: {line[:80]!r}")
        try:
            words = shlex.split(line, comments=True)
        except ValueError as exc:
            raise _bad(path, f"line {number}: {exc}") from None
        if kind == "children":
            groups[group].children.append(words[0])
        elif kind == "vars":
            key, eq, value = line.partition("=")
            if not eq:
                raise _bad(path, f"line {number}: {line[:80]!r} (expected KEY=VALUE)")
            groups[group].vars[key.strip()] = value.strip()
        else:
            variables = {}
            for word in words[1:]:
                key, eq, value = word.partition("=")
                if not eq:
                    raise _bad(path, f"line {number}: {word!r} (expected KEY=VALUE)")
                variables[key] = value
            groups[group].hosts[words[0]] = variables
    return groups


def _parse_yaml(path: Path, text: str) -> dict[str, _Group]:
    import yaml

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _bad(path, f"invalid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(doc, dict):
        raise _bad(path, f"a YAML {type(doc).__name__}")
    groups: dict[str, _Group] = {}

    def walk(name: str, body: Any) -> None:
        body = body or {}
        if not isinstance(body, dict):
            raise _bad(path, f"group {name!r} is a {type(body).__name__}")
        group = groups.setdefault(name, _Group({}, [], {}))
        for host, variables in (body.get("hosts") or {}).items():
            if variables is not None and not isinstance(variables, dict):
                raise _bad(path, f"host {host!r} in {name!r} has {type(variables).__name__} variables")
            group.hosts[str(host)] = dict(variables or {})
        group.vars.update(body.get("vars") or {})
        for child, child_body in (body.get("children") or {}).items():
            group.children.append(str(child))
            walk(str(child), child_body)

    for name, body in doc.items():
        walk(str(name), body)
    return groups


def read_inventory(path: Path, limit: str | None = None) -> list[Target]:
    """The hosts of an inventory file, in file order (those of `limit`, a group, when given).

    Raises:
        InputError: an unreadable file, not an inventory, an unknown group, no hosts.
    """
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError(f"inventory {path}", expected="a readable file", found=exc.strerror or str(exc)) from None
    yaml_like = path.suffix.lower() in (".yaml", ".yml") or text.lstrip().startswith(("---", "all:"))
    groups = _parse_yaml(path, text) if yaml_like else _parse_ini(path, text)
    if limit is not None and limit not in groups:
        names = sorted(g for g in groups if groups[g].hosts or groups[g].children)
        raise InputError(f"--limit {limit}", expected=f"a group of {path}: {', '.join(names)}", found="no such group")
    order: dict[str, dict[str, Any]] = {}

    def collect(name: str, inherited: dict[str, Any], seen: frozenset[str]) -> None:
        if name in seen or name not in groups:
            return
        group = groups[name]
        variables = {**inherited, **group.vars}
        for host, host_vars in group.hosts.items():
            merged = {**variables, **host_vars}
            order.setdefault(host, {}).update({k: v for k, v in merged.items() if k not in order[host]})
        for child in group.children:
            collect(child, variables, seen | {name})

    for name in ([limit] if limit is not None else list(groups)):
        collect(name, {}, frozenset())
    if not order:
        raise InputError(f"inventory {path}", expected="at least one host" + (f" in group {limit}" if limit else ""),
                         found="none")
    return [_target(path, host, variables) for host, variables in order.items()]


def _target(path: Path, name: str, variables: dict[str, Any]) -> Target:
    address = str(variables.get("ansible_host") or name)
    user = variables.get("ansible_user")
    options: list[str] = []
    port = variables.get("ansible_port")
    if port is not None:
        try:
            port_number = int(port)
        except (TypeError, ValueError):
            port_number = 0
        if not 0 < port_number < 65536:
            raise _bad(path, f"host {name!r}: ansible_port={port!r}")
        options.append(f"Port={port_number}")
    destination = f"{user}@{address}" if user else address
    return Target(destination=destination, name=name, ssh_options=tuple(options))


# rollout --------------------------------------------------------------------------------


def rollout(targets: Sequence[Target], config: DeployConfig, run: Callable[[Target, DeployConfig, Log], HostResult],
            say: Log, *, concurrency: int = 4, canary: int = 0, max_failures: int | None = None) -> list[HostResult]:
    """Run `run` on every target: the first `canary` hosts first (the rest only when they all
    succeed), at most `concurrency` at once; once more than `max_failures` hosts failed, the
    hosts not started yet are not started. Returns one result per target, in order."""
    results: dict[int, HostResult] = {}
    lock = threading.Lock()
    failures = 0
    stop_reason = ""

    def one(index: int) -> None:
        nonlocal failures, stop_reason
        with lock:
            if stop_reason:
                results[index] = HostResult(targets[index].label, "not started", ExitCode.GATE, detail=stop_reason)
                return
        result = run(targets[index], config, say)
        with lock:
            results[index] = result
            if not result.ok:
                failures += 1
                if max_failures is not None and failures > max_failures and not stop_reason:
                    stop_reason = f"rollout stopped: {failures} host(s) failed (--max-failures {max_failures})"

    def wave(indices: Sequence[int]) -> None:
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(indices)))) as pool:
            for future in [pool.submit(one, i) for i in indices]:
                future.result()

    first = list(range(min(canary, len(targets))))
    if first:
        say(f"canary: {', '.join(targets[i].label for i in first)}")
        wave(first)
        if any(not results[i].ok for i in first) and not stop_reason:
            stop_reason = "rollout stopped: the canary host(s) failed"
    wave(list(range(len(first), len(targets))))
    return [results[i] for i in range(len(targets))]


def summary(results: Sequence[HostResult]) -> str:
    """One row per host: HOST, RESULT, RELEASE, PREVIOUS, SECONDS, DETAIL."""
    from edgekit.deploy.status import table

    rows = [[r.host, r.outcome, r.release or "-", r.previous or "-", f"{r.seconds:.1f}",
             "; ".join([r.detail, *r.notes]).strip("; ")] for r in results]
    return table(rows, ("HOST", "RESULT", "RELEASE", "PREVIOUS", "SECONDS", "DETAIL"))


def exit_code(results: Sequence[HostResult]) -> int:
    """One host: its own code (1 environment, 3 refused, 4 rolled back); several: 4 when any failed."""
    if len(results) == 1:
        return results[0].exit_code
    return ExitCode.GATE if any(not r.ok for r in results) else ExitCode.OK


def check(results: Sequence[HostResult], verb: str = "deploy") -> None:
    """Raise the error of a rollout where a host failed (its exit code is `exit_code`'s).

    Raises:
        InputError (1), IntegrityError (3) or GateError (4): naming the failed hosts.
    """
    code = exit_code(results)
    if code == ExitCode.OK:
        return
    failed = [r for r in results if not r.ok]
    kind = {ExitCode.REFUSED: IntegrityError, ExitCode.GATE: GateError}.get(ExitCode(code), InputError)
    raise kind(verb, expected="every host to succeed",
               found=f"{len(failed)} of {len(results)} failed ({', '.join(f'{r.host}: {r.outcome}' for r in failed)})",
               hint="the table above says why, per host")
