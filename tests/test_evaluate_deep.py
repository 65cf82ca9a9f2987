"""--models: deep 2D models' LOSO probabilities fused with the 3D SVM (Table 12)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from station.checks import StationError
from station.evaluate.baseline import EvalOptions, run_baseline
from station.evaluate.deep_fusion import deep_table, import_deep
from station.evaluate.loaders import load_database
from station.evaluate.report import Report
from station.evaluate.synthetic import make_database
from station.features.lbptop import LbpTopParams

pytestmark = pytest.mark.slow


def test_missing_deep_extra_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "station.deep", None)  # as if station.deep could not be imported
    with pytest.raises(StationError, match=r"pip install -e \.\[deep\]"):
        import_deep()


def test_deep_models_fused_with_3d(tmp_path):
    torch = pytest.importorskip("torch")
    from station.deep.training import DEFAULT_CONFIGS

    torch.set_num_threads(1)
    db_path = tmp_path / "db"
    make_database(db_path, n_subjects=3, n_samples=18, classes=("I", "II", "IV"), size=32, n_frames=10, seed=7)
    db = load_database(db_path)
    options = EvalOptions(lbptop=LbpTopParams(radii=(1, 1, 2), rows=3, cols=3), label_sets=("3class",),
                          protocols=("loso",))
    result = run_baseline(db, options, None)
    report = Report(tmp_path / "report", "deep")
    tiny = {"ststnet": {"config": DEFAULT_CONFIGS["ststnet"].with_(epochs=1, batch_size=8), "threads": 1}}
    rows = deep_table(db, result, ["ststnet"], report, work_dir=tmp_path / "deep", deep_kwargs=tiny)
    assert [r["method"] for r in rows] == ["LBP-TOP", "ststnet"]
    for row in rows:
        for m3 in ("SI", "HK", "SI+HK"):
            fused = row[m3]
            assert 0.0 <= fused["a"] <= 1.0
            # the paper's a includes a = 0 (2D only), so fusion can never be below 2D alone
            assert fused["paper"].accuracy >= row["acc_2d"] - 1e-12
    assert rows[0]["acc_2d"] > 0.7  # LBP-TOP on separable classes
    table = (tmp_path / "report" / "table12_deep.csv").read_text().splitlines()
    assert table[0].startswith("method,2D Acc (%),2D macro-F1") and table[2].startswith("ststnet,")
    assert list((tmp_path / "deep" / "ststnet").iterdir())  # the deep model's fold checkpoints
    with pytest.raises(StationError, match="unknown model"):
        deep_table(db, result, ["resnet"], report, work_dir=tmp_path / "deep")
    assert np.isfinite([rows[1]["acc_2d"], rows[1]["uf1_2d"]]).all()
