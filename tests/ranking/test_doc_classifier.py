"""The document-level code classifier (hashed TF-IDF + per-code logistic regression)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from medcode_nlp.errors import InputError
from medcode_nlp.ranking.note_classifier import ARRAYS_FILE, META_FILE, DocumentCodeClassifier

TEXTS = [
    "acute appendicitis with fever and abdominal pain",
    "appendicitis treated by laparoscopic appendectomy",
    "fever and appendicitis in a young patient",
    "fractured wrist after a fall on ice",
    "wrist fracture with cast immobilisation",
    "fall with fractured wrist and bruising",
]
CODES = [
    {"k35.80"},
    {"K35.80", "0DTJ4ZZ"},
    {"k3580"},
    {"S62.10"},
    {"S6210"},
    {"s62.10", "W19"},
]


def _model(**kwargs: object) -> DocumentCodeClassifier:
    params = {"min_docs": 2, "prune": 0.0, **kwargs}
    return DocumentCodeClassifier(**params).fit(TEXTS, CODES)  # type: ignore[arg-type]


def test_doc_classifier_ranks_matching_code_first() -> None:
    model = _model()
    # normalized codes; W19 and 0DTJ4ZZ (one document each) are below min_docs
    assert model.codes_ == ["K3580", "S6210"]
    appendix, wrist = model.predict(["appendicitis with fever", "fractured wrist"])
    assert set(appendix) == {"K3580", "S6210"}
    assert appendix["K3580"] > appendix["S6210"]
    assert wrist["S6210"] > wrist["K3580"]
    assert all(0.0 <= p <= 1.0 for p in appendix.values())


def test_doc_classifier_save_load_round_trip(tmp_path: Path) -> None:
    model = _model(prune=0.05)
    model.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == sorted([ARRAYS_FILE, META_FILE])
    with np.load(tmp_path / "m" / ARRAYS_FILE, allow_pickle=False) as arrays:
        assert all(arrays[name].dtype != object for name in arrays.files)
    loaded = DocumentCodeClassifier.load(tmp_path / "m")
    assert loaded.params() == model.params()
    assert loaded.codes_ == model.codes_
    queries = ["wrist fall", "appendectomy", ""]
    np.testing.assert_allclose(
        loaded.predict_proba(queries), model.predict_proba(queries), rtol=1e-5
    )


def test_doc_classifier_prune_makes_weights_sparse() -> None:
    dense = _model(prune=0.0)
    cut = float(np.median(np.abs(dense.weights_.data)))
    sparse = _model(prune=cut)
    assert 0 < sparse.weights_.nnz < dense.weights_.nnz
    assert not np.any(np.abs(sparse.weights_.data) < cut)


def test_doc_classifier_errors(tmp_path: Path) -> None:
    with pytest.raises(NotFittedError):
        DocumentCodeClassifier().predict(["text"])
    with pytest.raises(InputError):
        DocumentCodeClassifier().fit(TEXTS, CODES[:2])
    with pytest.raises(InputError):
        DocumentCodeClassifier().fit([], [])
    with pytest.raises(InputError):
        _model().predict("one note, not a list")
    with pytest.raises(InputError):
        DocumentCodeClassifier.load(tmp_path / "missing")


def test_transposed_weights_are_kept_and_follow_new_weights() -> None:
    import pickle

    model = _model()
    before = model.predict_proba(TEXTS)
    kept = model._weights_t()
    assert model._weights_t() is kept
    assert "_weights_t_cache" not in pickle.loads(pickle.dumps(model)).__dict__
    model.weights_ = model.weights_ * 2  # a new weights object: the cache is remade
    assert model._weights_t() is not kept
    assert not np.allclose(model.predict_proba(TEXTS), before)
