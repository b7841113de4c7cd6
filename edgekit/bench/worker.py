"""One benchmark worker: a process that holds one model variant and times it on request.

The harness starts one worker per (target, variant, threads), so memory figures never
mix and one variant's allocator state cannot slow another. It speaks JSON lines:
one request on stdin, one answer on the protocol pipe (the process's original stdout;
file descriptor 1 is pointed at stderr so native libraries that print cannot corrupt
the protocol). Requests:

- ``{"op": "load", "target", "variant", "threads", "seed", "backend"}``: open the model,
  time the load and the first inference separately, build the inputs (identical across
  variants of one target for the same seed).
- ``{"op": "warmup", "mode", "min_runs", "min_seconds"}``
- ``{"op": "window", "mode", "runs", "seconds"}``: time runs back to back; answers the
  nanoseconds of every run and the process CPU time spent.
- ``{"op": "memory"}``: current and peak resident memory.
- ``{"op": "quit"}``

``mode`` is ``invoke`` (the interpreter alone: set inputs, invoke, fetch outputs) or
``e2e`` (the bundle's preprocessing from a representative raw input, inference and
postprocessing, as `Model.predict` runs them).

Never imports TensorFlow: it runs on the device through `edgekit.runtime`.
"""

from __future__ import annotations

import gzip
import json
import os
import resource
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import EdgekitError, InputError


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _peak_rss_bytes() -> int:
    """This process's peak resident set. Linux: ``VmHWM`` (``ru_maxrss`` carries the parent's
    peak over fork and exec, so a worker started by a large process would report that)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) * (1 if sys.platform == "darwin" else 1024)  # Linux reports KiB


def representative_input(preprocess: Any, input_spec: Any, rng: np.random.Generator) -> Any:
    """A raw input like the device's: a VGA camera frame, a clip of noisy audio, a sensor
    window; the input tensor itself for bundles without preprocessing."""
    from edgekit.spec import AudioPreprocess, ImagePreprocess, SensorPreprocess

    if isinstance(preprocess, ImagePreprocess):
        return rng.integers(0, 256, size=(480, 640, 3), dtype=np.uint8)
    if isinstance(preprocess, AudioPreprocess):
        return (0.1 * rng.standard_normal(preprocess.clip_samples)).astype(np.float32)
    if isinstance(preprocess, SensorPreprocess):
        return rng.standard_normal((preprocess.window, len(preprocess.channels))).astype(np.float32)
    return random_tensor(input_spec.shape, np.dtype(np.float32), rng)


def random_tensor(shape: Any, dtype: np.dtype, rng: np.random.Generator) -> np.ndarray:
    """Inputs for a bare model file: standard normal floats, or integers over the dtype's range."""
    concrete = tuple(1 if int(d) < 0 else int(d) for d in shape)
    if dtype.kind == "f":
        return rng.standard_normal(concrete).astype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, size=concrete).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -128), min(info.max, 127) + 1, size=concrete).astype(dtype)


class Worker:
    """State of one worker process: the open model and its inputs."""

    def __init__(self) -> None:
        self.model: Any = None  # edgekit.runtime.Model for bundles
        self.backend: Any = None
        self.tensors: list[np.ndarray] = []
        self.raw: Any = None
        self.steady_heap = False  # glibc's heap thresholds fixed (edgekit.runtime.process), set by load

    # requests ----------------------------------------------------------------------

    def load(self, target: str, variant: str | None, threads: int | None, seed: int,
             backend: str | None = None) -> dict[str, Any]:
        from edgekit._native import native_stderr_captured
        from edgekit.runtime.backends import BACKEND_NAMES, open_backend
        from edgekit.runtime.process import own_process
        from edgekit.runtime.threads import describe

        # This process exists to run the runtime: its BLAS threads are the front end's
        # (set once here, Model.predict's own limit at that count then costs nothing per
        # call), and its heap is steady. The settings used go into the report.
        self.steady_heap = own_process(threads)
        rng = np.random.default_rng(seed)
        path = Path(target)
        rss_before = _rss_bytes()
        start = time.perf_counter()
        if path.suffix == ".edgekit":
            from edgekit.runtime import load

            self.model = load(path, variant=variant, backend=backend, threads=threads)
            self.backend = self.model.backend
            data = self.model.bundle.variant_bytes(self.model.variant.name)
            name, fmt, package = self.model.variant.name, self.model.variant.format, self.model.package
            precision = self.model.variant.precision
        else:
            fmt = {".tflite": "tflite", ".onnx": "onnx"}.get(path.suffix.lower())
            if fmt is None:
                raise InputError(f"bench target {target}", expected="a .edgekit bundle, a .tflite or an .onnx file",
                                 found=f"a {path.suffix or 'suffix-less'} file")
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise InputError(f"bench target {target}", expected="a readable file",
                                 found=exc.strerror or str(exc)) from exc
            package = BACKEND_NAMES[backend][1] if backend in BACKEND_NAMES else None
            with native_stderr_captured():
                self.backend = open_backend(fmt, data, threads=threads, package=package, folder=path.parent)
            name, precision, package = path.stem, None, self.backend.package
        load_s = time.perf_counter() - start
        rss_loaded = _rss_bytes()

        if self.model is not None:
            self.raw = representative_input(self.model.manifest.preprocess, self.model.input, rng)
            from edgekit.runtime.tensors import quantize

            features = self.model.preprocessor.features(self.raw)
            self.tensors = [quantize(features, self.model.input)]
        else:
            self.tensors = [random_tensor(shape, dtype, rng) for shape, dtype in self._input_specs()]
        start = time.perf_counter()
        self.backend.run(self.tensors)
        first_s = time.perf_counter() - start
        return {"variant": name, "format": fmt, "precision": precision, "package": package,
                "backend": self.backend.name, "threads": threads, "load_s": load_s, "first_inference_s": first_s,
                "rss_before_load": rss_before, "rss_after_load": rss_loaded, "size_bytes": len(data),
                "gzip_bytes": len(gzip.compress(bytes(data), compresslevel=9, mtime=0)),
                "input_shapes": [list(t.shape) for t in self.tensors],
                "input_dtypes": [str(t.dtype) for t in self.tensors],
                "end_to_end": self.model is not None, "pid": os.getpid(), "thread_settings": {**describe(threads), "steady_heap": self.steady_heap}}

    def _input_specs(self) -> list[tuple[tuple[int, ...], np.dtype]]:
        backend = self.backend
        if hasattr(backend, "interpreter"):
            return [(tuple(int(x) for x in d["shape"]), np.dtype(d["dtype"])) for d in backend.inputs]
        onnx_types = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
                      "tensor(int8)": np.int8, "tensor(uint8)": np.uint8, "tensor(int32)": np.int32,
                      "tensor(int64)": np.int64, "tensor(bool)": np.bool_}
        specs = []
        for tensor in backend.session.get_inputs():
            shape = tuple(d if isinstance(d, int) and d > 0 else 1 for d in tensor.shape)
            specs.append((shape, np.dtype(onnx_types.get(tensor.type, np.float32))))
        return specs

    def _one(self, mode: str) -> None:
        if mode == "invoke":
            self.backend.run(self.tensors)
        else:
            self.model.predict(self.raw)

    def _check_mode(self, mode: str) -> None:
        if mode not in ("invoke", "e2e"):
            raise InputError("bench mode", expected="invoke or e2e", found=repr(mode))
        if mode == "e2e" and self.model is None:
            raise InputError("end-to-end timing", expected="a bundle (it carries the preprocessing)",
                             found="a bare model file")

    def warmup(self, mode: str, min_runs: int, min_seconds: float) -> dict[str, Any]:
        self._check_mode(mode)
        start = time.perf_counter()
        runs = 0
        while runs < min_runs or time.perf_counter() - start < min_seconds:
            self._one(mode)
            runs += 1
        return {"runs": runs, "seconds": time.perf_counter() - start}

    def window(self, mode: str, runs: int | None, seconds: float | None) -> dict[str, Any]:
        """Time runs back to back until `runs` are done or `seconds` have passed (at least 1 run)."""
        self._check_mode(mode)
        clock = time.perf_counter_ns
        one = self.backend.run if mode == "invoke" else self.model.predict
        arg = self.tensors if mode == "invoke" else self.raw
        times: list[int] = []
        limit_ns = int(seconds * 1e9) if seconds else None
        cpu0 = time.process_time()
        start = clock()
        while True:
            t0 = clock()
            one(arg)
            t1 = clock()
            times.append(t1 - t0)
            if runs is not None and len(times) >= runs:
                break
            if limit_ns is not None and t1 - start >= limit_ns:
                break
        wall = (clock() - start) / 1e9
        return {"times_ns": times, "wall_s": wall, "cpu_s": time.process_time() - cpu0}

    def memory(self) -> dict[str, Any]:
        return {"rss": _rss_bytes(), "peak_rss": _peak_rss_bytes()}


def main() -> int:
    """Serve requests until ``quit`` or end of input."""
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)  # anything printed to fd 1 by native code goes to stderr
    sys.stdout = sys.stderr
    worker = Worker()
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        op = request.pop("op")
        if op == "quit":
            break
        try:
            answer = {"ok": True, **getattr(worker, op)(**request)}
        except EdgekitError as exc:
            answer = {"ok": False, "error": str(exc), "type": type(exc).__name__,
                      "exit_code": int(getattr(exc, "exit_code", 1))}
        except Exception as exc:  # noqa: BLE001 - report to the harness, which marks the variant failed
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "type": type(exc).__name__,
                      "traceback": traceback.format_exc(), "exit_code": 1}
        protocol.write(json.dumps(answer) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
