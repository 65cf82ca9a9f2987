"""Facial landmark layouts: the dlib / iBUG 68 points, the paper's 49, the 23 of the 3D features.

* **68** -- the iBUG 300-W / dlib ``shape_predictor_68_face_landmarks`` numbering (0-16 jaw,
  17-21 subject's right brow, 22-26 left brow, 27-30 nose bridge, 31-35 nostrils, 36-41 right
  eye, 42-47 left eye, 48-59 outer lip, 60-67 inner lip).  The synthetic participant's ground
  truth and the offline tracker both use it.
* **49** -- the paper's layout (section 4.1.1, the iPar-CLR / IntraFace points of Fig. 3): the
  68 without the jaw contour (0-16) and the inner-mouth corners (60, 64).  Everything stored in
  an exported sample (``/landmarks2d``, ``/landmarks3d``) uses it.
* **23** -- the subset of the 49 around which the 3D curvature features are pooled.

"Right" and "left" are the subject's.  Positions in the 49 are named ``*_49``; dlib numbers
``*_68``.  Extend a layout here, and derive, never re-type, index lists.
"""

from __future__ import annotations

import numpy as np

N68, N49, N23 = 68, 49, 23

#: dlib-68 ranges of the face parts.
JAW_68 = range(0, 17)
BROW_R_68, BROW_L_68 = range(17, 22), range(22, 27)
BROWS_68 = range(17, 27)
NOSE_BRIDGE_68, NOSTRILS_68 = range(27, 31), range(31, 36)
EYE_R_68, EYE_L_68 = range(36, 42), range(42, 48)
OUTER_LIP_68, INNER_LIP_68 = range(48, 60), range(60, 68)

#: Regions of interest for spotting and change checks (dlib 68).
REGIONS_68 = {"brow_r": BROW_R_68, "brow_l": BROW_L_68, "eye_r": EYE_R_68, "eye_l": EYE_L_68,
              "nose": range(27, 36), "mouth": range(48, 68)}
EYE_REGIONS = ("eye_r", "eye_l")
#: Coarser face areas an action unit mainly moves (synthetic AU checks).
AREAS_68 = {"brows": list(BROWS_68), "eyes": list(range(36, 48)), "nose": list(range(27, 36)),
            "mouth": list(range(48, 68))}

#: Right <-> left mirror pairs (dlib 68), both directions; points on the midline map to themselves.
_PAIRS = {**{i: 16 - i for i in range(17)}, **{17 + i: 26 - i for i in range(5)},
          36: 45, 37: 44, 38: 43, 39: 42, 40: 47, 41: 46, 31: 35, 32: 34,
          48: 54, 49: 53, 50: 52, 59: 55, 58: 56, 60: 64, 61: 63, 67: 65}
MIRROR_68 = {**_PAIRS, **{v: k for k, v in _PAIRS.items()}}

#: dlib-68 numbers of the 49 points, in the 49's order.
LANDMARKS49_FROM_68 = np.array([i for i in range(17, 68) if i not in (60, 64)])
_TO49 = {int(d): i for i, d in enumerate(LANDMARKS49_FROM_68)}


def index49(dlib68: int) -> int:
    """Position in the 49 of a dlib-68 point (``39`` -> ``22``); a jaw or inner-mouth corner raises."""
    try:
        return _TO49[int(dlib68)]
    except KeyError:
        raise ValueError(f"dlib point {dlib68} is not one of the 49 (the jaw 0-16 and the inner mouth "
                         "corners 60, 64 are not)") from None


def to49(landmarks68: np.ndarray) -> np.ndarray:
    """(..., 68, 2 or 3) -> (..., 49, 2 or 3)."""
    return np.asarray(landmarks68)[..., LANDMARKS49_FROM_68, :]


#: Inner eye corners, (subject's right, left): the paper's alignment points (4.1.1).
INNER_EYE_CORNERS_68 = (39, 42)
OUTER_EYE_CORNERS_68 = (36, 45)
NOSE_TIP_68 = 30
NASAL_SPINE_68 = 33  # subnasale: the paper's "nasal spine" for the crop height
#: Points that barely move with any AU (nose bridge and tip, eye corners): ICP drift checks.
RIGID_68 = (27, 28, 29, 30, 36, 39, 42, 45)
#: The rigid points plus the nostril wings (31, 35), for per-frame head stabilisation in
#: spotting, where more points outweigh the nostrils' small AU 9/10 motion.
STABILISE_68 = (27, 28, 29, 30, 31, 35, 36, 39, 42, 45)

INNER_EYE_CORNERS_49 = tuple(index49(i) for i in INNER_EYE_CORNERS_68)  # (22, 25)
OUTER_EYE_CORNERS_49 = tuple(index49(i) for i in OUTER_EYE_CORNERS_68)  # (19, 28)
NOSE_TIP_49 = index49(NOSE_TIP_68)  # 13
NASAL_SPINE_49 = index49(NASAL_SPINE_68)  # 16
RIGID_49 = tuple(index49(i) for i in RIGID_68)  # (10, 11, 12, 13, 19, 22, 25, 28)

#: Ranges of the face parts in the 49 (the synthetic template of evaluate/synthetic.py).
BROW_R_49, BROW_L_49 = range(0, 5), range(5, 10)
NOSE_BRIDGE_49, NOSE_BASE_49 = range(10, 14), range(14, 19)
EYE_R_49, EYE_L_49 = range(19, 25), range(25, 31)
OUTER_LIP_49, INNER_LIP_49 = range(31, 43), range(43, 49)

#: The 23 landmarks (positions in the 49) around which 3D curvature features are pooled.
LANDMARKS_23 = (0, 2, 4, 5, 7, 9, 19, 22, 25, 28, 10, 13, 14, 16, 18, 31, 32, 34, 36, 37, 38, 40, 42)
LANDMARK_23_NAMES = ("R brow outer", "R brow mid", "R brow inner", "L brow inner", "L brow mid",
                     "L brow outer", "R eye outer", "R eye inner", "L eye inner", "L eye outer",
                     "nose bridge", "nose tip", "R ala", "nose base", "L ala", "mouth R corner",
                     "upper lip R", "upper lip centre", "upper lip L", "mouth L corner", "lower lip L",
                     "lower lip centre", "lower lip R")
assert len(LANDMARKS_23) == N23 == len(set(LANDMARKS_23)) == len(LANDMARK_23_NAMES)
assert len(LANDMARKS49_FROM_68) == N49
