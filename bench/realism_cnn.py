"""The second detector (bench/realism_convnet.py) on a `bench.realism` --out folder's dubs, beside the logistic on HOG,
and where it finds its tells. Per clip (work/<clip>/original.mp4, dubbed.mp4 and original_again.mp4; face tracks
cached):

- `logistic`, `cnn`: balanced accuracy of bench.realism's detector and of the net, real against dub, on the same
  opening-matched draws and 1-second block folds (mean over --seeds); `control_logistic`, `control_cnn`: the same on
  the control (the re-encode against a second encode of the same frames: must stay ~0.5, else the net reads the
  codec); each again with both sides matched in head pose too (`..._pose`: bench.realism's "pose" sampling; a dub
  opens its mouth at other head poses than the footage, and the net sees the face's outline and the background at
  the crop's edges); `cnn_by_features`: the net on one filter group at a time (which grain, the chroma, the random
  filters); `cnn_dub_minus_real`: per filter group and cell, the dub's mean minus the original's (sd units);
- an occlusion map (first draw): each 16 px square of the crop (8 px apart) greyed out in turn, the mean drop of the
  out-of-fold log-odds of the crop's true class (positive: the square told the net the answer);
- PNGs in --sheets: `<clip>_map.png` (mean original crop | mean dub crop | the map over the original, red where
  the net finds its evidence) and `<clip>_surest.png`, blind pairs of the crops the net was surest of (the dub
  frames it gave the highest out-of-fold odds of a dub, the real frames the lowest, in opening order), key beside it.

The net is cleaned of the codec as bench.realism's is (the control's encode differences, CODEC_RANK directions per
fold, out of its features; the occlusion map's models too); `--codec-rank 0` scores it raw, as before stop 39.

    PYTHONPATH=$PWD nice -n 10 .venv/bin/python -m bench.realism_cnn --out /tmp/realism_run --clips a,b
        [--seeds 4] [--sheets DIR] [--json F] [--codec-rank N]
"""

from __future__ import annotations

import sys
import zlib
from pathlib import Path

import cv2
import numpy as np

from bench import realism_convnet as cnnet
from bench import realism_detect as det
from bench.realism import CONTROL_LEAD, SEED, Side, column_summary, compare, read_side, work_folder_parser
from lipdub.core.files import write_json

SUREST = 8  # blind pairs on the surest sheet


def _png(path: Path, rgb: np.ndarray) -> None:
    ok, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png.tobytes())


def map_png(real_crops: list, fake_crops: list, heat: np.ndarray, path: Path) -> None:
    """Mean original crop | mean dub crop | the occlusion map's positive part over the original (red: evidence)."""
    mr = np.mean(np.stack(real_crops).astype(np.float32), 0)
    mf = np.mean(np.stack(fake_crops).astype(np.float32), 0)
    pos = np.maximum(heat, 0) / max(float(np.maximum(heat, 0).max()), 1e-12)
    h = cv2.resize(pos.astype(np.float32), mr.shape[1::-1], interpolation=cv2.INTER_LINEAR)[..., None]
    over = mr * (1 - 0.6 * h) + np.array([255, 0, 0], np.float32) * 0.6 * h
    gap = np.full((mr.shape[0], 6, 3), 255, np.float32)
    _png(path, np.clip(np.hstack([mr, gap, mf, gap, over]), 0, 255).astype(np.uint8))


def surest_sheet(real: Side, fake: Side, ia: np.ndarray, ib: np.ndarray, p: np.ndarray, path: Path,
                 n: int = SUREST) -> None:
    """Blind pairs of the real frames the net called most surely real and the dub frames most surely dubbed
    (out-of-fold probabilities p over the matched samples, real first), each side in opening order; key beside."""
    pr, pf = p[:len(ia)], p[len(ia):]
    ra, fb = ia[np.argsort(pr)[:n]], ib[np.argsort(-pf)[:n]]
    ra, fb = ra[np.argsort(real.opening[ra])], fb[np.argsort(fake.opening[fb])]
    sheet, key = det.blind_pairs([real.crops[i] for i in ra], [fake.crops[i] for i in fb],
                                 seed=zlib.crc32(path.stem.encode()))
    _png(path, sheet)
    odds = dict(zip(np.r_[ia, ib + 10 ** 6].tolist(), p.tolist()))  # dub indices offset to share one dict
    write_json(path.with_suffix(".json"), {"real_is": key, "rows": [
        {"real_time": round(float(real.times[a]), 3), "dubbed_time": round(float(fake.times[b]), 3),
         "real_opening": round(float(real.opening[a]), 3), "dubbed_opening": round(float(fake.opening[b]), 3),
         "p_dub_real": round(odds[int(a)], 3), "p_dub_dubbed": round(odds[int(b) + 10 ** 6], 3)}
        for a, b in zip(ra, fb)]})


def dub_minus_real(real: np.ndarray, fake: np.ndarray) -> dict[str, list]:
    """Per filter group, (GRID, GRID) the dub's mean minus the original's of the unshifted features, in units of the
    original's spread, averaged over the group's maps: where, and in what, the dub has more (+) or less (-)."""
    a, b = real[:, :cnnet.N_FEATURES], fake[:, :cnnet.N_FEATURES]
    d = (b.mean(0) - a.mean(0)) / (a.std(0) + 1e-9)
    return {g: np.round(d[cols].reshape(-1, cnnet.GRID, cnnet.GRID).mean(0), 2).tolist()
            for g, cols in cnnet.FEATURE_GROUPS.items()}


def clip_cnn(work: Path, max_seconds: float | None, seeds: int, sheets: Path | None,
             rank: int = cnnet.CODEC_RANK) -> dict:
    real = read_side(work / "original.mp4", max_seconds)
    fake = read_side(work / "dubbed.mp4", max_seconds)
    twin = read_side(work / "original_again.mp4", max_seconds, skip=CONTROL_LEAD)
    row = {}
    for key, other in (("", fake), ("control_", twin)):
        for sampling, tag in (("opening", ""), ("pose", "_pose")):
            logistic = compare(real, other, seed=SEED, seeds=seeds, sampling=sampling)
            net = cnnet.compare(real, other, SEED, seeds, sampling=sampling, groups=not tag, twin=twin, rank=rank)
            row[f"{key}logistic{tag}"], row[f"{key}cnn{tag}"] = logistic.get("accuracy"), net.get("accuracy")
            row[f"{key}samples{tag}"] = net.get("samples")
            if not tag:
                row[f"{key}cnn_by_features"] = net.get("by_features")
    if row["cnn"] is not None:
        ia, ib = det.matched_sample(real.opening, fake.opening, seed=SEED)
        row["cnn_dub_minus_real"] = dub_minus_real(real.cnn_features()[ia], fake.cnn_features()[ib])
    if sheets is not None and row["cnn"] is not None:
        y = np.r_[np.zeros(len(ia)), np.ones(len(ib))]
        blocks = np.floor(np.r_[real.times[ia], fake.times[ib]]).astype(int)
        crops_r, crops_f = [real.crops[i] for i in ia], [fake.crops[i] for i in ib]
        codec = cnnet.encode_differences(real, twin) if rank else None
        heat, p = cnnet.occlusion_map(crops_r + crops_f, y, blocks, seed=SEED, codec=codec)
        row["occlusion"] = np.round(heat, 3).tolist()
        row["occlusion_accuracy"] = round(det.balanced_accuracy(y, p > 0.5), 3)
        map_png(crops_r, crops_f, heat, sheets / f"{work.name}_map.png")
        surest_sheet(real, fake, ia, ib, p, sheets / f"{work.name}_surest.png")
    return row


def main(argv: list[str] | None = None) -> int:
    ap = work_folder_parser(__doc__)
    ap.add_argument("--sheets", type=Path, default=None, help="where the PNGs go (default OUT/cnn)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--codec-rank", type=int, default=cnnet.CODEC_RANK,
                    help="directions of the control's encode differences taken out of the net's features (0: none)")
    args = ap.parse_args(argv)
    sheets = args.sheets or args.out / "cnn"
    rows = {}
    for name in args.clips.split(","):
        rows[name] = r = clip_cnn(args.out / "work" / name, args.max_seconds, args.seeds, sheets, args.codec_rank)
        fmt = lambda v: "—" if v is None else f"{v:.3f}"  # noqa: E731
        print(f"{name}: logistic {fmt(r['logistic'])} CNN {fmt(r['cnn'])}; control: logistic "
              f"{fmt(r['control_logistic'])} CNN {fmt(r['control_cnn'])} ({r['samples']} frames/side); pose-matched: "
              f"logistic {fmt(r['logistic_pose'])} CNN {fmt(r['cnn_pose'])}, control: logistic "
              f"{fmt(r['control_logistic_pose'])} CNN {fmt(r['control_cnn_pose'])} ({r['samples_pose']} frames/side)",
              flush=True)
        if r.get("cnn_by_features"):
            print("  CNN by filter group: " + ", ".join(f"{g} {v:.3f}" for g, v in r["cnn_by_features"].items()))
        for g, cells in (r.get("cnn_dub_minus_real") or {}).items():
            print(f"  dub - original, {g} (sd units): " + " | ".join(" ".join(f"{v:+.2f}" for v in row)
                                                                for row in cells))
        if "occlusion" in r:
            print("  occlusion (drop of the true class's log-odds, rows top→bottom):")
            for line in r["occlusion"]:
                print("   " + " ".join(f"{v:+6.3f}" for v in line))
        summary = column_summary(rows.values(), ("logistic", "cnn", "control_logistic", "control_cnn",
                                                 "logistic_pose", "cnn_pose", "control_logistic_pose",
                                                 "control_cnn_pose"))
        if args.json:
            write_json(args.json, {"command": " ".join(sys.argv), "seeds": args.seeds, "summary": summary,
                                   "rows": rows})
    for k, v in summary.items():
        if v["n"]:
            print(f"{k}: mean {v['mean']:.3f} (min {v['min']:.3f}, max {v['max']:.3f}) over {v['n']} clips")
    return 0


if __name__ == "__main__":
    sys.exit(main())
