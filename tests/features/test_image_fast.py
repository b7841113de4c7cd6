"""The fast image front end computes the same bits as its definition: the bilinear resize
(precomputed tables, each source row interpolated once) against the float32 formula it
replaces, and normalization by table look-up against the arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.errors import ShapeError
from edgekit.features import image
from edgekit.spec import ImagePreprocess


def _sizes(seed: int, count: int) -> list[tuple[int, int, int, int, int]]:
    rng = np.random.default_rng(seed)
    # 480 -> 96 and 30 -> 30: every row weight 0 (no lower rows); 9 -> 3 both ways: all weights 0
    fixed = [(480, 640, 96, 96, 3), (480, 640, 224, 224, 3), (96, 96, 224, 224, 3), (1, 1, 5, 7, 3),
             (37, 53, 16, 16, 1), (10, 20, 10, 40, 4), (7, 3, 1, 1, 3), (30, 40, 30, 20, 3), (9, 9, 3, 3, 3),
             (40, 30, 20, 30, 1)]
    drawn = [(*rng.integers(1, 120, 4).tolist(), int(rng.choice([1, 3, 4]))) for _ in range(count)]
    return fixed + drawn


@pytest.mark.parametrize("size", _sizes(0, 40), ids=lambda s: "{}x{}->{}x{}x{}".format(*s))
def test_bilinear_is_bit_identical_to_the_float32_formula(size):
    src_h, src_w, height, width, channels = size
    pixels = np.random.default_rng(src_h * 1000 + src_w).integers(0, 256, (src_h, src_w, channels), dtype=np.uint8)
    fast = image.resize(pixels, height, width, "bilinear")
    assert fast.dtype == np.uint8 and fast.shape == (height, width, channels)
    np.testing.assert_array_equal(fast, image._bilinear_reference(pixels, height, width))


def test_bilinear_of_a_view_and_of_float_pixels():
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    view = frame[5:50:2, ::-1]  # not contiguous
    np.testing.assert_array_equal(image.resize(view, 17, 23), image._bilinear_reference(view, 17, 23))
    floats = frame.astype(np.float32) / 255
    out = image.resize(floats, 17, 23)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, image._bilinear_reference(floats, 17, 23))


def test_plans_are_cached_read_only_and_small():
    first = image._bilinear_plan(48, 64, 12, 16, 3)
    assert image._bilinear_plan(48, 64, 12, 16, 3) is first
    with pytest.raises(ValueError):
        first.wa[0] = 2.0
    big = image._bilinear_plan(720, 1280, 640, 640, 3)  # separable tables: kilobytes, not megabytes
    assert sum(v.nbytes for v in vars(big).values() if isinstance(v, np.ndarray)) < 200_000


def test_nearest_picks_opencv_inter_nearest_pixels():
    frame = np.arange(6 * 8 * 3, dtype=np.uint8).reshape(6, 8, 3)
    out = image.resize(frame, 4, 3, "nearest")
    rows = np.floor(np.arange(4) * 6 / 4).astype(int)
    cols = np.floor(np.arange(3) * 8 / 3).astype(int)
    np.testing.assert_array_equal(out, frame[rows][:, cols])


@pytest.mark.parametrize("spec", [
    ImagePreprocess(height=8, width=8, scale=2 / 255, mean=(1.0, 1.0, 1.0), std=(1.0, 1.0, 1.0)),
    ImagePreprocess(height=8, width=8, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), layout="nchw"),
    ImagePreprocess(height=8, width=8, channels=1, color_order="gray", mean=(0.5,), std=(0.25,)),
    ImagePreprocess(height=8, width=8, scale=1.0),
], ids=["vww", "imagenet-nchw", "gray", "identity"])
def test_normalize_by_table_equals_the_arithmetic(spec):
    pixels = np.random.default_rng(2).integers(0, 256, (2, 8, 8, spec.channels), dtype=np.uint8)
    pixels[0, 0, 0] = 0
    pixels[0, 0, 1] = 255
    mean, std = np.asarray(spec.mean, np.float32), np.asarray(spec.std, np.float32)
    want = (pixels.astype(np.float32) * np.float32(spec.scale) - mean) / std
    if spec.layout == "nchw":
        want = want.transpose(0, 3, 1, 2)
    got = image.normalize(pixels, spec)
    assert got.dtype == np.float32 and got.flags.c_contiguous
    assert got.tobytes() == np.ascontiguousarray(want).tobytes()  # bits, signed zeros included
    np.testing.assert_array_equal(image.normalize(pixels.astype(np.float32), spec), got)


@pytest.mark.parametrize("shape", [(0, 5, 3), (5, 0, 3), (0, 0, 1)])
def test_an_image_without_pixels_is_a_shape_error(shape):
    with pytest.raises(ShapeError, match="at least one"):
        image.prepare(np.zeros(shape, np.uint8), ImagePreprocess(height=4, width=4))
