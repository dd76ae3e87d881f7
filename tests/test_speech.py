"""Speech stage: VAD, acoustic jaw, G2P, forced alignment (English and espeak), recognition paths, JSON round trip.

Real recordings come from ../shared/data (skipped when absent); the Spanish alignment case is synthesised with
espeak-ng into tmp_path (skipped when espeak-ng is absent).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from lipdub.errors import InputError, ParameterError
from lipdub.speech import ARPABET, METHODS, Phone, SpeechTrack, analyse, analysis, g2p, silero, vad

try:
    from conftest import require_data
except ImportError:  # pragma: no cover - conftest is normally importable from tests/
    DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

    def require_data(*relative: str) -> Path:
        if not DATA.is_dir() or any(not (DATA / r).is_file() for r in relative):
            pytest.skip(f"test media {DATA} is absent")
        return DATA


JFK = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."
GRID = {
    "grid_bbaf2n": "bin blue at f two now",
    "grid_brbk7n": "bin red by k seven now",
    "grid_lbax4n": "lay blue at x four now",
    "grid_lbbc2a": "lay blue by c two again",
}
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


def load(rel: str) -> np.ndarray:
    path = require_data(rel) / rel
    try:
        from lipdub.media import load_audio

        x, sr = load_audio(path, 16000)
    except ImportError:  # pragma: no cover - media module absent: decode with PyAV directly
        import av

        with av.open(str(path)) as c:
            res = av.AudioResampler(format="flt", layout="mono", rate=16000)
            parts = [g.to_ndarray().reshape(-1) for f in c.decode(audio=0) for g in res.resample(f)]
            parts += [g.to_ndarray().reshape(-1) for g in res.resample(None)]
        x, sr = np.concatenate(parts), 16000
    assert sr == 16000
    return np.asarray(x, np.float32)


def speech_phones(track: SpeechTrack) -> list[Phone]:
    return [p for p in track.phones if p.label != "SIL"]


def check_tiling(track: SpeechTrack) -> None:
    """Phones tile [0, duration] in order, labels are ARPAbet or SIL, no two SILs in a row."""
    ph = track.phones
    assert ph, "no phones"
    assert ph[0].start == pytest.approx(0.0, abs=1e-6)
    assert ph[-1].end == pytest.approx(track.duration, abs=1e-3)
    for a, b in zip(ph, ph[1:]):
        assert a.end == pytest.approx(b.start, abs=1e-6)
        assert not (a.label == "SIL" and b.label == "SIL")
    for p in ph:
        assert p.end > p.start
        assert p.label == "SIL" or p.label in ARPABET


def voiced_cover(track: SpeechTrack) -> float:
    """Fraction of voiced frames whose centre falls inside a non-SIL phone."""
    t = (np.arange(track.n_frames) + 0.5) * track.hop
    inside = np.zeros(track.n_frames, bool)
    for p in speech_phones(track):
        inside |= (t >= p.start) & (t < p.end)
    return float(inside[track.voiced].mean())


VISEME = {}
for _cls, _labels in dict(bil="P B M", lab="F V", rnd="UW OW UH W OY AW ER R SH ZH CH JH", opn="AA AE AH AY AO",
                          spr="IY IH EY EH Y", den="TH DH", oth="T D N L S Z K G NG HH").items():
    VISEME.update(dict.fromkeys(_labels.split(), _cls))


def visemes(phones: list[Phone], duration: float, fps: float = 25.0) -> np.ndarray:
    t = (np.arange(int(duration * fps)) + 0.5) / fps
    out = np.array(["sil"] * t.size, dtype=object)
    for p in phones:
        out[(t >= p.start) & (t < p.end)] = VISEME.get(p.label, "sil")
    return out


@pytest.fixture(scope="module")
def jfk() -> np.ndarray:
    return load("audio/en_jfk_11s.wav")


@pytest.fixture(scope="module")
def jfk_track(jfk) -> SpeechTrack:
    return analyse(jfk, 16000, transcript=JFK)


# ------------------------------------------------------------------------------------------------ G2P (no data)
def test_ipa_mapping_and_tokenizer():
    assert g2p.ipa_to_arpabet("d͡ʒ") == ["JH"]
    assert g2p.ipa_to_arpabet("t͡ɕʰ") == ["CH"]
    assert g2p.ipa_to_arpabet("oʊ") == ["OW"]
    assert g2p.ipa_to_arpabet("̪") == []  # a lone diacritic (hama emits these) maps to nothing
    assert g2p.ipa_to_arpabet("ˈɲ_ˈa") == ["N", "Y", "AA"]
    assert g2p.ipa_to_arpabet("b_ɔ̃_ʒ_ˈu_ʁ") == ["B", "AO", "ZH", "UW", "R"]  # French 'bonjour'
    assert g2p.ipa_to_arpabet("(en)tˈɛst(ko)") == ["T", "EH", "S", "T"]
    assert g2p.tokenize("Hola, ¿buenos días? Don’t stop-me 23") == ["hola", "buenos", "días", "don't", "stop", "me",
                                                                    "23"]
    with pytest.raises(ParameterError):
        g2p.espeak_voice("not a language!")


@needs_espeak
def test_espeak_g2p_spanish():
    hola, buenos, dias = g2p.g2p(g2p.tokenize("hola, buenos días"), "es")
    assert "HH" not in hola and "L" in hola and hola[-1] == "AA"  # Spanish h is silent
    assert buenos[0] == "B" and "N" in buenos and buenos[-1] == "S"
    assert dias[0] in ("D", "DH") and "IY" in dias and dias[-1] == "S"
    assert all(p in ARPABET for p in hola + buenos + dias)
    with pytest.raises(ParameterError):
        g2p.g2p(["hola"], "xx-nonexistent")


@needs_espeak
def test_espeak_alignment_on_synthetic_spanish(tmp_path):
    text = "hola buenos días a todos"
    wav = tmp_path / "es.wav"
    subprocess.run(["espeak-ng", "-v", "es", "-w", str(wav), text], check=True, capture_output=True)
    from scipy.io import wavfile

    sr, x = wavfile.read(wav)
    pad = np.zeros(sr // 2, x.dtype)
    track = analyse(np.concatenate([pad, x, pad]), sr, transcript=text, language="es")  # int16 at 22.05 kHz
    assert track.method == "forced-alignment-espeak" and track.language == "es"
    check_tiling(track)
    expected = [p for word in g2p.g2p(g2p.tokenize(text), "es") for p in word]
    assert [p.label for p in speech_phones(track)] == expected
    first, last = speech_phones(track)[0], speech_phones(track)[-1]
    assert 0.4 < first.start < 0.7 and 0.4 + x.size / sr - 0.3 < last.end < 0.6 + x.size / sr
    assert voiced_cover(track) > 0.8


# ------------------------------------------------------------------------------------------- English alignment
def test_forced_alignment_jfk(jfk_track):
    tr = jfk_track
    assert tr.method == "forced-alignment" and tr.language is None
    assert tr.duration == pytest.approx(11.0, abs=0.01)
    check_tiling(tr)
    sp = speech_phones(tr)
    labels = [p.label for p in sp]
    # cmudict: my, americans → 2 M; fellow, for, for → 3 F; americans, ask×2, country×2, can×2 → 7 K
    assert labels.count("M") == 2 and labels.count("F") == 3 and labels.count("K") == 7
    assert labels[:2] in (["AE", "N"], ["AH", "N"]) and labels[-6:] == ["K", "AH", "N", "T", "R", "IY"]
    # "my" at ~1.0 s and the first "country" at ~5.9 s (hama's independent spans agree within 60 ms)
    first_m = next(p for p in sp if p.label == "M")
    assert 0.85 < first_m.start < 1.15
    k_country = [p for p in sp if p.label == "K"][2]  # americans, ask, country
    assert 5.7 < k_country.start < 6.05
    assert all(0.0 <= p.start < p.end <= 11.0 for p in tr.phones)
    assert max(p.duration for p in sp) < 0.6
    assert voiced_cover(tr) >= 0.8
    # every speech phone overlaps detected voice
    for p in sp:
        a, b = int(p.start / tr.hop), max(int(np.ceil(p.end / tr.hop)), int(p.start / tr.hop) + 1)
        assert tr.voiced[a:b].any(), p


@pytest.mark.parametrize("clip", sorted(GRID))
def test_grid_alignment_and_recognition_agree(clip):
    x = load(f"video/{clip}.mpg")
    ref = analyse(x, 16000, transcript=GRID[clip], language="en")
    assert ref.method == "forced-alignment"
    check_tiling(ref)
    labels = [p.label for p in speech_phones(ref)]
    assert labels[0] in ("B", "L") and labels.count("B") >= 1
    assert labels[-2:] in (["N", "AW"], ["EH", "N"], ["IH", "N"], ["AH", "N"])
    hyp = analyse(x, 16000)  # no transcript: hama's phones aligned by pocketsphinx
    assert hyp.method == "hama+align"
    check_tiling(hyp)
    fr, fh = visemes(ref.phones, ref.duration), visemes(hyp.phones, ref.duration)
    mask = fr != "sil"
    assert (fr[mask] == fh[mask]).mean() > 0.65  # measured 0.74–1.00 on these clips


def test_long_transcript_is_chunked(jfk, jfk_track, monkeypatch):
    reps = 3
    x = np.concatenate([np.concatenate([jfk, np.zeros(8000, np.float32)]) for _ in range(reps)])
    calls = []
    orig = analysis._word_chunks
    monkeypatch.setattr(analysis, "_word_chunks", lambda *a: calls.append(orig(*a)) or calls[-1])
    tr = analyse(x, 16000, transcript=" ".join([JFK] * reps))
    chunks = calls[0]
    assert len(chunks) >= 2 and all((b - a) * tr.hop <= 30.0 + 1e-9 for a, b, _ in chunks)
    assert tr.method == "forced-alignment"
    check_tiling(tr)
    one, many = speech_phones(jfk_track), speech_phones(tr)
    assert abs(len(many) - reps * len(one)) <= 2 * reps  # alternates (and/for) may differ by a phone
    # each repetition lands where the single clip's alignment says, shifted by the repetition's offset
    offset = jfk.size / 16000 + 0.5
    starts = {lab: np.array([p.start for p in many if p.label == lab]) for lab in {p.label for p in many}}
    err = np.array([np.abs(starts.get(p.label, np.array([1e9])) - (p.start + k * offset)).min()
                    for k in range(reps) for p in one])
    assert np.median(err) < 0.02 and np.mean(err < 0.05) > 0.9


# ---------------------------------------------------------------------------------------------- VAD and jaw
def test_vad_silence_at_padded_ends_and_jaw(jfk, monkeypatch):
    x = np.concatenate([np.zeros(16000, np.float32), jfk, np.zeros(16000, np.float32)])
    tr = analyse(x, 16000, transcript=JFK)
    n = tr.n_frames
    assert n == 1300 and tr.voiced.dtype == bool and tr.jaw.dtype == np.float32 and tr.loudness.dtype == np.float32
    # the clip's own sound runs to its last sample; VAD pads speech by 30 ms, so allow 50 ms at the joins
    assert not tr.voiced[:95].any() and not tr.voiced[-95:].any()
    assert 0.5 < tr.voiced[100:-100].mean() < 1.0
    assert tr.voiced[135:160].all() and not tr.voiced[125]  # "And so" starts ~0.3 s into the clip
    # jaw: 0 outside speech, in [0, 1], follows loudness, open vowels above bilabials
    assert np.all(tr.jaw[~tr.voiced] == 0) and tr.jaw.min() >= 0 and tr.jaw.max() <= 1 and tr.jaw.max() > 0.9
    v = tr.voiced
    assert np.corrcoef(tr.jaw[v], tr.loudness[v])[0, 1] > 0.6
    assert tr.loudness[:90].max() < 0.05 and tr.loudness.max() == pytest.approx(1.0, abs=1e-6)
    t = tr.times() + tr.hop / 2

    def mean_jaw(labels):
        sel = np.zeros(n, bool)
        for p in tr.phones:
            if p.label in labels:
                sel |= (t >= p.start) & (t < p.end)
        return tr.jaw[sel].mean()

    assert mean_jaw({"AA", "AE", "AY", "AO", "AW"}) > mean_jaw({"M", "B", "P", "IY", "IH", "S", "F"}) + 0.2

    # energy fallback when the ONNX model cannot run
    monkeypatch.setattr(silero, "batch_model", lambda: (_ for _ in ()).throw(RuntimeError("no onnxruntime")))
    fallback = vad.detect_voice(x)
    assert fallback.shape == (n,) and not fallback[:95].any() and not fallback[-95:].any()
    assert fallback[135:160].all()


# ------------------------------------------------------------------------------------- no transcript, any language
@pytest.mark.parametrize("clip", ["ko_korean1_10s", "es_spanish1_5s", "fr_french1_7s"])
def test_recognition_path_other_languages(clip):
    x = load(f"audio/{clip}.wav")
    tr = analyse(x, 16000)
    assert tr.method in ("hama+align", "allphone") and tr.method != "acoustic-only"
    check_tiling(tr)
    sp = speech_phones(tr)
    speech_s = tr.voiced.sum() * tr.hop
    assert len(sp) >= 10 and 4 < len(sp) / speech_s < 25  # plausible phone rate
    assert voiced_cover(tr) > 0.6
    onset = np.flatnonzero(tr.voiced)[0] * tr.hop
    assert sp[0].start >= onset - 0.05
    assert max(p.duration for p in sp) < 0.8


def test_long_audio_without_transcript():
    x = load("audio/en_commentary_60s.wav")
    x16 = analysis.prepare_audio(x, 16000)
    from lipdub.speech.acoustic import frame_rms

    voiced = vad.detect_voice(x16)
    chunks = analysis.plan_chunks(~voiced, frame_rms(x16))
    assert len(chunks) >= 2 and all((b - a) * 0.01 <= 30.0 for a, b in chunks)
    assert all(not voiced[a] or not voiced[max(a - 1, 0)] for a, _ in chunks[1:])  # cuts fall in pauses
    tr = analyse(x, 16000)
    assert tr.method == "hama+align"
    check_tiling(tr)
    assert voiced_cover(tr) > 0.8
    assert 8 < len(speech_phones(tr)) / (tr.voiced.sum() * tr.hop) < 20


def test_fallbacks_allphone_then_acoustic_only(monkeypatch):
    x = load("video/grid_bbaf2n.mpg")
    from lipdub.speech import align, recognise

    def broken(*a, **k):
        raise RuntimeError("hama broken")

    monkeypatch.setattr(recognise, "recognise_with_posteriors", broken)
    tr = analyse(x, 16000)
    assert tr.method == "allphone" and tr.posteriors is None
    check_tiling(tr)
    assert len(speech_phones(tr)) >= 8
    monkeypatch.setattr(align, "allphone", lambda audio: None)
    tr = analyse(x, 16000)
    assert tr.method == "acoustic-only" and tr.phones == []
    assert tr.voiced.any() and tr.jaw.max() > 0.5


# ------------------------------------------------------------------------------------------- edge cases, JSON
def test_silence_and_bad_input():
    tr = analyse(np.zeros(32000, np.float32), 16000, transcript="hello world")
    assert tr.method == "acoustic-only" and tr.phones == [] and not tr.voiced.any() and tr.jaw.max() == 0
    assert tr.n_frames == 200
    empty = analyse(np.zeros(0, np.float32))
    assert empty.n_frames == 0 and empty.phones == []
    with pytest.raises(ParameterError):
        analyse(np.zeros((2, 2, 2), np.float32))
    with pytest.raises(ParameterError):
        analyse(np.zeros(100, np.float32), sr=0)
    with pytest.raises(ParameterError):
        analyse(np.zeros(1600, np.float32), transcript="hola", language="not a language!")


def test_save_load_round_trip(tmp_path):
    n = 50
    rng = np.random.default_rng(1)
    tr = SpeechTrack(0.5, 0.01, rng.random(n) > 0.5, rng.random(n).astype(np.float32),
                     rng.random(n).astype(np.float32),
                     [Phone("SIL", 0.0, 0.1), Phone("M", 0.1, 0.2), Phone("AA", 0.2, 0.4), Phone("SIL", 0.4, 0.5)],
                     "hama+align", "ko")
    path = tmp_path / "speech.json"
    tr.save(path)
    back = SpeechTrack.load(path)
    assert back.method == tr.method in METHODS and back.language == "ko" and back.duration == 0.5 and back.hop == 0.01
    assert back.phones == tr.phones
    assert np.array_equal(back.voiced, tr.voiced) and back.voiced.dtype == bool
    assert np.allclose(back.jaw, tr.jaw, atol=1e-4) and np.allclose(back.loudness, tr.loudness, atol=1e-4)
    assert back.jaw.dtype == np.float32
    (tmp_path / "bad.json").write_text('{"format": "something else"}')
    with pytest.raises(InputError):
        SpeechTrack.load(tmp_path / "bad.json")
    with pytest.raises(InputError):
        SpeechTrack.load(tmp_path / "missing.json")


@pytest.mark.parametrize("name, transcript", [("video/grid_lbbc2a.mpg", "lay blue by c two again"),
                                              ("video/grid_lbbc2a.mpg", "lay blue by a two again"),
                                              ("audio/es_spanish1_5s.wav", None)])
def test_alignment_dictionary_of_the_tokens_alone(monkeypatch, name, transcript):
    """An alignment decoder whose dictionary holds only the words it aligns (cmudict's entries for them, alternates
    such as a(2) included, and the pronunciation entries) gives the phones and times of one holding all of cmudict
    (~0.1 s a decoder more): with a transcript and with hama's recognised phones."""
    from lipdub import media
    from lipdub.speech import align

    data = require_data(name)
    x = media.video_audio(data / name) if name.startswith("video/") else load(name)
    assert align._align_decoder().lookup_word("a(2)") is not None
    small = analyse(x, 16000, transcript=transcript)

    def whole_cmudict(tokens):
        d = align._new_align_decoder()
        extra = sorted({t for t in tokens if t.startswith("lipdub-") and d.lookup_word(t) is None})
        for k, word in enumerate(extra):
            d.add_word(word, " ".join(p.upper() for p in word[len("lipdub-"):].split("-")), k == len(extra) - 1)
        return d

    monkeypatch.setattr(align, "_decoder_for", whole_cmudict)
    whole = analyse(x, 16000, transcript=transcript)
    assert small.method == whole.method == ("forced-alignment" if transcript else "hama+align")
    assert [(p.label, p.start, p.end) for p in small.phones] == [(p.label, p.start, p.end) for p in whole.phones]
