"""dlib's 68-point model finds the synthetic faces, and its landmarks agree with the ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from station.synth.appearance import available_photos
from station.synth.participant import sample_timeline_scene


@pytest.fixture(scope="module")
def dlib_models():
    # A minimal private detector call: landmark detection for processing lives in station.process.
    import dlib
    import face_recognition_models

    return dlib.get_frontal_face_detector(), dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())


@pytest.mark.slow
def test_dlib_finds_face_and_landmarks_on_synthetic_frames(dlib_models):
    detector, predictor = dlib_models
    found, total, errors = 0, 0, []
    for subject in range(1, len(available_photos()) + 1):  # one subject per photo
        scene = sample_timeline_scene(subject, 11, ["micro", "blink", "macro", "micro"])
        frames = sorted({0, scene.n_frames - 1} | {e.apex for e in scene.events()})
        for index in frames:  # neutral, every apex (blink closed, macro at full strength)
            color, _ = scene.render(index)
            total += 1
            faces = detector(color, 0)
            if not faces:
                continue
            found += 1
            shape = predictor(color, max(faces, key=lambda r: r.area()))
            lm = np.array([(shape.part(k).x, shape.part(k).y) for k in range(68)], np.float64)
            truth = scene.landmarks(index)
            errors.append(np.linalg.norm(lm - truth, axis=1).mean() / scene.look.iod_px)
    assert found / total >= 0.99, f"dlib found the face on {found}/{total} frames"
    # The ground-truth landmarks are where dlib puts them (within a few % of the eye distance).
    assert np.median(errors) < 0.08, f"median landmark error {np.median(errors):.3f} IOD"
