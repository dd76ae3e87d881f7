"""Colour: which YUV matrix and range a frame is in, and exact conversions between 8-bit RGB and YUV.

A frame's matrix is its tag; an untagged frame is BT.709 when HD (>= 1280 wide or >= 720 high, judged on the whole
frame), BT.601 below, as players read it. Reading (YUV to RGB) and writing (RGB to YUV) use the same floating-point
matrices, rounded once: FFmpeg's swscale, used before, read 8-bit 4:2:0 about one luma level dark, so even a mouth
region drawn back unchanged came out darker. Chroma is upsampled by repeating each sample over its 2x2 pixels and
subsampled by their mean, so a round trip returns the same samples (within rounding) and a box of a frame converts
exactly as the whole frame does there.
"""

from __future__ import annotations

import cv2
import numpy as np

# FFmpeg's codes: matrices (AVColorSpace) and ranges (AVColorRange)
BT709, UNSPECIFIED, BT470BG, SMPTE170M = 1, 2, 5, 6
MPEG_RANGE, JPEG_RANGE = 1, 2  # limited (16-235) and full range
BT601 = SMPTE170M  # what untagged SD is read as and written back as
# (Kr, Kb) of the matrices a stream may be tagged with: BT.709, FCC, BT.601 (two codes), SMPTE 240M, BT.2020
_KR_KB = {1: (0.2126, 0.0722), 4: (0.30, 0.11), 5: (0.299, 0.114), 6: (0.299, 0.114), 7: (0.212, 0.087),
          9: (0.2627, 0.0593), 10: (0.2627, 0.0593)}
YUV_FORMATS = frozenset({"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p",
                         "yuv420p10le", "yuv422p10le", "yuv444p10le"})


def is_hd(width: int, height: int) -> bool:
    return width >= 1280 or height >= 720


def matrix_of(colorspace: int, width: int, height: int) -> int:
    """The matrix code a frame of this tag and (whole, stored) size is in: the tag, or the players' guess."""
    if colorspace in _KR_KB:
        return int(colorspace)
    return BT709 if is_hd(width, height) else BT601


def writable_matrix(matrix: int) -> int:
    """The matrix an output written for a source in `matrix` uses: the same where it is BT.601 or BT.709."""
    return matrix if matrix in (BT709, BT470BG, SMPTE170M) else BT709


def is_full_range(frame) -> bool:
    return frame.color_range == JPEG_RANGE or frame.format.name.startswith("yuvj")


def _forward(matrix: int, full: bool = False) -> np.ndarray:
    """3x4 float matrix: 8-bit RGB (with a 1) to Y, Cb, Cr levels."""
    kr, kb = _KR_KB[matrix]
    kg = 1 - kr - kb
    sy, sc, oy = (1.0, 1.0, 0.0) if full else (219 / 255, 224 / 255, 16.0)
    return np.array([[kr * sy, kg * sy, kb * sy, oy],
                     [-kr / (2 - 2 * kb) * sc, -kg / (2 - 2 * kb) * sc, 0.5 * sc, 128.0],
                     [0.5 * sc, -kg / (2 - 2 * kr) * sc, -kb / (2 - 2 * kr) * sc, 128.0]], np.float64)


def _inverse(matrix: int, full: bool = False) -> np.ndarray:
    f = _forward(matrix, full)
    inv = np.linalg.inv(f[:, :3])
    return np.concatenate([inv, -inv @ f[:, 3:]], 1)


_CACHE: dict = {}


def forward_matrix(matrix: int, full: bool = False) -> np.ndarray:
    key = ("f", matrix, full)
    if key not in _CACHE:
        _CACHE[key] = _forward(matrix, full).astype(np.float32)
    return _CACHE[key]


def inverse_matrix(matrix: int, full: bool = False, scale: float = 1.0) -> np.ndarray:
    key = ("i", matrix, full, scale)
    if key not in _CACHE:
        m = _inverse(matrix, full)
        m[:, :3] /= scale  # samples of more than 8 bits: levels * scale
        _CACHE[key] = m.astype(np.float32)
    return _CACHE[key]


def yuv_to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray, matrix: int, full: bool = False) -> np.ndarray:
    """uint8 RGB (H, W, 3) from planes Y (H, W) and U, V (full size, or halved in either direction: repeated), 8-bit
    or 10-bit (uint16) samples, in `matrix` and range; rounded once."""
    h, w = y.shape
    if u.shape != (h, w):  # each sample over its 2x2 (4:2:0) or 2x1 (4:2:2) pixels
        size = (u.shape[1] * -(-w // u.shape[1]), u.shape[0] * -(-h // u.shape[0]))
        u, v = (cv2.resize(c, size, interpolation=cv2.INTER_NEAREST)[:h, :w] for c in (u, v))
    yuv = cv2.merge([np.ascontiguousarray(y), np.ascontiguousarray(u), np.ascontiguousarray(v)])
    if yuv.dtype == np.uint8:
        return cv2.transform(yuv, inverse_matrix(matrix, full))  # rounded, saturated uint8
    out = cv2.transform(yuv.astype(np.float32), inverse_matrix(matrix, full, 4.0))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def rgb_to_yuv(rgb: np.ndarray, matrix: int) -> np.ndarray:
    """float32 Y, Cb, Cr levels (H, W, 3), limited range, of uint8 RGB, unrounded."""
    return cv2.transform(np.ascontiguousarray(rgb).astype(np.float32), forward_matrix(matrix))


def to_levels(a: np.ndarray) -> np.ndarray:
    """float levels rounded (half to even: no bias) to uint8."""
    if a.size <= 4:  # (OpenCV takes a float64 array of up to 4 values for a scalar)
        return np.clip(np.rint(a), 0, 255).astype(np.uint8)
    # OpenCV's saturating conversion rounds half to even too: the bytes of np.clip(np.rint(a), 0, 255) in one pass
    # instead of three (tests/test_media.py)
    return cv2.add(a, 0.0, dtype=cv2.CV_8U).reshape(a.shape)


def chroma_420(yuv: np.ndarray) -> np.ndarray:
    """uint8 Cb, Cr (h/2, w/2, 2) of float YUV (even-sized): the mean of each 2x2 block, rounded once (OpenCV's
    integer 2x2 mean rounds halves up: +0.125 levels on average)."""
    h, w = yuv.shape[:2]
    # all three channels resized and rounded, luma dropped after: a [..., 1:] view is no OpenCV image, and copying
    # it cost 3x the resize before the rounding and 6x the rounding of the whole (720p, per element the same value)
    return to_levels(cv2.resize(yuv, (w // 2, h // 2), interpolation=cv2.INTER_AREA))[..., 1:]


def rgb_to_i420(rgb: np.ndarray, matrix: int) -> np.ndarray:
    """uint8 I420 (one array of H * 3/2 rows, as FFmpeg's yuv420p) of even-sized RGB, limited range."""
    h, w = rgb.shape[:2]
    yuv = rgb_to_yuv(rgb, matrix)
    out = np.empty((h * 3 // 2, w), np.uint8)
    out[:h] = to_levels(cv2.extractChannel(yuv, 0))  # (a strided yuv[..., 0] was copied inside OpenCV first)
    chroma, flat = chroma_420(yuv), out[h:].reshape(-1)  # U then V, each (h/2, w/2), in rows of width w
    n = (h // 2) * (w // 2)
    flat[:n], flat[n:] = chroma[..., 0].reshape(-1), chroma[..., 1].reshape(-1)
    return out


def frame_to_rgb(frame, box: tuple[int, int, int, int] | None = None) -> np.ndarray | None:
    """Upright-as-stored uint8 RGB of a decoded PyAV frame in a planar YUV format (8 or 10-bit), converted with its
    own (or guessed) matrix and range; None for other formats. `box` (x0, y0, x1, y1, in stored pixels): only that
    region, the same pixels the whole frame's conversion gives there (the tracker reads a face's crop, not the
    frame)."""
    name = frame.format.name
    if name not in YUV_FORMATS:
        return None
    deep = "10" in name
    h, w = frame.height, frame.width
    planes = []
    for i, p in enumerate(frame.planes):
        a = np.frombuffer(p, np.uint16 if deep else np.uint8).reshape(p.height, -1)
        planes.append(a[:, :p.width])
    matrix, full = matrix_of(frame.colorspace, w, h), is_full_range(frame)
    if box is None:
        return yuv_to_rgb(*planes[:3], matrix, full)
    x0, y0, x1, y1 = (int(v) for v in box)
    sx, sy = -(-w // planes[1].shape[1]), -(-h // planes[1].shape[0])  # chroma subsampling (1 or 2 each way)
    # grown to whole chroma samples, so each is repeated over the same pixels as in the whole frame's conversion
    ax, ay = x0 // sx * sx, y0 // sy * sy
    bx, by = min(w, -(-x1 // sx) * sx), min(h, -(-y1 // sy) * sy)
    chroma = (slice(ay // sy, -(-by // sy)), slice(ax // sx, -(-bx // sx)))
    rgb = yuv_to_rgb(planes[0][ay:by, ax:bx], planes[1][chroma], planes[2][chroma], matrix, full)
    return rgb[y0 - ay:y1 - ay, x0 - ax:x1 - ax]
