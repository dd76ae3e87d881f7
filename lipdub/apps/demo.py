"""`lipdub demo`: needs no user files. scikit-image's astronaut portrait (public domain, inside its wheel) says a
sentence synthesised offline by espeak-ng, with head motion and blinks (`--region head`); the transcript is known, so
the demo exercises forced alignment too."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from lipdub.errors import DependencyError
from lipdub.options import DubOptions
from lipdub.pipeline import dub

SENTENCE = "Hello! I am a photograph, and lipdub makes me speak any words you give me, in any language."


def synthesise(text: str, path: Path, voice: str = "en-us", speed: int = 150) -> Path:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise DependencyError("espeak-ng is not installed; run `make demo` (it installs it) or apt-get install espeak-ng")
    subprocess.run([exe, "-v", voice, "-s", str(speed), "-w", str(path), text], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return path


def portrait(path: Path) -> Path:
    import cv2
    from skimage import data

    cv2.imwrite(str(path), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    return path


def run_demo(output: str | Path = "out/demo.mp4", progress=None) -> Path:
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lipdub-demo-") as tmp:
        photo = portrait(Path(tmp) / "astronaut.png")
        speech = synthesise(SENTENCE, Path(tmp) / "sentence.wav")
        report = dub(photo, speech, output, DubOptions(transcript=SENTENCE, language="en", region="head"),
                     progress=progress)
    return report.output
