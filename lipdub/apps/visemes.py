"""exporters: the mouth track without video, for animators (`lipdub visemes`).

- `.tsv`: Rhubarb Lip Sync's mouth cues ("0.00<TAB>X" lines; shapes A–H and X), loadable by its plug-ins;
- `.csv`: one row per frame: opening, width, closure and ARKit-style blendshape weights;
- `.json`: both of the above plus the speech method and phones;
- `.png`: the curves plotted over the waveform.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lipdub.core.constants import SR
from lipdub import media, motion, speech as speech_mod
from lipdub.core.files import write_atomically
from lipdub.errors import OutputError, ParameterError

# Rhubarb's mouth shapes: A closed (p b m), B slightly open/clenched (most consonants, ee), C open (eh, ae),
# D wide open (aa), E slightly rounded (ao, er), F puckered (uw, ow, w), G teeth on lip (f v), H tongue up (l), X rest
_SHAPE_OF = {
    **dict.fromkeys(["P", "B", "M"], "A"),
    **dict.fromkeys(["K", "G", "NG", "S", "Z", "T", "D", "N", "TH", "DH", "HH", "Y", "IY", "IH", "CH", "JH", "SH",
                     "ZH"], "B"),
    **dict.fromkeys(["EH", "AE", "AH", "EY", "AY"], "C"),
    **dict.fromkeys(["AA", "AW"], "D"),
    **dict.fromkeys(["AO", "ER", "R", "OY"], "E"),
    **dict.fromkeys(["UW", "OW", "W", "UH"], "F"),
    **dict.fromkeys(["F", "V"], "G"),
    "L": "H",
    "SIL": "X",
}
SHAPES = "ABCDEFGHX"
BLENDSHAPES = ("jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthSmileLeft", "mouthSmileRight")
FORMATS = (".tsv", ".csv", ".json", ".png")


@dataclass
class Cue:
    start: float
    shape: str


def mouth_cues(speech, mouth, min_duration: float = 0.04) -> list[Cue]:
    """Rhubarb-style cues: the shape of each phone, or from the opening where no phones were recognised; cues shorter
    than min_duration merge into their neighbour (Rhubarb never shows a shape for less than a frame or two)."""
    cues: list[Cue] = []
    speech_phones = [p for p in speech.phones if p.label != "SIL"]
    if speech_phones:
        for p in speech.phones:
            cues.append(Cue(p.start, _SHAPE_OF.get(p.label.upper(), "B")))
    else:  # acoustic only: shapes by opening
        for t, o, shut in zip(mouth.times, mouth.opening, mouth.closed):
            shape = "X" if shut and o == 0 else "B" if o < 0.3 else "C" if o < 0.65 else "D"
            cues.append(Cue(float(t), shape))
    merged: list[Cue] = []
    for c in cues:
        if merged and (c.shape == merged[-1].shape):
            continue
        if merged and c.start - merged[-1].start < min_duration and len(merged) > 1 and merged[-1].shape != "A":
            merged[-1] = Cue(merged[-1].start, c.shape)  # too short to show: the next shape starts earlier
            if len(merged) > 1 and merged[-2].shape == c.shape:
                merged.pop()
            continue
        merged.append(Cue(max(0.0, c.start), c.shape))
    if not merged or merged[0].start > 0:
        merged.insert(0, Cue(0.0, "X"))
    merged[0].start = 0.0
    end = float(speech.duration)
    if merged[-1].shape != "X":
        merged.append(Cue(end, "X"))
    return merged


def lips_closed_jaw_open(opening: np.ndarray, closed: np.ndarray, reach: int = 2) -> np.ndarray:
    """ARKit's mouthClose: lips pressed while the jaw stays open, i.e. a p/b/m inside speech. The jaw's opening is
    taken from the frames around the closure."""
    from scipy.ndimage import maximum_filter1d

    around = maximum_filter1d(opening, 2 * reach + 1)
    return np.where(closed, np.clip(around, 0, 1), 0.0)


def blendshapes(mouth) -> dict[str, np.ndarray]:
    """ARKit-style weights in [0, 1] per frame, from the mouth track."""
    o = np.clip(mouth.opening, 0, 1).astype(np.float64)
    w = np.clip(mouth.width, -1, 1).astype(np.float64)
    rounded = np.clip(-w, 0, 1)
    smile = np.clip(w, 0, 1) * 0.6
    return {
        "jawOpen": o,
        "mouthClose": lips_closed_jaw_open(o, np.asarray(mouth.closed, bool)),
        "mouthFunnel": rounded * np.clip(o / 0.4, 0, 1),  # rounded and open: "oh"
        "mouthPucker": rounded * np.clip(1 - o / 0.4, 0, 1),  # rounded and nearly shut: "oo", "w"
        "mouthSmileLeft": smile,
        "mouthSmileRight": smile,
    }


def _atomic_write(path: Path, write) -> None:
    if not path.parent.is_dir():
        raise OutputError(f"folder {path.parent} does not exist; create it or choose another output path")
    write_atomically(path, write)


def write_tsv(path: Path, cues: list[Cue]) -> None:
    _atomic_write(path, lambda p: p.write_text("".join(f"{c.start:.2f}\t{c.shape}\n" for c in cues)))


def frame_rows(mouth) -> list[dict]:
    shapes = blendshapes(mouth)
    rows = []
    for i, t in enumerate(mouth.times):
        row = {"time": round(float(t), 4), "opening": round(float(mouth.opening[i]), 4),
               "width": round(float(mouth.width[i]), 4), "closed": int(bool(mouth.closed[i]))}
        row.update({k: round(float(v[i]), 4) for k, v in shapes.items()})
        rows.append(row)
    return rows


def write_csv(path: Path, mouth) -> None:
    rows = frame_rows(mouth)

    def write(p: Path) -> None:
        with open(p, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["time"])
            writer.writeheader()
            writer.writerows(rows)
    _atomic_write(path, write)


def write_json(path: Path, speech, mouth, cues: list[Cue]) -> None:
    doc = {
        "format": "lipdub-visemes", "version": 1, "duration": round(float(speech.duration), 4),
        "method": speech.method, "language": speech.language,
        "phones": [[p.label, round(p.start, 4), round(p.end, 4)] for p in speech.phones],
        "mouthCues": [{"start": round(c.start, 2), "end": round(n.start, 2), "value": c.shape}
                      for c, n in zip(cues, cues[1:] + [Cue(float(speech.duration), "X")])],
        "frames": frame_rows(mouth),
    }
    _atomic_write(path, lambda p: p.write_text(json.dumps(doc, indent=1), encoding="utf-8"))


def write_plot(path: Path, audio: np.ndarray, sr: int, speech, mouth, cues: list[Cue]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shapes = blendshapes(mouth)
    fig, (ax_w, ax_c) = plt.subplots(2, 1, figsize=(max(8.0, min(40.0, speech.duration * 1.6)), 5.5), sharex=True,
                                     gridspec_kw={"height_ratios": [1, 2]})
    t = np.arange(len(audio)) / sr
    step = max(1, len(audio) // 20000)
    ax_w.plot(t[::step], audio[::step], color="0.5", lw=0.5)
    ax_w.set_ylabel("audio")
    for c, n in zip(cues, cues[1:] + [Cue(float(speech.duration), "X")]):
        if c.shape != "X":
            ax_w.axvspan(c.start, n.start, color=f"C{SHAPES.index(c.shape)}", alpha=0.15, lw=0)
            ax_w.text(0.5 * (c.start + n.start), ax_w.get_ylim()[1] * 0.8, c.shape, ha="center", fontsize=7)
    ax_c.plot(mouth.times, mouth.opening, label="opening (jawOpen)", lw=1.6)
    ax_c.plot(mouth.times, mouth.width, label="width (+ spread, − rounded)", lw=1.0)
    ax_c.plot(mouth.times, shapes["mouthPucker"], label="mouthPucker", lw=0.8, ls="--")
    ax_c.plot(mouth.times, shapes["mouthFunnel"], label="mouthFunnel", lw=0.8, ls=":")
    closed = np.asarray(mouth.closed, bool)
    ax_c.fill_between(mouth.times, -1.05, -0.95, where=closed, color="k", alpha=0.4, lw=0, label="lips closed")
    ax_c.set_ylim(-1.1, 1.25)
    ax_c.set_xlabel("seconds")
    ax_c.legend(loc="upper right", fontsize=7, ncol=3)
    ax_c.grid(alpha=0.3)
    fig.suptitle(f"lipdub visemes — {speech.method}", fontsize=9)
    fig.tight_layout()
    _atomic_write(path, lambda p: fig.savefig(p, dpi=90, format="png"))
    plt.close(fig)


def export(audio_path, outputs: list, transcript: str | None = None, language: str | None = None,
           fps: float = 100.0, strength: float = 1.0, motion_model: str = motion.MODEL_CHOICES[0]) -> list[Path]:
    """Analyse `audio_path` and write each of `outputs` (format by suffix)."""
    if not outputs:
        raise ParameterError("give at least one output: -o cues.tsv, -o curves.csv, -o curves.json or -o plot.png")
    paths = [Path(o) for o in outputs]
    for p in paths:
        if p.suffix.lower() not in FORMATS:
            raise ParameterError(f"cannot write {p.suffix or 'files without a suffix'}: use {', '.join(FORMATS)}")
    if not 1 <= fps <= 1000:
        raise ParameterError(f"--fps must be between 1 and 1000, got {fps}")
    audio, sr = media.load_audio(audio_path, SR)
    track = speech_mod.analyse(audio, sr, transcript=transcript, language=language)
    times = np.arange(int(round(track.duration * fps))) / fps
    mouth = motion.mouth_track(track, times, strength,
                               params=motion.MotionParams(model=motion.load_model(motion_model)))
    cues = mouth_cues(track, mouth)
    for p in paths:
        kind = p.suffix.lower()
        if kind == ".tsv":
            write_tsv(p, cues)
        elif kind == ".csv":
            write_csv(p, mouth)
        elif kind == ".json":
            write_json(p, track, mouth, cues)
        else:
            write_plot(p, audio, sr, track, mouth, cues)
    return paths
