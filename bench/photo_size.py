"""Photos of any size: wall time and peak RSS of dubbing a 12-MP and a 50-MP photo, against the same photo already at
1920 (long side), each dub in its own child process.

    python -m bench.photo_size [--image IMG] [--audio A] [--sizes 12,50] [--args "--max-size 0"]

The photos are made in a temporary folder from one shared portrait (default ../shared/data/images/
man_frontal_hires.jpg): scaled up (cv2.INTER_CUBIC) to a 3:4 portrait of about N megapixels, saved as JPEG
(quality 92); the reference is the same portrait at 1440x1920 (INTER_AREA). Each dub runs `python -m lipdub dub`
(`--no-cache`, plus --args) in a child process; its peak RSS comes from os.wait4's rusage (ru_maxrss of that child).
Prints one line per dub (seconds, peak RSS MB, output size) and the ratios of each large photo to the reference.
No assertions. To measure other code (e.g. the code before a change), point PYTHONPATH at it.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LIPDUB_DATA") or ROOT.parent / "shared" / "data")


def make_photo(src: Path, out: Path, megapixels: float | None) -> tuple[int, int]:
    """A 3:4 portrait of about `megapixels` (None: 1440x1920) made from `src` (cropped to 3:4 around its centre)."""
    import cv2

    img = cv2.imread(str(src))
    h, w = img.shape[:2]
    if w * 4 > h * 3:  # crop the width to 3:4
        cw = h * 3 // 4
        img = img[:, (w - cw) // 2:(w - cw) // 2 + cw]
    else:
        ch = w * 4 // 3
        img = img[(h - ch) // 2:(h - ch) // 2 + ch]
    if megapixels is None:
        size = (1440, 1920)
    else:
        k = (megapixels * 1e6 / 12) ** 0.5
        size = (int(3 * k) // 2 * 2, int(4 * k) // 2 * 2)
    grow = size[0] > img.shape[1]
    img = cv2.resize(img, size, interpolation=cv2.INTER_CUBIC if grow else cv2.INTER_AREA)
    cv2.imwrite(str(out), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
    return size


def run_dub(photo: Path, audio: Path, out: Path, extra: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of one dub in a child process."""
    cmd = [sys.executable, "-m", "lipdub", "dub", str(photo), str(audio), "-o", str(out), "--no-cache", *extra]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"dub failed ({proc.returncode}): {' '.join(cmd)}\n{err.decode(errors='replace')[-2000:]}")
    return wall, usage.ru_maxrss / 1024


def video_size(path: Path) -> str:
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return f"{s.codec_context.width}x{s.codec_context.height}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--image", type=Path, default=DATA / "images" / "man_frontal_hires.jpg")
    ap.add_argument("--audio", type=Path, default=DATA / "audio" / "es_spanish1_5s.wav")
    ap.add_argument("--sizes", default="12,50", help="megapixels of the large photos, comma-separated")
    ap.add_argument("--args", default="", help="more `lipdub dub` options for every dub, e.g. '--max-size 0'")
    args = ap.parse_args(argv)
    extra = shlex.split(args.args)
    tmp = Path(tempfile.mkdtemp(prefix="lipdub-photo-size-"))
    photos = [("ref-1920", None)] + [(f"{mp}MP", float(mp)) for mp in args.sizes.split(",")]
    results = {}
    print(f"audio {args.audio.name}, options: {' '.join(extra) or '(defaults)'}")
    for name, mp in photos:
        photo = tmp / f"{name}.jpg"
        w, h = make_photo(args.image, photo, mp)
        out = tmp / f"{name}.mp4"
        wall, rss = run_dub(photo, args.audio, out, extra)
        results[name] = (wall, rss)
        print(f"{name:9} {w}x{h} ({w * h / 1e6:4.1f} MP): {wall:6.1f} s, peak RSS {rss:6.0f} MB, "
              f"output {video_size(out)}", flush=True)
    ref_wall, ref_rss = results["ref-1920"]
    for name, (wall, rss) in results.items():
        if name != "ref-1920":
            print(f"{name} / ref-1920: time x{wall / ref_wall:.2f}, peak RSS x{rss / ref_rss:.2f}")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
