"""The image loader on a corpus of awkward files generated here (not hand-picked)."""
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from semedit.imaging import ImageInputError, ImageLimits, load_image


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def gradient(w=120, h=80) -> Image.Image:
    x = np.linspace(0, 255, w, dtype=np.uint8)[None].repeat(h, 0)
    return Image.fromarray(np.stack([x, x[:, ::-1], np.full_like(x, 90)], -1))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares a huge size (a decompression bomb's header)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = chunk(b"IDAT", zlib.compress(b"\x00" * 16))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + idat + chunk(b"IEND", b"")


def test_exif_orientation_is_applied():
    img = gradient(120, 80)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    out = load_image(encode(img, "JPEG", exif=exif.tobytes()))
    assert out.size == (80, 120)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "CMYK", "L", "1", "I;16", "I", "F"])
def test_every_mode_becomes_rgb(mode):
    base = gradient()
    if mode == "I;16":
        img = Image.fromarray((np.asarray(base.convert("L"), dtype=np.uint16) * 257))
    elif mode in ("I", "F"):
        img = base.convert("L").convert(mode)
    else:
        img = base.convert(mode)
    fmt = "TIFF" if mode in ("CMYK", "I", "F") else "PNG"
    out = load_image(encode(img, fmt))
    assert out.mode == "RGB" and out.size == (120, 80)
    arr = np.asarray(out)
    assert arr.std() > 10  # content kept: not flattened to one colour (16-bit not clipped to white)


def test_transparency_goes_on_white():
    img = Image.new("RGBA", (100, 100), (255, 0, 0, 0))
    img.paste((0, 0, 255, 255), (0, 0, 50, 100))
    arr = np.asarray(load_image(encode(img, "PNG")))
    assert tuple(arr[50, 75]) == (255, 255, 255) and tuple(arr[50, 25]) == (0, 0, 255)


def test_animation_gives_the_first_frame():
    frames = [Image.new("RGB", (90, 90), c) for c in ((255, 0, 0), (0, 255, 0))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    arr = np.asarray(load_image(data))
    assert arr[45, 45, 0] > 200 and arr[45, 45, 1] < 50


@pytest.mark.parametrize("make,match", [
    (lambda: png_header_only(30000, 30000), "too large|megapixels"),
    (lambda: encode(gradient(), "JPEG")[:300], "damaged or truncated|cannot be read"),
    (lambda: b"name,age\nada,36\n", "not an image"),
    (lambda: b"", "not an image"),
    (lambda: encode(gradient(40, 30), "PNG"), "at least 64 px"),
])
def test_bad_files_raise_a_clear_typed_error(make, match):
    with pytest.raises(ImageInputError, match=match):
        load_image(make())


def test_pixel_budget_is_a_setting():
    with pytest.raises(ImageInputError, match="megapixels"):
        load_image(encode(gradient(120, 80), "PNG"), ImageLimits(max_pixels=5000))


def test_missing_file(tmp_path):
    with pytest.raises(ImageInputError, match="no such file"):
        load_image(tmp_path / "nope.png")


def test_arrays_and_pil_images_are_accepted():
    arr = np.asarray(gradient())
    assert np.array_equal(np.asarray(load_image(arr)), arr)
    assert load_image(gradient().convert("RGBA")).mode == "RGB"
    assert load_image((arr.astype(np.float32) / 255)).size == (120, 80)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_large_uploads_are_reduced_on_load_keeping_the_aspect(fmt):
    out = load_image(encode(gradient(1000, 600), fmt), ImageLimits(max_side=256))
    assert out.size == (256, 154) and out.mode == "RGB"
    assert np.asarray(out)[:, 0, 0].mean() < 20 < 235 < np.asarray(out)[:, -1, 0].mean()  # the same picture, smaller
    exif = Image.Exif()
    exif[0x0112] = 6  # turned upright first, then reduced
    assert load_image(encode(gradient(1000, 600), "JPEG", exif=exif.tobytes()), ImageLimits(max_side=256)).size == (154, 256)


def test_a_49_megapixel_jpeg_is_never_decoded_whole(monkeypatch):
    """JPEGs are decoded at a reduced scale (1/2 here): no 49 MP buffer is ever allocated."""
    big = encode(gradient(1000, 700).resize((8400, 5880)), "JPEG", quality=80)
    decoded, load = [], Image.Image.load

    def recording_load(self):
        decoded.append(self.size)
        return load(self)
    monkeypatch.setattr(Image.Image, "load", recording_load)
    assert load_image(big).size == (4096, 2867)
    assert max(max(s) for s in decoded) == 4200  # half of 8400: the largest buffer is a quarter of the full one
