"""Conversations and --length fit, measured on the shared clips (built in a temporary folder, never stored).

    python -m bench.conversation [--keep DIR]

Two faces: hdtf_katiehill (left, face 1) beside hdtf_radio34 (right, face 0), 6 s. The left voice is katiehill's own
audio at 3–6 s spoken at 0–3 s (where the left face was filmed saying something else), then silence; the right voice
is silence, then radio34's audio at 0–3 s spoken at 3–6 s. Each face of the dub is re-tracked: r is its mouth
opening against the filmed mouth its voice came from (Pearson at the best lag within ±5 frames), r_frames the same
against the mouth filmed on the frames it was drawn on, rest the spread (std) of its opening while the other face
speaks over its spread while it speaks (EDGE frames next to the change of turn left out). Dubbed twice: two voice
files, and one mixed track with an RTTM speaker map.

--length fit: selfie_expressive 0.9–6.5 s with its own sound (two phrases and a pause) dubbed with speech cut from
radio34, phrase 1 30 % longer, phrase 2 20 % shorter, a 1 s pause between; the output frame at each new phrase's
start is matched to the original's frames by the upper face (the mouth is redrawn).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from scipy.io import wavfile

import lipdub
from lipdub import face, media
from lipdub.core.constants import SR
from lipdub.core.metrics import pearson_at_best_lag
from lipdub.pipeline import DubOptions, load_track
from lipdub.speech.vad import phrases

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LEFT, RIGHT = "video/hdtf_katiehill_8s.mp4", "video/hdtf_radio34_8s.mp4"
SELFIE = "video/selfie_expressive_15s.mp4"
TURN = 75  # frames per turn: 3 s at 25 fps
EDGE = 8  # frames next to a change of turn left out of the rest measure (the mouth closes / opens over them)


def write_wav(path: Path, samples) -> Path:
    wavfile.write(path, SR, np.asarray(samples, np.float32))
    return path


def build_scene(folder: Path, data: Path = DATA) -> dict:
    """The two-face composite and the voices (see the module docstring)."""
    video = folder / "two_faces.mp4"
    li = media.probe_video(data / LEFT)
    with media.VideoWriter(video, 2 * li.width, li.height, li.fps, crf=18) as w:
        for a, b in zip(media.iter_frames(data / LEFT), media.iter_frames(data / RIGHT)):
            if a.index >= 2 * TURN:
                break
            w.write(np.concatenate([a.rgb, b.rgb], axis=1))
    kate = media.load_audio(data / LEFT, SR)[0]
    radio = media.load_audio(data / RIGHT, SR)[0]
    quiet = np.zeros(3 * SR, np.float32)
    left = np.concatenate([kate[3 * SR:6 * SR], quiet])
    right = np.concatenate([quiet, radio[:3 * SR]])
    rttm = folder / "map.rttm"
    rttm.write_text("SPEAKER mixed 1 0.00 3.00 <NA> <NA> kate <NA> <NA>\n"
                    "SPEAKER mixed 1 3.00 3.00 <NA> <NA> radio <NA> <NA>\n")
    return {"dir": folder, "video": video, "left": write_wav(folder / "left.wav", left),
            "right": write_wav(folder / "right.wav", right),
            "mixed": write_wav(folder / "mixed.wav", left + right),
            "rttm": rttm, "left_samples": left, "right_samples": right}


def opening(path, face_index=None, face_box=None, cache=True) -> np.ndarray:
    track = load_track(path, media.probe_video(path), DubOptions(face_index=face_index, face_box=face_box,
                                                                  cache=cache), None)
    o = face.inner_opening(track.landmarks).astype(np.float64)
    o[~track.valid] = np.nan
    return o


def measure_turns(scene: dict, out) -> dict:
    """Per face: r against its voice's filmed mouth, r against its frames' own filmed mouth, rest/speaking spread,
    rest/speaking mean opening, share of frames re-tracked."""
    filmed_left = opening(scene["video"], face_index=1)
    filmed_right = opening(scene["video"], face_index=0)
    got = {"left": opening(out, face_box=(0, 0, 512, 512), cache=False),
           "right": opening(out, face_box=(512, 0, 512, 512), cache=False)}
    cases = {"left": (slice(0, TURN), slice(TURN + EDGE, 2 * TURN), filmed_left[TURN:2 * TURN], filmed_left[:TURN]),
             "right": (slice(TURN, 2 * TURN), slice(0, TURN - EDGE), filmed_right[:TURN], filmed_right[TURN:])}
    measured = {}
    for side, (own, other, voice_mouth, frames_mouth) in cases.items():
        o = got[side]
        measured[side] = {"r": round(pearson_at_best_lag(o[own], voice_mouth, 5)[0], 3),
                          "r_frames": round(pearson_at_best_lag(o[own], frames_mouth, 5)[0], 3),
                          "rest_spread": round(float(np.nanstd(o[other]) / np.nanstd(o[own])), 3),
                          "rest_mean": round(float(np.nanmean(o[other]) / np.nanmean(o[own])), 3),
                          "tracked": round(float(np.isfinite(o).mean()), 3)}
    return measured


def build_fit(folder: Path, data: Path = DATA) -> dict:
    """The --length fit case: the original (two phrases and a pause) and the new speech (see the docstring)."""
    info = media.probe_video(data / SELFIE)
    fps = info.fps
    own = media.video_audio(data / SELFIE, SR)
    original = folder / "original.mp4"
    a0, a1 = 0.9, 6.5
    with media.VideoWriter(original, info.width, info.height, fps, audio=own[int(a0 * SR):int(a1 * SR)],
                           audio_sr=SR, crf=14) as w:
        for fr in media.iter_frames(data / SELFIE, int(round(a0 * fps))):
            if fr.index >= int(round(a1 * fps)):
                break
            w.write(fr.rgb)
    said = phrases(media.video_audio(original, SR))
    (s1, e1), (s2, e2) = said[0], said[-1]
    voice = media.load_audio(data / RIGHT, SR)[0]
    quiet = lambda t: np.zeros(int(t * SR), np.float32)  # noqa: E731
    new = np.concatenate([quiet(s1), voice[SR // 2:SR // 2 + int(1.3 * (e1 - s1) * SR)], quiet(1.0),
                          voice[3 * SR:3 * SR + int(0.8 * (e2 - s2) * SR)], quiet(0.4)])
    return {"original": original, "new": write_wav(folder / "new.wav", new), "said": said, "heard": phrases(new),
            "fps": fps, "samples": len(new)}


def _frames(path, upper=False) -> np.ndarray:
    return np.stack([(f.rgb[: f.rgb.shape[0] * 2 // 5] if upper else f.rgb).astype(np.float32)
                     for f in media.iter_frames(path)])


def measure_fit(case: dict, out, report) -> dict:
    """Per phrase: the source frame the output shows at the new phrase's start (matched by the upper face) against
    the original phrase's first frame after its listed shift; the largest frame-to-frame change, dub and original."""
    fps = case["fps"]
    src, dub = _frames(case["original"], upper=True), _frames(out, upper=True)
    starts = []
    for phrase, (start, _) in zip(report.retiming["phrases"], case["heard"]):
        k = int(round(start * fps))
        shown = int(np.argmin(np.abs(src - dub[k][None]).mean(axis=(1, 2, 3))))
        starts.append({"phrase": phrase["phrase"], "shown": shown,
                       "want": int(round((phrase["original"][0] + phrase["shift"]) * fps)), "shift": phrase["shift"]})
    whole_src, whole_dub = _frames(case["original"]), _frames(out)
    return {"starts": starts,
            "largest_change_original": round(float(np.abs(np.diff(whole_src, axis=0)).mean(axis=(1, 2, 3)).max()), 2),
            "largest_change_dub": round(float(np.abs(np.diff(whole_dub, axis=0)).mean(axis=(1, 2, 3)).max()), 2),
            "held": report.retiming["held"], "dropped": report.retiming["dropped"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keep", help="write the clips and dubs here (default: a temporary folder, removed)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="lipdub-conversation-") as tmp:
        folder = Path(args.keep) if args.keep else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        scene = build_scene(folder)
        results = {}
        out = folder / "two_voices.mp4"
        lipdub.dub(scene["video"], [f"{scene['left']}@1", f"{scene['right']}@0"], out)
        results["two_voices"] = measure_turns(scene, out)
        out = folder / "rttm.mp4"
        lipdub.dub(scene["video"], scene["mixed"], out, speakers=str(scene["rttm"]),
                   speaker_face=("kate=1", "radio=0"))
        results["rttm"] = measure_turns(scene, out)
        case = build_fit(folder)
        out = folder / "fit.mp4"
        report = lipdub.dub(case["original"], case["new"], out, length="fit")
        results["fit"] = {"original_phrases": case["said"], "new_phrases": case["heard"],
                          "plan": report.retiming, **measure_fit(case, out, report)}
    print(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
