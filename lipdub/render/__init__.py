"""render: real mouths from the clip itself, chosen and warped to the wanted shape.

The clip is its own appearance source. While tracking, every usable frame's lower face is stored pose-normalised in an
atlas (a crop plus its landmarks). For each output frame a dynamic-programming pass picks an atlas frame whose mouth is
close to the wanted one (favouring runs of consecutive real frames, mouths filmed near the frame drawn over and with
its expression), then a piecewise-affine warp moves it onto the target frame's head pose with the lip contour exactly
at the wanted shape (its width the filmed speaker's own at that opening, with the frame's smile). Where the chosen
mouth is less open than asked, the interior (teeth, tongue) comes from the clip's most open frame.

Modules, bottom-up: mouth (mouth model, descriptors, target shape, control points), mesh (piecewise-affine warps),
interior (teeth, cavity, lip line), atlas (the crops: filling, saving, loading), foreign (a profile's mouths made to
look filmed in the shot, mixed with the shot's own), selection (the one selection cost of
the offline Viterbi and the live greedy choice), warp (whole-face warp, blinks), compose (mask, colour, blend),
renderer (Renderer), styler (expression and head motion for offline dubs: FaceStyler), live (live mouths and blinks).

Public interface (what other stages and tests use): Renderer, own_times; Atlas, write_npz, fill_atlas_in_halves;
mixed_renderer (an actor profile's mouths matched to the shot and mixed with its own: foreign);
MouthModel, build_mouth_model, corner_lift, descriptors, target_shape; select_frames; MeshWarper; inner_lip_mask;
the control-point tables.
"""

from lipdub.core.landmarks import FACE_OVAL
from lipdub.render.atlas import Atlas, fill_atlas_in_halves, write_npz
from lipdub.render.interior import inner_lip_mask
from lipdub.render.mesh import MeshWarper
from lipdub.render.mouth import (CONTROL, INNER_LOWER_POS, INNER_PAIRS, INNER_UPPER_POS, OUTER_RING, MouthModel,
                                 build_mouth_model, corner_lift, descriptors, target_shape)
from lipdub.render.renderer import Renderer, own_times
from lipdub.render.foreign import mixed_renderer
from lipdub.render.selection import select_frames

__all__ = [
    "FACE_OVAL",
    "Atlas", "fill_atlas_in_halves", "write_npz",
    "mixed_renderer",
    "inner_lip_mask",
    "MeshWarper",
    "CONTROL", "INNER_LOWER_POS", "INNER_PAIRS", "INNER_UPPER_POS", "OUTER_RING",
    "MouthModel", "build_mouth_model", "corner_lift", "descriptors", "target_shape",
    "Renderer", "own_times",
    "select_frames",
]
