"""Colour of the redrawn region: a clip dubbed with its own audio (a self-dub) against its source, for each kind of
colour tagging a source can have. The test sources are short cuts of shared clips whose decoded YUV samples are
re-encoded as they are (lossless x264), only the tags differing (or converted: full range, 10-bit; stored rotated).

    python -m bench.colour [--frames 40] [--kinds hd-untagged,sd-untagged,...] [--keep DIR]

For each kind it prints the mean Y, U, V difference (dub - source) over the skin of the redrawn lower face (the box
nose to chin, jaw to jaw, from the face track, less the lips grown by 30%: the lips themselves are new mouths, other
content), the mean luma difference on the lips, and over the untouched top of the frame (above the eyes), in the
source's own YUV levels (8-bit), the dub's pixels converted there through RGB in floating point with each file's own
tags. Needs the shared clips (../shared/data). With --keep, dubs already in the folder are measured again, not redone.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import av
import cv2
import numpy as np

import lipdub
from lipdub import media, render
from lipdub.core.landmarks import JAW, OUTER_LOWER, OUTER_UPPER, UPPER_EDGE
from lipdub.pipeline import DubOptions, load_track

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SD, HD = "video/hdtf_katiehill_8s.mp4", "video/woman_outdoor_10s.mp4"
BT709, BT601, UNSPECIFIED = 1, 6, 2  # FFmpeg's codes (6: SMPTE 170M, what BT.601 525-line clips carry)
LIMITED, FULL = 1, 2
# kind: (clip, colorspace tag, range tag, pixel format, quarter turns stored)
KINDS = {
    "sd-untagged": (SD, UNSPECIFIED, 0, "yuv420p", 0),
    "sd-bt601": (SD, BT601, LIMITED, "yuv420p", 0),
    "sd-bt709": (SD, BT709, LIMITED, "yuv420p", 0),
    "hd-untagged": (HD, UNSPECIFIED, 0, "yuv420p", 0),
    "hd-bt709": (HD, BT709, LIMITED, "yuv420p", 0),
    "hd-bt601": (HD, BT601, LIMITED, "yuv420p", 0),
    "hd-full": (HD, BT709, FULL, "yuv420p", 0),
    "hd-10bit": (HD, BT709, LIMITED, "yuv420p10le", 0),
    "hd-rotated": (HD, BT709, LIMITED, "yuv420p", 1),
}
K = {BT709: (0.2126, 0.0722), BT601: (0.299, 0.114), 5: (0.299, 0.114)}


def matrix_of(colorspace: int, width: int, height: int) -> int:
    """The matrix a player reads: the tag, or for untagged video BT.709 when HD, BT.601 below."""
    if colorspace in K:
        return colorspace
    return BT709 if (width >= 1280 or height >= 720) else BT601


def planes(frame) -> tuple[np.ndarray, float, int]:
    """(3, H, W) float Y, U, V at full resolution (chroma repeated), in 8-bit levels; the range; quarter turns."""
    depth = 10 if "10" in frame.format.name else 8
    p = [np.frombuffer(pl, np.uint16 if depth > 8 else np.uint8).reshape(-1, pl.line_size // (2 if depth > 8 else 1))
         for pl in frame.planes]
    h, w = frame.height, frame.width
    y = p[0][:h, :w].astype(np.float64)
    u, v = (np.repeat(np.repeat(c[:(h + 1) // 2, :(w + 1) // 2], 2, 0), 2, 1)[:h, :w].astype(np.float64)
            for c in p[1:3])
    out = np.stack([y, u, v]) / (1 << (depth - 8))
    rng = FULL if frame.color_range == FULL or frame.format.name.startswith("yuvj") else LIMITED
    return out, rng, media.quarter_turns(frame)


def convert(yuv: np.ndarray, src: tuple[int, int], dst: tuple[int, int]) -> np.ndarray:
    """YUV (3, H, W) from (matrix, range) `src` to `dst` through RGB, in floating point (no clipping)."""
    if src == dst:
        return yuv

    def norm(m, r):  # Y'CbCr in [0,1] / [-.5,.5] from levels: scale, offset
        return (255.0, 255.0, 0.0) if r == FULL else (219.0, 224.0, 16.0)

    sy, sc, oy = norm(*src)
    yp, cb, cr = (yuv[0] - oy) / sy, (yuv[1] - 128) / sc, (yuv[2] - 128) / sc
    kr, kb = K[src[0]]
    r = yp + 2 * (1 - kr) * cr
    b = yp + 2 * (1 - kb) * cb
    g = (yp - kr * r - kb * b) / (1 - kr - kb)
    kr, kb = K[dst[0]]
    y2 = kr * r + (1 - kr - kb) * g + kb * b
    sy, sc, oy = norm(*dst)
    return np.stack([oy + sy * y2, 128 + sc * (b - y2) / (2 * (1 - kb)), 128 + sc * (r - y2) / (2 * (1 - kr))])


def make_source(kind: str, out: Path, n: int) -> Path:
    clip, cs, rng, fmt, turns = KINDS[kind]
    with av.open(str(DATA / clip)) as c, av.open(str(out), "w") as o:
        s = c.streams.video[0]
        v = o.add_stream("libx264", rate=s.average_rate)
        first = True
        for i, f in enumerate(c.decode(s)):
            if i >= n:
                break
            a = f.to_ndarray()  # 8-bit I420 as decoded
            if turns:
                h, w = f.height, f.width
                y, uv = a[:h], a[h:].reshape(-1)
                q = (h // 2) * (w // 2)
                u, vv = (np.rot90(x.reshape(h // 2, w // 2), -turns) for x in (uv[:q], uv[q:]))
                y = np.rot90(y, -turns)
                a = np.concatenate([y.ravel(), u.ravel(), vv.ravel()]).reshape(-1, y.shape[1])
            g = av.VideoFrame.from_ndarray(np.ascontiguousarray(a), format="yuv420p")
            if rng == FULL:
                g = g.reformat(format="yuv420p", src_colorspace=BT709, dst_colorspace=BT709, src_color_range=LIMITED,
                               dst_color_range=FULL)
            if fmt != "yuv420p":
                g = g.reformat(format=fmt)
            if first:
                v.width, v.height, v.pix_fmt = g.width, g.height, fmt
                cc = v.codec_context
                if cs != UNSPECIFIED:
                    cc.colorspace = cc.color_primaries = cs
                    cc.color_trc = BT709 if cs == BT709 else 6
                cc.color_range = rng
                v.options = {"qp": "0", "preset": "ultrafast"}
                if turns:
                    v.set_display_rotation(90 * turns)
                first = False
            g.colorspace, g.color_range = cs, rng
            for p in v.encode(g):
                o.mux(p)
        for p in v.encode():
            o.mux(p)
    return out


def measure(source: Path, dub: Path, track) -> dict:
    box_d, lips_d, top_d = [], [], []
    with av.open(str(source)) as cs, av.open(str(dub)) as cd:
        for k, (fs, fd) in enumerate(zip(cs.decode(video=0), cd.decode(video=0))):
            ys, rs, ks = planes(fs)
            yd, rd, kd = planes(fd)
            ms = matrix_of(fs.colorspace, *((fs.height, fs.width) if ks % 2 else (fs.width, fs.height)))
            md = matrix_of(fd.colorspace, fd.width, fd.height)
            ys = np.rot90(ys, ks, axes=(1, 2))
            yd = convert(np.rot90(yd, kd, axes=(1, 2)), (md, rd), (ms, rs))
            if k >= len(track) or not track.valid[k]:
                continue
            lm = track.landmarks[k]
            x0, x1 = int(lm[JAW, 0].min()), int(lm[JAW, 0].max())
            y0, y1 = int(lm[UPPER_EDGE, 1].min()), int(lm[JAW, 1].max())
            lips = lm[OUTER_UPPER + OUTER_LOWER, :2]
            hull = np.round(lips.mean(0) + 1.3 * (lips - lips.mean(0))).astype(np.int32)
            on_lips = np.zeros(ys.shape[1:], np.uint8)
            cv2.fillConvexPoly(on_lips, cv2.convexHull(hull), 1)
            skin = np.zeros(ys.shape[1:], bool)
            skin[y0:y1, x0:x1] = True
            d = yd - ys
            box_d.append(d[:, skin & (on_lips == 0)].mean(1))
            lips_d.append(d[0, skin & (on_lips == 1)].mean())
            top = int(lm[[33, 263], 1].min()) - 5
            top_d.append(d[:, :top].reshape(3, -1).mean(1))
        tags = (cs.streams.video[0].codec_context.colorspace, cd.streams.video[0].codec_context.colorspace,
                cd.streams.video[0].codec_context.color_range)
    return {"box": np.mean(box_d, 0), "lips": float(np.mean(lips_d)), "top": np.mean(top_d, 0), "frames": len(box_d),
            "tags": tags}


def own_mouths(renderer, schedule, mouth, teeth=None, **kw):
    """Renderer.plan drawing every frame's own mouth at its own opening and width (short clips: one atlas entry a
    frame): the redrawn region then shows what was there, so any difference is the drawing's bias."""
    seq = np.asarray(renderer.atlas.seq)
    sel = np.array([int(np.argmin(np.abs(seq - j))) for j in schedule])
    return renderer.atlas_desc[sel, 0], renderer.atlas_desc[sel, 1], sel


def self_dub(kind: str, folder: Path, n: int, reuse: bool = False, own: bool = False) -> dict:
    """Source and dub of `kind` in `folder` (made, or with `reuse` found there), measured. `own`: each frame's own
    mouth redrawn (see own_mouths) instead of the mouths the audio asks for."""
    src, out = folder / f"{kind}.mp4", folder / f"{kind}-{'own' if own else 'dub'}.mp4"
    if not (reuse and src.is_file() and out.is_file()):
        make_source(kind, src, n)
        plan = render.Renderer.plan
        if own:
            render.Renderer.plan = own_mouths
        try:
            lipdub.dub(src, DATA / KINDS[kind][0], out, length="video")
        finally:
            render.Renderer.plan = plan
    track = load_track(src, media.probe_video(src), DubOptions(), None)
    return measure(src, out, track)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--keep", help="folder to keep the sources and dubs in")
    ap.add_argument("--own", action="store_true", help="redraw each frame's own mouth (the drawing's bias alone)")
    args = ap.parse_args()
    folder = Path(args.keep or tempfile.mkdtemp(prefix="lipdub-colour-"))
    folder.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("LIPDUB_CACHE", str(folder / "cache"))
    print("| source | colorspace tag in → out | skin ΔY | skin ΔU | skin ΔV | lips ΔY | top ΔY | top ΔU "
          "| top ΔV |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for kind in args.kinds.split(","):
        r = self_dub(kind, folder, args.frames, reuse=bool(args.keep), own=args.own)
        (b, t), tags = (r["box"], r["top"]), r["tags"]
        cells = " | ".join(f"{x:+.2f}" for x in (*b, r["lips"], *t))
        print(f"| {kind} | {tags[0]} → {tags[1]} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
