"""CodeRanker: a scikit-learn estimator scoring (mention, candidate code) pairs.

``CodeRanker`` is a plain estimator over the numeric rows of :mod:`medcode_nlp.features`
(gradient-boosted trees, then isotonic calibration), so that ``predict_proba`` is the
probability that the candidate is the right code for the mention. ``RankerModel`` bundles
it with the code-frequency prior, the document-level calibration (mention probabilities
combined per code -> probability that the code is in the document's gold set) and the
decision threshold chosen on dev. It is saved with ``skops`` (no pickle) and a SHA-256
manifest checked before loading.
"""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier, VotingClassifier
from sklearn.isotonic import IsotonicRegression
from sklearn.utils.multiclass import unique_labels
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import ThreadpoolController

from medcode_nlp.doc_scorer import DOC_FEATURE_NAMES, CodeSignals, document_features
from medcode_nlp.errors import Errors, InputError, IntegrityError
from medcode_nlp.features import CodePrior, MentionContext, pair_features
from medcode_nlp.integrity import verify_directory, write_checksums
from medcode_nlp.unranked import combine as unranked_combine
from medcode_nlp.unranked import confidences

logger = logging.getLogger(__name__)

#: Code systems the ranker recipe learns from (CodiEsp notes, ICD-10 index terms). Candidates
#: of other systems (HCPCS, CPT, custom sets) get :func:`medcode_nlp.unranked.confidences`.
RANKED_SYSTEMS = ("icd10cm", "icd10pcs")
RANKER_FILE = "ranker.skops"
DOC_RANKER_FILE = "doc_ranker.skops"
TERM_RANKER_FILE = "term_ranker.skops"
META_FILE = "ranker.json"
#: Deflate the skops archives: the bagged second stage is 36 MB stored, 6 MB deflated.
SKOPS_COMPRESSION: dict[str, Any] = {"compression": zipfile.ZIP_DEFLATED, "compresslevel": 9}


#: Whole-note probability a code needs to be a candidate of the document stage.
NOTE_CANDIDATE_FLOOR = 0.005  # 0.0 scored the same MAP on CodiEsp dev, 20% slower
#: Below this many rows, trees are evaluated on a single thread.
SINGLE_THREAD_ROWS = 20_000


@lru_cache(maxsize=1)
def _thread_controller() -> ThreadpoolController:
    return ThreadpoolController()


class CodeRanker(ClassifierMixin, BaseEstimator):
    """Probability that a candidate code is right for a mention, from pair features.

    Parameters are the boosted trees' (``max_iter``, ``learning_rate``, ``max_leaf_nodes``,
    ``l2_regularization``), the calibration ``method`` ("isotonic" or "sigmoid") with
    ``calibration_cv`` folds (0 = no calibration; ``ensemble=False`` keeps one set of trees fit
    on all rows instead of one per fold), and ``random_state``. ``max_features`` is the share
    of features each split may look at; ``n_bags`` > 1 averages that many such models fit with
    successive random states (their early-stopping splits and feature draws differ).
    """

    def __init__(
        self,
        max_iter: int = 200,
        learning_rate: float = 0.1,
        max_leaf_nodes: int = 31,
        l2_regularization: float = 0.0,
        method: str = "isotonic",
        calibration_cv: int = 3,
        random_state: int | None = 0,
        ensemble: bool = True,
        max_features: float = 1.0,
        n_bags: int = 1,
    ) -> None:
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.l2_regularization = l2_regularization
        self.method = method
        self.calibration_cv = calibration_cv
        self.random_state = random_state
        self.ensemble = ensemble
        self.max_features = max_features
        self.n_bags = n_bags

    def _one_model(self, counts: np.ndarray, random_state: int | None) -> Any:
        trees = HistGradientBoostingClassifier(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            l2_regularization=self.l2_regularization,
            max_features=self.max_features,
            random_state=random_state,
        )
        if self.calibration_cv >= 2 and len(self.classes_) > 1 and counts.min() >= self.calibration_cv:
            return CalibratedClassifierCV(
                trees, method=self.method, cv=self.calibration_cv, ensemble=self.ensemble
            )
        return trees

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> CodeRanker:
        """Fit the trees (and the calibration) on pair rows ``X`` and labels ``y``."""
        X, y = validate_data(self, X, y)
        self.classes_ = unique_labels(y)
        counts = np.bincount(np.searchsorted(self.classes_, y))
        if self.n_bags > 1:
            base = 0 if self.random_state is None else self.random_state
            self.model_: Any = VotingClassifier(
                [(f"bag{i}", self._one_model(counts, base + i)) for i in range(self.n_bags)],
                voting="soft",
            )
        else:
            self.model_ = self._one_model(counts, self.random_state)
        self.model_.fit(X, y, sample_weight=sample_weight)
        first = self.model_.estimators_[0] if self.n_bags > 1 else self.model_
        fitted = getattr(first, "calibrated_classifiers_", None)
        trees_fitted = fitted[0].estimator if fitted else first
        self.n_iter_ = int(getattr(trees_fitted, "n_iter_", self.max_iter))
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (column 1: the candidate is right)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        return np.asarray(self.model_.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class per row."""
        check_is_fitted(self)
        return np.asarray(self.classes_[np.argmax(self.predict_proba(X), axis=1)])

    def score_pairs(self, X: np.ndarray) -> np.ndarray:
        """Probability of the positive class (or of the only class seen).

        Small inputs (one note's rows) are scored on one thread: OpenMP's per-tree thread
        start-up costs more than the work, and much more on a busy machine.
        """
        if len(X) < SINGLE_THREAD_ROWS:
            with _thread_controller().limit(limits=1, user_api="openmp"):
                proba = self.predict_proba(X)
        else:
            proba = self.predict_proba(X)
        if proba.shape[1] == 1:
            return np.full(len(X), float(self.classes_[0] == 1))
        return proba[:, list(self.classes_).index(1)] if 1 in self.classes_ else proba[:, -1]


class DocumentCalibrator:
    """Isotonic map from a combined code score to P(code in the gold set)."""

    def __init__(self, x: list[float] | None = None, y: list[float] | None = None) -> None:
        self.x = list(x or [0.0, 1.0])
        self.y = list(y or [0.0, 1.0])

    @classmethod
    def fit(cls, scores: np.ndarray, labels: np.ndarray) -> DocumentCalibrator:
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
        iso.fit(scores, labels)
        return cls(list(map(float, iso.X_thresholds_)), list(map(float, iso.y_thresholds_)))

    def __call__(self, score: float) -> float:
        return float(np.interp(score, self.x, self.y))


class RankerModel:
    """The shipped ranker: estimator, prior, document calibration and threshold.

    Only candidates of ``RANKED_SYSTEMS`` go through the estimators; the others get a
    rule-based confidence per mention (:mod:`medcode_nlp.unranked`), combined per note by
    :func:`medcode_nlp.unranked.combine` (a noisy-or of the mentions that document the code).
    """

    def __init__(
        self,
        ranker: CodeRanker,
        prior: CodePrior,
        calibrator: DocumentCalibrator | None = None,
        threshold: float = 0.3,
        meta: dict[str, Any] | None = None,
        note_model: Any = None,
        doc_ranker: CodeRanker | None = None,
        term_ranker: CodeRanker | None = None,
    ) -> None:
        self.ranker = ranker
        self.note_model = note_model  # DocumentCodeClassifier or None
        self.doc_ranker = doc_ranker  # second stage over document_features rows, or None
        self.term_ranker = term_ranker  # for terms looked up on their own (no note around them)
        self._note_keys_for: Any = None  # the KB _note_keys_cache was worked out for
        self._note_keys_cache: dict[str, Any] = {}
        self.prior = prior
        self.calibrator = calibrator or DocumentCalibrator()
        self.threshold = threshold
        self.meta = meta or {}

    @property
    def version(self) -> str:
        return str(self.meta.get("version", "ranker"))

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without the per-KB cache (it holds the knowledge base's SQLite
        connection): ``nlp.pipe(..., n_process=2)`` with the spawn start method pickles it."""
        state = dict(self.__dict__)
        state.update(_note_keys_for=None, _note_keys_cache={})
        return state

    def score(self, mention: MentionContext, candidates: list[Any]) -> np.ndarray:
        """Probability of each candidate for this mention.

        A mention without note context (a term looked up on its own) is scored by the term
        ranker when the model has one: it is trained on index terms only, which suits such
        queries better than the ranker fit mostly on note mentions.
        """
        if not candidates:
            return np.zeros(0)
        return self.score_rows(pair_features(mention, candidates, self.prior),
                               standalone=not mention.context.strip())

    def score_rows(self, rows: np.ndarray, standalone: bool = False) -> np.ndarray:
        """Probabilities for ``pair_features`` rows (of standalone terms or note mentions)."""
        if standalone and self.term_ranker is not None:
            return self.term_ranker.score_pairs(rows)
        return self.ranker.score_pairs(rows)

    def rescore_doc(self, doc: Any, kb: Any = None) -> None:
        """Replace similarity scores in ``span._.candidates`` with probabilities, re-sorted."""
        spans = [span for span in doc.ents if span._.candidates]
        if not spans:
            return
        ranked = [[c for c in span._.candidates if c.system in RANKED_SYSTEMS] for span in spans]
        blocks = [pair_features(mention_context(span), candidates, self.prior)
                  for span, candidates in zip(spans, ranked, strict=True) if candidates]
        probabilities = (self.ranker.score_pairs(np.vstack(blocks))  # one call per document
                         if blocks else np.zeros(0))
        offset = 0
        for span, candidates in zip(spans, ranked, strict=True):
            for candidate in candidates:
                candidate.score = round(float(probabilities[offset]), 4)
                offset += 1
            others = [c for c in span._.candidates if c.system not in RANKED_SYSTEMS]
            if others:
                context = mention_context(span)
                for system in {c.system for c in others}:
                    group = [c for c in others if c.system == system]
                    for candidate, score in zip(group, confidences(
                            group, span.text, span.label_, context.context, span._.section),
                            strict=True):
                        candidate.score = score
            span._.candidates.sort(key=lambda c: (-c.score, not c.billable, c.code))

    def note_scores(self, text: str, kb: Any) -> dict[tuple[str, str], float]:
        """Whole-note code probabilities from the document classifier, keyed by KB code.

        4-character keys that are no code but start ICD-10-PCS codes are kept as partial
        procedure codes. Without a second stage, probabilities under 0.01 are dropped.
        """
        if self.note_model is None or not text.strip():
            return {}
        (scores,) = self.note_model.predict([text])
        floor = NOTE_CANDIDATE_FLOOR if self.doc_ranker is not None else 0.01
        keys = self._note_keys(kb)
        return {keys[code]: float(p) for code, p in scores.items()
                if p >= floor and keys.get(code) is not None}

    def _note_keys(self, kb: Any) -> dict[str, Any]:
        """The KB key (system, code) of each code the note model knows; worked out once per KB."""
        if self._note_keys_for is not kb:
            keys: dict[str, tuple[str, str] | None] = {}
            for code in self.note_model.codes_:
                found = next(((system, entry.code) for system in ("icd10cm", "icd10pcs")
                              if (entry := kb.get(system, code)) is not None), None)
                partial = code.upper()
                if found is None and len(partial) == 4 and kb.first_with_prefix("icd10pcs",
                                                                                 partial):
                    found = ("icd10pcs", partial)
                keys[code] = found
            self._note_keys_cache, self._note_keys_for = keys, kb
        return self._note_keys_cache

    def score_codes(self, signals: list[CodeSignals], note_mentions: int) -> np.ndarray:
        """The second stage's probability that each code is in the note's gold set."""
        if self.doc_ranker is None:
            raise ValueError("this ranker has no document stage")
        scored = [i for i, s in enumerate(signals) if s.system in RANKED_SYSTEMS]
        result = np.array([unranked_combine(s.probabilities) for s in signals], dtype=float)
        if scored:
            rows = document_features([signals[i] for i in scored], self.prior, note_mentions,
                                     self.document_feature_count)
            result[scored] = self.doc_ranker.score_pairs(rows)
        return result

    @property
    def document_feature_count(self) -> int:
        """How many of ``DOC_FEATURE_NAMES`` (the first ones) the second stage was fit on."""
        return len(self.meta.get("document_features", DOC_FEATURE_NAMES))

    @property
    def scorer(self) -> Any:
        """``score_codes`` for :func:`~medcode_nlp.coding_rules.code_document`, or None."""
        return self.score_codes if self.doc_ranker is not None else None

    @property
    def category_codes(self) -> Callable[[str], list[str]] | None:
        """The prior's frequent codes per category, for a second stage that scores them."""
        features = self.meta.get("document_features", DOC_FEATURE_NAMES)
        if self.doc_ranker is None or "category_sibling" not in features:
            return None
        return self.prior.frequent_in_category

    def combine(self, probabilities: list[float]) -> float:
        """Document-level confidence of a code from its mention probabilities."""
        remaining = 1.0
        for p in probabilities:
            remaining *= 1.0 - p
        return self.calibrator(1.0 - remaining)

    # ------------------------------------------------------------ persistence
    def save(self, directory: Path) -> None:
        """Write the estimator (skops), the rest as JSON, and the checksum manifest."""
        import skops.io as sio

        directory.mkdir(parents=True, exist_ok=True)
        sio.dump(self.ranker, directory / RANKER_FILE, **SKOPS_COMPRESSION)
        if self.doc_ranker is not None:
            sio.dump(self.doc_ranker, directory / DOC_RANKER_FILE, **SKOPS_COMPRESSION)
        if self.term_ranker is not None:
            sio.dump(self.term_ranker, directory / TERM_RANKER_FILE, **SKOPS_COMPRESSION)
        if self.note_model is not None:
            self.note_model.save(directory)
        meta = {
            **self.meta,
            "threshold": self.threshold,
            "prior": self.prior.to_dict(),
            "calibrator": {"x": self.calibrator.x, "y": self.calibrator.y},
        }
        (directory / META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
        write_checksums(directory, exclude=("MODEL_CARD.md",))

    @classmethod
    def load(cls, directory: Path) -> RankerModel:
        """Verify the checksums, then load with skops and an explicit trusted-type list."""

        directory = Path(directory)
        if not (directory / RANKER_FILE).is_file():
            raise InputError(Errors.E012.format(path=directory, detail=f"no {RANKER_FILE}"))
        verify_directory(directory)
        ranker = _load_estimator(directory / RANKER_FILE)
        doc_ranker, term_ranker = (
            _load_estimator(directory / name) if (directory / name).is_file() else None
            for name in (DOC_RANKER_FILE, TERM_RANKER_FILE))
        meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
        calibrator = DocumentCalibrator(meta["calibrator"]["x"], meta["calibrator"]["y"])
        note_model = None
        if (directory / "doc_classifier.npz").is_file():
            from medcode_nlp.doc_classifier import DocumentCodeClassifier

            note_model = DocumentCodeClassifier.load(directory)
        return cls(ranker, CodePrior.from_dict(meta["prior"]), calibrator,
                   float(meta["threshold"]), meta, note_model, doc_ranker, term_ranker)


TRUSTED_PREFIXES = ("medcode_nlp.ranker.", "sklearn.", "numpy.", "builtins.")


def _load_estimator(path: Path) -> CodeRanker:
    """A skops file whose types all come from the trusted packages (checksums already checked)."""
    import skops.io as sio

    untrusted = sio.get_untrusted_types(file=path)
    unexpected = [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES)]
    if unexpected:
        raise InputError(Errors.E012.format(path=path, detail=f"unexpected types {unexpected}"))
    estimator: CodeRanker = sio.load(path, trusted=untrusted)
    return estimator


#: Tokens of the sentence kept on each side of a mention as its context. ``span.sent`` walks
#: the whole sentence, so a note with no sentence ends (a long list without full stops) made
#: every mention cost the length of the note: quadratic time.
SENTENCE_WINDOW = 100


def sentence_context(span: Any, window: int = SENTENCE_WINDOW) -> str:
    """The text of the sentence holding ``span`` (as ``span.sent``: it starts before the span
    and ends at the next sentence start after the span's first token), clipped to ``window``
    tokens before and after the span. Needs sentence boundaries on the doc."""
    doc = span.doc
    start, lowest = span.start, max(span.start - window, 0)
    while start > lowest and not doc[start].is_sent_start:
        start -= 1
    end, highest = span.start + 1, min(span.end + window, len(doc))
    while end < highest and not doc[end].is_sent_start:
        end += 1
    return str(doc[start:end].text)


def mention_context(span: Any, window: int = 200) -> MentionContext:
    """A MentionContext from a spaCy entity span (the sentence, or a character window)."""
    doc = span.doc
    if doc.has_annotation("SENT_START"):
        context = sentence_context(span)
    else:
        context = doc.text[max(0, span.start_char - window) : span.end_char + window]
    return MentionContext(
        text=span.text,
        label=span.label_,
        section=span._.section,
        assertion=span._.assertion or "present",
        expansion=span._.expansion,
        context=context,
    )


#: The ``ranker`` value that asks for raw similarity scores instead of a trained ranker.
NO_RANKER = "none"


def default_ranker_path() -> Path:
    """The shipped ranker (``ranker`` below :func:`medcode_nlp.pipeline.models_dir`)."""
    from medcode_nlp.pipeline import models_dir

    return models_dir() / "ranker"


def load_default_ranker(path: str | Path | None = None) -> RankerModel | None:
    """The ranker at ``path``, the shipped one for None, or None for ``"none"`` (similarity
    scores). A missing or altered shipped ranker raises a numbered error naming the file."""
    if path is not None and str(path) == NO_RANKER:
        return None
    target = Path(path) if path is not None else default_ranker_path()
    if not (target / RANKER_FILE).is_file():
        if path is not None:
            raise InputError(Errors.E012.format(path=target, detail=f"no {RANKER_FILE}"))
        raise IntegrityError(Errors.E016.format(
            kind="ranker", path=target / RANKER_FILE,
            fallback=f'similarity scores (ranker="{NO_RANKER}", --ranker {NO_RANKER})'))
    return RankerModel.load(target)
