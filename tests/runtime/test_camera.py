"""Camera and video sources: a real MJPEG stream over HTTP on loopback, stopped and restarted."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from edgekit.errors import InputError
from edgekit.runtime.sources import open_source
from tests.support.env import free_port, need_module
from tests.support.mjpeg import MjpegServer


@pytest.fixture
def mjpeg():
    need_module("cv2", 'pip install "edgekit-ml[camera]"')
    server = MjpegServer(free_port(), fps=40)
    server.start()
    yield server
    server.stop()


def take(source, count: int, timeout: float = 20.0, delay: float = 0.0) -> list:
    """Pull `count` items in a helper thread, so a hang fails the test instead of blocking it."""
    items: list = []

    def pull() -> None:
        for item in source:
            items.append(item)
            if delay:
                time.sleep(delay)
            if len(items) >= count:
                return

    thread = threading.Thread(target=pull, daemon=True)
    thread.start()
    thread.join(timeout)
    return items


def test_mjpeg_frames_arrive_as_rgb(mjpeg):
    source = open_source(f"{mjpeg.url}?timeout=2")
    try:
        items = take(source, 10)
    finally:
        source.close()
    assert len(items) == 10
    assert items[0].payload.shape == (48, 64, 3) and items[0].payload.dtype == np.uint8
    assert items[-1].timestamp >= items[0].timestamp


def test_slow_consumer_gets_the_newest_frame_and_drops_are_counted(mjpeg):
    source = open_source(f"{mjpeg.url}?timeout=2")
    try:
        items = take(source, 8, delay=0.1)  # 10 results/s from a 40 fps stream
    finally:
        source.close()
    assert len(items) == 8
    assert source.counters.dropped > 10
    assert source.frames_captured >= len(items) + source.counters.dropped
    # the newest-frame policy keeps latency bounded: each frame was fresh when taken
    assert all(time.time() - item.timestamp < 5 for item in items)


def test_stream_server_killed_and_restarted(mjpeg):
    source = open_source(f"{mjpeg.url}?timeout=1&backoff_max=1")
    try:
        assert len(take(source, 5)) == 5
        mjpeg.stop()
        time.sleep(2.5)  # several reconnect attempts while the server is gone
        assert source.counters.reconnects >= 1
        mjpeg.start()  # same port
        resumed = take(source, 5, timeout=20)
    finally:
        source.close()
    assert len(resumed) == 5, f"no frames after the server came back (reconnects {source.counters.reconnects})"


def test_a_camera_that_never_opens_ends_after_its_timeout_with_one_error():
    """No such camera: the source tries for `timeout` seconds (the last attempt at the
    timeout), then iterating it raises one InputError naming the way out."""
    need_module("cv2", 'pip install "edgekit[camera]"')
    source = open_source("camera:57?timeout=1")
    start = time.monotonic()
    try:
        with pytest.raises(InputError, match=r"camera:57\?timeout=1: expected a camera or stream that delivers "
                                             r"frames within timeout=1 s, found none: cannot open 57.*retry=forever"):
            next(iter(source))
    finally:
        source.close()
    assert 0.9 <= time.monotonic() - start < 3.0  # from the source's start, a little before `start`
    assert source.counters.reconnects >= 1
    limited = open_source("camera:57?timeout=5&backoff_max=0.2&max_reconnects=2")  # gives up first: same error
    try:
        with pytest.raises(InputError, match=r"cannot open 57 \(3 attempt"):
            next(iter(limited))
    finally:
        limited.close()
    assert limited.counters.reconnects == 2


def test_retry_forever_waits_for_a_camera_that_is_not_there_yet():
    need_module("cv2", 'pip install "edgekit[camera]"')
    source = open_source("camera:57?timeout=0.3&backoff_max=0.2&retry=forever")
    try:
        items = take(source, 1, timeout=2.0)  # well past the timeout: still trying, no error
        assert items == [] and source.counters.reconnects >= 4
    finally:
        source.close()
    with pytest.raises(InputError, match="retry=forever"):
        open_source("camera:57?retry=always")


def test_video_file_frames_are_all_read(tmp_path):
    need_module("cv2", 'pip install "edgekit-ml[camera]"')
    import cv2

    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
    for i in range(12):
        writer.write(np.full((24, 32, 3), i * 20, np.uint8))
    writer.release()
    source = open_source(f"video:{path}")
    try:
        items = take(source, 100, delay=0.01)
    finally:
        source.close()
    assert len(items) == 12 and source.counters.dropped == 0


def test_source_close_never_hangs(mjpeg):
    source = open_source(f"{mjpeg.url}?timeout=1")
    take(source, 2)
    mjpeg.stop()
    start = time.monotonic()
    source.close()
    assert time.monotonic() - start < 10


@pytest.mark.tf
def test_edgekit_run_on_an_mjpeg_stream(mjpeg, runtime_bundles):
    import json

    from tests.support.cli import run_cli

    result = run_cli("run", str(runtime_bundles.shapes), "--source", f"{mjpeg.url}?timeout=2", "--limit", "5")
    assert result.code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 5 and all(line["source"].startswith("frame ") for line in lines)
    assert "5 results in" in result.stderr


@pytest.mark.tf
def test_edgekit_run_on_a_camera_that_is_not_there(runtime_bundles, monkeypatch):
    """`edgekit run --source camera:N` without such a camera: one line on stderr (no OpenCV
    warnings), exit 1, after the timeout; OpenCV's own lines only with -v."""
    need_module("cv2", 'pip install "edgekit[camera]"')
    from tests.support.cli import assert_one_line_error, run_cli

    for name in ("OPENCV_LOG_LEVEL", "OPENCV_FFMPEG_LOGLEVEL"):  # as from a fresh shell: edgekit quiets OpenCV
        monkeypatch.delenv(name, raising=False)  # (this process may have set them when it ran a source)

    start = time.monotonic()
    result = run_cli("run", str(runtime_bundles.shapes), "--source", "camera:9?timeout=1", timeout=60)
    assert_one_line_error(result, 1, "source camera:9?timeout=1: expected a camera", "found none: cannot open 9",
                          "?retry=forever")
    assert time.monotonic() - start < 30
    verbose = run_cli("-v", "run", str(runtime_bundles.shapes), "--source", "camera:9?timeout=1", timeout=60)
    assert verbose.code == 1 and "WARN" in verbose.stderr and "reconnecting" in verbose.stderr
