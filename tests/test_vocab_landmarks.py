"""Landmark layouts: the 49 derived from the 68, the named points where the paper puts them."""

import numpy as np
import pytest

from station.vocab import landmarks as L


def test_49_is_68_without_jaw_and_inner_mouth_corners():
    assert len(L.LANDMARKS49_FROM_68) == 49
    assert not set(L.LANDMARKS49_FROM_68) & ({*range(17)} | {60, 64})
    lm68 = np.arange(68 * 2, dtype=float).reshape(68, 2)
    assert (L.to49(lm68)[L.index49(39)] == lm68[39]).all()
    with pytest.raises(ValueError, match="60"):
        L.index49(60)


def test_named_points_in_49():
    assert L.INNER_EYE_CORNERS_49 == (22, 25) and L.OUTER_EYE_CORNERS_49 == (19, 28)
    assert L.NOSE_TIP_49 == 13 and L.NASAL_SPINE_49 == 16
    assert L.RIGID_49 == (10, 11, 12, 13, 19, 22, 25, 28)
    assert set(L.RIGID_68) <= set(L.STABILISE_68)
    assert all(0 <= i < 49 for i in L.LANDMARKS_23) and len(L.LANDMARK_23_NAMES) == 23


def test_mirror_is_an_involution_that_swaps_the_eyes():
    assert all(L.MIRROR_68[L.MIRROR_68[i]] == i for i in L.MIRROR_68)
    assert {L.MIRROR_68[i] for i in L.EYE_R_68} == set(L.EYE_L_68)
