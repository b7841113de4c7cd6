"""`edgekit bench --remote`: through a real sshd on a loopback port, with the system ssh and scp.

The test starts its own sshd (temporary host key, temporary client key in an
authorized_keys file) and gives the client an ssh config file (``--ssh-config``) with
``Host`` aliases; the "remote" edgekit is this repository's, found through
``--remote-python``. The sshd sets ``TMPDIR`` for its sessions, so the run's temporary
directory on the "host" lands in the test's own tree, where the tests check that it is
removed again.
"""

from __future__ import annotations

import datetime
import json

import pytest

from edgekit.bench import remote
from edgekit.bench.harness import BenchConfig
from edgekit.bench.report import budget_failures, render, render_csv, render_markdown, render_table
from edgekit.devices import Budgets
from edgekit.errors import InputError
from tests.support.fuzzing import SEEDS
from tests.support.sshd import REMOTE_EDGEKIT, running_sshd

QUICK = ("--duration", "0.3", "--windows", "2", "--idle-seconds", "0", "--warmup-seconds", "0.1")


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory):
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


# through a real sshd -------------------------------------------------------------------


@pytest.mark.system
@pytest.mark.tf
def test_one_host_gives_the_hosts_report_with_local_names(sshd, runtime_bundles):
    bundle = str(runtime_bundles.shapes)
    result = sshd.bench(bundle, "--remote", "edgekit-a", "--remote-python", REMOTE_EDGEKIT, *QUICK,
                        "--variants", "tflite-fp32,tflite-int8", "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["host"] == "edgekit-a"
    assert doc["partial"] is False and doc["errors"] == []
    rows = {row["label"]: row for row in doc["results"]}
    assert set(rows) == {"tflite-fp32 @1t", "tflite-int8 @1t"}
    for row in rows.values():
        assert row["target"] == bundle  # the host's copy is named by the local path again
        assert row["invoke"]["windows"] == 2 and row["e2e"]["windows"] == 2
        assert row["invoke"]["median_ms"] > 0 and row["memory"]["peak_rss_mb"] > 0
    # the options reached the host's run
    assert doc["protocol"]["duration_s"] == 0.3 and doc["protocol"]["warmup_seconds"] == 0.1
    assert doc["environment"]["cores"]  # measured there
    assert remote.TEMP_PREFIX not in result.stdout
    assert sshd.leftovers() == []  # the host's temporary directory is gone


@pytest.mark.system
@pytest.mark.tf
def test_two_hosts_run_concurrently_and_the_table_shows_both(sshd, runtime_bundles, tmp_path):
    out = tmp_path / "report.json"
    result = sshd.bench(str(runtime_bundles.shapes), "--remote", "edgekit-a", "--remote", "edgekit-b",
                        "--remote-python", REMOTE_EDGEKIT, *QUICK, "--variants", "tflite-fp32,tflite-int8",
                        "--format", "json", "-o", str(out))
    assert result.returncode == 0, result.stderr
    # with -o, the table goes to stdout: one block per host, then the hosts side by side
    table = result.stdout
    for host in ("edgekit-a", "edgekit-b"):
        assert f"\n{host}: " in "\n" + table
    side_by_side = table.split("hosts side by side:")[1].strip().splitlines()
    assert side_by_side[0].split()[-2:] == ["edgekit-a", "edgekit-b"]
    assert [line.split()[0] for line in side_by_side[1:]] == ["tflite-fp32", "tflite-int8"]
    docs = json.loads(out.read_text())["hosts"]
    assert [d["host"] for d in docs] == ["edgekit-a", "edgekit-b"]
    assert all(len(d["results"]) == 2 and not d["partial"] for d in docs)
    # concurrently: the two runs started together, not one after the other
    starts = [datetime.datetime.fromisoformat(d["started"]).timestamp() for d in docs]
    assert abs(starts[0] - starts[1]) < min(d["seconds"] for d in docs)
    assert sshd.leftovers() == []


@pytest.mark.system
def test_the_host_matches_itself_with_the_device_profile(sshd):
    """--device on a remote host: the host's run compares the profile with its own environment."""
    bundle = SEEDS / "bundle" / "image.edgekit"  # committed, tiny: no TensorFlow
    result = sshd.bench(str(bundle), "--remote", "edgekit-a", "--remote-python", REMOTE_EDGEKIT, *QUICK,
                        "--variants", "tflite-fp32", "--mode", "invoke", "--device", "rpi4", "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    match = doc["device_match"]
    assert doc["device"] == match["device"] == "raspberry-pi-4"
    assert match["host"]["cores"] == doc["environment"]["cores"] and match["host"]["arch"]
    if not match["matches"]:  # the loopback host is this machine; unless that is a Pi 4
        assert doc["results"][0]["budget"]["status"] == "not measured on the device"
        assert render_table([doc]).splitlines()[0] == match["summary"]
    assert doc["results"][0]["threads"] == min(4, doc["environment"]["cores"])


@pytest.mark.system
@pytest.mark.tf
def test_missing_edgekit_on_the_host_names_the_install_command(sshd, runtime_bundles):
    result = sshd.bench(str(runtime_bundles.sensor), "--remote", "edgekit-a", "--remote-python",
                        "/nonexistent/edgekit", *QUICK, quiet=True)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert 'pip install "edgekit-ml[litert]"' in lines[0] and "--remote-python" in lines[0]
    assert "/nonexistent/edgekit" in lines[0] and "edgekit-a" in lines[0]
    assert "FAILED" in result.stdout and "PARTIAL" in result.stdout  # the (empty) report, marked partial
    assert sshd.leftovers() == []


@pytest.mark.system
@pytest.mark.tf
def test_unreachable_host_is_one_clear_line(sshd, runtime_bundles):
    # --ssh-option reaches ssh: it overrides the alias's port with a closed one
    result = sshd.bench(str(runtime_bundles.sensor), "--remote", "edgekit-a", "--remote-python", REMOTE_EDGEKIT,
                        "--ssh-option", f"Port={sshd.closed_port}", *QUICK, quiet=True)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "edgekit-a" in lines[0] and "Connection refused" in lines[0] and "ssh" in lines[0]


@pytest.mark.system
@pytest.mark.tf
def test_an_unreachable_host_keeps_the_other_hosts_results_and_marks_the_report_partial(sshd, runtime_bundles,
                                                                                        tmp_path):
    out = tmp_path / "report.json"
    result = sshd.bench(str(runtime_bundles.sensor), "--remote", "edgekit-dead", "--remote", "edgekit-a",
                        "--remote-python", REMOTE_EDGEKIT, *QUICK, "--mode", "invoke", "--format", "json",
                        "-o", str(out))
    assert result.returncode == 1
    # besides the progress lines, the failure is one line
    lines = [line for line in result.stderr.splitlines() if line.startswith("edgekit: ")]
    assert len(lines) == 1 and "edgekit-dead" in lines[0] and "Connection refused" in lines[0], result.stderr
    assert "edgekit-a: copying 1 file(s)" in result.stderr
    dead, good = json.loads(out.read_text())["hosts"]
    assert dead["host"] == "edgekit-dead" and dead["partial"] is True and dead["results"] == []
    assert "Connection refused" in dead["errors"][0]
    assert good["host"] == "edgekit-a" and good["partial"] is False
    assert {row["label"] for row in good["results"]} == {"tflite-fp32 @1t", "onnx-fp32 @1t"}
    assert all(row["invoke"] and row["e2e"] is None for row in good["results"])  # --mode invoke went along
    assert "PARTIAL" in result.stdout and "onnx-fp32 @1t" in result.stdout


@pytest.mark.system
@pytest.mark.tf
def test_a_remote_run_that_fails_without_a_report_is_one_line_and_cleans_up(sshd, runtime_bundles, tmp_path):
    damaged = tmp_path / "damaged.edgekit"
    data = bytearray(runtime_bundles.sensor.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    result = sshd.bench(str(damaged), "--remote", "edgekit-a", "--remote-python", REMOTE_EDGEKIT, *QUICK, quiet=True)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "exit code 3" in lines[0] and str(damaged) in lines[0]  # the host's error, with the local name
    assert remote.TEMP_PREFIX not in lines[0]
    assert sshd.leftovers() == []  # removed after the failure too


# without ssh ---------------------------------------------------------------------------


@pytest.mark.parametrize("config", [
    BenchConfig(targets=("m.tflite",)),
    BenchConfig(targets=("a.edgekit", "b.onnx"), variants=("tflite-fp32", "tflite-int8"), threads=(1, 2, 4),
                warmup_runs=3, warmup_seconds=0.05, windows=7, runs=41, modes=("e2e",), baseline="tflite-int8",
                meter="estimate", device="rpi4", budgets=Budgets(latency_ms=12.5, size_kb=300.0), seed=9,
                idle_seconds=0.0, backend="onnxruntime"),
    BenchConfig(targets=("m.tflite",), duration=0.3, modes=("invoke",), budgets=Budgets(energy_mj=1e-05)),
])
def test_the_remote_command_line_rebuilds_the_same_config(config, monkeypatch):
    import edgekit.bench.run
    from edgekit.cli import cli

    seen = []
    monkeypatch.setattr(edgekit.bench.run, "bench_main", lambda c, **_kw: (seen.append(c), ("", ""))[1])
    cli.main(["bench", *config.targets, *remote._bench_arguments(config)], standalone_mode=False)
    assert seen == [config]


def test_failed_host_document_renders_everywhere():
    config = BenchConfig(targets=("m.tflite",), duration=0.5, budgets=Budgets(latency_ms=5.0))
    doc = remote.failed_host_document("pi@board", config, "ssh: expected a reachable host, found timeout")
    assert set(doc) == {"schema", "tool", "host", "started", "seconds", "partial", "interrupted", "errors",
                        "protocol", "device", "budgets", "environment", "energy", "results", "warnings",
                        "device_match"}
    assert doc["device_match"] is None  # nothing ran there: nothing to compare with a profile
    assert doc["host"] == "pi@board" and doc["partial"] is True and doc["interrupted"] is False
    assert doc["results"] == [] and doc["environment"] == {} and doc["energy"] == {"meter": None, "idle": None}
    assert doc["budgets"]["latency_ms"] == 5.0 and doc["protocol"]["duration_s"] == 0.5
    table = render_table([doc])
    assert table.startswith("pi@board: ") and "FAILED ssh: expected a reachable host" in table
    assert "pi@board" in render_markdown([doc]) and render_csv([doc]).count("\n") == 1  # the header only
    assert json.loads(render([doc], "json"))["host"] == "pi@board"
    assert budget_failures([doc]) == []


def test_targets_with_the_same_name_get_their_own_directories_and_names_map_back():
    layout = remote._layout(["a/m.tflite", "b/m.tflite", "c/n.onnx", "d/m.tflite"])
    assert layout == {"a/m.tflite": "m.tflite", "b/m.tflite": "1/m.tflite", "c/n.onnx": "n.onnx",
                      "d/m.tflite": "2/m.tflite"}
    back = {f"/tmp/edgekit-bench.X/{name}": local for local, name in layout.items()}
    doc = {"results": [{"target": "/tmp/edgekit-bench.X/1/m.tflite"}], "errors": ["/tmp/edgekit-bench.X/m.tflite: x"]}
    assert remote._replace_paths(doc, back) == {"results": [{"target": "b/m.tflite"}], "errors": ["a/m.tflite: x"]}


@pytest.mark.parametrize("host", ["", "-oProxyCommand=touch /tmp/x", "pi @board"])
def test_a_host_that_is_not_an_ssh_destination_is_refused_before_ssh_runs(host, tmp_path):
    model = tmp_path / "m.tflite"
    model.write_bytes(b"x")
    with pytest.raises(InputError, match="ssh destination"):
        remote.run_remote(host, BenchConfig(targets=(str(model),)))


def test_uploads_are_the_targets_and_a_device_profile_file(tmp_path):
    model, profile = tmp_path / "m.tflite", tmp_path / "board.yaml"
    model.write_bytes(b"x")
    profile.write_text("name: board\n")
    assert remote._uploads(BenchConfig(targets=(str(model), str(model)), device=str(profile))) == [str(model),
                                                                                                  str(profile)]
    assert remote._uploads(BenchConfig(targets=(str(model),), device="rpi4")) == [str(model)]  # a built-in profile
    with pytest.raises(InputError, match="no such file"):
        remote._uploads(BenchConfig(targets=(str(tmp_path / "missing.tflite"),)))
    with pytest.raises(InputError, match="a .txt file"):
        (tmp_path / "notes.txt").write_text("x")
        remote._uploads(BenchConfig(targets=(str(tmp_path / "notes.txt"),)))
