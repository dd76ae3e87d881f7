"""Model cards: the JSON beside each shipped model file (lipdub/assets/<name>.json).

    python -m training.cards            check every shipped model against its card and the code (exit 1 if not)
    python -m training.cards --write    (re)write the cards of the shipped files as they are (no retraining)

A card holds: name, file, kind, sha256 of the file, the feature schema (input column names in order, per look-ahead
for the live model), the arrays' names, shapes and dtypes, the training data (which clips: all, or only the
permissively licensed ones; each clip of training/dataset.json: path relative to the data root, sha256, speaker,
licence, source, its permissive terms if any), the command that rebuilds it, the git commit and
date of the file, and the held-out score where measured. lipdub.motion.models checks sha256 and schema on loading.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from lipdub.core.files import write_text
from lipdub.motion import models
from lipdub.speech import tokens
from training import manifest
from training.manifest import REPO

# Held-out scores as measured when the shipped files were made (reported beside the code that uses them); None
# where not measured.
HELD_OUT = {
    models.MODEL_PATH.name: {
        "metric": "Pearson r at the best lag, 5 random folds of the 60 speaker groups (each clip scored by a model "
                  "that never heard its fold's speakers; 2 nets, 120 passes)",
        "motion_alone_69_filmed_clips_60_speakers": 0.691,
        "motion_alone_60_speaker_means": 0.689,
        "mean_lag_frames": -0.04,
        "mean_abs_lag_frames": 1.20,
        "before_the_falling_rate_same_command": 0.683,
        "ridge_same_inputs_69_clips": 0.659,
        "rule_based_69_clips": 0.458,
        "measured_by": "python -m training.train_motion --dry-run --folds 5 --members 2 (motion alone, filmed mouths; "
                       "the targets timed by cross_fitted_lags inside each fold's training speakers; the phone "
                       "posteriors and token components from each clip's own speech analysis, the token axes fitted "
                       "on all clips' audio; the recipe before the components, --no-components: 0.665 in the same "
                       "folds and session; the training.tokens screen, axes fitted per fold, 10 folds x 5 nets: "
                       "0.666 -> 0.682; the nets' rate brought down to 0 over their passes since 2026-12-07, stop "
                       "40: 0.683 -> 0.691 here); see MotionParams in lipdub/motion/offline.py",
    },
    models.PERMISSIVE_MODEL_PATH.name: {
        "metric": "Pearson r at the best lag, leave one speaker out (the model never heard the scored speaker)",
        "learned_from": "the permissively licensed clips (GRID, CC BY 4.0) of the other speakers",
        "motion_alone_69_filmed_clips_60_speakers": 0.567,
        "motion_alone_60_speaker_means": 0.569,
        "motion_alone_58_non_grid_clips": 0.543,
        "motion_alone_11_grid_clips": 0.694,
        "ridge_same_data_69_clips": 0.488,
        "rule_based_69_clips": 0.460,
        "mean_lag_frames": -0.13,
        "mean_abs_lag_frames": 1.20,
        "before_the_falling_rate": 0.560,
        "measured_by": "python -m training.train_motion --dry-run --sources permissive --lags (motion alone, leave "
                       "one speaker out, 120 passes, the rate brought down to 0 over them; 2026-12-07, stop 41, on "
                       "the shared data re-created that day; 0.560 / 0.562 before the falling rate, 0.462 at 30 "
                       "passes before that; the research model's recipe on all clips scores 0.691 over 5 folds of "
                       "speakers)",
    },
    models.CAUSAL_MODEL_PATH.name: {
        "metric": "Pearson r at the best lag, leave one speaker out (the model never heard the scored speaker)",
        "motion_alone_14_filmed_clips_at_0.10s": 0.496,
        "measured_by": "bench/motion_eval.py --heldout, before the streamed token components (not re-run); see "
                       "LIVE_SMOOTHING in lipdub/motion/causal.py",
        "motion_alone_69_filmed_clips_2_speaker_folds_at_0.10s": 0.448,
        "motion_alone_14_video_clips_2_speaker_folds_at_0.10s": 0.427,
        "mean_lag_frames_2_speaker_folds": 1.78,
        "mean_abs_lag_frames_2_speaker_folds": 2.04,
        "before_the_falling_rate_2_speaker_folds_at_0.10s": 0.452,
        "without_the_streamed_token_components_same_folds_before_the_falling_rate": 0.439,
        "folds_measured_by": "python -m training.train_causal --dry-run --folds 2 --looks 0.1 (2026-12-07, stop 41: "
                             "the falling rate in the live nets and in each fold's offline teacher, on the shared data "
                             "re-created that day; 0.452 / +1.75 / 2.01 recorded at stop 32 before the falling rate "
                             "and the re-created data, not a same-session comparison; 0.439 without the components "
                             "then, --no-components; rendered in-sample the falling rate took bench.live --skip-speed "
                             "live 0.649 -> 0.673, stop 40)",
    },
    models.PERMISSIVE_CAUSAL_MODEL_PATH.name: {
        "metric": "Pearson r at the best lag, leave one speaker out (the model never heard the scored speaker)",
        "learned_from": "the permissively licensed clips (GRID, CC BY 4.0; the public-domain JFK sample) of the other "
                        "speakers",
        "motion_alone_11_grid_clips_offline_permissive": 0.694,
        "motion_alone_11_grid_clips_at_0.05s": 0.554,
        "motion_alone_11_grid_clips_at_0.10s": 0.588,
        "motion_alone_11_grid_clips_at_0.15s": 0.605,
        "with_the_falling_rate_at_0.05_0.10_0.15s": [0.545, 0.575, 0.587],
        "measured_by": "python -m training.train_causal --sources permissive (GRID speakers held out one at a time); "
                       "its nets' rate constant (train_causal.OPENING_DECAY['permissive'] False: the file before "
                       "2026-12-07, stop 40, rebuilt byte for byte); re-run at stop 41 on the re-created data beside "
                       "the same recipe with the falling rate (lower on 10 of 11 clips at 0.10 s); the offline column "
                       "the permissive offline model held out with its falling rate",
    },
}
KINDS = {models.MODEL_PATH.name: "opening", models.CAUSAL_MODEL_PATH.name: "causal",
         models.PERMISSIVE_MODEL_PATH.name: "opening", models.PERMISSIVE_CAUSAL_MODEL_PATH.name: "causal"}
# what each shipped file learned from (manifest.SOURCES); files of other names (held-out models, experiments): all
SOURCES = {models.PERMISSIVE_MODEL_PATH.name: "permissive", models.PERMISSIVE_CAUSAL_MODEL_PATH.name: "permissive",
           models.CAUSAL_MODEL_PATH.name: "video"}
SHIPPED = (models.MODEL_PATH, models.CAUSAL_MODEL_PATH, models.PERMISSIVE_MODEL_PATH,
           models.PERMISSIVE_CAUSAL_MODEL_PATH)


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def file_commit(path: Path) -> tuple[str, str]:
    """(commit, ISO date) of the last commit that changed `path`; the working tree's HEAD and now when it is
    uncommitted or changed."""
    resolved = Path(path).resolve()
    rel = str(resolved.relative_to(REPO)) if resolved.is_relative_to(REPO) else None
    if rel is None or _git("status", "--porcelain", "--", rel):
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
        return _git("rev-parse", "HEAD") + " (+ uncommitted)", now
    out = _git("log", "-1", "--format=%H %cI", "--", rel)
    commit, _, date = out.partition(" ")
    return commit, date


def schema_of(path: Path, kind: str) -> tuple[dict, object]:
    """The code's feature schema for the model in `path` (read without its card)."""
    if kind == "opening":
        with np.load(path) as z:
            model = models.OpeningModel({k: z[k] for k in z.files if k in models.OPENING_ARRAYS})
        return models.opening_schema(model), model
    model = models.CausalModel.load(path)
    return models.causal_schema(model), model


AXES_KIND = "token-axes"


def axes_schema() -> dict:
    """What the token axes are axes of, as the code computes it (speech.tokens)."""
    return {"tokens": len(tokens.recognise.token_phones()), "components": tokens.N_COMPONENTS, "floor": tokens.FLOOR,
            "input": "log(p + floor) of each 10 ms hop's hama token distribution averaged with one 20 ms frame either "
                     "side; projection (x - mean) @ axes",
            "fitted_on": f"every {tokens.FIT_EVERY}th hop of the training clips' audio (principal axes)"}


def build_card(path: Path, kind: str, clips, sources: str, command: str, held_out: dict | None, commit: str,
               date: str) -> dict:
    schema = axes_schema() if kind == AXES_KIND else schema_of(path, kind)[0]
    with np.load(path) as z:
        arrays = {k: {"shape": list(z[k].shape), "dtype": str(z[k].dtype)} for k in sorted(z.files)}
    return {
        "name": Path(path).stem,
        "file": Path(path).name,
        "kind": kind,
        "sha256": models.file_sha256(path),
        "feature_schema": schema,
        "arrays": arrays,
        "training_data": {
            "data_root": "$LIPDUB_DATA, default ../shared/data beside the checkout (see its MANIFEST.md)",
            "manifest": "training/dataset.json",
            "clips": [{"name": c.name, "path": c.path, "range": list(c.range) if c.range else None,
                       "speaker": c.speaker, "sha256": c.sha256, "licence": c.licence, "source": c.source,
                       "filmed": c.filmed, "permissive": c.permissive} for c in clips],
            "sources": sources,
        },
        "rebuild": command,
        "git_commit": commit,
        "date": date,
        "held_out": held_out,
    }


def sources_of(path) -> str:
    """What the model file at `path` learns from (manifest.SOURCES), by its name."""
    return SOURCES.get(Path(path).name, "all")


def training_clips(kind: str, sources: str = "all") -> list:
    """The manifest's clips a model of `kind` learns from (manifest.training_clips)."""
    return manifest.training_clips(kind, sources)


def write_card(path: Path, kind: str, held_out: dict | None = None, commit: str | None = None,
               date: str | None = None, sources: str | None = None) -> Path:
    """Write the card beside the model at `path`; `sources` (what it learned from) defaults by its file name."""
    path = Path(path)
    if commit is None:
        commit, date = file_commit(path)
    sources = sources or sources_of(path)
    card = build_card(path, kind, training_clips(kind, sources), sources,
                      models.REBUILD.get(path.name, "python -m training"),
                      held_out, commit, date or "")
    out = models.card_path(path)
    write_text(out, json.dumps(card, indent=1) + "\n")
    return out


def write_axes_card(path: Path = tokens.AXES_PATH) -> Path:
    """Write the card beside the token axes at `path` (learned from every filmed clip's audio: `sources` all)."""
    commit, date = file_commit(path)
    card = build_card(path, AXES_KIND, training_clips("opening", "all"), "all", "make train", None, commit, date)
    out = models.card_path(path)
    write_text(out, json.dumps(card, indent=1) + "\n")
    return out


def check_shipped() -> list[str]:
    """Problems with the shipped files and their cards (empty: all consistent)."""
    problems = []
    for path in SHIPPED:
        loader = models.load_opening_model if KINDS[path.name] == "opening" else models.load_causal_file
        try:
            loader(path)
        except Exception as exc:  # report every file
            problems.append(f"{path.name}: {exc}")
            continue
        card = json.loads(models.card_path(path).read_text(encoding="utf-8"))
        want = [c.path for c in training_clips(KINDS[path.name], sources_of(path))]
        if [c["path"] for c in card["training_data"]["clips"]] != want:
            problems.append(f"{path.name}: the card's training clips differ from training/dataset.json")
        if card["training_data"].get("sources") != sources_of(path):
            problems.append(f"{path.name}: the card does not say it learned from {sources_of(path)} clips")
    try:
        tokens.load_axes(str(tokens.AXES_PATH))
        card = json.loads(models.card_path(tokens.AXES_PATH).read_text(encoding="utf-8"))
        if card.get("feature_schema") != axes_schema():
            problems.append(f"{tokens.AXES_PATH.name}: its card's schema differs from what the code computes")
        if [c["path"] for c in card["training_data"]["clips"]] != [c.path for c in training_clips("opening")]:
            problems.append(f"{tokens.AXES_PATH.name}: the card's training clips differ from training/dataset.json")
    except Exception as exc:  # report every file
        problems.append(f"{tokens.AXES_PATH.name}: {exc}")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.cards", description=__doc__.split("\n")[0])
    ap.add_argument("--write", action="store_true", help="(re)write the shipped files' cards as they are")
    args = ap.parse_args(argv)
    if args.write:
        for path in SHIPPED:
            print(f"wrote {write_card(path, KINDS[path.name], HELD_OUT.get(path.name))}")
        print(f"wrote {write_axes_card()}")
    problems = check_shipped()
    print("\n".join(problems) or "model cards: consistent with the files and the code")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
