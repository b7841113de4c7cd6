"""Newest-frame figures: a live MJPEG stream faster than inference, through `model.stream`.

Usage: .venv/bin/python tools/newest_frame_bench.py [--seconds 25] [--fps 200] [--size 320x240]
       [--input 320] [--alpha 1] [--threads 1] [--delay-ms 0] [--bundle IMAGE.edgekit]

The test suite's MJPEG-over-HTTP server (tests/support/mjpeg.py) serves frames on loopback, each
with its index drawn as a bar code; `edgekit.runtime`'s camera source reads them
(``http://...``) and keeps only the newest, and MobileNet v1 (random weights, tflite-fp32, built
in a child process so this one holds only the runtime, as on a device) is slower than the
stream. Optionally the consumer sleeps `--delay-ms` after each result. Reported:

- resident memory (RSS) after the warm-up, in the middle and at the end (flat: bounded);
- end-to-end latency, p50 / p99 / max, from the source's capture timestamp to the result,
  and from the server's send time (read back from the bar code) to the result, for the
  first and last thirds of the run (bounded and not growing: the newest-frame policy works);
- frames sent by the server, captured by the source, inferred, and dropped as counted by
  the source (captured = inferred + dropped, up to the frame waiting at the end).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.support.mjpeg: the MJPEG server the camera tests use

from tests.support.mjpeg import MjpegServer  # noqa: E402

BITS = 16  # frame index bar code: 16 stripes across the top of the image
WARMUP_S = 2.0  # stream open, probing and first inferences: not in the figures


class MarkedServer(MjpegServer):
    """The test server, with each frame's index as a bar code and its send time kept."""

    def __init__(self, port: int, fps: float, size: tuple[int, int]) -> None:
        super().__init__(port, fps=fps, size=size)
        self.sent_at = np.full(1 << BITS, np.nan)  # by index modulo 2**BITS, allocated up front

    def _frame(self, index: int) -> bytes:
        import cv2

        w, h = self.size
        image = np.full((h, w, 3), 96, np.uint8)
        x = (index * 3) % w  # some motion below the code
        image[h // 3 :, max(0, x - 8) : x + 8] = (200, 60, 30)
        stripe = w // BITS
        for bit in range(BITS):
            if (index >> bit) & 1:
                image[: h // 4, bit * stripe : (bit + 1) * stripe] = 255
            else:
                image[: h // 4, bit * stripe : (bit + 1) * stripe] = 0
        data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()
        self.sent_at[index % (1 << BITS)] = time.time()
        return data


def read_code(rgb: np.ndarray) -> int:
    """The frame index drawn by `MarkedServer` (stripe centres, thresholded)."""
    h, w = rgb.shape[:2]
    stripe = w // BITS
    row = rgb[h // 8, stripe // 2 :: stripe, 1][:BITS]
    return int(sum(1 << bit for bit, value in enumerate(row) if value > 127))


def build(out: Path, size: int, alpha: float) -> None:
    """MobileNet v1 (random weights) at `size` x `size`, converted to tflite-fp32 (needs TensorFlow)."""
    from edgekit.convert.run import ConvertConfig, convert
    from edgekit.keras_env import import_keras

    keras = import_keras()
    keras.utils.set_random_seed(0)
    # weights=None: the architecture only, nothing is downloaded
    model = keras.applications.MobileNet(input_shape=(size, size, 3), alpha=alpha, weights=None, classes=4)
    path = out.with_suffix(".keras")
    with contextlib.redirect_stdout(sys.stderr):
        model.save(path)
    path.with_name(path.stem + ".preprocess.yaml").write_text(
        f"preprocess: {{kind: image, height: {size}, width: {size}, scale: 0.00392156862745098,"
        " mean: [0.5], std: [0.25]}\nlabels: [a, b, c, d]\n")
    convert(ConvertConfig(model=path, output=out, variants=("tflite-fp32",), allow_random_calibration=True))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentiles(values: np.ndarray) -> str:
    if values.size == 0:
        return "| - | - | - |"
    p50, p99 = np.percentile(values, [50, 99])
    return f"| {p50:.1f} | {p99:.1f} | {values.max():.1f} |"


def measure(bundle: Path, args: argparse.Namespace) -> None:
    import psutil

    from edgekit.runtime import load
    from edgekit.runtime.sources import open_source

    process = psutil.Process()
    width, height = (int(v) for v in args.size.split("x"))
    model = load(bundle, threads=args.threads)
    server = MarkedServer(free_port(), args.fps, (width, height))
    server.start()
    source = open_source(f"{server.url}?timeout=5")
    taken = {"index": -1, "name": None}

    def marked(items):
        """The camera source's items unchanged; notes which server frame each one is."""
        for item in items:
            taken["index"], taken["name"] = read_code(item.payload), item.name
            yield item

    capacity = int(args.seconds * 2000) + 1000
    # per result: time since start (s); capture -> result, send -> result, inference, waiting (ms)
    rows = np.full((capacity, 5), np.nan)
    rss: list[tuple[float, int]] = []
    count = 0
    started = time.time()
    end = started + WARMUP_S + args.seconds
    next_sample = started
    server_at_warmup = captured_at_warmup = dropped_at_warmup = inferred_at_warmup = None
    try:
        for result in model.stream(marked(source)):
            now = time.time()
            assert result.source == taken["name"]
            sent = server.sent_at[taken["index"] % (1 << BITS)]
            if count < capacity:
                age = (now - result.timestamp) * 1e3
                rows[count] = (now - started, age, (now - sent) * 1e3, result.latency.inference_ms,
                               age - result.latency.total_ms)
            count += 1
            if server_at_warmup is None and now - started >= WARMUP_S:
                server_at_warmup, captured_at_warmup = server.frames_sent, source.frames_captured
                dropped_at_warmup, inferred_at_warmup = source.counters.dropped, count
            if now >= next_sample:
                rss.append((now - started, process.memory_info().rss))
                next_sample = now + 0.5
            if now >= end:
                break
            if args.delay_ms:
                time.sleep(args.delay_ms / 1000)
    finally:
        source.close()
        sent_total = server.frames_sent
        server.stop()
    rss.append((time.time() - started, process.memory_info().rss))
    if server_at_warmup is None:
        raise SystemExit(f"no result after the {WARMUP_S} s warm-up ({count} results)")

    seconds = args.seconds
    data = rows[: min(count, capacity)]
    first = data[0].copy()
    data = data[data[:, 0] >= WARMUP_S]
    thirds = np.array_split(data, 3)
    after = [(t, r) for t, r in rss if t >= WARMUP_S]
    middle = min(after, key=lambda tr: abs(tr[0] - (WARMUP_S + seconds / 2)))
    mb = [r / 2**20 for _, r in after]

    print(f"{model.variant.name} {model.manifest.preprocess.height}x{model.manifest.preprocess.width} on "
          f"{model.package} ({args.threads} thread(s)); MJPEG {width}x{height} at {args.fps:g} fps requested; "
          f"{seconds:g} s after a {WARMUP_S:g} s warm-up; consumer delay {args.delay_ms:g} ms per result")
    print(f"first result {first[0]:.2f} s after opening the stream; its frame was sent {first[2]:.1f} ms and "
          f"captured {first[1]:.1f} ms before it\n")
    print("| RSS | after warm-up | middle | end | max - min |")
    print("|---|---|---|---|---|")
    print(f"| MB | {mb[0]:.1f} ({after[0][0]:.1f} s) | {middle[1] / 2**20:.1f} ({middle[0]:.1f} s) | "
          f"{mb[-1]:.1f} ({after[-1][0]:.1f} s) | {max(mb) - min(mb):.2f} |\n")
    print("| latency (ms) | p50 | p99 | max |")
    print("|---|---|---|---|")
    print(f"| capture -> result {percentiles(data[:, 1])}")
    print(f"| capture -> result, first third {percentiles(thirds[0][:, 1])}")
    print(f"| capture -> result, last third {percentiles(thirds[-1][:, 1])}")
    print(f"| server send -> result {percentiles(data[:, 2])}")
    print(f"| server send -> result, first third {percentiles(thirds[0][:, 2])}")
    print(f"| server send -> result, last third {percentiles(thirds[-1][:, 2])}")
    print(f"| inference alone (model) {percentiles(data[:, 3])}")
    print(f"| frame age when preprocessing starts {percentiles(data[:, 4])}\n")
    sent = sent_total - server_at_warmup
    captured = source.frames_captured - captured_at_warmup
    dropped = source.counters.dropped - dropped_at_warmup
    inferred = count - inferred_at_warmup
    print(f"| frames (after the warm-up, {seconds:g} s) | count | per second |")
    print("|---|---|---|")
    for name, value in (("sent by the server", sent), ("captured by the source", captured),
                        ("inferred", inferred), ("dropped (source counter)", dropped),
                        ("captured - inferred - dropped", captured - inferred - dropped),
                        ("sent - captured (in flight or lost; ±1 read race)", sent - captured)):
        print(f"| {name} | {value} | {value / seconds:.1f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=25.0, help="measured time after the warm-up")
    parser.add_argument("--fps", type=float, default=200.0, help="frames per second the server aims at")
    parser.add_argument("--size", default="320x240", help="frame size WIDTHxHEIGHT")
    parser.add_argument("--input", type=int, default=320, help="input size of the built MobileNet")
    parser.add_argument("--alpha", type=float, default=1.0, help="width multiplier of the built MobileNet")
    parser.add_argument("--threads", type=int, default=1, help="interpreter threads")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="consumer sleep after each result")
    parser.add_argument("--bundle", type=Path, help="an image bundle to use instead of the built model")
    parser.add_argument("--build", type=Path, help=argparse.SUPPRESS)  # child process: build and exit
    args = parser.parse_args()
    if args.build is not None:
        build(args.build, args.input, args.alpha)
        return 0
    if args.bundle is not None:
        measure(args.bundle, args)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp) / f"mobilenet{args.input}.edgekit"
        subprocess.run([sys.executable, __file__, "--build", str(bundle), "--input", str(args.input),
                        "--alpha", str(args.alpha)], check=True)
        measure(bundle, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
