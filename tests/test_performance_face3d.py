"""The fast 3D paths give what the plain ones give, on a real synthetic trial and real filters."""

import numpy as np
import pytest

from station.process import face3d
from station.record.writer import Storage, open_trial, read_calibration
from station.vocab.landmarks import NOSE_TIP_49, to49

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trial(tmp_path_factory):
    """12 frames of synthetic participant 1 with its true landmarks (real virtual D415, real writer)."""
    from station.synth.dataset import TrialPlan, record_scene, trial_scene

    path = tmp_path_factory.mktemp("perf3d") / "sub01" / "trial-01.h5"
    path.parent.mkdir()
    record_scene(trial_scene(TrialPlan(1, 1, ("micro",)), 3), path, Storage("lz4"))
    with open_trial(path) as f:
        n = 12
        return (read_calibration(f), f["depth"][:n], f["frames"]["depth_timestamp_ms"][:n],
                to49(f["ground_truth"]["landmarks68"][:n]))


def test_filtering_the_face_window_equals_filtering_the_whole_frame_where_it_is_used(trial):
    cal, depth, stamps, lm = trial
    whole = face3d.filter_sequence(depth, stamps, cal, warmup=2)
    window = face3d.filter_face_sequence(depth, stamps, cal, lm[2:], warmup=2)
    x0, y0, x1, y1 = face3d.sample_roi(depth[2:], lm[2:], cal)
    assert (x1 - x0) * (y1 - y0) < 0.6 * depth.shape[1] * depth.shape[2]  # the point: less to filter
    assert not window[:, :y0].any() and not window[:, :, :x0].any()
    for t in range(len(window)):  # every pixel the crop can use is the same, to a rounding of the filters
        bx0, by0, bx1, by1 = face3d.face_roi(window[t], lm[2 + t], cal)
        diff = np.abs(window[t, by0:by1, bx0:bx1].astype(int) - whole[t, by0:by1, bx0:bx1])
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-3, (t, diff.max(), (diff > 0).sum())


def test_vectorised_landmark_lookup_equals_the_z_buffer_image(trial):
    cal, depth, _, lm = trial
    for t in (0, 5, 11):
        points = face3d.cloud_in_color_frame(depth[t], cal, roi=face3d.face_roi(depth[t], lm[t], cal))
        # landmarks near the image border and on a hole exercise clipping and empty windows
        probe = np.vstack([lm[t], [[1.0, 1.0], [cal.color_intrinsics.width - 1.0, 3.0]]]).astype(np.float32)
        fast = face3d.landmark_points(points, cal, probe)
        plain = face3d.landmarks_3d(face3d.xyz_image(points, cal, probe), probe)
        np.testing.assert_array_equal(fast, plain)
        assert not np.isnan(fast[NOSE_TIP_49]).any()


def test_warm_started_icp_converges_to_the_same_registration(trial):
    cal, depth, _, lm = trial
    clouds = []
    for t in range(len(depth)):
        points = face3d.cloud_in_color_frame(depth[t], cal, roi=face3d.face_roi(depth[t], lm[t], cal))
        clouds.append(face3d.spherical_crop(points, face3d.landmark_points(points, cal, lm[t])[NOSE_TIP_49]))
    target = face3d.prepare_target(clouds[0])
    previous = np.eye(4)
    for cloud in clouds[1:]:
        tight = face3d.icp_to_reference(cloud, target, tolerance_mm=1e-6)
        fast = face3d.icp_to_reference(cloud, target, init=previous)
        previous = fast.transform
        assert fast.rmse_mm <= tight.rmse_mm + 1e-3 and fast.fitness >= tight.fitness - 1e-3
        np.testing.assert_allclose(fast.transform[:3, 3], tight.transform[:3, 3], atol=0.05)  # mm
        np.testing.assert_allclose(fast.transform[:3, :3], tight.transform[:3, :3], atol=1e-3)
