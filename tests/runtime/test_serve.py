"""`edgekit serve` as systemd runs it: real processes, a real AF_UNIX datagram socket as
NOTIFY_SOCKET, real HTTP requests, real release directories switched under a steady
source (a CSV paced with ?rate= and replayed with ?loop=1).

The bundles are real and load without TensorFlow: a tiny ONNX sensor classifier
(window 4, stride 4) run by onnxruntime, as in the signing tests.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from tests.bundle.test_signing import make_bundle, tiny_onnx
from tests.support.bundles import rewrite
from tests.support.cli import assert_one_line_error, run_cli
from tests.support.env import REPO, need_module
from tests.support.releases import release, switch

need_module("prometheus_client", 'pip install "edgekit-ml[onnx]"')

from edgekit.bundle import signing  # noqa: E402 - after the skips for missing modules

RATE = 40  # rows per second: a result every 4 rows, 10 results per second
PERIOD_S = 4 / RATE
WATCHDOG_USEC = 400_000  # pings expected every 0.2 s


class NotifySocket:
    """A datagram socket standing in for systemd's: every message with its arrival time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, dict[str, str]]] = []
        self._stop = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            self.messages.append((time.monotonic(), fields))

    def having(self, key: str) -> list[tuple[float, dict[str, str]]]:
        return [(t, m) for t, m in list(self.messages) if key in m]

    def wait_for(self, key: str, timeout: float = 30.0, value: str | None = None) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for _, message in self.having(key):
                if value is None or value in message[key]:
                    return message
            time.sleep(0.02)
        raise AssertionError(f"no {key}{'~' + value if value else ''} within {timeout} s: {self.messages[-5:]}")

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        self.sock.close()


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def healthz(port: int) -> tuple[int, dict]:
    code, body = get(port, "/healthz")
    return code, json.loads(body)


def wait_until(predicate, timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


def metrics(port: int) -> dict[tuple[str, tuple], float]:
    from prometheus_client.parser import text_string_to_metric_families

    code, text = get(port, "/metrics")
    assert code == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def with_self_check(path: Path, offset: float = 0.0) -> Path:
    """`make_bundle`'s bundle with a self-check section: a sample input and the output
    onnxruntime computes for it (plus `offset`: a device that computes something else)."""
    import dataclasses

    import numpy as np
    import onnxruntime

    from edgekit.bundle import open_bundle, write_bundle
    from edgekit.bundle.selfcheck import (
        RELATIVE,
        Expectation,
        SelfCheckSpec,
        array_bytes,
        relative_tolerance,
    )

    bundle = open_bundle(path)
    sample = np.random.default_rng(0).standard_normal((2, 4, 2)).astype(np.float32)
    session = onnxruntime.InferenceSession(tiny_onnx(), providers=["CPUExecutionProvider"])
    expected = np.concatenate([session.run(None, {"x": row[None]})[0] for row in sample]) + offset
    spec = SelfCheckSpec(input="selfcheck/input.npy", source="random", ids=("random:0", "random:1"),
                         variants={"onnx-fp32": Expectation(("selfcheck/onnx-fp32/y.npy",),
                                                            (relative_tolerance(expected),), (RELATIVE,))})
    payloads = {name: bundle.read(name) for name in bundle.manifest.files}
    payloads |= {spec.input: array_bytes(sample), "selfcheck/onnx-fp32/y.npy": array_bytes(expected)}
    write_bundle(path, dataclasses.replace(bundle.manifest, self_check=spec), payloads)
    return path


@pytest.fixture
def rows(tmp_path: Path) -> Path:
    path = tmp_path / "rows.csv"
    path.write_text("a,b\n" + "".join(f"{i},{i % 3}\n" for i in range(40)))
    return path


def start(tmp_path: Path, target: Path, source: str, *extra: str, env: dict | None = None,
          stdin: int | None = None) -> tuple[subprocess.Popen, NotifySocket, Path]:
    notify = NotifySocket(tmp_path / "notify.sock")
    results = tmp_path / "results.jsonl"
    full_env = {**os.environ, "NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": str(WATCHDOG_USEC),
                "XDG_CACHE_HOME": str(tmp_path / "cache"), **(env or {})}  # a fresh probe cache: probes run
    proc = subprocess.Popen([sys.executable, "-m", "edgekit", "serve", str(target), "--source", source,
                             "--sink", f"jsonl:{results}", "--port", "0", *extra], cwd=REPO, env=full_env,
                            stdin=stdin, stderr=subprocess.PIPE, text=True)
    return proc, notify, results


def stop(proc: subprocess.Popen, notify: NotifySocket) -> tuple[int, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=30)
    finally:
        notify.close()
    return proc.returncode, err


def test_serve_notify_endpoints_hot_swap_refusals_and_sigterm(tmp_path: Path, rows: Path) -> None:
    need_module("cryptography", 'pip install "edgekit-ml[sign]"')
    key = signing.generate_keypair(tmp_path / "signing.key")
    other = signing.generate_keypair(tmp_path / "other.key")
    app = tmp_path / "app"
    bundles = {}
    for name in ("first", "second"):
        bundles[name] = make_bundle(tmp_path / f"{name}.edgekit", name)
        signing.sign_bundle(bundles[name], key.private)
    bundles["other_key"] = make_bundle(tmp_path / "other_key.edgekit", "other_key")
    signing.sign_bundle(bundles["other_key"], other.private)
    bundles["corrupt"] = rewrite(bundles["second"], tmp_path / "corrupt.edgekit",
                                 members={"models/onnx-fp32.onnx": b"\x08\x07" * 100})
    ids = {name: release(app, path) for name, path in bundles.items()}
    switch(app, ids["first"])

    proc, notify, results = start(tmp_path, app, f"csv:{rows}?loop=1&rate={RATE}", "--public-key", str(key.public),
                                  "--skip-self-check")
    try:
        ready = notify.wait_for("READY")
        assert ready["READY"] == "1"
        assert ids["first"] in ready["STATUS"] and "onnx-fp32 on onnxruntime" in ready["STATUS"], ready
        state = json.loads((app / "serve.json").read_text())
        port = state["port"]
        assert state["pid"] == proc.pid and state["release"] == ids["first"] and state["ready"] is True
        assert state["host"] == "127.0.0.1" and state["variant"] == "onnx-fp32" and state["backend"] == "onnxruntime"
        assert state["bundle"] == str(app / "releases" / ids["first"] / "bundle.edgekit")
        assert state["last_update"] is None and state["model_sha256"] and len(state["model_sha256"]) == 64

        code, health = healthz(port)
        assert code == 200 and health["status"] == "ok" and health["release"] == ids["first"], health
        assert health["results"] >= 1 and health["uptime_s"] > 0
        time.sleep(1.0)
        pings = notify.having("WATCHDOG")
        assert len(pings) >= 3, notify.messages  # every 0.2 s while inferences complete
        assert all(m["WATCHDOG"] == "1" for _, m in pings)

        # hot swap under the steady source
        switch(app, ids["second"])
        wait_until(lambda: healthz(port)[1]["release"] == ids["second"], what="the second release taken")
        code, health = healthz(port)
        assert code == 200 and health["last_update"]["outcome"] == "taken", health
        assert health["last_update"]["release"] == ids["second"]
        notify.wait_for("STATUS", value=ids["second"])

        # bad releases: refused, the second keeps serving
        for bad, why in (("corrupt", "tampered"), ("other_key", "signature")):
            served = healthz(port)[1]["results"]
            switch(app, ids[bad])
            wait_until(lambda b=bad: (healthz(port)[1]["last_update"] or {}).get("release") == ids[b],
                       what=f"{bad} refused")
            code, health = healthz(port)
            assert code == 200 and health["release"] == ids["second"], health
            assert health["last_update"]["outcome"] == "refused" and why in health["last_update"]["reason"], health
            notify.wait_for("STATUS", value=f"update {ids[bad]} refused")
            wait_until(lambda s=served: healthz(port)[1]["results"] > s + 5, what="results after a refusal")
        values = metrics(port)
        assert values[("edgekit_model_info", (("backend", "onnxruntime"), ("release", ids["second"]),
                                              ("sha256", health["model_sha256"]), ("variant", "onnx-fp32")))] == 1
        assert values[("edgekit_updates_total", (("outcome", "taken"),))] == 1
        assert values[("edgekit_updates_total", (("outcome", "refused"),))] == 2
        assert values[("edgekit_last_update_info", (("outcome", "refused"), ("release", ids["other_key"])))] == 1
        assert values[("edgekit_results_total", ())] >= health["results"]
        assert values[("edgekit_latency_seconds_count", ())] == values[("edgekit_results_total", ())]
        for name in ("dropped", "malformed", "reconnects", "sink_undelivered"):
            assert values[(f"edgekit_{name}_total", ())] == 0
        assert values[("edgekit_uptime_seconds", ())] > 1
    finally:
        code, err = stop(proc, notify)
    assert code == 0, err
    assert notify.having("STOPPING"), notify.messages
    assert "Traceback" not in err
    assert re.search(rf"update: refused {ids['corrupt']}, still serving {ids['second']}: .*tampered", err), err

    lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert [r["sequence"] for r in lines] == list(range(len(lines)))  # continuous across the switch
    # no input lost: each window ends 4 rows after the previous one (the file has 40 rows, lines 2-41)
    ends = [int(r["source"].rsplit(":", 1)[1]) - 2 for r in lines]
    assert all((b - a) % 40 == 4 for a, b in zip(ends, ends[1:], strict=False)), ends
    gaps = [b["timestamp"] - a["timestamp"] for a, b in zip(lines, lines[1:], strict=False)]
    print(f"serve hot swap: {len(lines)} results, inference period {PERIOD_S * 1e3:.0f} ms, longest gap "
          f"{max(gaps) * 1e3:.0f} ms, inputs lost 0")
    assert max(gaps) < 20 * PERIOD_S  # a loose bound; the measured figure goes to the issue


def test_self_check_before_serving_and_before_an_update(tmp_path: Path, rows: Path) -> None:
    """Without --skip-self-check: a bundle whose self-check passes is served; a release whose
    expected outputs this device does not compute, and one without a self-check, are refused."""
    app = tmp_path / "app"
    ids = {"good": release(app, with_self_check(make_bundle(tmp_path / "good.edgekit", "good"))),
           "wrong": release(app, with_self_check(make_bundle(tmp_path / "wrong.edgekit", "wrong"), offset=0.5)),
           "none": release(app, make_bundle(tmp_path / "none.edgekit", "none"))}
    switch(app, ids["good"])
    proc, notify, _ = start(tmp_path, app, f"csv:{rows}?loop=1&rate={RATE}")
    try:
        notify.wait_for("READY")
        port = json.loads((app / "serve.json").read_text())["port"]
        for bad, why in (("wrong", "self-check"), ("none", "no self-check")):
            switch(app, ids[bad])
            wait_until(lambda b=bad: (healthz(port)[1]["last_update"] or {}).get("release") == ids[b],
                       what=f"{bad} refused")
            code, health = healthz(port)
            assert code == 200 and health["release"] == ids["good"], health
            assert health["last_update"]["outcome"] == "refused", health
            assert why in health["last_update"]["reason"].lower(), health
        refused_at = health["last_update"]["time"]
        proc.send_signal(signal.SIGHUP)  # try the current release again now
        wait_until(lambda: healthz(port)[1]["last_update"]["time"] > refused_at, what="a retry on SIGHUP")
        assert healthz(port)[1]["release"] == ids["good"]
        assert metrics(port)[("edgekit_updates_total", (("outcome", "refused"),))] == 3
    finally:
        code, err = stop(proc, notify)
    assert code == 0, err
    assert re.search(rf"serving {ids['good']}: onnx-fp32 .*self-check onnx-fp32 .*: ok", err), err


def hanging_onnx(base: float = 1000.0) -> bytes:
    """`tiny_onnx` with a Loop whose trip count is (max(x) - base) * 1e9 when positive: windows
    up to `base` give tiny_onnx's output at once, one above it makes onnxruntime hang for hours."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Identity", ["v_in"], ["v_out"])],
        "spin", [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                 helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
                 helper.make_tensor_value_info("v_in", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [1, 3])])
    weights = np.arange(24, dtype=np.float32).reshape(8, 3) / 10
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["f"], axis=1), helper.make_node("MatMul", ["f", "w"], ["l"]),
         helper.make_node("ReduceMax", ["x"], ["m"], keepdims=0), helper.make_node("Sub", ["m", "base"], ["d"]),
         helper.make_node("Relu", ["d"], ["r"]), helper.make_node("Mul", ["r", "scale"], ["n"]),
         helper.make_node("Cast", ["n"], ["trips"], to=TensorProto.INT64),
         helper.make_node("Loop", ["trips", "", "l"], ["spun"], body=body),
         helper.make_node("Softmax", ["spun"], ["y"], axis=-1)],
        "hang", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
        [numpy_helper.from_array(weights, "w"), numpy_helper.from_array(np.float32(base), "base"),
         numpy_helper.from_array(np.float32(1e9), "scale")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def test_watchdog_pings_while_waiting_and_stops_when_the_model_hangs(tmp_path: Path) -> None:
    """WATCHDOG=1 keeps coming while the source is quiet (an event source is not restarted)
    and stops when one inference does not return (a model made to hang: systemd restarts it);
    /healthz then says "stalled" (503)."""
    from edgekit.bundle import open_bundle, write_bundle

    bundle = make_bundle(tmp_path / "hang.edgekit")
    opened = open_bundle(bundle)
    write_bundle(bundle, opened.manifest, {opened.manifest.variants[0].file: hanging_onnx()})
    proc, notify, _ = start(tmp_path, bundle, "stdin", "--skip-self-check", "--state",
                            str(tmp_path / "serve.json"), stdin=subprocess.PIPE)
    interval = WATCHDOG_USEC / 1e6
    try:
        assert proc.stdin is not None
        proc.stdin.write("a,b\n" + "".join(f"{i},{i % 3}\n" for i in range(8)))
        proc.stdin.flush()
        notify.wait_for("READY")
        port = json.loads((tmp_path / "serve.json").read_text())["port"]
        wait_until(lambda: healthz(port)[1].get("results") == 2, what="the rows written taken")
        # a quiet source: pings go on, the service is healthy and says how long it has been idle
        quiet = len(notify.having("WATCHDOG"))
        time.sleep(3 * interval)
        assert len(notify.having("WATCHDOG")) >= quiet + 3, notify.messages
        code, health = healthz(port)
        assert code == 200 and health["status"] == "ok" and health["idle_s"] >= 2 * interval, health
        # a window the model hangs on: the pings stop within half the interval, /healthz says so
        proc.stdin.write("5000,1\n1,1\n1,1\n1,1\n")
        proc.stdin.flush()
        wait_until(lambda: healthz(port)[0] == 503, timeout=10, what="/healthz 503 for the hung model")
        code, health = healthz(port)
        assert health["status"] == "stalled" and "does not return" in health["reason"], health
        hung_at = time.monotonic()
        time.sleep(3 * interval)
        late = [t for t, _ in notify.having("WATCHDOG") if t > hung_at]
        assert not late, late
        assert metrics(port)[("edgekit_busy_seconds", ())] >= 3 * interval
    finally:
        proc.kill()  # the loop is stuck in onnxruntime: as systemd's watchdog would (SIGABRT, then SIGKILL)
        proc.communicate(timeout=30)
        notify.close()


def test_start_refusals_are_one_line(tmp_path: Path, rows: Path) -> None:
    good = make_bundle(tmp_path / "good.edgekit")
    corrupt = rewrite(good, tmp_path / "corrupt.edgekit", members={"models/onnx-fp32.onnx": b"\x08\x07" * 100})
    result = run_cli("serve", str(corrupt), "--source", f"csv:{rows}", "--port", "0", "--skip-self-check")
    assert_one_line_error(result, 3, "tampered")
    (tmp_path / "empty_app").mkdir()
    result = run_cli("serve", str(tmp_path / "empty_app"), "--source", f"csv:{rows}", "--port", "0")
    assert_one_line_error(result, 1, "'current' link")


@pytest.mark.long
def test_serve_killed_in_the_middle_of_hot_swaps(tmp_path: Path, rows: Path) -> None:
    """SIGKILL while a new release is being loaded, probed and checked (a fresh probe cache
    each time, so the swap takes a while), at 12 points in that window: serve.json is
    always whole, and the next start serves the release `current` points to."""
    app = tmp_path / "app"
    ids = [release(app, make_bundle(tmp_path / f"r{i}.edgekit", f"r{i}")) for i in range(2)]
    switch(app, ids[0])
    for attempt in range(12):
        run_dir = tmp_path / f"run{attempt}"
        run_dir.mkdir()
        proc, notify, _ = start(run_dir, app, f"csv:{rows}?loop=1&rate={RATE}", "--skip-self-check")
        try:
            notify.wait_for("READY")
            state = json.loads((app / "serve.json").read_text())
            assert state["pid"] == proc.pid and state["ready"] is True
            assert state["release"] == ids[attempt % 2], state  # the one `current` named when it started
            switch(app, ids[(attempt + 1) % 2])
            time.sleep(0.05 * attempt)  # from at once to 0.55 s: loading, probing, checking, switching
            proc.kill()
            proc.wait(10)
            state = json.loads((app / "serve.json").read_text())  # whole: written atomically
            assert state["pid"] == proc.pid and state["release"] in ids
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=10)
            notify.close()
    proc, notify, _ = start(tmp_path, app, f"csv:{rows}?loop=1&rate={RATE}", "--skip-self-check")
    try:
        notify.wait_for("READY")
        assert json.loads((app / "serve.json").read_text())["release"] == ids[12 % 2]
        assert not [p.name for p in app.iterdir() if p.name.endswith(".tmp")]  # a killed writer's temp is removed
    finally:
        code, err = stop(proc, notify)
    assert code == 0, err


def test_notify_to_an_abstract_socket_and_the_watchdog_pid() -> None:
    from edgekit.runtime.service.notify import Notifier

    name = f"edgekit-test-{os.getpid()}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        sock.settimeout(5)
        notifier = Notifier({"NOTIFY_SOCKET": f"@{name}", "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())})
        assert notifier.watchdog_s == 2.0
        notifier.ready("serving x\nwith a newline")
        assert sock.recv(4096).decode().splitlines() == ["READY=1", "STATUS=serving x with a newline"]
        notifier.watchdog()
        assert sock.recv(4096) == b"WATCHDOG=1"
        notifier.watchdog()  # within half the interval: no ping
        notifier.stopping("bye")
        assert sock.recv(4096) == b"STOPPING=1\nSTATUS=bye"
        notifier.close()
    other = Notifier({"NOTIFY_SOCKET": f"@{name}", "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"})
    assert other.watchdog_s is None  # the watchdog is another process's
    assert not Notifier({}).send("READY=1")  # not under systemd: nothing to do


def test_a_switch_between_two_inferences_keeps_overlapping_windows(tmp_path: Path) -> None:
    """Windows of 4 rows every 2 rows: a model switched in mid-stream runs the very windows
    the first would have run (no window restarted, none lost), and refuses other windows."""
    import dataclasses

    from edgekit.bundle import open_bundle, write_bundle
    from edgekit.runtime import load

    def sliding(name: str, stride: int, labels: tuple[str, ...] = ("p", "q", "r")) -> Path:
        path = make_bundle(tmp_path / f"{name}.edgekit", name)
        bundle = open_bundle(path)
        manifest = dataclasses.replace(bundle.manifest, labels=labels,
                                       preprocess=dataclasses.replace(bundle.manifest.preprocess, stride=stride))
        write_bundle(path, manifest, {n: bundle.read(n) for n in bundle.manifest.files})
        return path

    first, other = load(sliding("first", 2)), load(sliding("other", 3))
    second = load(sliding("second", 2, labels=("P", "Q", "R")))  # the same weights, its own labels
    rows = [{"a": float(i), "b": float(i % 3)} for i in range(20)]
    alone = list(first.stream(rows))
    calls = 0

    def switch():
        nonlocal calls
        calls += 1
        return second if calls == 4 else None

    switched = list(first.stream(rows, switch=switch))
    assert [r.sequence for r in switched] == [r.sequence for r in alone] == list(range(9))  # (20 - 4) / 2 + 1
    assert [r.score for r in switched] == [r.score for r in alone]  # the same weights: the same windows
    assert [r.label for r in switched] == [r.label for r in alone[:3]] + [r.label.upper() for r in alone[3:]]
    assert calls == 9
    assert first.same_windows(second) is None
    assert first.same_windows(other) == "stride 3 instead of 2"
