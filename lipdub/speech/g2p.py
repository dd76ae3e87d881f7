"""Grapheme-to-phoneme for the aligner: espeak-ng IPA, mapped to the nearest en-us ARPAbet phones.

espeak-ng (GPL) is only ever run as an external program with an argument list. The IPA→ARPAbet table is also used
for hama's phone recogniser output, so both share one mapping.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import unicodedata
from functools import lru_cache

from lipdub.errors import DependencyError, ParameterError

# The en-us acoustic model's phones (pocketsphinx), without SIL and noise phones.
ARPABET = frozenset(
    "AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W Y Z ZH".split()
)

# Longest match first. Keys are IPA after removal of stress/length/tone marks and most diacritics; values are
# ARPAbet lists. Choices favour the visually nearest phone (lip rounding, closure) where acoustics are ambiguous.
_IPA: dict[str, tuple[str, ...]] = {}


def _add(keys: str, phones: str) -> None:
    for key in keys.split():
        _IPA[key] = tuple(phones.split())


# diphthongs and affricates (tie bars are removed before lookup)
_add("aɪ ai ɑɪ äɪ", "AY")
_add("aʊ au ɑʊ", "AW")
_add("ɔɪ oɪ ɔi oi", "OY")
_add("eɪ ei ɛɪ", "EY")
_add("oʊ ou əʊ ɔʊ", "OW")
_add("eə ɛə", "EH")
_add("ɪə iə", "IH AH")
_add("ʊə uə", "UH AH")
_add("tʃ tɕ ʈʂ", "CH")
_add("dʒ dʑ ɖʐ", "JH")
_add("ts", "T S")
_add("dz", "D Z")
_add("pf", "P F")
_add("ɚ ɝ ɜɹ əɹ", "ER")
# vowels
_add("i", "IY")
_add("ɪ ɨ ɯ ɘ", "IH")
_add("e", "EY")
_add("ɛ", "EH")
_add("æ", "AE")
_add("a ɑ ɒ ɶ", "AA")
_add("ɐ ʌ ə ɤ ᵊ", "AH")
_add("ɜ œ ɞ", "ER")
_add("ɔ", "AO")
_add("o", "OW")
_add("ʊ ʏ ø ɵ", "UH")
_add("u y ʉ", "UW")
# consonants
_add("p", "P")
_add("b β ɓ ʙ", "B")
_add("t ʈ", "T")
_add("d ɖ ɗ ɾ ɽ", "D")
_add("k c q", "K")
_add("g ɡ ɟ ɢ ɣ", "G")
_add("f ɸ", "F")
_add("v ʋ ⱱ", "V")
_add("θ", "TH")
_add("ð", "DH")
_add("s", "S")
_add("z", "Z")
_add("ʃ ɕ ʂ", "SH")
_add("ʒ ʑ ʐ", "ZH")
_add("h ɦ ħ x χ ç ʜ", "HH")
_add("m ɱ", "M")
_add("n ɳ ɴ", "N")
_add("ɲ ñ", "N Y")
_add("ŋ", "NG")
_add("l ɫ ɭ ɬ ɮ", "L")
_add("ʎ", "L Y")
_add("ɹ r ɻ ʁ ʀ", "R")
_add("j ʝ", "Y")
_add("w ʍ ɥ ɰ", "W")

_MAX_KEY = max(len(k) for k in _IPA)
# Characters dropped before lookup: stress, length, syllable, tie bars, tones, word/phone separators, digits.
_DROP = set("ˈˌːˑ.‿͜͡-_|%~¹²³⁴⁵⁰⁻⁽⁾˥˦˧˨˩꜔ʰʱʲʷˀˤ˞ʼ'ʔ")
# Precomposed letters that must not be decomposed (their base letter would map wrongly).
_KEEP_COMPOSED = {"ñ", "ç"}
_LANG_MARK = re.compile(r"\([a-z-]+\)")


def _clean_ipa(ipa: str) -> str:
    ipa = _LANG_MARK.sub(" ", ipa.lower())
    out: list[str] = []
    for ch in ipa:
        if ch in _KEEP_COMPOSED:
            out.append(ch)
            continue
        for c in unicodedata.normalize("NFD", ch):
            if c in _DROP or c.isdigit() or unicodedata.combining(c):
                continue
            out.append(c)
    return "".join(out)


def ipa_to_arpabet(ipa: str) -> list[str]:
    """Map an IPA string (one word or phone, any language) to en-us ARPAbet phones; unknown symbols are skipped."""
    s = _clean_ipa(ipa)
    phones: list[str] = []
    i = 0
    while i < len(s):
        if s[i].isspace():
            i += 1
            continue
        for n in range(min(_MAX_KEY, len(s) - i), 0, -1):
            mapped = _IPA.get(s[i : i + n])
            if mapped is not None:
                phones.extend(mapped)
                i += n
                break
        else:
            i += 1  # unknown symbol: skip
    return phones


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def espeak_voice(language: str | None) -> str:
    """The espeak-ng voice for a language tag such as 'es', 'fr-FR', 'en', 'pt_BR'."""
    if not language:
        return "en-us"
    lang = language.strip().lower().replace("_", "-")
    if not re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]{2,8})*", lang):
        raise ParameterError(f"language {language!r} is not a language code; use a tag such as 'en', 'es', 'fr', 'de'")
    if lang in ("en", "en-us"):
        return "en-us"
    return lang


def _run_espeak(lines: list[str], voice: str) -> list[str]:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise DependencyError("espeak-ng is not installed; install it (`make system-deps`, Debian package espeak-ng)")
    try:
        proc = subprocess.run(
            [exe, "-q", "--ipa", "--sep=_", "-v", voice],
            input="\n".join(lines) + "\n",
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise DependencyError(f"espeak-ng could not run ({exc}); reinstall it (`make system-deps`)") from exc
    if proc.returncode != 0 or "does not exist" in proc.stdout + proc.stderr:
        raise ParameterError(f"espeak-ng has no voice for language {voice!r}; list voices with `espeak-ng --voices`")
    out = proc.stdout.split("\n")
    while out and out[-1] == "":
        out.pop()
    return out


@lru_cache(maxsize=4096)
def _espeak_word(word: str, voice: str) -> str:
    out = _run_espeak([word], voice)
    return " ".join(line.strip() for line in out)


def espeak_ipa(words: list[str], voice: str) -> list[str]:
    """IPA (phones separated by '_') for each word, one espeak-ng call for the whole list when possible."""
    if not words:
        return []
    out = _run_espeak(words, voice)
    if len(out) == len(words):
        return [line.strip() for line in out]
    return [_espeak_word(w, voice) for w in words]  # espeak split/joined lines: one call per word


def espeak_text_phones(text: str, voice: str) -> list[list[str]]:
    """ARPAbet phones of each word of running text as espeak-ng's synthesiser speaks it with `voice`: in context
    (weak forms such as 'a' → ɐ, numbers spelled out), words espeak-ng joins or splits as it does."""
    out = _run_espeak([" ".join(text.split())], voice)
    return [p for p in (ipa_to_arpabet(w) for line in out for w in line.split()) if p]


def g2p(words: list[str], language: str | None = None) -> list[list[str]]:
    """ARPAbet pronunciation of each word via espeak-ng (empty list where a word has no phones)."""
    voice = espeak_voice(language)
    return [ipa_to_arpabet(ipa) for ipa in espeak_ipa(list(words), voice)]


_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


def tokenize(text: str) -> list[str]:
    """Words of a transcript, lower case, punctuation removed (apostrophes inside words kept)."""
    return [w.replace("’", "'") for w in _WORD.findall(text.lower())]
