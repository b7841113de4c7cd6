"""Audio features of a sliding window, computing only the frames a hop adds.

A stream's windows overlap: at a 20 ms hop with 20 ms frame steps, 48 of a 1 s window's
49 frames were in the previous window. `AudioFeatureStream` keeps the per-frame rows of
the frames it has computed (in one array per frame phase, oldest first) and computes,
for each window, only the frames that are new, as TensorFlow Lite Micro's microfrontend,
Edge Impulse's continuous classifier and openWakeWord do. Its output equals
`edgekit.features.audio.features` of the window (the same functions run on the same
samples; the tests compare them to 1e-6 relative over random hops, chunk sizes and
stream lengths).

What is computed again for every window (docs/streaming.md):

- the steps that act on the whole window (`audio.Step.clip_wide`): ``normalize: per_clip``
  (mean and deviation over the window), and the dB conversion when ``db_ref: max`` or
  ``db_top_db`` is set (both relative to the window's maximum). The per-frame steps
  before the first of them are kept; it and every step after it run on the window's rows
  (49 x 40 values for the default spec: a few microseconds);
- the frames that depend on where the window starts or ends rather than on the stream:
  with ``center`` the frames that reach into the padding; with ``pad_end`` the frames
  that reach past the clip's end; with ``preemphasis`` the first frame (the filter starts
  from zero at the window's first sample);
- all frames when the window's frames do not fall on frames computed before: the hop is
  not a multiple of ``frame_step``, and no window of the last `MAX_PHASES` phases had the
  same alignment (a 250 ms hop at 20 ms steps alternates between two alignments: half of
  each window's frames are new instead of a quarter).
"""

from __future__ import annotations

import collections
from collections.abc import Callable

import numpy as np

from edgekit.features import audio
from edgekit.spec import AudioPreprocess

MAX_PHASES = 4
"""Frame alignments (window start modulo `frame_step`) whose rows are kept."""


class _Rows:
    """Per-frame rows of consecutive frames of one alignment: frame ``first + j`` (frames
    numbered by stream position // frame_step) is ``data[lo + j]`` for ``lo + j < hi``."""

    __slots__ = ("data", "first", "lo", "hi")

    def __init__(self, capacity: int, width: int) -> None:
        self.data = np.empty((capacity, width))
        self.first = 0
        self.lo = self.hi = 0

    def window(self, k0: int, count: int, compute: Callable[[np.ndarray, int, int, np.ndarray], None],
               samples: np.ndarray, offset: int) -> np.ndarray:
        """The rows of frames ``k0 .. k0 + count - 1``: those kept, and, for the `n` frames
        from the window's `j`-th on (the rest), ``compute(samples, offset + j, n, out)``
        writing them into `out`. Rows before `k0` are dropped."""
        kept = self.hi - self.lo
        if self.first <= k0 < self.first + kept:
            self.lo += k0 - self.first
            kept = min(self.hi - self.lo, count)
            self.hi = self.lo + kept
        else:
            self.lo = self.hi = kept = 0
        self.first = k0
        if kept < count:
            new = count - kept
            if self.hi + new > len(self.data):  # move the kept rows to the front
                self.data[:kept] = self.data[self.lo : self.hi]
                self.lo, self.hi = 0, kept
            compute(samples, offset + kept, new, self.data[self.hi : self.hi + new])
            self.hi += new
        return self.data[self.lo : self.hi]


class AudioFeatureStream:
    """`audio.features` of successive windows of one audio stream, incrementally.

    Args:
        spec: the preprocessing spec (checked with `audio.check_spec`).

    Raises:
        InputError: a spec too large to compute (`audio.check_spec`).
    """

    def __init__(self, spec: AudioPreprocess) -> None:
        audio.check_spec(spec)
        self.spec = spec
        steps = audio.frame_steps(spec)
        cut = next((i for i, step in enumerate(steps) if step.clip_wide), len(steps))
        self._frame_steps, self._window_steps = steps[:cut], steps[cut:]
        self._pad = spec.frame_length // 2 if spec.center != "none" else 0
        self._lead = 1 if spec.preemphasis else 0  # samples before a frame that its filter reads
        step, length, clip = spec.frame_step, spec.frame_length, spec.clip_samples
        # frames i whose samples lie inside the window (after its first, with pre-emphasis):
        # their rows depend on the stream, not on where the window starts
        first = -(-(self._lead + self._pad) // step)
        last = min(spec.frames, (clip + self._pad - length) // step + 1)
        self._clean = (first, max(first, last))
        self._edges = np.array([i for i in range(spec.frames) if not first <= i < last], dtype=np.intp)
        self._rows: collections.OrderedDict[int, _Rows] = collections.OrderedDict()
        self._capacity = 2 * spec.frames + 1
        self._kernel = audio.FrameKernel(spec, self._frame_steps)  # one frame a hop
        self._width = audio.run_steps(np.zeros((1, spec.frame_length)), self._frame_steps).shape[-1]
        self._last: tuple[int, _Rows | None] = (-1, None)  # the alignment of the last window and its rows
        self._has_edges = bool(len(self._edges))
        # the window steps as one function where there is one (normalize: per_clip): a call less a hop
        self._window_step = self._window_steps[0].run if len(self._window_steps) == 1 else None
        self.computed = 0  # frames computed (not kept): for tests and benchmarks

    def window(self, samples: np.ndarray, start: int) -> np.ndarray:
        """`audio.features(samples, spec)` for one window.

        Args:
            samples: the window, ``(clip_samples,)`` at the spec's rate.
            start: the stream position of its first sample (samples since the stream began).

        Returns:
            float32 ``(num_frames, num_features)``.

        Raises:
            ValueError: `samples` is not one window long (a programming error: `Model.stream`
                cuts the windows).
        """
        spec = self.spec
        if len(samples) != spec.clip_samples:
            raise ValueError(f"a window of {spec.clip_samples} samples expected, got {len(samples)}")
        first, last = self._clean
        count = last - first
        rows: np.ndarray | None = None
        if count > 0:
            position = start + first * spec.frame_step - self._pad  # stream position of frame `first`
            phase = position % spec.frame_step
            last_phase, kept = self._last
            if phase != last_phase:  # another alignment than the last window's (else the newest already)
                kept = self._rows.get(phase)
                if kept is None:
                    if len(self._rows) >= MAX_PHASES:
                        self._rows.popitem(last=False)
                    kept = self._rows[phase] = _Rows(self._capacity, self._width)
                else:
                    self._rows.move_to_end(phase)
                self._last = (phase, kept)
            assert kept is not None
            k0 = position // spec.frame_step
            if k0 == kept.first + 1 and kept.hi - kept.lo == count and kept.hi < len(kept.data) and not self._lead:
                # the steady state of a hop of one frame step: the window's last frame is new
                begin = (first + count - 1) * spec.frame_step - self._pad
                self._kernel(samples[begin : begin + spec.frame_length], kept.data[kept.hi])
                self.computed += 1
                kept.first, kept.lo, kept.hi = k0, kept.lo + 1, kept.hi + 1
                rows = kept.data[kept.lo : kept.hi]
            else:
                rows = kept.window(k0, count, self._frames, samples, first)
        if self._has_edges:
            edges = self._edge_rows(samples)
            top = int(np.searchsorted(self._edges, first))
            parts = [edges[:top], rows, edges[top:]] if rows is not None else [edges]
            rows = np.concatenate([p for p in parts if p is not None and len(p)], axis=0)
        assert rows is not None
        if self._window_step is not None:
            out = self._window_step(rows)
        else:
            out = audio.run_steps(rows, self._window_steps) if self._window_steps else rows
        return (audio.stack(out, spec.stack_frames) if spec.stack_frames > 1 else out).astype(np.float32)

    def _frames(self, samples: np.ndarray, i: int, n: int, out: np.ndarray) -> None:
        """Write the rows of the window's clean frames ``i .. i + n - 1`` (per-frame steps
        only) into `out`."""
        spec = self.spec
        begin = i * spec.frame_step - self._pad - self._lead
        end = (i + n - 1) * spec.frame_step - self._pad + spec.frame_length
        x = samples[begin:end]
        if self._lead:
            x = x.astype(np.float64)
            x = x[1:] - spec.preemphasis * x[:-1]
        elif x.dtype != np.float32:
            x = x.astype(np.float64)
        # else float32 as it is: the spectrum's window (float64) makes the frame float64, the
        # values the cast gives (one numpy call less per hop)
        self.computed += n
        if n == 1:
            self._kernel(x, out[0])
        else:
            framed = np.lib.stride_tricks.sliding_window_view(x, spec.frame_length)[:: spec.frame_step]
            out[...] = audio.run_steps(framed, self._frame_steps)

    def _edge_rows(self, samples: np.ndarray) -> np.ndarray:
        """Rows of the frames that depend on the window's bounds, from the window alone."""
        spec = self.spec
        x = audio.preemphasis(samples.astype(np.float64), spec.preemphasis)
        if self._pad:
            x = np.pad(x, (self._pad, self._pad), mode=spec.center)
        framed = audio.frames(x, spec)[self._edges]
        self.computed += len(self._edges)
        return audio.run_steps(framed, self._frame_steps)
