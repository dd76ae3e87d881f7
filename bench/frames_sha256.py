"""Behaviour check for refactors: the SHA-256 of the rendered frames of a fixed set of dubs, against
bench/frames_sha256.json (measured before the architecture redesign).

    python -m bench.frames_sha256 [--data ../shared/data] [--write]

The set: a photo with --region head --emotion happy, a 1080p video, a --resume dub of a VFR clip, a --profile dub,
and a live session's frames (one thread, all audio first, prepared mouths: the same frames whatever the timing).
Exit status 1 when any hash differs. --write records the current hashes instead (only after a deliberate change of
behaviour, said in the commit)."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

EXPECTED = Path(__file__).with_name("frames_sha256.json")


def live_frames_sha256(video: Path, audio: Path, seconds: float = 6.0, frames: int = 150) -> str:
    from lipdub import media
    from lipdub.pipeline.live import LiveDubber, prepare_atlas

    x, sr = media.load_audio(audio, 16000)
    dubber = LiveDubber(25.0, atlas=prepare_atlas(str(video), cache=False))
    dubber.push_audio(x[: int(seconds * sr)].astype(np.float32), sr)
    with media.FrameReader(video, planar=True) as reader:  # decoded frames beside their RGB, as `lipdub live` reads
        for k in range(min(frames, reader.info.n_frames)):
            decoded = reader.get(k)
            planar = decoded if isinstance(decoded, media.PlanarFrame) else None
            dubber.push_frame(decoded.rgb() if planar is not None else decoded, planar)
    dubber.close()
    h = hashlib.sha256()
    while (out := dubber.get(timeout=120)) is not None:  # the pixels the sink encodes
        h.update(np.ascontiguousarray(out.planar.i420 if out.planar is not None else out.rgb).tobytes())
    return h.hexdigest()


def measure(data: Path, out: Path) -> dict[str, str]:
    """The digests of the recorded dubs, written into the folder `out`."""
    import lipdub
    from lipdub import profile

    hashes: dict[str, str] = {}

    def dub(name: str, video: str, audio: str, **options) -> None:
        hashes[name] = lipdub.dub(data / video, data / audio, out / f"{name}.mp4", frames_sha256=True,
                                  **options).frames_sha256
        print(f"{name:18} {hashes[name]}", flush=True)

    dub("photo_head_happy", "images/obama_portrait.jpg", "audio/fr_french1_7s.wav", region="head", emotion="happy")
    dub("video_1080p", "video/woman_outdoor_10s.mp4", "audio/es_spanish1_5s.wav")
    dub("resume_vfr", "video/interview_vfr_6s.mp4", "audio/en_jfk_11s.wav", resume=True)
    actor = profile.build([str(data / "video/hdtf_radio34_8s.mp4")]).save(out / "radio34.lipdub")
    dub("profile", "video/hdtf_katiehill_8s.mp4", "audio/en_radio34_other_8s.wav", profile=str(actor))
    hashes["live_frames"] = live_frames_sha256(data / "video/hdtf_katiehill_8s.mp4", data / "audio/en_jfk_11s.wav")
    print(f"{'live_frames':18} {hashes['live_frames']}", flush=True)
    return hashes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    parser.add_argument("--write", action="store_true", help="record the current hashes as the expected ones")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lipdub-sha-") as work:
        os.environ.setdefault("LIPDUB_CACHE", str(Path(work) / "cache"))  # first dubs: nothing cached beforehand
        hashes = measure(Path(args.data), Path(work))
    if args.write:
        EXPECTED.write_text(json.dumps(hashes, indent=1) + "\n")
        return 0
    expected = json.loads(EXPECTED.read_text())
    differ = [k for k in expected if hashes.get(k) != expected[k]]
    print("identical" if not differ else f"DIFFERENT: {', '.join(differ)}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
