"""The learned motion models and their one loading policy.

OpeningModel: audio features → mouth opening (the offline model, and each head of the live one). CausalModel: per
look-ahead a phone-class classifier and an opening model, for live (causal) motion. Both ship in lipdub/assets/ with a
model card beside each file (<name>.json: feature schema, sha256, training data, how to rebuild it). Loading is the
same for both: a file that is missing, unreadable, differs from its card or whose inputs differ from the code's
feature schema raises DependencyError saying what to do; nothing falls back silently.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from lipdub.core.assets import ASSETS, card_path, file_sha256
from lipdub.errors import DependencyError, InputError, ParameterError
from lipdub.motion.features import MEL_CONTEXT, NO_COMPONENTS, NO_POSTERIORS, classifier_feature_names, \
    offline_feature_names, opening_feature_names
from lipdub.speech.posteriors import token_classes
from lipdub.speech.stream import StreamingPosteriors
from lipdub.speech.tokens import load_axes

MODEL_PATH = ASSETS / "motion_model.npz"
CAUSAL_MODEL_PATH = ASSETS / "motion_model_causal.npz"
# The same recipes fitted on permissively licensed footage only (GRID, CC BY 4.0): for commercial use, weaker sync
PERMISSIVE_MODEL_PATH = ASSETS / "motion_model_permissive.npz"
PERMISSIVE_CAUSAL_MODEL_PATH = ASSETS / "motion_model_causal_permissive.npz"
# --motion-model: which shipped pair (offline, live) a dub uses; the first is the default
MODEL_CHOICES = ("research", "permissive")
MODEL_FILES = {"research": (MODEL_PATH, CAUSAL_MODEL_PATH),
               "permissive": (PERMISSIVE_MODEL_PATH, PERMISSIVE_CAUSAL_MODEL_PATH)}
SHIPPED = {p for pair in MODEL_FILES.values() for p in pair}  # a card is required beside each of these
OPENING_ARRAYS = ("weights", "mean", "std", "w1", "b1", "w2", "b2", "mel_context", "posterior_taps", "component_taps",
                  "taps", "wt", "bt", "curve_in", "curve_out")
REBUILD = {MODEL_PATH.name: "make train", PERMISSIVE_MODEL_PATH.name: "make train",
           CAUSAL_MODEL_PATH.name: "make train-causal", PERMISSIVE_CAUSAL_MODEL_PATH.name: "make train-causal"}


OPENING_LIMITS = (0.0, 1.2)  # the learned opening's range (fractions of the speaker's wide-open mouth)


class OpeningModel:
    """Audio features → mouth opening (fraction of the speaker's wide-open mouth): an average of small tanh MLPs
    (plain numpy; a single ridge regression when the file holds only `weights`). Nets with a 2-D output layer
    return one column per output (the causal model's phone-class logits). A temporal model (arrays `taps`, `wt`,
    `bt`) adds a layer between: each hop's first-layer units at hop + taps (a dilated 1-D convolution over the
    per-hop units) feed a second tanh layer; it reads a sequence of hops (predict_hops), not single rows."""

    def __init__(self, arrays: dict):
        self.arrays = {k: np.asarray(v, np.float64) for k, v in arrays.items()}

    def predict(self, x: np.ndarray, chunk: int = 4096) -> np.ndarray:
        a = self.arrays
        if "w1" not in a:
            w = a["weights"]
            return w[0] + x @ w[1:]
        if len(x) > chunk:  # bounded memory on hour-long audio: the ensemble's (E, N, F) temporaries stay small
            return np.concatenate([self.predict(x[i:i + chunk], chunk) for i in range(0, len(x), chunk)])
        # one member at a time into one (N, F) scratch: the same values as the ensemble's (E, N, F) at once, in
        # half the CPU (a 720p dub's 8 s: 0.045 -> 0.02 s, and 14 MB fewer fresh pages on its first call)
        z = np.empty(x.shape, np.result_type(x, a["mean"]))
        hidden = np.empty((len(a["w1"]), len(x), a["w1"].shape[2]), np.result_type(z, a["w1"]))
        for e, w1 in enumerate(a["w1"]):
            np.divide(np.subtract(x, a["mean"][e], out=z), a["std"][e], out=z)
            hidden[e] = np.einsum("nf,fh->nh", z, w1)
        hidden += a["b1"][:, None]
        np.tanh(hidden, out=hidden)
        if a["w2"].ndim == 3:  # several outputs (class logits): (N, K)
            return (np.einsum("enh,ehk->enk", hidden, a["w2"]) + a["b2"][:, None]).mean(0)
        return (np.einsum("enh,eh->en", hidden, a["w2"]) + a["b2"][:, None]).mean(0)

    @property
    def reach(self) -> int:
        """Hops of context the model reads on each side of a hop (0: one row per hop)."""
        taps = self.arrays.get("taps")
        return 0 if taps is None else int(np.abs(taps).max())

    def predict_hops(self, x: np.ndarray, start: int = 0, stop: int | None = None, chunk: int = 4096) -> np.ndarray:
        """The temporal model's output at rows [start, stop) of `x`, the features of consecutive hops; taps beyond
        x's rows read its first or last row (training clamps at a clip's ends the same way)."""
        a = self.arrays
        stop = len(x) if stop is None else stop
        hidden = np.concatenate([np.tanh(np.einsum("enf,efh->enh", (x[None, i:i + chunk] - a["mean"][:, None])
                                                   / a["std"][:, None], a["w1"]) + a["b1"][:, None])
                                 for i in range(0, len(x), chunk)], 1) if len(x) else np.zeros((1, 0, 1))
        taps = np.round(a["taps"]).astype(int)
        out = []
        for i in range(start, stop, chunk):  # (E, M, K·H) temporaries stay small
            idx = np.clip(np.arange(i, min(i + chunk, stop))[:, None] + taps, 0, len(x) - 1)
            z = hidden[:, idx].reshape(len(hidden), len(idx), -1)
            h2 = np.tanh(np.einsum("enk,ekh->enh", z, a["wt"]) + a["bt"][:, None])
            out.append((np.einsum("enh,eh->en", h2, a["w2"]) + a["b2"][:, None]).mean(0))
        return np.concatenate(out) if out else np.zeros(0)

    def shaped(self, opening: np.ndarray) -> np.ndarray:
        """`opening` through the model's monotone curve (arrays `curve_in` -> `curve_out`, piecewise linear, flat
        beyond its ends; training.fit.opening_curve); files without one: unchanged."""
        a = self.arrays
        return opening if "curve_in" not in a else np.interp(opening, a["curve_in"], a["curve_out"])

    def bounded(self, raw: np.ndarray) -> np.ndarray:
        """The nets' raw opening as the motion uses it, offline and live alike: clipped to OPENING_LIMITS, through
        the curve (shaped), clipped again."""
        return np.clip(self.shaped(np.clip(raw, *OPENING_LIMITS)), *OPENING_LIMITS)

    def save(self, path) -> None:
        np.savez(path, **{k: v.astype(np.float32) for k, v in self.arrays.items()})

    @property
    def mel_context(self) -> tuple[int, ...]:
        """The hops around each frame whose log-mel the model reads (files without `mel_context`: MEL_CONTEXT)."""
        taps = self.arrays.get("mel_context")
        return MEL_CONTEXT if taps is None else tuple(int(round(v)) for v in np.ravel(taps))

    @property
    def posterior_taps(self) -> tuple[float, ...]:
        """The times (s, around each hop) where the model reads the phone-class posteriors (files without
        `posterior_taps`: none; the model was trained without them)."""
        taps = self.arrays.get("posterior_taps")
        return () if taps is None else tuple(round(float(v), 4) for v in np.ravel(taps))

    @property
    def component_taps(self) -> tuple[float, ...]:
        """The times (s, around each hop) where the model reads the token components (speech.tokens; files without
        `component_taps`: none)."""
        taps = self.arrays.get("component_taps")
        return () if taps is None else tuple(round(float(v), 4) for v in np.ravel(taps))

    @property
    def n_features(self) -> int:
        a = self.arrays
        return a["w1"].shape[1] if "w1" in a else a["weights"].shape[0] - 1


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(1, keepdims=True))
    return z / z.sum(1, keepdims=True)


@dataclass
class CausalModel:
    """Per look-ahead (hops): the phone-class classifier (logits) and the opening model; plus the log-mel prior
    (mean, std of raw log-mel over the training audio) that starts the running normalisation."""

    phones: dict
    opening: dict
    mel_prior: tuple[np.ndarray, np.ndarray]
    closure_threshold: float = 0.35  # log-mel p/b/m posterior above which the lips shut (held-out F1 best of
    # 0.2..0.8); only for models without streamed phones, the others shut on hama's (STREAMED_CLOSURE)
    hangover: float = 0.3  # s: after voice activity ends the mouth follows the model this long, then rests (held-out
    # r the same for 0.15, 0.3 and 0.5 s, lower for 1 s: the shortest wait that does not cost accuracy)
    phone_step: float = 0.0  # s: > 0: the opening model also reads hama's streamed phone posteriors
    phone_window: float = 0.0  # s: audio each streamed recognition hears
    component_taps: tuple[float, ...] = ()  # s: the opening model also reads the streamed token components here

    def arrays(self) -> dict[str, np.ndarray]:
        """What save() writes: float16 weights (a few hundred KB for all look-aheads, predictions change by
        < 1e-3)."""
        arrays = {"mel_mean": self.mel_prior[0], "mel_std": self.mel_prior[1],
                  "closure_threshold": np.array(self.closure_threshold), "hangover": np.array(self.hangover),
                  "phone_step": np.array(self.phone_step), "phone_window": np.array(self.phone_window)}
        if self.component_taps:
            arrays["component_taps"] = np.array(self.component_taps, float)
        for head in ("phones", "opening"):
            for look, model in getattr(self, head).items():
                arrays.update({f"L{look}__{head}__{k}": v.astype(np.float16) for k, v in model.arrays.items()})
        return arrays

    def save(self, path) -> None:
        np.savez_compressed(path, **self.arrays())

    @classmethod
    def load(cls, path) -> "CausalModel":
        heads: dict = {"phones": {}, "opening": {}}
        with np.load(path) as z:
            for key in z.files:
                if key.count("__") == 2:
                    look, head, name = key.split("__")
                    heads[head].setdefault(int(look[1:]), {})[name] = z[key]
            prior = (z["mel_mean"].astype(np.float64), z["mel_std"].astype(np.float64))
            threshold, hangover = float(z["closure_threshold"]), float(z["hangover"])
            step, window = (float(z[k]) if k in z.files else 0.0 for k in ("phone_step", "phone_window"))
            taps = tuple(float(v) for v in z["component_taps"]) if "component_taps" in z.files else ()
        models = {h: {look: OpeningModel(a) for look, a in v.items()} for h, v in heads.items()}
        if not models["opening"] or models["opening"].keys() != models["phones"].keys():
            raise ValueError("opening and phone models differ in look-aheads")
        return cls(models["phones"], models["opening"], prior, threshold, hangover, step, window, taps)

    def streaming_phones(self, keep_all: bool = False) -> StreamingPosteriors | None:
        """The streamed phone posteriors (and token components, when it reads them) this model's opening heads were
        trained with, or None."""
        if self.phone_step <= 0:
            return None
        return StreamingPosteriors(token_classes(), self.phone_step, self.phone_window, keep_all,
                                   load_axes() if self.component_taps else None)


# ------------------------------------------------------------------------------------------ feature schemas
def opening_schema(model: OpeningModel) -> dict:
    """The offline model's input columns, as the code builds them (and a temporal model's taps, in hops)."""
    schema = {"inputs": offline_feature_names(model.mel_context, model.posterior_taps, model.component_taps)}
    if model.reach:
        schema["taps"] = [int(round(v)) for v in np.ravel(model.arrays["taps"])]
    return schema


def causal_schema(model: CausalModel) -> dict:
    """Per look-ahead of `model`: the classifier's and the opening model's input columns, as the code builds them."""
    streamed = model.phone_step > 0
    return {"looks": {str(look): {"phones": classifier_feature_names(look),
                                  "opening": opening_feature_names(look, streamed, model.component_taps)}
                      for look in sorted(model.opening)}}


def _check_widths(model, schema: dict, path: Path) -> None:
    """Every net's input width equals its schema's column count."""
    if isinstance(model, OpeningModel):
        pairs = [("inputs", model, schema["inputs"])]
    else:
        pairs = [(f"look {look} {head}", getattr(model, head)[int(look)], names)
                 for look, heads in schema["looks"].items() for head, names in heads.items()]
    for what, net, names in pairs:
        if net.n_features != len(names):
            raise DependencyError(f"{path} takes {net.n_features} inputs ({what}), the code builds {len(names)}: the "
                                  f"model and the code's feature schema (lipdub/motion/features.py) differ; rebuild "
                                  f"it ({REBUILD.get(path.name, 'see training/')}) or reinstall lipdub")


# ------------------------------------------------------------------------------------------ model cards
def array_shapes(arrays: dict) -> dict[str, list[int]]:
    return {k: list(np.shape(v)) for k, v in sorted(arrays.items())}


def check_card(path: Path, schema: dict, required: bool) -> None:
    """The card beside `path` names this file (sha256) and the code's feature schema; without a card only
    `required` files fail (the bundled ones; experiments' files may have none)."""
    card_file = card_path(path)
    fix = f"reinstall lipdub, or rebuild the model with its card ({REBUILD.get(path.name, 'python -m training')})"
    if not card_file.is_file():
        if required:
            raise DependencyError(f"the model card {card_file} is missing; {fix}")
        return
    try:
        card = json.loads(card_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DependencyError(f"the model card {card_file} is unreadable ({exc}); {fix}") from exc
    digest = file_sha256(path)
    if card.get("sha256") != digest:
        raise DependencyError(f"{path} (sha256 {digest[:12]}…) is not the file its card {card_file.name} describes "
                              f"(sha256 {str(card.get('sha256'))[:12]}…); {fix}")
    if card.get("feature_schema") != schema:
        raise DependencyError(f"{path} was trained on other inputs than lipdub/motion/features.py builds (its card's "
                              f"feature schema differs from the code's); {fix}")


# ------------------------------------------------------------------------------------------ loading
def _unreadable(path: Path, exc: Exception) -> DependencyError:
    return DependencyError(f"the motion model {path} is missing or unreadable ({exc}); reinstall lipdub or rebuild it "
                           f"({REBUILD.get(path.name, 'see training/')})")


@lru_cache(maxsize=8)
def _load_opening(path: str, required: bool) -> OpeningModel:
    p = Path(path)
    try:
        with np.load(p) as z:
            model = OpeningModel({k: z[k] for k in z.files if k in OPENING_ARRAYS})
    except (OSError, KeyError, ValueError) as exc:
        raise _unreadable(p, exc) from exc
    schema = opening_schema(model)
    _check_widths(model, schema, p)
    check_card(p, schema, required)
    return model


@lru_cache(maxsize=8)
def _load_causal(path: str, required: bool) -> CausalModel:
    p = Path(path)
    try:
        model = CausalModel.load(p)
    except (OSError, KeyError, ValueError) as exc:
        raise _unreadable(p, exc) from exc
    schema = causal_schema(model)
    _check_widths(model, schema, p)
    check_card(p, schema, required)
    return model


def load_opening_model(path) -> OpeningModel:
    """An offline opening model file (held-out models, experiments); its card is checked when it has one."""
    return _load_opening(str(path), Path(path).resolve() in SHIPPED)


def model_files(choice: str = MODEL_CHOICES[0]) -> tuple[Path, Path]:
    """(offline, live) model files of a --motion-model choice."""
    if choice not in MODEL_FILES:
        raise ParameterError(f"--motion-model must be one of {', '.join(MODEL_CHOICES)}, got {choice!r}")
    return MODEL_FILES[choice]


def load_model(choice: str = MODEL_CHOICES[0]) -> OpeningModel:
    """The shipped offline model of a --motion-model choice, or the one named by $LIPDUB_MOTION_MODEL (held-out
    evaluation, experiments)."""
    return load_opening_model(os.environ.get("LIPDUB_MOTION_MODEL") or model_files(choice)[0])


def check_speech_inputs(speech, choice: str = MODEL_CHOICES[0]) -> None:
    """Fail before any work when the offline model of `choice` reads what the speech track lacks (a saved track
    without phone posteriors or token components); model_features would fail the same way after the face
    tracking."""
    model = load_model(choice)
    if model.posterior_taps and getattr(speech, "posteriors", None) is None:
        raise InputError(NO_POSTERIORS)
    if model.component_taps and getattr(speech, "components", None) is None:
        raise InputError(NO_COMPONENTS)


def load_causal_file(path) -> CausalModel:
    """A causal model file (held-out models, experiments); its card is checked when it has one."""
    return _load_causal(str(path), Path(path).resolve() in SHIPPED)


def load_causal_model(choice: str = MODEL_CHOICES[0]) -> CausalModel:
    """The shipped causal model of a --motion-model choice, or the one named by $LIPDUB_CAUSAL_MODEL (held-out
    evaluation, experiments)."""
    return load_causal_file(os.environ.get("LIPDUB_CAUSAL_MODEL") or model_files(choice)[1])
