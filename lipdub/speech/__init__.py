"""Speech analysis: voice activity, phones with times (forced-aligned to a transcript when given), acoustic jaw.

    track = analyse(audio_16k_mono_float32, 16000, transcript="...", language="en")
    track.phones        # [Phone("SIL", 0.0, 0.31), Phone("AE", 0.31, 0.48), ...] tiling [0, duration]
    track.jaw[i]        # acoustic jaw opening at frame i (time i·hop), 0 outside speech
    track.posteriors[i] # hama's phone-class probabilities at frame i (speech.posteriors.PHONE_CLASSES + other)
    track.components[i] # hama's whole token distribution at frame i, projected on the shipped axes (speech.tokens)
    track.save("speech.json"); SpeechTrack.load("speech.json")

Modules: analysis (`analyse`, `release_models`), vad (voice activity of a whole file), silero (the Silero VAD model,
batch and streaming), stream (live features: `StreamingFeatures`, `StreamingPosteriors`), acoustic (RMS, F1, jaw,
log-mel), align (pocketsphinx), recognise (hama phones), posteriors (hama's phone-class posteriors per hop, the phone
classes), tokens (hama's token probabilities per hop and their projections, `TokenAxes`), g2p, track (`SpeechTrack`,
`Phone`).
"""

from lipdub.speech.analysis import analyse, release_models
from lipdub.speech.g2p import ARPABET
from lipdub.speech.track import METHODS, Phone, SpeechTrack

__all__ = ["ARPABET", "METHODS", "Phone", "SpeechTrack", "analyse", "release_models"]
