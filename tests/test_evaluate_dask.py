"""Folds and features on a Dask distributed cluster (joblib's dask backend), via --scheduler."""

from __future__ import annotations

import csv

import pytest

from station.cli import main
from station.evaluate.synthetic import make_database

pytestmark = pytest.mark.slow


def test_evaluate_on_a_local_dask_cluster(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    db = tmp_path / "db"
    make_database(db, n_subjects=3, n_samples=12, classes=("I", "II"), size=24, n_frames=8, seed=5)
    with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=2,
                                  dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            out = tmp_path / "report"
            rc = main(["evaluate", str(db), "--out", str(out), "--scheduler", cluster.scheduler_address,
                       "--label-sets", "objective", "--protocols", "loso", "--no-3d", "--radii", "1,1,2",
                       "--blocks", "2x2"])
            assert rc == 0
            # the work went through the cluster's scheduler
            assert client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.transition_counter) > 20
    with open(out / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["method"] == "LBP-TOP" and float(rows[0]["accuracy"]) > 0.7


def test_unreachable_scheduler_is_a_clear_error(tmp_path, capsys):
    pytest.importorskip("dask.distributed")
    db = tmp_path / "db"
    make_database(db, n_subjects=2, n_samples=4, classes=("I", "II"), size=24, n_frames=8)
    assert main(["evaluate", str(db), "--out", str(tmp_path / "r"), "--scheduler", "tcp://127.0.0.1:9"]) == 2
    assert "cannot reach the Dask scheduler" in " ".join(capsys.readouterr().err.split())
