"""The direct LIBSVM path and the numpy scaler / F1 are scikit-learn's computations, bit for bit.

If a scikit-learn upgrade changes SVC's arguments, StandardScaler's arithmetic or f1_score's,
these fail (and the report figures would no longer equal the SVC path's).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics import f1_score
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from station.evaluate import libsvm
from station.evaluate.metrics import macro_f1


def _svc(K, y, C, probability, seed):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # SVC(probability=True) is deprecated in 1.9
        return SVC(C=C, kernel="precomputed", probability=probability, random_state=seed).fit(K, y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_standardizer_equals_standard_scaler_bit_for_bit(dtype):
    rng = np.random.default_rng(0)
    for n, d in [(5, 3), (37, 120), (80, 400)]:
        X = (rng.normal(size=(n, d)) * rng.uniform(0.01, 100, d) + rng.normal(size=d) * 50).astype(dtype)
        X[:, 0] = X[0, 0]  # a constant feature: scale 1
        X[:, 1] = 0.0
        ref, new = StandardScaler().fit(X), libsvm.Standardizer.fit(X)
        assert np.array_equal(ref.mean_, new.mean_) and np.array_equal(ref.scale_, new.scale_)
        Z = X[::-1] * 1.1 + 3
        a, b = ref.transform(Z), new.transform(Z)
        assert a.dtype == b.dtype == dtype and np.array_equal(a, b)


@pytest.mark.parametrize("n_classes", [2, 3, 5])
def test_direct_libsvm_equals_svc_bit_for_bit(n_classes):
    assert libsvm.available()
    rng = np.random.default_rng(n_classes)
    for seed in range(4):
        n = int(rng.integers(20, 70))
        y = rng.integers(0, n_classes, n)
        y[:n_classes] = np.arange(n_classes)
        y = 3 * y + 1  # labels that are not 0..k-1
        X = rng.normal(size=(n, 15)) + 0.3 * y[:, None]
        K, K_test = X @ X.T, rng.normal(size=(9, 15)) @ X.T
        for probability in (False, True):
            C = float(rng.choice([0.01, 0.1, 1.0]))
            ref, new = _svc(K, y, C, probability, seed), libsvm.fit(K, y, C, probability=probability, seed=seed)
            assert np.array_equal(ref.classes_, new.classes_)
            assert np.array_equal(ref.predict(K_test), new.predict(K_test))
            if probability:  # same seed: LIBSVM's internal Platt CV drew the same folds
                assert np.array_equal(ref.predict_proba(K_test), new.predict_proba(K_test))
            else:
                with pytest.raises(ValueError, match="probability=True"):
                    new.predict_proba(K_test)


def test_direct_libsvm_refuses_one_class():
    with pytest.raises(ValueError, match="two classes"):
        libsvm.fit(np.eye(4), np.zeros(4, int), 1.0, probability=False, seed=0)


def test_macro_f1_equals_sklearn_bit_for_bit():
    rng = np.random.default_rng(1)
    for _ in range(500):
        n, k = int(rng.integers(1, 60)), int(rng.integers(1, 9))
        y = rng.integers(0, k, n)
        pred = np.where(rng.random(n) < 0.5, y, rng.integers(0, k + 1, n))  # also labels absent from y
        assert macro_f1(y, pred) == f1_score(y, pred, average="macro", zero_division=0)
        present = np.unique(y)
        assert macro_f1(y, pred, present) == f1_score(y, pred, labels=present, average="macro", zero_division=0)
