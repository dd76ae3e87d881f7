"""training/: the dataset manifest, the model cards beside the shipped motion models, and the one loading policy
(a model that differs from its card or from the code's feature schema fails loudly). Retraining itself is slow
(`make train`, `make train-causal`): here only what can be checked quickly."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

from lipdub import motion
from lipdub.errors import DependencyError
from lipdub.motion import models
from training import cards, evaluate, manifest
from training.fit import fit_mlp


def test_manifest_names_every_file_once_with_sha256_speaker_and_licence():
    files = manifest.files()
    clips = manifest.filmed_clips() + manifest.audio_clips()
    names = [c.name for c in clips]
    assert len(names) == len(set(names))
    for clip in clips:
        assert clip.path in files and re.fullmatch(r"[0-9a-f]{64}", clip.sha256), clip
        assert clip.speaker and clip.licence and clip.source, clip
    for case in manifest.eval_cases().values():
        assert case.video in files and case.audio_clip in files
        manifest.speaker_of(case.audio_clip)  # every truth clip is a filmed clip with a speaker
    # every file the manifest names is used by a clip (its video or its paired sound) or a case
    used = {p for c in clips for p in (c.path, c.audio_path)} | {
        p for c in manifest.eval_cases().values() for p in (c.video, c.audio_clip)}
    assert used == set(files)


def test_the_evaluation_cases_come_from_the_manifest():
    assert evaluate.CASES == manifest.eval_cases()
    assert list(evaluate.CASES) == ["cnn_anchor", "grid_bbaf2n", "grid_lbax4n", "hdtf_katiehill", "woman_bluebg"]


def cells_speaker(root, path):
    """The speaker id train/MANIFEST.md gives the file at `path`."""
    for line in (root / "train" / "MANIFEST.md").read_text().splitlines():
        if line.startswith(f"| `{path.removeprefix('train/')}` |"):
            return line.strip().strip("|").split("|")[1].strip()
    raise KeyError(path)


def test_manifest_agrees_with_the_data_folder():
    """sha256 and licence of every file as the data root's MANIFEST.md gives them (skipped without the data)."""
    from conftest import require_data

    root = require_data("MANIFEST.md")
    table = {}
    for line in (root / "MANIFEST.md").read_text().splitlines():
        if m := re.match(r"\| `([^`]+)` \|", line):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            table[m.group(1)] = (cells[4], cells[-1])
    # train/MANIFEST.md: file, speaker id, repo, path, commit, sha256 prefix, ..., audio, language, licence, note, …
    for line in (root / "train" / "MANIFEST.md").read_text().splitlines():
        if (m := re.match(r"\| `([^`/]+)` \|", line)) and line.count("|") == 14:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            table["train/" + m.group(1)] = (cells[5], cells[10])
            if wav := re.search(r"paired `([^`]+)`.*sha256 ([0-9a-f]+)\)", cells[8]):  # its sound, beside the video
                table["train/" + wav.group(1)] = (wav.group(2), cells[10])
    filmed = {c.path: c for c in manifest.filmed_clips()}
    for clip in filmed.values():
        if clip.path.startswith("train/"):
            assert clip.speaker == cells_speaker(root, clip.path), clip
    for path, meta in manifest.files().items():
        prefix, licence = table[path]
        assert meta["sha256"].startswith(prefix) and meta["licence"] == licence, path
    manifest.require_data(root)  # every file there, with its sha256


@pytest.mark.parametrize("path", cards.SHIPPED, ids=lambda p: p.name)
def test_each_shipped_model_has_a_card_matching_file_code_and_manifest(path):
    card = json.loads(models.card_path(path).read_text())
    assert card["file"] == path.name and card["sha256"] == models.file_sha256(path)
    kind = cards.KINDS[path.name]
    schema, model = cards.schema_of(path, kind)
    assert card["feature_schema"] == schema
    with np.load(path) as z:
        assert card["arrays"] == {k: {"shape": list(z[k].shape), "dtype": str(z[k].dtype)} for k in sorted(z.files)}
    want = cards.training_clips(kind, cards.sources_of(path))
    assert card["training_data"]["sources"] == cards.sources_of(path)
    assert [(c["path"], c["range"], c["speaker"], c["sha256"], c["licence"]) for c in card["training_data"]["clips"]] \
        == [(c.path, list(c.range) if c.range else None, c.speaker, c.sha256, c.licence) for c in want]
    assert card["rebuild"] in ("make train", "make train-causal")
    assert card["git_commit"] and card["date"]
    assert cards.check_shipped() == []


def test_the_offline_schema_names_its_columns_explicitly():
    model = motion.load_model()
    names = motion.offline_feature_names(model.mel_context, model.posterior_taps, model.component_taps)
    assert len(names) == len(set(names)) == model.n_features
    # the shipped model reads the phone posteriors and the token components
    assert model.posterior_taps == model.component_taps == motion.OFFLINE_POSTERIOR_TAPS
    # the shipped model learned the dominance columns in this order; the viseme table may change, this may not
    assert list(motion.FEATURE_LABELS) == sorted(motion.VISEMES)
    assert names[:2] == ["dominance:AA", "dominance:AE"] and names[-228:-225] == ["jaw", "loudness", "voiced"]
    assert names[-161] == "posterior+0.12:other" and names[-1] == "component+0.12:31"


def _copy_with_card(path, tmp_path):
    out = tmp_path / path.name
    shutil.copy(path, out)
    shutil.copy(models.card_path(path), models.card_path(out))
    return out


def test_a_model_that_differs_from_its_card_fails_loudly(tmp_path):
    out = _copy_with_card(models.MODEL_PATH, tmp_path)
    with np.load(out) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["b2"] = arrays["b2"] + 1
    np.savez(out, **arrays)
    with pytest.raises(DependencyError, match="is not the file its card"):
        motion.load_opening_model(out)


def test_a_card_with_another_schema_fails_loudly(tmp_path):
    out = _copy_with_card(models.CAUSAL_MODEL_PATH, tmp_path)
    card = json.loads(models.card_path(out).read_text())
    looks = card["feature_schema"]["looks"]
    first = next(iter(looks))
    looks[first]["opening"] = looks[first]["opening"][::-1]  # the same columns, another order
    models.card_path(out).write_text(json.dumps(card))
    with pytest.raises(DependencyError, match="trained on other inputs"):
        motion.load_causal_file(out)


def test_a_broken_model_file_fails_loudly_offline_and_live(tmp_path):
    for path, load in ((models.MODEL_PATH, motion.load_opening_model), (models.CAUSAL_MODEL_PATH,
                                                                       motion.load_causal_file)):
        broken = tmp_path / path.name
        broken.write_bytes(b"not a model")
        with pytest.raises(DependencyError, match="missing or unreadable"):
            load(broken)


def test_a_shipped_model_without_its_card_fails_loudly(tmp_path):
    with pytest.raises(DependencyError, match="model card .* is missing"):
        models.check_card(tmp_path / "motion_model.npz", {}, required=True)


def test_fitting_is_deterministic():
    """The fits are seeded: the same frames give the same arrays (what `make train` relies on to reproduce)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 12))
    y = np.tanh(x[:, 0]) + 0.1 * rng.normal(size=600)
    a, b = fit_mlp(x, y, members=2, epochs=2), fit_mlp(x, y, members=2, epochs=2)
    assert all(np.array_equal(a.arrays[k], b.arrays[k]) for k in a.arrays)


def test_training_never_changes_a_model_file_unless_it_reproduces_it_exactly(tmp_path, monkeypatch):
    from training import train_motion

    monkeypatch.setattr(train_motion, "REBUILT", tmp_path / "rebuilt")
    monkeypatch.setattr(train_motion, "write_card", lambda out, kind, held_out, **kw: models.card_path(out))
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(300, 4)), rng.normal(size=300)
    model = fit_mlp(x, y, members=1, epochs=1)
    arrays = {k: v.astype(np.float32) for k, v in model.arrays.items()}
    out = tmp_path / "m.npz"
    assert train_motion.publish_model(model, arrays, out, "opening", None) == out  # new: written
    before = out.read_bytes()
    assert train_motion.publish_model(model, arrays, out, "opening", None) == out  # the same arrays: left as is
    assert out.read_bytes() == before
    other = fit_mlp(x, y + 1, members=1, epochs=1)
    side = train_motion.publish_model(other, {k: v.astype(np.float32) for k, v in other.arrays.items()}, out,
                                      "opening", None)
    assert side == tmp_path / "rebuilt" / "m.npz" and side.is_file() and out.read_bytes() == before


def test_heldout_models_of_chosen_groups_alone_never_see_their_speaker(tmp_path, monkeypatch):
    """--groups: only the named speaker groups' held-out models are fitted and written, each on the other groups'
    clips (what bench.profile_eval --heldout reads: cnn.npz)."""
    from training import train_motion

    monkeypatch.setattr(train_motion, "speaker_of_name",
                        lambda: {"cnn_a": "cnn", "cnn_b": "cnn", "grid_1": "grid", "st_1": "st", "st_2": "st"})
    fitted = []

    class Saved:
        def __init__(self, names):
            self.names = names

        def save(self, path):
            path.write_text(",".join(self.names))

    def fit(names, members):
        fitted.append(sorted(names))
        return Saved(sorted(names))

    samples = dict.fromkeys(["cnn_a", "cnn_b", "grid_1", "st_1", "st_2"])
    models_ = train_motion.heldout_models(samples, fit, members=1, out=tmp_path, only=["cnn"])
    assert list(models_) == ["cnn"] and fitted == [["grid_1", "st_1", "st_2"]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cnn.npz"]
    assert (tmp_path / "cnn.npz").read_text() == "grid_1,st_1,st_2"
    assert len(train_motion.heldout_models(samples, fit, members=1, out=None)) == 3  # default: every group
    with pytest.raises(ValueError, match="nobody"):
        train_motion.heldout_models(samples, fit, members=1, out=None, only=["nobody"])


def test_the_token_axes_are_written_only_when_they_differ_and_carry_a_card(tmp_path, monkeypatch):
    from lipdub.speech import tokens
    from training import train_motion

    monkeypatch.setattr(train_motion, "REBUILT", tmp_path / "rebuilt")
    rng = np.random.default_rng(4)
    n_tok = len(tokens.recognise.token_phones())
    clips = [rng.dirichlet(np.full(n_tok, 0.2), 80).astype(np.float32) for _ in range(2)]
    axes = tokens.fit_axes(clips)
    out = tmp_path / "token_axes.npz"
    assert train_motion.publish_axes(axes, out) == out
    card = json.loads(models.card_path(out).read_text())
    assert card["sha256"] == models.file_sha256(out) and card["kind"] == "token-axes"
    assert [c["path"] for c in card["training_data"]["clips"]] == [c.path for c in manifest.training_clips("opening")]
    assert np.array_equal(tokens.load_axes(str(out)).axes, axes.axes)
    before = out.read_bytes()
    assert train_motion.publish_axes(tokens.fit_axes(clips), out) == out and out.read_bytes() == before  # same
    other = train_motion.publish_axes(tokens.fit_axes(clips[:1]), out)
    assert other == tmp_path / "rebuilt" / out.name and out.read_bytes() == before


def test_each_recipe_learns_from_its_own_clips():
    """all: every filmed clip (the live model too, and the audio-only clips); video: the 14 filmed clips of video/
    (the live model's recipe before the train/ clips, its baseline); permissive: GRID and the public-domain sample."""
    filmed, audio = manifest.filmed_clips(), manifest.audio_clips()
    assert manifest.training_clips("opening") == filmed and manifest.training_clips("causal") == filmed + audio
    video = manifest.training_clips("causal", "video")
    assert [c.path for c in video if c.filmed] == [c.path for c in filmed if c.path.startswith("video/")]
    assert len([c for c in video if c.filmed]) == 14 and [c for c in video if not c.filmed] == audio
    assert all(c.permissive for c in manifest.training_clips("causal", "permissive"))
    with pytest.raises(ValueError, match="sources"):
        manifest.training_clips("opening", "everything")
