"""--speaker auto: among the few largest persistent faces, the one whose mouth moves with the video's own sound.

The face stage only compares mouths; how the mouth should move with the sound is its caller's (see MouthFromSound).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator

import numpy as np

from lipdub.core.constants import SR
from lipdub.core.metrics import pearson_at_best_lag
from lipdub.face.detect import Landmarker
from lipdub.face.follow import Follower, SurveyTrack
from lipdub.face.measure import inner_opening

log = logging.getLogger("lipdub")

# Speaker choice. "largest": the largest persistent face. "auto": among the few largest persistent faces, the one whose
# mouth moves with the video's own sound (falls back to the largest when there is no sound or nothing correlates).
SPEAKER_MODES = ("largest", "auto")
# --speaker auto asks its caller how the mouth should move with a stretch of sound: given 16 kHz mono samples, a
# function from frame times (s, from the stretch's start) to the predicted inner-lip opening, or None when the stretch
# holds no speech. The face stage only compares mouths; the prediction is the speech and motion stages' (see
# pipeline.speaker).
MouthFromSound = Callable[[np.ndarray], "Callable[[np.ndarray], np.ndarray] | None"]
AUTO_MAX_CANDIDATES = 4  # faces compared, by survey score
AUTO_MIN_PRESENCE = 0.25  # share of the survey samples a candidate must appear in
AUTO_WINDOW = 20.0  # s of video tracked densely per candidate
AUTO_MAX_LAG = 3  # frames: the best lag within ± this many frames counts (sound and picture may be a little off)
AUTO_MIN_R = 0.15  # below this, no face moves with the sound: fall back to the largest


def auto_speaker(tracks: list[SurveyTrack], survey_frames: list[int], survey_times: list[float],
                 frames: Callable[[], Iterator], frames_from: Callable[[int], Iterator] | None,
                 width: int, height: int, fps: float, step: int, audio: np.ndarray | None, workers: int,
                 mouth_from_sound: MouthFromSound | None
                 ) -> tuple[SurveyTrack | None, dict[int, np.ndarray | None], dict]:
    """--speaker auto: the candidate face whose mouth opening follows the mouth the video's own sound predicts.

    Candidates are the AUTO_MAX_CANDIDATES best survey tracks seen in at least AUTO_MIN_PRESENCE of the survey. Each
    is tracked on every frame of one window of up to AUTO_WINDOW s (where the candidates are seen most), in parallel;
    meanwhile the window's sound goes through the speech analysis and the motion model (the same audio → mouth
    prediction that drives the dub). Pearson r of each candidate's inner-lip opening against that prediction, at the
    best lag within ±AUTO_MAX_LAG frames, decides. A raw loudness or voice-activity envelope is not enough: on the
    shared HDTF clips (8 s each) it correlated with the speaker's own mouth (r ≤ 0.23) no better than with the other
    speaker's (up to 0.33); the predicted mouth gives r 0.63–0.69 for the speaker against −0.18–−0.03 for the other face (and
    still 0.36–0.39 against ≤ 0 with the viseme rules alone, which never saw these clips).

    Returns the chosen track, the chosen face's landmarks on the window's frames (the dense pass reuses them) and a
    summary for FaceTrack.meta.
    """
    t_start = time.perf_counter()
    ranked = sorted(tracks, key=lambda t: -t.score)
    largest = ranked[0] if ranked else None
    need = AUTO_MIN_PRESENCE * max(len(survey_frames), 1)
    cands = [t for t in ranked[:AUTO_MAX_CANDIDATES] if len(t.samples) >= need]
    info: dict = {"mode": "auto", "chosen": "largest", "candidates": []}
    if len(cands) < 2:
        log.debug("--speaker auto: %d persistent face(s), nothing to choose", len(cands))
        return largest, {}, info
    if audio is None or len(audio) < SR // 2:
        log.warning("--speaker auto: the video has no sound to match the mouths against; dubbing the largest face "
                    "(use --face-index or --face-box to pick another)")
        return largest, {}, info

    # the window: AUTO_WINDOW s of video where the candidates are seen most (the earliest such window)
    win = max(1, int(round(AUTO_WINDOW * fps)))
    span = max(1, int(np.ceil(win / step)))
    presence = np.zeros(len(survey_frames))
    for c in cands:
        presence[c.samples] += 1
    s0 = 0
    if len(survey_frames) > span:
        csum = np.concatenate([[0.0], np.cumsum(presence)])
        s0 = int(np.argmax(csum[span:] - csum[:-span]))
    f0, f1 = survey_frames[s0], survey_frames[s0] + win
    a0 = max(0.0, survey_times[s0])
    clip = np.asarray(audio[int(a0 * SR): int((a0 + win / fps) * SR) + SR // 10], np.float32)

    followers = [Follower(c, survey_frames, step, width, height) for c in cands]
    found: list[dict[int, np.ndarray | None]] = [{} for _ in cands]
    frame_times: dict[int, float] = {}
    local = threading.local()
    made: list[Landmarker] = []

    def follow(k: int, i: int, rgb: np.ndarray) -> None:
        det = getattr(local, "det", None)
        if det is None:
            det = local.det = Landmarker(num_faces=4)
            made.append(det)
        found[k][i] = followers[k].find(det, i, rgb)

    n_workers = max(1, min(max(workers, 2), len(cands)))
    with ThreadPoolExecutor(1, thread_name_prefix="lipdub-speaker-audio") as audio_pool, \
            ThreadPoolExecutor(n_workers, thread_name_prefix="lipdub-speaker") as pool:
        analysis = audio_pool.submit(mouth_from_sound, clip)
        try:
            for fr in (frames_from(f0) if frames_from is not None else frames()):
                if fr.index < f0:
                    continue
                if fr.index >= f1:
                    break
                frame_times[fr.index] = fr.time
                list(pool.map(follow, range(len(cands)), [fr.index] * len(cands), [fr.rgb] * len(cands)))
        finally:
            for det in made:
                det.close()
        analysed = True
        try:
            predict = analysis.result()
        except Exception as exc:  # the sound cannot be analysed: the choice falls back, the dub goes on
            log.warning("--speaker auto: could not analyse the video's sound (%s)", exc)
            predict, analysed = None, False

    idx = np.array(sorted(frame_times), dtype=np.int64)
    rs: list[float] = []
    if predict is not None and len(idx) >= 8:
        predicted = predict(np.array([frame_times[i] for i in idx]) - a0)
        for k, c in enumerate(cands):
            curve = np.full(len(idx), np.nan)
            hits = [n for n, i in enumerate(idx) if found[k].get(int(i)) is not None]
            if hits:
                curve[hits] = inner_opening(np.stack([found[k][int(idx[n])] for n in hits]))
            r = np.nan
            if len(hits) >= 0.5 * len(idx):
                r, lag, _ = pearson_at_best_lag(curve, predicted, AUTO_MAX_LAG)
            else:
                lag = 0
            box = np.median(np.array(c.boxes), axis=0)
            rs.append(float(r))
            info["candidates"].append({"box": [round(float(v), 1) for v in box], "r": round(float(r), 4),
                                       "lag": int(lag), "frames_found": len(hits)})
    info["window"] = (round(a0, 3), round(a0 + len(idx) / fps, 3))
    info["seconds"] = round(time.perf_counter() - t_start, 3)
    best = int(np.nanargmax(rs)) if rs and np.isfinite(rs).any() else None
    if best is None or rs[best] < AUTO_MIN_R:
        if not analysed:
            why = "its sound could not be analysed"
        elif not rs:
            why = "no speech in the sound there"
        else:
            why = f"no mouth moves with the sound: best r {rs[best] if best is not None else float('nan'):.2f}"
        log.warning("--speaker auto: cannot tell who speaks in %.1f–%.1f s of the video (%s); dubbing the largest "
                    "face (use --face-index or --face-box to pick another)", *info["window"], why)
        k = next((k for k, c in enumerate(cands) if c is largest), None)  # its window is tracked already
        return largest, (found[k] if k is not None else {}), info
    info["chosen"] = best
    box = info["candidates"][best]["box"]
    log.info("--speaker auto: the face centred at %.0f,%.0f speaks (r %s for the %d candidates)",
             box[0] + box[2] / 2, box[1] + box[3] / 2, ", ".join(f"{r:.2f}" for r in rs), len(cands))
    return cands[best], found[best], info

