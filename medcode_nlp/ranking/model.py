"""The ranker bundle: the estimators of :mod:`medcode_nlp.ranking.estimators` with their data.

``RankerModel`` bundles the mention estimator (``CodeRanker`` over the rows of
:mod:`medcode_nlp.ranking.mention_features`)
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
from pathlib import Path
from typing import Any

import numpy as np

from medcode_nlp.codesets.registry import ranked_systems
from medcode_nlp.errors import Errors, InputError, IntegrityError
from medcode_nlp.integrity import verify_directory, verify_file, write_checksums
from medcode_nlp.ranking.document_features import (
    DOC_FEATURE_NAMES,
    CodeSignals,
    DocumentScoring,
    document_features,
    noisy_or,
)
from medcode_nlp.ranking.estimators import CodeRanker, DocumentCalibrator, load_estimator
from medcode_nlp.ranking.mention_features import (
    CodePrior,
    MentionContext,
    mention_context,
    pair_features,
)
from medcode_nlp.ranking.unranked import combine as unranked_combine
from medcode_nlp.ranking.unranked import confidences

logger = logging.getLogger(__name__)

#: Code systems the ranker recipe learns from (CodiEsp notes, ICD-10 index terms). Candidates
#: of other systems (HCPCS, CPT, custom sets) get :func:`medcode_nlp.ranking.unranked.confidences`.
RANKED_SYSTEMS = ranked_systems()
RANKER_FILE = "ranker.skops"
DOC_RANKER_FILE = "doc_ranker.skops"
TERM_RANKER_FILE = "term_ranker.skops"
META_FILE = "ranker.json"
#: Deflate the skops archives: the bagged second stage is 36 MB stored, 6 MB deflated.
SKOPS_COMPRESSION: dict[str, Any] = {"compression": zipfile.ZIP_DEFLATED, "compresslevel": 9}


#: Whole-note probability a code needs to be a candidate of the document stage.
NOTE_CANDIDATE_FLOOR = 0.005  # the choice: models/ranker/MODEL_CARD.md


class RankerModel:
    """The shipped ranker: estimator, prior, document calibration and threshold.

    Only candidates of ``RANKED_SYSTEMS`` go through the estimators; the others get a
    rule-based confidence per mention (:mod:`medcode_nlp.ranking.unranked`), combined per note by
    :func:`medcode_nlp.ranking.unranked.combine` (a noisy-or of the mentions that document the code).
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
        self._term_ranker = term_ranker  # for terms looked up on their own (no note around)
        self._term_ranker_file: Path | None = None  # read on first use (notes never need it)
        self._note_keys_for: Any = None  # the KB _note_keys_cache was worked out for
        self._note_keys_cache: dict[str, Any] = {}
        self.prior = prior
        self.calibrator = calibrator or DocumentCalibrator()
        self.threshold = threshold
        self.meta = meta or {}

    @property
    def term_ranker(self) -> CodeRanker | None:
        """The ranker of standalone terms, read from its (verified) file on first use."""
        if self._term_ranker is None and self._term_ranker_file is not None:
            verify_file(self._term_ranker_file.parent, self._term_ranker_file.name)
            self._term_ranker = load_estimator(self._term_ranker_file)
            self._term_ranker_file = None
        return self._term_ranker

    @term_ranker.setter
    def term_ranker(self, ranker: CodeRanker | None) -> None:
        self._term_ranker, self._term_ranker_file = ranker, None

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

    def document_scoring(self, text: str | None, kb: Any) -> DocumentScoring:
        """The one object :func:`~medcode_nlp.coding_rules.code_document` asks of a ranker:
        calibrated ``combine``, the note's whole-note scores (none when ``text`` is None),
        the second stage and the category codes."""
        note = self.note_scores(text, kb) if text is not None else None
        return DocumentScoring(self.combine, note, self.scorer, self.category_codes)

    def combine(self, probabilities: list[float]) -> float:
        """Document-level confidence of a code from its mention probabilities."""
        return self.calibrator(noisy_or(probabilities))

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
        ranker = load_estimator(directory / RANKER_FILE)
        doc_ranker = (load_estimator(directory / DOC_RANKER_FILE)
                      if (directory / DOC_RANKER_FILE).is_file() else None)
        meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
        calibrator = DocumentCalibrator(meta["calibrator"]["x"], meta["calibrator"]["y"])
        note_model = None
        if (directory / "doc_classifier.npz").is_file():
            from medcode_nlp.ranking.note_classifier import DocumentCodeClassifier

            note_model = DocumentCodeClassifier.load(directory)
        model = cls(ranker, CodePrior.from_dict(meta["prior"]), calibrator,
                    float(meta["threshold"]), meta, note_model, doc_ranker)
        if (directory / TERM_RANKER_FILE).is_file():
            model._term_ranker_file = directory / TERM_RANKER_FILE
        return model


#: The ``ranker`` value that asks for raw similarity scores instead of a trained ranker.
NO_RANKER = "none"


def default_ranker_path() -> Path:
    """The shipped ranker (``ranker`` below :func:`medcode_nlp.paths.models_dir`)."""
    from medcode_nlp.paths import models_dir

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
