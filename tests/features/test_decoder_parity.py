"""The host (OpenCV and Pillow installed) and a device (the litert or onnx extra: Pillow
alone) decode and resize images to the same pixels, so both preprocess identically."""

from __future__ import annotations

import io

import numpy as np
import pytest

from edgekit.errors import MissingDependencyError
from edgekit.features import image
from edgekit.spec import ImagePreprocess

cv2 = pytest.importorskip("cv2")
PIL_Image = pytest.importorskip("PIL.Image")


def _pixels() -> np.ndarray:
    """A 37x53 RGB image with gradients and noise (JPEG's worst case is flat plus noise)."""
    y, x = np.mgrid[0:37, 0:53]
    rgb = np.stack([(x * 5) % 256, (y * 7) % 256, ((x + y) * 3) % 256], -1)
    noise = np.random.default_rng(0).integers(-20, 20, rgb.shape)
    return np.clip(rgb + noise, 0, 255).astype(np.uint8)


def _pil(pixels, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    (PIL_Image.fromarray(pixels) if isinstance(pixels, np.ndarray) else pixels).save(out, fmt, **options)
    return out.getvalue()


def _encoded() -> dict[str, bytes]:
    rgb = _pixels()
    rotated = PIL_Image.Exif()
    rotated[0x0112] = 6  # EXIF orientation: rotate 90 degrees on display
    wide = rgb.astype(np.uint16) * 257 + 3
    return {
        "png-rgb": _pil(rgb, "PNG"),
        "png-rgba": _pil(np.dstack([rgb, rgb[..., :1]]), "PNG"),
        "png-gray": _pil(rgb[..., 0], "PNG"),
        "png-palette": _pil(PIL_Image.fromarray(rgb).convert("P"), "PNG"),
        "png-16bit-gray": cv2.imencode(".png", wide[..., 0])[1].tobytes(),
        "png-16bit-rgb": cv2.imencode(".png", wide)[1].tobytes(),
        "jpeg-420": _pil(rgb, "JPEG", quality=90),
        "jpeg-444": _pil(rgb, "JPEG", quality=90, subsampling=0),
        "jpeg-gray": _pil(rgb[..., 0], "JPEG"),
        "jpeg-opencv": cv2.imencode(".jpg", rgb[..., ::-1])[1].tobytes(),
        "jpeg-exif-rotated": _pil(rgb, "JPEG", exif=rotated.tobytes()),
        "bmp": _pil(rgb, "BMP"),
    }


ENCODED = _encoded()


def _only(monkeypatch, module: str) -> None:
    """Decode and resize as an install that has `module` and not the other library."""
    other = {"cv2": "PIL", "PIL": "cv2"}[module]
    real = image.available
    monkeypatch.setattr(image, "available", lambda name: name != other and real(name))


@pytest.mark.parametrize("name", sorted(ENCODED))
def test_pillow_and_opencv_decode_the_same_pixels(name, monkeypatch):
    with monkeypatch.context() as m:
        _only(m, "cv2")
        by_opencv = image.decode_image(ENCODED[name])
    with monkeypatch.context() as m:
        _only(m, "PIL")
        by_pillow = image.decode_image(ENCODED[name])
    assert by_pillow.dtype == by_opencv.dtype == np.uint8
    assert by_pillow.shape == by_opencv.shape and by_pillow.shape[-1] == 3
    np.testing.assert_array_equal(by_pillow, by_opencv)
    if name == "jpeg-exif-rotated":
        assert by_pillow.shape[:2] == (53, 37)  # turned upright by both


@pytest.mark.parametrize("resize", ["bilinear", "nearest"])
@pytest.mark.parametrize("letterbox", [False, True])
def test_prepare_gives_the_same_input_with_either_library(resize, letterbox, monkeypatch):
    """The whole image front end (decode, crop, resize, colour) on a PNG and a JPEG."""
    spec = ImagePreprocess(height=24, width=20, resize=resize, letterbox=letterbox, crop="center",
                           crop_fraction=0.875, color_order="bgr")
    outputs = {}
    for library in ("cv2", "PIL"):
        with monkeypatch.context() as m:
            _only(m, library)
            outputs[library] = [image.normalize(image.prepare(image.decode_image(ENCODED[n]), spec), spec)
                                for n in ("png-rgb", "jpeg-420")]
    for with_opencv, with_pillow in zip(outputs["cv2"], outputs["PIL"], strict=True):
        np.testing.assert_array_equal(with_opencv, with_pillow)


def test_resize_is_edgekits_own_and_within_one_level_of_opencv():
    rgb = _pixels()
    for height, width in [(24, 20), (96, 120), (37, 10)]:
        ours = image.resize(rgb, height, width, "bilinear")
        np.testing.assert_array_equal(ours, image._resize_numpy(rgb, height, width, "bilinear"))
        theirs = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR)
        assert np.abs(ours.astype(int) - theirs.astype(int)).max() <= 1


def test_no_decoder_is_one_line_naming_the_device_extra(monkeypatch, tmp_path):
    from edgekit.runtime.sources.images import ImagesSource

    real = image.available
    monkeypatch.setattr(image, "available", lambda name: name not in ("cv2", "PIL") and real(name))
    with pytest.raises(MissingDependencyError) as caught:
        image.decode_image(ENCODED["png-rgb"])
    assert 'pip install "edgekit-ml[litert]"' in str(caught.value) and "\n" not in str(caught.value)
    (tmp_path / "a.png").write_bytes(ENCODED["png-rgb"])
    import edgekit.runtime.sources.images as images_source

    monkeypatch.setattr(images_source, "available", lambda name: name not in ("cv2", "PIL") and real(name))
    with pytest.raises(MissingDependencyError, match=r"edgekit-ml\[litert\]"):
        ImagesSource(str(tmp_path), {})


def test_area_resize_without_opencv_names_the_camera_extra(monkeypatch):
    real = image.available
    monkeypatch.setattr(image, "available", lambda name: name != "cv2" and real(name))
    with pytest.raises(MissingDependencyError, match=r'pip install "edgekit-ml\[camera\]"'):
        image.resize(_pixels(), 10, 10, "area")
