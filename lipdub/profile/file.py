"""The profile file: one versioned NumPy archive (`actor.lipdub`) holding the actor's atlas, mouth model and
articulation; `Profile.save` writes it atomically, `load` reads and checks it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lipdub import render
from lipdub.core.files import atomic_path
from lipdub.errors import InputError, OutputError
from lipdub.profile.articulation import Articulation

FORMAT = "lipdub-profile"
VERSION = 1


@dataclass
class Profile:
    atlas: render.Atlas
    model: render.MouthModel
    articulation: Articulation
    meta: dict

    def info(self) -> str:
        m, a, art = self.meta, self.atlas, self.articulation
        lines = [f"lipdub actor profile v{m.get('version')}, built {m.get('created', '?')} by lipdub "
                 f"{m.get('lipdub', '?')}"]
        rejected = ", ".join(f"{why} {n}" for why, n in m.get("rejected", {}).items() if n) or "none"
        lines.append(f"footage: {len(m.get('sources', []))} clip(s), {m.get('seconds', 0) / 60:.2f} min, "
                     f"{m.get('frames', 0)} frames tracked, {a.n} kept in the atlas (rejected: {rejected})")
        for s in m.get("sources", []):
            lines.append(f"  {s['name']}: {s['seconds']:.1f} s, {s['kept']} of {s['frames']} frames kept")
        d = render.descriptors(a.norm) if a.n else np.zeros((0, 2))
        if len(d):
            op = d[:, 0] / self.model.open_max
            hist = np.histogram(np.clip(op, 0, 1.2), bins=[0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.21])[0]
            lines.append("frames per mouth opening (fraction of wide-open): " + ", ".join(
                f"{lo:.1f}-{hi:.1f}: {n}" for lo, hi, n in zip([0, .1, .3, .5, .7, .9], [.1, .3, .5, .7, .9, 1.2],
                                                               hist)))
            teeth = a.teeth
            lines.append(f"teeth visible in {np.mean(teeth > 0.5) * 100:.0f}% of atlas frames; "
                         f"head turn range sin(yaw) {a.pose_feat[:, 0].min():+.2f}..{a.pose_feat[:, 0].max():+.2f}")
        lines.append(f"mouth shape: wide-open {self.model.open_max:.3f}, rest width {self.model.rest_width:.3f} "
                     "(eye-corner distance = 1)")
        sc = art.scores
        if sc:
            lines.append(f"articulation: {sc.get('chosen')} (held-out r on the footage: generic "
                         f"{sc.get('generic', 0):.3f}, linear {sc.get('linear', 0):.3f}, ridge {sc.get('ridge', 0):.3f}; "
                         f"{sc.get('frames', 0)} speaking frames), {len(art.phone_width)} phones with own width/teeth")
        else:
            lines.append("articulation: generic (the footage had too little speech to learn from)")
        size = m.get("bytes")
        if size:
            lines.append(f"size: {size / 1e6:.1f} MB")
        return "\n".join(lines)

    def save(self, path) -> Path:
        path = Path(path)
        if path.suffix == "":
            path = path.with_suffix(".lipdub")
        if not path.resolve().parent.is_dir():
            raise OutputError(f"cannot write the profile: folder {path.parent} does not exist")
        arrays = self.atlas.to_arrays(with_jpeg=False)
        arrays.update(self.articulation.to_arrays())
        arrays["model"] = np.array([self.model.open_max, self.model.rest_width])
        arrays["meta"] = np.array(json.dumps(self.meta))
        arrays["format"] = np.array(FORMAT)
        arrays["version"] = np.array(VERSION)
        try:
            with atomic_path(path, suffix=".tmp") as tmp:
                render.write_npz(tmp, arrays, {"atlas_jpeg": self.atlas.jpeg})
        except OSError as exc:
            raise OutputError(f"cannot write the profile {path}: {exc.strerror or exc}") from exc
        self.meta["bytes"] = path.stat().st_size
        return path


def load(path) -> Profile:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"profile {path} not found; build one with `lipdub profile build FOOTAGE... -o {path}`")
    try:
        with np.load(path, allow_pickle=False) as z:
            if "format" not in z.files or str(z["format"]) != FORMAT:
                raise InputError(f"{path} is not a lipdub actor profile")
            if int(z["version"]) != VERSION:
                raise InputError(f"{path} is a version {int(z['version'])} profile; this lipdub reads version "
                                 f"{VERSION}: rebuild it with `lipdub profile build`")
            atlas = render.Atlas.from_arrays(z)
            art = Articulation.from_arrays(z)
            open_max, rest_width = (float(v) for v in z["model"])
            meta = json.loads(str(z["meta"]))
    except InputError:
        raise
    except Exception as exc:  # a truncated or foreign file
        raise InputError(f"cannot read profile {path} ({type(exc).__name__}: {exc}); rebuild it") from exc
    meta["bytes"] = path.stat().st_size
    return Profile(atlas, render.MouthModel(atlas.canonical, open_max, rest_width), art, meta)
