"""`edgekit bench`: the harness with real interpreters in real worker processes."""

from __future__ import annotations

import csv
import io
import json
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from edgekit.bench.environment import collect_environment
from edgekit.bench.harness import BenchConfig, run_bench
from edgekit.bench.hostmatch import normalize_arch
from edgekit.bench.report import render_table, summarize
from edgekit.bundle import open_bundle
from edgekit.errors import InputError
from tests.support.cli import run_cli
from tests.support.env import FIXTURES, REPO

pytestmark = pytest.mark.tf  # the bundles are built with TensorFlow (the bench itself never imports it)

QUICK = dict(duration=0.15, windows=3, warmup_runs=5, warmup_seconds=0.05, idle_seconds=0.0)


@pytest.fixture(scope="module")
def twin_tflite(runtime_bundles, tmp_path_factory) -> tuple[Path, Path]:
    """The same .tflite bytes under two names: two identical variants."""
    root = tmp_path_factory.mktemp("twins")
    data = open_bundle(runtime_bundles.shapes).variant_bytes("tflite-fp32")
    a, b = root / "a.tflite", root / "b.tflite"
    a.write_bytes(data)
    b.write_bytes(data)
    return a, b


def test_bundle_report_has_every_figure_for_every_variant_and_thread_count(runtime_bundles, tmp_path):
    out = tmp_path / "report.json"
    result = run_cli("bench", str(runtime_bundles.shapes), "--variants", "tflite-fp32,tflite-int8", "--threads", "1,2",
                     "--duration", "0.2", "--windows", "3", "--idle-seconds", "0", "--format", "json", "-o", str(out))
    assert result.code == 0, result.stderr
    assert "tflite-int8 @2t" in result.stdout  # the table on stdout when the report goes to a file
    doc = json.loads(out.read_text())
    assert doc["partial"] is False and doc["errors"] == []
    assert doc["environment"]["cores"] and doc["environment"]["python_version"]
    assert doc["protocol"]["windows"] == 3 and doc["protocol"]["order"].startswith("interleaved")
    rows = {row["label"]: row for row in doc["results"]}
    assert set(rows) == {"tflite-fp32 @1t", "tflite-fp32 @2t", "tflite-int8 @1t", "tflite-int8 @2t"}
    for row in rows.values():
        assert row["load_ms"] > 0 and row["first_inference_ms"] > 0
        assert row["size_bytes"] > row["gzip_bytes"] > 0
        assert row["memory"]["peak_rss_mb"] > row["memory"]["rss_before_load_mb"] > 0
        for mode in ("invoke", "e2e"):
            stats = row[mode]
            assert stats["windows"] == 3 and stats["runs"] >= 3
            assert stats["min_ms"] <= stats["median_ms"] <= stats["p90_ms"] <= stats["p99_ms"] <= stats["max_ms"]
            assert stats["throughput_per_s"] == pytest.approx(1000 / stats["mean_ms"])
        assert row["e2e"]["median_ms"] > row["invoke"]["median_ms"]  # preprocessing a VGA frame costs something
        assert row["baseline"] == f"tflite-fp32 @{row['threads']}t"
    assert rows["tflite-fp32 @1t"]["invoke"]["ratio_to_baseline"] == 1.0
    assert rows["tflite-int8 @1t"]["precision"] == "int8"


def test_windows_are_interleaved_in_a_shuffled_order(twin_tflite):
    a, b = twin_tflite
    seen: list[str] = []
    config = BenchConfig(targets=(str(a), str(b)), modes=("invoke",), **{**QUICK, "windows": 6})
    run_bench(config, progress=lambda _step, _total, label: seen.append(label))
    windows = [label for label in seen if " window " in label]
    per_window = [windows[i : i + 2] for i in range(0, len(windows), 2)]
    assert len(per_window) == 6
    orders = [tuple(x.split(" invoke")[0] for x in pair) for pair in per_window]
    for number, (pair, order) in enumerate(zip(per_window, orders, strict=True), start=1):
        assert all(x.endswith(f"window {number}/6") for x in pair)
        assert sorted(order) == ["a.tflite @1t", "b.tflite @1t"]  # each window runs every variant once
    assert len(set(orders)) == 2  # both orders occur (seed 0)


def test_identical_variants_measure_alike(twin_tflite):
    a, b = twin_tflite
    config = BenchConfig(targets=(str(a), str(b)), modes=("invoke",), baseline="a.tflite",
                         **{**QUICK, "duration": 1.0, "windows": 5})
    doc = summarize(run_bench(config))
    ratio = doc["results"][1]["invoke"]["ratio_to_baseline"]
    print(f"identical variants: ratio {ratio:.3f}")
    assert 0.8 < ratio < 1.25


def test_harness_median_agrees_with_a_plain_timing_loop(twin_tflite):
    """The harness times `backend.run` in a worker; a plain set/invoke/get loop here."""
    from edgekit.runtime.backends import tflite_interpreter_class

    a, _ = twin_tflite
    interpreter_class, _ = tflite_interpreter_class()
    interpreter = interpreter_class(model_content=a.read_bytes(), num_threads=1)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    x = np.random.default_rng(0).standard_normal(detail["shape"]).astype(np.float32)
    out = interpreter.get_output_details()[0]["index"]
    plain = []
    for _round in range(3):
        doc = summarize(run_bench(BenchConfig(targets=(str(a),), modes=("invoke",), **{**QUICK, "duration": 0.5})))
        times = []
        for _ in range(3000):
            t0 = time.perf_counter_ns()
            interpreter.set_tensor(detail["index"], x)
            interpreter.invoke()
            interpreter.get_tensor(out)
            times.append(time.perf_counter_ns() - t0)
        plain.append((doc["results"][0]["invoke"]["median_ms"], float(np.median(times)) / 1e6))
    harness = float(np.median([h for h, _ in plain]))
    loop = float(np.median([p for _, p in plain]))
    print(f"harness median {harness * 1e3:.1f} us, plain loop {loop * 1e3:.1f} us")
    # the harness adds edgekit's input checks and lock (a few microseconds) and nothing else
    assert abs(harness - loop) < 0.25 * loop + 0.010


def test_over_budget_exits_4_naming_the_variant_after_printing_the_report(runtime_bundles):
    result = run_cli("bench", str(runtime_bundles.shapes), "--variants", "tflite-int8", "--duration", "0.1",
                     "--windows", "2", "--idle-seconds", "0", "--budget", "latency_ms=0.000001,size_kb=10000")
    assert result.code == 4, result.stderr
    assert "tflite-int8 @1t" in result.stdout and "OVER BUDGET tflite-int8 @1t: latency_ms" in result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("edgekit: gate failed: bench budget") and "tflite-int8 @1t (latency_ms" in last
    assert "size_kb" not in last


def this_host_profile(folder: Path) -> Path:
    """The Raspberry Pi 4 profile (its power figures and budgets), as if this host were the
    device: its architecture, cores and CPU, 2 threads (at most the cores)."""
    env = collect_environment().to_dict()
    data = yaml.safe_load((REPO / "devices" / "raspberry-pi-4.yaml").read_text())
    arch = normalize_arch(env["machine"])
    data.update(name="this-host", aliases=["here"], arch=arch, cores=env["cores"], threads=min(2, env["cores"]),
                match={"arch": arch, "cores": env["cores"], "cpu": env["core_types"] or [env["cpu_model"]]})
    path = folder / "this-host.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_device_profile_gives_threads_budgets_and_an_estimate_labelled_as_such(runtime_bundles, tmp_path):
    """On the device itself (a profile of this host): as before profiles were matched with hosts."""
    result = run_cli("bench", str(runtime_bundles.shapes), "--variants", "tflite-fp32", "--duration", "0.1",
                     "--windows", "2", "--device", "here", "--meter", "estimate", "--format", "json",
                     env={"EDGEKIT_DEVICES": str(this_host_profile(tmp_path).parent)})
    assert result.code == 0, result.stderr
    doc = json.loads(result.stdout)
    row = doc["results"][0]
    assert doc["device"] == "this-host" and row["threads"] == min(2, doc["environment"]["cores"])
    assert doc["device_match"]["matches"] is True and doc["device_match"]["summary"] is None
    assert doc["warnings"] == [] and "not measured on the device" not in result.stderr
    assert doc["budgets"]["latency_ms"] is not None and row["budget"]["status"] == "pass"
    assert row["budget"]["not_on_device"] == []
    energy = row["invoke"]["energy"]
    assert energy["measured"] is False and energy["label"] == "estimated"
    assert energy["idle_watts"] == pytest.approx(2.7)
    assert 0 < energy["net_mj_per_inference"] < energy["gross_mj_per_inference"]
    table = render_table([doc])
    assert table.startswith("local: ") and "(est.)" in table and "ESTIMATED" in table  # the table as before


def test_rapl_counters_in_a_sysfs_tree_give_measured_energy(twin_tflite, tmp_path):
    """A background writer advances the package counter at 3 W, wrapping once."""
    root = tmp_path / "root"
    shutil.copytree(FIXTURES / "sysfs" / "rapl", root)
    package = root / "sys" / "class" / "powercap" / "intel-rapl:0"
    limit = int((package / "max_energy_range_uj").read_text())
    value = limit - 1_000_000  # wraps after a third of a second
    (package / "energy_uj").write_text(f"{value}\n")
    stop = threading.Event()

    def advance() -> None:
        nonlocal value
        last = time.monotonic()
        while not stop.is_set():
            time.sleep(0.002)
            now = time.monotonic()
            value = (value + int(3e6 * (now - last))) % (limit + 1)
            last = now
            (package / "energy_uj.tmp").write_text(f"{value}\n")
            (package / "energy_uj.tmp").replace(package / "energy_uj")

    writer = threading.Thread(target=advance, daemon=True)
    writer.start()
    try:
        doc = summarize(run_bench(BenchConfig(targets=(str(twin_tflite[0]),), modes=("invoke",), meter="rapl",
                                              meter_root=str(root),
                                              # windows long against the writer's scheduling jitter
                                              **{**QUICK, "idle_seconds": 0.6, "duration": 1.8})))
    finally:
        stop.set()
        writer.join()
    energy = doc["results"][0]["invoke"]["energy"]
    assert energy["measured"] is True and "rapl" in energy["method"]
    assert energy["mean_watts"] == pytest.approx(3.0, rel=0.25)
    assert doc["energy"]["idle"]["watts"] == pytest.approx(3.0, rel=0.25)
    assert abs(energy["net_joules"]) < 0.3 * energy["gross_joules"]  # constant power: nothing added
    table = render_table([doc])
    assert "energy: measured, rapl" in table


def test_a_worker_that_dies_leaves_a_partial_report_with_the_others_measured(twin_tflite):
    import psutil

    a, b = twin_tflite
    killed: list[int] = []

    def progress(_step: int, _total: int, label: str) -> None:
        if " window 2/" in label and not killed:
            workers = [p for p in psutil.Process().children() if "edgekit.bench.worker" in " ".join(p.cmdline())]
            victim = workers[0]
            killed.append(victim.pid)
            victim.kill()

    result = run_bench(BenchConfig(targets=(str(a), str(b)), modes=("invoke",), **QUICK), progress=progress)
    doc = summarize(result)
    assert doc["partial"] is True and len(doc["errors"]) == 1
    failed = [r for r in doc["results"] if r["error"]]
    fine = [r for r in doc["results"] if not r["error"]]
    assert len(failed) == 1 and "signal 9" in failed[0]["error"]
    assert len(fine) == 1 and fine[0]["invoke"]["windows"] == 3
    assert "PARTIAL" in render_table([doc]) and "FAILED" in render_table([doc])


def test_bare_model_files_run_invoke_only(model_files):
    for target in (model_files.tflite, model_files.onnx):
        doc = summarize(run_bench(BenchConfig(targets=(str(target),), **QUICK)))
        row = doc["results"][0]
        assert row["invoke"]["runs"] > 0 and row["e2e"] is None and row["error"] is None


def test_csv_markdown_and_plot(runtime_bundles, tmp_path):
    out, png = tmp_path / "r.csv", tmp_path / "r.png"
    result = run_cli("bench", str(runtime_bundles.shapes), "--variants", "tflite-fp32,onnx-fp32", "--threads", "1,2",
                     "--duration", "0.1", "--windows", "2", "--format", "csv", "-o", str(out), "--plot", str(png),
                     "--idle-seconds", "0")
    assert result.code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == 8  # 2 variants x 2 thread counts x (invoke, e2e)
    assert {r["mode"] for r in rows} == {"invoke", "e2e"} and all(float(r["median_ms"]) > 0 for r in rows)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = run_cli("bench", str(runtime_bundles.shapes), "--variants", "tflite-fp32", "--duration", "0.1",
                 "--windows", "2", "--format", "markdown", "--idle-seconds", "0", "--mode", "invoke")
    assert md.code == 0, md.stderr
    assert "| variant |" in md.stdout and "| tflite-fp32 @1t |" in md.stdout


@pytest.mark.parametrize("args, needle", [
    (["--variants", "tflite-int4"], "tflite-int4"),
    (["--meter", "rapl"], "RAPL"),
    (["--threads", "0,x"], "--threads"),
    (["--budget", "speed=3"], "latency_ms"),
])
def test_bad_options_are_one_line_errors(runtime_bundles, args, needle):
    result = run_cli("bench", str(runtime_bundles.shapes), "--duration", "0.05", "--windows", "1", *args)
    assert result.code == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgekit: error:") and needle in lines[0], result.stderr


def test_targets_that_are_not_models(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    for target, needle in ((text, ".txt"), (tmp_path / "missing.tflite", "no such file")):
        result = run_cli("bench", str(target))
        assert result.code == 1 and len(result.stderr.strip().splitlines()) == 1 and needle in result.stderr


def test_devices_list_and_show():
    listed = run_cli("devices", "list")
    assert listed.code == 0
    names = [line.split()[0] for line in listed.stdout.splitlines()]
    assert {"raspberry-pi-4", "raspberry-pi-5", "pi-zero-2w", "jetson-orin-nano", "android-midrange",
            "x86-64-linux"} <= set(names)
    shown = run_cli("devices", "show", "raspberry-pi-5", "--json")
    assert shown.code == 0 and json.loads(shown.stdout)["name"] == "raspberry-pi-5"
    text = run_cli("devices", "show", "jetson-orin-nano")
    assert "source:" in text.stdout
    bad = run_cli("devices", "show", "pi-6")
    assert bad.code == 2 and "raspberry-pi-5 (rpi5, pi5)" in bad.stderr  # an unknown choice: usage


@pytest.mark.tf
def test_without_variants_only_those_an_installed_interpreter_runs_are_picked(runtime_bundles, monkeypatch):
    """A device with the litert extra alone (no onnxruntime): the bundle's ONNX variants are
    left out instead of failing in their workers."""
    from edgekit.bench import harness
    from edgekit.runtime import backends

    monkeypatch.setattr(backends, "installed_backends", lambda: {"tflite": "ai-edge-litert", "onnx": None})
    picked = harness._bundle_variants(str(runtime_bundles.shapes), ())
    assert picked == ["tflite-fp32", "tflite-int8"]
    monkeypatch.setattr(backends, "installed_backends", lambda: {"tflite": None, "onnx": None})
    with pytest.raises(InputError, match="a variant an installed interpreter can run"):
        harness._bundle_variants(str(runtime_bundles.shapes), ())
