"""The embedding API: `load` a bundle, `predict` raw inputs, `stream` a source.

Threads: the interpreter runs with `load`'s `threads`; the front end's numpy/BLAS
threads follow the same setting (1 when it is not set) around each `predict` and each
stream window (`edgekit.runtime.threads`).

Thread safety: a `Model` serializes calls to its interpreter with a lock, so one
interpreter is never used by two threads at once. For parallel inference, `load` one
`Model` per thread (the bundle is small; each gets its own interpreter).
"""

from __future__ import annotations

import collections
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgekit._native import native_stderr_captured
from edgekit.bundle import Bundle, Variant, open_bundle
from edgekit.errors import InputError, ShapeError
from edgekit.runtime.backends import Backend, open_backend
from edgekit.runtime.postprocess import PosteriorSmoother, postprocess, ranked, softmax
from edgekit.runtime.preprocess import Preprocessor, fit
from edgekit.runtime.results import Latency, Result
from edgekit.runtime.select import Choice, choose
from edgekit.runtime.tensors import Quantizer, dequantize
from edgekit.runtime.threads import BlasLimit, front_end_threads
from edgekit.spec import (
    AudioPreprocess,
    ImagePreprocess,
    PostprocessKind,
    SensorPreprocess,
    TensorSpec,
)


class Model:
    """A verified bundle with one variant open in an interpreter."""

    def __init__(self, bundle: Bundle, choice: Choice, backend: Backend, threads: int | None = None) -> None:
        self.bundle = bundle
        self.manifest = bundle.manifest
        self.variant: Variant = choice.variant
        self.package = choice.package
        self.reason = choice.reason
        self.backend = backend
        self.labels = self.manifest.labels
        self.input = self.variant.inputs[0]
        self.outputs = self.variant.outputs
        self.preprocessor = Preprocessor(self.manifest.preprocess, self.input)
        self.postprocess_spec = self.manifest.postprocess
        self._input_shape = tuple(1 if d < 0 else d for d in self.input.shape)
        self._input_dtype = np.dtype(self.input.dtype.value)
        self._float_outputs = all(o.quantization is None for o in self.outputs)
        self._quantize = Quantizer(self.input)  # the input's parameters looked up once
        # predict_tensor: an array of the input's dtype goes in as it is when nothing quantizes it
        self._passthrough = self.input.quantization is None
        # classification reads the first output only: its scores straight from the raw output
        # (a variant without outputs takes the general path, which says what is wrong)
        self._scores = _ScoreReader(self.outputs[0], self.postprocess_spec.apply_softmax,
                                    self._float_outputs) if self.outputs else None
        self._classification = self.postprocess_spec.kind is PostprocessKind.CLASSIFICATION and bool(self.outputs)
        self._kind = self.postprocess_spec.kind.value  # an Enum's value is a property: read once
        self.threads = threads
        self._blas = BlasLimit(front_end_threads(threads))  # the front end's BLAS threads
        # images: the preprocessor's lean path gives the model input directly (the same bits as
        # quantizing the features); the float features only where postprocessing reads them
        self._lean = isinstance(self.manifest.preprocess, ImagePreprocess)
        self._needs_features = self.postprocess_spec.kind is PostprocessKind.ANOMALY

    def __repr__(self) -> str:
        return f"Model({self.manifest.name!r}, variant={self.variant.name!r}, backend={self.package!r})"

    # -- single predictions ------------------------------------------------------------

    def predict(self, raw: Any, *, timestamp: float | None = None, source: str | None = None) -> Result:
        """Preprocess `raw` with the bundle's spec, run the model, postprocess.

        `raw` is an image (path, encoded bytes or an RGB ``(H, W, 3)`` array), an audio
        clip (a path to an audio file or its bytes, read by `read_audio`; mono samples at
        the spec's rate; or ``(samples, rate)``, resampled), a sensor window
        (``(window, channels)`` in the spec's channel order, or ``{channel: values}``),
        or, for bundles without preprocessing, the input tensor.

        Raises:
            ShapeError (a ValueError): the input does not fit the model.
            InputError / MissingDependencyError: a file that cannot be read or decoded.
        """
        stamp = time.time() if timestamp is None else timestamp
        t0 = time.perf_counter()
        with self._blas:
            features, tensor = self._prepare(raw)
        return self._infer(features, t0, stamp, 0, source, tensor=tensor)

    def _prepare(self, raw: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """Features of `raw` and, for images, the model input too (else None: `_infer` quantizes)."""
        if self._lean:
            tensor, features = self.preprocessor.tensor_and_features(raw, features=self._needs_features)
            return (tensor if features is None else features), tensor
        return self.preprocessor.features(raw), None

    def predict_tensor(self, x: np.ndarray, *, quantized: bool = False) -> Result:
        """Run an already preprocessed float tensor (unbatched or batch 1); the fast path.

        `quantized`: `x` holds the input tensor's own values (an int8 model's codes, as a
        pipeline that quantizes by itself makes them), of its dtype: they go in as they are
        (a 96x96x3 float tensor takes about 25 us to quantize).

        Raises:
            ShapeError (a ValueError): wrong shape or a non-numeric dtype; with `quantized`,
                another dtype than the input tensor's.
        """
        t0 = time.perf_counter()
        array = x if type(x) is np.ndarray else np.asarray(x)
        if array.shape != self._input_shape:
            if array.dtype.kind not in "uif":
                raise ShapeError("tensor", expected=f"a numeric array of shape {self._input_shape}",
                                 found=f"dtype {array.dtype}")
            array = fit(array, self.input.shape, "tensor")
        elif array.dtype.kind not in "uif":
            raise ShapeError("tensor", expected="a numeric array", found=f"dtype {array.dtype}")
        if quantized:
            if array.dtype != self._input_dtype:
                raise ShapeError("quantized tensor", expected=f"dtype {self._input_dtype} (the input tensor's)",
                                 found=f"dtype {array.dtype}",
                                 hint="pass real values without quantized=True to have them quantized")
            tensor = array
            if self._needs_features:  # postprocessing compares the real values (anomaly)
                array = dequantize(array, self.input)
        elif self._passthrough and array.dtype == self._input_dtype:
            tensor = array
        else:
            tensor = self._quantize(array)
        t1 = time.perf_counter()
        outputs = self.backend.run([tensor])
        t2 = time.perf_counter()
        return self._result(array, outputs, t0, t1, t2, time.time(), 0, None)

    def _infer(self, features: np.ndarray, t0: float, stamp: float, sequence: int, source: str | None,
               smoother: PosteriorSmoother | None = None, tensor: np.ndarray | None = None) -> Result:
        """Quantize prepared features, run the interpreter, postprocess (timed from `t0`).

        `features` holds one model input, or (an audio clip of several vectors for a model
        whose input is one vector, see `Preprocessor.features`) one input per vector: the
        model then runs once per vector and `_reduce` makes one result of the clip. `tensor`:
        the model input when the preprocessor made it (images; `features` may then be that
        tensor, where postprocessing reads no features), else quantized here.
        """
        if tensor is None:
            tensor = self._quantize(features)
        t1 = time.perf_counter()
        if len(tensor) == self._input_shape[0]:
            outputs = self.backend.run([tensor])
            t2 = time.perf_counter()
            return self._result(features, outputs, t0, t1, t2, stamp, sequence, source, smoother)
        runs = [self._dequantized(self.backend.run([tensor[i : i + 1]])) for i in range(len(tensor))]
        t2 = time.perf_counter()
        return self._result(features, self._reduce(runs), t0, t1, t2, stamp, sequence, source, smoother,
                            dequantized=True)

    def _dequantized(self, raw_outputs: list[np.ndarray]) -> list[np.ndarray]:
        return raw_outputs if self._float_outputs else [
            dequantize(o, s) for o, s in zip(raw_outputs, self.outputs, strict=True)]

    def _reduce(self, runs: list[list[np.ndarray]]) -> list[np.ndarray]:
        """One clip's outputs from one run per vector (docs/preprocess.md, frame stacking).

        Anomaly: the reconstructions of all vectors, so that the score is the mean of the
        per-vector reconstruction errors (the DCASE 2020 task 2 baseline). Classification
        with softmax: the log of the mean probability (the postprocess softmax gives back the
        mean probabilities). Anything else: the mean output.
        """
        stacked = [np.concatenate(outs, axis=0) for outs in zip(*runs, strict=True)]
        kind = self.postprocess_spec.kind
        if kind is PostprocessKind.ANOMALY:
            return stacked
        if kind is PostprocessKind.CLASSIFICATION and self.postprocess_spec.apply_softmax:
            first = stacked[0].reshape(len(runs), -1).astype(np.float64)
            probabilities = np.exp(first - first.max(axis=1, keepdims=True))
            probabilities /= probabilities.sum(axis=1, keepdims=True)
            return [np.log(np.maximum(probabilities.mean(axis=0), 1e-30))[None], *(
                o.mean(axis=0, keepdims=True) for o in stacked[1:])]
        return [o.mean(axis=0, keepdims=True) for o in stacked]

    def _result(self, features: np.ndarray, raw_outputs: list[np.ndarray], t0: float, t1: float, t2: float,
                stamp: float, sequence: int, source: str | None, smoother: PosteriorSmoother | None = None,
                dequantized: bool = False) -> Result:
        spec = self.postprocess_spec
        if dequantized and smoother is not None:
            scores = raw_outputs[0].reshape(-1).astype(np.float64)
            fields = smoother.update(stamp * 1000.0, softmax(scores) if spec.apply_softmax else scores)
        elif not dequantized and self._scores is not None and (smoother is not None or self._classification):
            # the class scores as `classify` reads them (the same values)
            scores = self._scores(raw_outputs[0])
            if smoother is not None:
                fields = smoother.update(stamp * 1000.0, scores)
            else:
                fields = ranked(scores, spec, self.labels)
        else:
            outputs = raw_outputs if dequantized else self._dequantized(raw_outputs)
            fields = postprocess(features, outputs, spec, self.labels)
        t3 = time.perf_counter()
        return Result(kind=self._kind, latency=Latency((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3),
                      variant=self.variant.name, timestamp=stamp, sequence=sequence, source=source, **fields)

    # -- streams -------------------------------------------------------------------------

    def stream(self, source: Iterable[Any], *, hop_ms: float = 250.0,
               switch: Callable[[], Model | None] | None = None) -> Iterator[Result]:
        """Continuous inference over a source.

        Items are what `predict` takes, or `edgekit.runtime.sources.Item` objects. Audio
        items are chunks of samples: a window of the spec's clip length slides over them
        and the model runs every `hop_ms`; each result is stamped with its window's end.
        Keyword-spotting smoothing and suppression apply when the postprocess spec sets
        `smoothing_ms` (results then carry `detected`, `keyword`, `keyword_score`). Sensor items are rows (one
        value per channel, or ``{channel: value}``): the model runs every `stride` rows
        once a window is full.

        `switch` (``edgekit serve``'s hot update) is called before each inference; a model it
        returns runs the stream's inferences from then on, on the same windows, so that no
        input is lost. It must window the stream as this model does (`same_windows`).
        """
        spec = self.manifest.preprocess
        if isinstance(source, (str, bytes, os.PathLike)):
            raise InputError("Model.stream source", expected="items, or a source from "
                             "edgekit.runtime.sources.open_source(SPEC)", found=f"{type(source).__name__} {source!r}"[:120],
                             hint=f"use model.stream(open_source({str(source)!r})), or predict for one file")
        kind = getattr(source, "kind", None)
        if kind is not None:  # a source of edgekit.runtime.sources: what its items are, checked once
            from edgekit.runtime.sources import check_kind

            check_kind(getattr(source, "spec", "") or type(source).__name__, kind, spec, self.bundle.path.name)
        expect = getattr(source, "expect", None)
        if callable(expect):  # e.g. a wav: file shorter than one window is padded to one, as predict pads
            expect(spec)
        active = _Active(self, switch)
        if isinstance(spec, AudioPreprocess):
            yield from self._stream_audio(source, spec, hop_ms, active)
        elif isinstance(spec, SensorPreprocess):
            yield from self._stream_sensor(source, spec, active)
        else:
            for sequence, item in enumerate(source):
                payload, stamp, name = _unpack(item)
                model = active.next()
                t0 = time.perf_counter()
                with model._blas:
                    features, tensor = model._prepare(payload)
                yield model._infer(features, t0, stamp, sequence, name, active.smoother, tensor)

    def same_windows(self, other: Model) -> str | None:
        """None when `other` windows a stream as this model does (the same kind of input;
        audio: sample rate and clip length; sensor: channels, window and stride), else what
        differs."""
        mine, theirs = self.manifest.preprocess, other.manifest.preprocess
        if type(mine) is not type(theirs):
            return f"{type(theirs).__name__} instead of {type(mine).__name__}"
        keys = {AudioPreprocess: ("sample_rate", "clip_samples"),
                SensorPreprocess: ("channels", "window", "stride")}.get(type(mine), ())
        changed = [f"{k} {getattr(theirs, k)} instead of {getattr(mine, k)}" for k in keys
                   if getattr(mine, k) != getattr(theirs, k)]
        return ", ".join(changed) or None

    def _smoother(self) -> PosteriorSmoother | None:
        spec = self.postprocess_spec
        if spec.kind is PostprocessKind.CLASSIFICATION and spec.smoothing_ms > 0:
            return PosteriorSmoother(spec, self.labels)
        return None

    def _stream_audio(self, source: Iterable[Any], spec: AudioPreprocess, hop_ms: float,
                      active: _Active) -> Iterator[Result]:
        """Windows of `clip_samples` ending every `hop` samples of the stream (the first
        when a whole clip has arrived), independent of how the source chunks the audio.

        The features of each window are computed incrementally (`AudioFeatureStream`: only
        the frames the hop adds; the same values as `predict` on the window). The samples
        are kept in one array that grows only when a chunk is larger than a window.

        An item's timestamp is the time of its last sample (the wav and mic sources stamp
        chunks so; a plain array gets the time it arrived). Each result carries the time of
        its window's last sample, and is named ``NAME@END`` with END the window's end in
        seconds of the stream (samples seen / sample rate)."""
        from edgekit.features import audio as audio_features

        clip = spec.clip_samples
        hop = max(1, int(round(spec.sample_rate * hop_ms / 1000.0)))
        buffer = np.zeros(2 * clip + hop, np.float32)
        base = 0  # stream position of buffer[0]
        consumed = 0  # samples of the stream seen so far
        next_end = clip  # stream position where the next window ends
        sequence = 0
        front: _AudioFrontEnd | None = None
        named: tuple[str | None, str | None] = (None, None)  # an item's name and its windows' base name
        item_type = _item_type()
        for item in source:
            if type(item) is item_type:  # `_unpack` without its call, for the common case (a chunk a hop)
                payload, stamp, name = item.payload, item.timestamp, item.name
            else:
                payload, stamp, name = _unpack(item)
            if name is not named[0]:
                named = (name, _window_base(name))
            chunk, rate = payload if isinstance(payload, tuple) else (payload, spec.sample_rate)
            chunk = np.asarray(chunk, np.float32).reshape(-1)
            if rate != spec.sample_rate:
                chunk = audio_features.resample(chunk, int(rate), spec.sample_rate)
            if consumed + len(chunk) - base > len(buffer):  # drop what no window needs any more
                keep = max(0, consumed - max(base, next_end - clip))
                grown = max(len(buffer), 2 * (keep + len(chunk)))
                kept = buffer[consumed - base - keep : consumed - base]
                if grown > len(buffer):
                    buffer = np.concatenate([kept, np.zeros(grown - keep, np.float32)])
                else:
                    buffer[:keep] = kept
                base = consumed - keep
            buffer[consumed - base : consumed - base + len(chunk)] = chunk
            consumed += len(chunk)
            while consumed >= next_end:
                window = buffer[next_end - clip - base : next_end - base]
                model = active.model if active.switch is None else active.next()
                t0 = time.perf_counter()
                if front is None or front.model is not model:  # a new stream of features after a swap
                    front = _AudioFrontEnd(model)
                features = front.features(window, next_end - clip)
                # stamped with the window's end: the item's stamp is its last sample's time,
                # `consumed - next_end` samples after the window's last one
                end = stamp - (consumed - next_end) / spec.sample_rate
                window_name = None if named[1] is None else f"{named[1]}@{next_end / spec.sample_rate:.3f}s"
                yield model._infer(features, t0, end, sequence, window_name, active.smoother)
                sequence += 1
                next_end += hop

    def _stream_sensor(self, source: Iterable[Any], spec: SensorPreprocess, active: _Active) -> Iterator[Result]:
        """Windows of `spec.window` rows every `spec.stride` rows. A row without one of the
        model's channels (or with the wrong number of values) ends the stream with a
        ShapeError while no good row has come yet: the source is not the one the model was
        trained on. After that it is a glitch of a long-running sensor, counted as malformed
        by the source (when it counts) and skipped."""
        rows: collections.deque[np.ndarray] = collections.deque(maxlen=spec.window)
        counters = getattr(source, "counters", None)
        want = getattr(source, "want", None)
        if callable(want):  # named columns: the model's channels, other columns ignored
            want(spec.channels)
        since = 0
        sequence = 0
        for item in source:
            payload, stamp, name = _unpack(item)
            try:
                row = _sensor_row(payload, spec)
            except ShapeError:
                if not rows or counters is None:
                    raise
                counters.malformed += 1
                continue
            rows.append(row)  # the deque drops the oldest row
            since += 1
            if len(rows) == spec.window and since >= spec.stride:
                since = 0
                model = active.next()
                t0 = time.perf_counter()
                with model._blas:
                    features = model.preprocessor.features(np.stack(rows))
                yield model._infer(features, t0, stamp, sequence, name)
                sequence += 1

    def close(self) -> None:
        self.backend = None  # type: ignore[assignment]


class _ScoreReader:
    """The class scores of a model's first raw output, one per class, as `classify` and the
    posterior smoother read them: the values of `dequantize` (float32) of the output, as
    float64, or a float output as it is; softmax (in float64) applied when the spec asks.

    An 8-bit output quantized per tensor has 256 possible values: they are dequantized once
    into a table, and each result's scores are one look-up (a stream at a 20 ms hop reads
    50 results a second).
    """

    __slots__ = ("spec", "softmax", "raw", "table")

    def __init__(self, spec: TensorSpec, apply_softmax: bool, raw: bool) -> None:
        self.spec = spec
        self.softmax = apply_softmax
        self.raw = raw  # `Model._dequantized` leaves the outputs as they are (none is quantized)
        self.table: np.ndarray | None = None
        q = spec.quantization
        if q is not None and not q.per_channel and np.dtype(spec.dtype.value) in (np.dtype(np.int8), np.dtype(np.uint8)):
            codes = np.arange(256, dtype=np.uint8).view(spec.dtype.value)  # table[byte] = the value of that code
            self.table = dequantize(codes, spec).astype(np.float64)

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        if self.table is not None:
            scores = self.table.take(raw.view(np.uint8)).reshape(-1)  # take: a third cheaper than [] here
        elif self.raw:
            scores = raw.reshape(-1)
        else:
            scores = dequantize(raw, self.spec).reshape(-1)
        return softmax(scores.astype(np.float64)) if self.softmax else scores


class _AudioFrontEnd:
    """A model's features of an audio stream's windows, shaped as its input (what
    `Preprocessor.features` gives for the window), computed incrementally."""

    def __init__(self, model: Model) -> None:
        from edgekit.features.audio_stream import AudioFeatureStream

        spec = model.manifest.preprocess
        assert isinstance(spec, AudioPreprocess)
        self.model = model
        self.stream = AudioFeatureStream(spec)
        self.shape = model.input.shape
        self.rows = model.preprocessor.per_row  # one input per row of the clip's features, or None
        self.fitted: tuple[int, ...] | None = None  # the input shape once `fit` has checked a window

    def features(self, window: np.ndarray, start: int) -> np.ndarray:
        blas = self.model._blas
        if blas.held():
            x = self.stream.window(window, start)
        else:
            with blas:
                x = self.stream.window(window, start)
        if self.rows is not None:
            return x.reshape(self.rows)
        if self.fitted is None:  # every window has the same shape: check it once
            self.fitted = fit(x[None], self.shape, "input").shape
        return x.reshape(self.fitted)


class _Active:
    """The model a stream runs now: `next` takes the one `switch` offers (between two
    inferences), with a fresh posterior smoother when its postprocessing or labels differ."""

    def __init__(self, model: Model, switch: Callable[[], Model | None] | None) -> None:
        self.model = model
        self.switch = switch
        self.smoother = model._smoother()

    def next(self) -> Model:
        new = self.switch() if self.switch is not None else None
        if new is not None:
            if (new.postprocess_spec, new.labels) != (self.model.postprocess_spec, self.model.labels):
                self.smoother = new._smoother()
            self.model = new
        return self.model


def _sensor_row(payload: Any, spec: SensorPreprocess) -> np.ndarray:
    if isinstance(payload, dict):
        missing = [c for c in spec.channels if c not in payload]
        if missing:  # a header or JSON line without one of the model's channels
            raise ShapeError("sensor row", expected=f"channels {list(spec.channels)}",
                             found=f"no {', '.join(missing)} in {sorted(payload)[:8]}",
                             hint="name the columns as the bundle's preprocessing does (edgekit inspect)")
        return np.array([float(payload[c]) for c in spec.channels], np.float32)
    row = np.asarray(payload, np.float32).reshape(-1)
    if row.size != len(spec.channels):
        raise ShapeError("sensor row", expected=f"{len(spec.channels)} values {list(spec.channels)}",
                         found=f"{row.size} values")
    return row


def _window_base(name: str | None) -> str | None:
    """What an audio window's name starts with: its item's name without a position after
    "@" (the window's name is ``BASE@END`` with END its end in seconds)."""
    if name is None:
        return None
    base, at, _ = name.rpartition("@")
    return base if at else name


_ITEM: type | None = None


def _item_type() -> type:
    """edgekit.runtime.sources.Item, imported on first use (a stream unpacks one per chunk)."""
    global _ITEM
    if _ITEM is None:
        from edgekit.runtime.sources import Item

        _ITEM = Item
    return _ITEM


def _unpack(item: Any) -> tuple[Any, float, str | None]:
    if isinstance(item, _item_type()):
        return item.payload, item.timestamp, item.name
    return item, time.time(), None


def load(path: str | os.PathLike[str], *, variant: str | None = None, backend: str | None = None,
         threads: int | None = None, prefer: tuple[str, ...] = (), max_drop_pts: float | None = None,
         public_key: Any = None) -> Model:
    """Verify a bundle, pick a variant and a backend for this machine, and open it.

    Args:
        path: the ``.edgekit`` bundle.
        public_key: require a valid signature by this Ed25519 key (``edgekit sign``),
            checked with the hashes before any model byte is parsed: a path to a PEM
            public key (``KEY.pub`` from ``edgekit keygen``; a ``str`` is always a path),
            PEM bytes, the 32 raw public-key bytes, or a ``cryptography``
            ``Ed25519PublicKey``. Unsigned bundles, another key's signature, and a
            manifest changed after signing are refused. None (the default) loads
            signed and unsigned bundles alike without checking signatures. Needs the
            ``cryptography`` package (in the litert and onnx extras).
        variant: force a variant (e.g. ``"tflite-int8"``).
        backend: force an interpreter: ``litert``, ``tflite-runtime``, ``tf-lite`` or ``onnxruntime``.
        threads: interpreter threads (default: the interpreter's own choice); the front
            end's numpy/BLAS threads follow it (1 when None, `edgekit.runtime.threads`).
        prefer: variant names in order of preference (a device profile's list).
        max_drop_pts: variants whose recorded fidelity drop exceeds it beyond noise are picked
            last (None: the budget the bundle was gated with, else 1 point).

    Raises:
        IntegrityError: the bundle fails verification or, with `public_key`, signature
            verification (nothing is parsed).
        InputError / MissingDependencyError: unknown names, an unusable public key, or
            nothing can run here; a model file (.tflite, .onnx, .keras, .h5, SavedModel)
            given instead of a bundle, with the ``edgekit convert`` command that packs it
            (`edgekit.bundle.require_bundle`: exit 1, not the integrity refusal).
    """
    bundle = open_bundle(Path(path), public_key=public_key)
    choice = choose(bundle.manifest, variant=variant, backend=backend, prefer=prefer, max_drop_pts=max_drop_pts)
    with native_stderr_captured():  # LiteRT announces its CPU delegate on stderr
        engine = open_backend(choice.variant.format, bundle.variant_bytes(choice.variant.name), threads=threads,
                              package=choice.package, outputs=[o.name for o in choice.variant.outputs])
    return Model(bundle, choice, engine, threads=threads)
