"""motion: phones + acoustics → a mouth trajectory sampled at the output frame times.

    mouth_track(speech, frame_times) -> MouthTrack        offline: the whole utterance (motion.offline)
    StreamingMotion(fps, lookahead).feed(samples)         live: causal, chunk by chunk (motion.causal)
    causal_mouth_track(audio16k, frame_times)             the live mouth of a whole file
    expression                                            blinks, head motion and emotions (motion.expression)

Modules: visemes (viseme table, phone classes, the dominance kernel), features (the learned models' inputs, each
column named), models (OpeningModel, CausalModel and their one loading policy: model cards checked, DependencyError
on any mismatch), offline, causal, expression.
"""

from lipdub.motion.causal import (CLOSURE_TAPS, LIVE_SMOOTHING, MAX_LOOKAHEAD, STREAMED_CLOSURE, StreamingMotion,
                                  _CausalHops, causal_hops, causal_mouth_track, streamed_bilabial)
from lipdub.motion.features import (CAUSAL_FUTURE, CAUSAL_LOOKAHEADS, CAUSAL_PAST, FEATURE_LABELS, MEL_BANDS,
                                    MEL_CONTEXT, OFFLINE_POSTERIOR_TAPS, POSTERIOR_TAPS, STREAMED_TAPS, VAD_MARGIN,
                                    causal_features,
                                    causal_opening_inputs, causal_taps, classifier_feature_names, component_columns,
                                    dominance_features,
                                    last_voiced_hops, model_features, offline_feature_names,
                                    opening_feature_names, posterior_columns, posterior_features, ready_sample,
                                    streamed_components, streamed_posteriors,
                                    voice_features)
from lipdub.motion.models import (CAUSAL_MODEL_PATH, MODEL_CHOICES, MODEL_PATH, PERMISSIVE_CAUSAL_MODEL_PATH,
                                  PERMISSIVE_MODEL_PATH, OPENING_LIMITS, CausalModel, OpeningModel, check_speech_inputs,
                                  load_causal_file, load_causal_model, load_model, load_opening_model, model_files, softmax)
from lipdub.motion.offline import (FEATURE_BLOCK, STRENGTH_RANGE, MotionParams, MouthTrack, check_strength, exposure_mean,
                                   learned_opening, mouth_track)
from lipdub.motion.visemes import (BILABIAL_CLASS, BILABIALS, CLASS_WIDTH, PHONE_CLASSES, VISEMES, dominance,
                                   phone_class, phone_curves, viseme_target)

__all__ = [
    "BILABIAL_CLASS", "BILABIALS", "CAUSAL_FUTURE", "CAUSAL_LOOKAHEADS", "CAUSAL_MODEL_PATH", "CAUSAL_PAST",
    "CLASS_WIDTH", "CLOSURE_TAPS", "CausalModel", "FEATURE_BLOCK", "FEATURE_LABELS", "LIVE_SMOOTHING", "MAX_LOOKAHEAD",
    "MEL_BANDS", "MEL_CONTEXT", "MODEL_CHOICES", "MODEL_PATH", "OFFLINE_POSTERIOR_TAPS", "PERMISSIVE_CAUSAL_MODEL_PATH",
    "PERMISSIVE_MODEL_PATH", "MotionParams", "MouthTrack", "OPENING_LIMITS", "OpeningModel", "PHONE_CLASSES",
    "POSTERIOR_TAPS", "STREAMED_CLOSURE", "STREAMED_TAPS", "STRENGTH_RANGE", "StreamingMotion", "VAD_MARGIN", "VISEMES", "_CausalHops",
    "causal_features", "causal_hops", "check_strength", "causal_mouth_track", "causal_opening_inputs", "causal_taps",
    "check_speech_inputs", "classifier_feature_names", "component_columns", "dominance", "dominance_features", "exposure_mean",
    "last_voiced_hops", "learned_opening", "load_causal_file", "load_causal_model", "load_model",
    "load_opening_model", "model_features", "model_files",
    "mouth_track", "offline_feature_names", "opening_feature_names",
    "phone_class", "phone_curves", "posterior_columns", "posterior_features", "ready_sample", "softmax", "streamed_bilabial",
    "streamed_components", "streamed_posteriors", "viseme_target", "voice_features",
]
