"""`station process` made faster gives what it gave: the same numbers, the same files.

Real synthetic trial, real librealsense filters, real HDF5, real spawn workers.
"""

import h5py
import numpy as np
import pytest

from station.process import face3d
from station.process.export import ProcessOptions, SampleSpec, ground_truth_specs, plan_jobs, process_trial
from station.process.parallel import job_frames, longest_first, one_thread, run_trials
from station.record.writer import Storage, open_trial, read_calibration
from station.vocab.landmarks import to49


@pytest.fixture(scope="module")
def synth_trial(tmp_path_factory):
    """One synthetic participant's trial with two micro-expressions (real virtual D415, real writer)."""
    from station.synth.dataset import TrialPlan, record_scene, trial_scene

    path = tmp_path_factory.mktemp("speed") / "sub01" / "trial-01.h5"
    path.parent.mkdir()
    record_scene(trial_scene(TrialPlan(1, 1, ("micro", "micro")), 4), path, Storage("lz4"))
    return path


def test_nanmedian_rows_is_numpys_nanmedian_bit_for_bit():
    rng = np.random.default_rng(0)
    for trial in range(300):
        n, k = int(rng.integers(1, 50)), int(rng.integers(1, 30))
        patches = rng.normal(400, 60, (n, k, 3)).astype(np.float32)
        if trial % 3 == 0:
            patches = np.round(patches)  # ties
        empty = rng.random((n, k)) < rng.random()  # whole cells missing, as in landmark_points
        empty[np.arange(n), rng.integers(0, k, n)] = False  # every row has a value
        patches[empty] = np.nan
        fast, plain = face3d.nanmedian_rows(patches), np.nanmedian(patches, axis=1)
        assert fast.dtype == plain.dtype
        np.testing.assert_array_equal(fast.view(np.uint32), plain.view(np.uint32))


def test_filtering_into_one_block_equals_filtering_frame_by_frame(synth_trial):
    with open_trial(synth_trial) as f:
        cal = read_calibration(f)
        depth, stamps = f["depth"][:8], f["frames"]["depth_timestamp_ms"][:8]
        lm = to49(f["ground_truth"]["landmarks68"][:8])
    roi = face3d.sample_roi(depth[3:], lm[3:], cal)
    for window in (None, roi):
        with face3d.RecordedDepthFilters(cal, roi=window) as chain:  # the per-frame path, one array each
            plain = np.stack([chain(d, t) for d, t in zip(depth, stamps)][3:])
        block = face3d.filter_sequence(depth, stamps, cal, warmup=3, roi=window)
        assert block.dtype == np.uint16 and block.shape == (5, *depth.shape[1:])
        np.testing.assert_array_equal(block, plain)
    assert (block > 0).any() and not block[:, : roi[1]].any()  # zeros outside the window


def test_probes_are_looked_up_in_the_same_clouds_as_the_landmarks(synth_trial):
    with open_trial(synth_trial) as f:
        cal = read_calibration(f)
        depth, stamps = f["depth"][:6], f["frames"]["depth_timestamp_ms"][:6]
        truth = to49(f["ground_truth"]["landmarks68"][:6])
    truth = truth[1:]  # after the warm-up frame
    filtered = face3d.filter_face_sequence(depth, stamps, cal, truth, warmup=1)
    guess = truth + np.float32(1.5)  # stands for the detected landmarks
    clouds = face3d.process_clouds(filtered, guess, cal, probes2d=truth)
    assert clouds.probes3d_raw.shape == (5, 49, 3)
    for t, depth_t in enumerate(filtered):
        points = face3d.cloud_in_color_frame(depth_t, cal, roi=face3d.face_roi(depth_t, guess[t], cal))
        pixels = face3d.color_pixels(points, cal)
        np.testing.assert_array_equal(face3d.landmark_points(points, cal, truth[t], pixels=pixels),
                                      face3d.landmark_points(points, cal, truth[t]))
        np.testing.assert_array_equal(clouds.probes3d_raw[t], face3d.landmark_points(points, cal, truth[t]))
        np.testing.assert_array_equal(clouds.landmarks3d_raw[t], face3d.landmark_points(points, cal, guess[t]))
    assert face3d.process_clouds(filtered[:2], guess[:2], cal).probes3d_raw is None


def test_one_thread_limits_the_libraries_and_gives_them_back():
    import cv2
    from threadpoolctl import threadpool_info

    before_cv, before_blas = cv2.getNumThreads(), [i["num_threads"] for i in threadpool_info()]
    with one_thread():
        assert cv2.getNumThreads() == 1
        assert all(i["num_threads"] == 1 for i in threadpool_info())
    assert cv2.getNumThreads() == before_cv and [i["num_threads"] for i in threadpool_info()] == before_blas


def test_longest_trials_are_handed_out_first():
    from station.process.coding import Annotation

    def job(name, *spans):
        return (name, [SampleSpec(Annotation("c", name, k, a, a, b, "1", "")) for k, (a, b) in enumerate(spans)])

    jobs = [job("short", (10, 19)), job("long", (0, 29), (50, 69)), job("none"), job("mid", (5, 34))]
    assert [job_frames(j) for j in jobs] == [10, 50, 0, 30]
    assert job_frames(jobs[1], warmup=5) == 60
    assert [j[0] for j in longest_first(jobs, 5)] == ["long", "mid", "short", "none"]


@pytest.mark.slow
def test_two_workers_write_the_same_samples_as_one_process(synth_trial, tmp_path):
    specs = ground_truth_specs(synth_trial)
    one = process_trial(synth_trial, specs, ProcessOptions(out=str(tmp_path / "one"), write_png=False, write_ply=False))
    assert len(one.records) == 2 and not one.skipped, [str(s) for s in one.skipped]
    # the same trial under a second name, so the two spawn workers each get one
    twin = tmp_path / "copy" / "sub02" / "trial-01.h5"
    twin.parent.mkdir(parents=True)
    twin.write_bytes(synth_trial.read_bytes())
    plan = plan_jobs([synth_trial, twin])  # the same participant twice: samples 1_k and 1-2_k
    options = ProcessOptions(out=str(tmp_path / "two"), write_png=False, write_ply=False, naming=plan.naming)
    seen = []
    outcomes = run_trials(plan.jobs, options, n_jobs=2, on_done=seen.append)
    assert len(seen) == 2 and all(len(o.records) == 2 and not o.skipped for o in outcomes)
    (same,) = [o for o in outcomes if {r.sample for r in o.records} == {r.sample for r in one.records}]
    for rec in one.records:
        with h5py.File(tmp_path / "one" / rec.relpath) as a, h5py.File(tmp_path / "two" / rec.relpath) as b:
            assert set(a) == set(b)
            for name in a:  # open3d's inlier RMSE sums in another order with other thread counts: 1e-15
                check = np.testing.assert_array_equal if name != "icp_rmse" else \
                    lambda x, y, err_msg: np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-12, err_msg=err_msg)
                check(a[name][...], b[name][...], err_msg=name)
            assert b["cropped"].chunks == (1, *b["cropped"].shape[1:])  # a frame is read on its own
    for key in ("icp_rmse_mm", "lm3d_error_mm", "lm2d_aligned_px"):
        np.testing.assert_allclose([m[key] for m in one.metrics], [m[key] for m in same.metrics], rtol=1e-12)
