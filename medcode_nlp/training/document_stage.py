"""The document stage of the ranker's training: the second-stage recipes, a note's codes scored
through the coding rules, and the second-stage rows (document features with exact-match
labels) the document ranker is fit on."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medcode_nlp.coding_rules import CodingOptions, Mention, code_document
from medcode_nlp.evaluation.datasets import normalize_code
from medcode_nlp.ranking.document_features import (
    COMPACT_DOC_FEATURES,
    DOC_FEATURE_NAMES,
    CodeSignals,
    DocumentScoring,
    document_features,
)
from medcode_nlp.ranking.model import RankerModel
from medcode_nlp.schema import Entity
from medcode_nlp.training.mention_stage import rescored
from medcode_nlp.training.ranker_data import MentionExample

#: Second-stage recipes, each over the same out-of-fold rows. ``compact`` (shipped): 3 models
#: over the first 31 document features, each split seeing 70% of them, each one set of trees
#: with isotonic calibration from 3 folds (3 tree sets to evaluate, as ``single``).
#: ``single``: one model whose 3 calibration folds each keep their trees. ``bagged``: 5 models
#: over every feature, siblings and co-occurrence included, 3 tree sets each. Their history
#: and dev MAP: models/ranker/MODEL_CARD.md (``benchmarks/second_stage_variants.py``).
SECOND_STAGES: dict[str, dict[str, Any]] = {
    "compact": {"features": COMPACT_DOC_FEATURES, "n_bags": 3, "max_features": 0.7,
                "ensemble": False},
    "single": {"features": COMPACT_DOC_FEATURES, "n_bags": 1, "max_features": 1.0,
               "ensemble": True},
    "bagged": {"features": DOC_FEATURE_NAMES, "n_bags": 5, "max_features": 0.5,
               "ensemble": True},
}
#: Coding setting of the second-stage rows: CodiEsp notes are case reports of hospital stays.
TRAINING_SETTING = "inpatient"


def document_scores(kb: Any, examples: Sequence[MentionExample], model: RankerModel,
                    texts: dict[str, str] | None = None, scorer: Any = None,
                    setting: str = TRAINING_SETTING,
                    ) -> dict[str, list[tuple[str, str, float]]]:
    """(system, code, combined score) per document, through the coding rules."""
    by_doc: dict[str, list[MentionExample]] = {}
    for example in rescored(examples, model):
        by_doc.setdefault(example.group, []).append(example)
    for doc_id in texts or {}:
        by_doc.setdefault(doc_id, [])
    options = CodingOptions(setting=setting, min_score=0.0, top_k=1000, partial_codes=True)
    scorer = scorer or model.scorer
    scores = {}
    for doc_id, items in by_doc.items():
        mentions = [
            Mention(Entity(text=e.mention.text, start=e.start, end=e.end,
                           label=e.mention.label, section=e.mention.section,
                           assertion=e.mention.assertion, candidates=e.candidates),
                    context=e.mention.context)
            for e in items
        ]
        note = model.note_scores(texts[doc_id], kb) if texts else None
        scoring = DocumentScoring(model.combine, note, scorer, model.category_codes)
        codes, _ = code_document(kb, mentions, options, scoring)
        scores[doc_id] = [(c.system, c.code, c.score) for c in codes]
    return scores


def fit_note_classifier(docs: Sequence[Any], gold: dict[str, set[str]]) -> Any:
    """The whole-note code classifier, fit on these documents' gold codes."""
    from medcode_nlp.ranking.note_classifier import DocumentCodeClassifier

    return DocumentCodeClassifier().fit([d.text for d in docs], [gold[d.id] for d in docs])


def _suggestable(kb: Any, signals: CodeSignals) -> bool:
    """Whether the code may be suggested: a partial procedure code or a billable code."""
    entry = kb.get(signals.system, signals.code)
    return signals.partial or (entry is not None and entry.billable)


def document_rows(kb: Any, examples: Sequence[MentionExample], model: RankerModel,
                  texts: dict[str, str], gold: dict[str, set[str]]
                  ) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str, str, bool]]]:
    """Second-stage rows (``document_features``), exact-match labels and, per row, the note,
    system, code and whether the code can be suggested (billable or a partial code)."""
    blocks: list[np.ndarray] = []
    labels: list[int] = []
    keys: list[tuple[str, str, str, bool]] = []
    current: list[str] = []

    def record(signals: list[CodeSignals], note_mentions: int) -> np.ndarray:
        blocks.append(document_features(signals, model.prior, note_mentions,
                                        model.document_feature_count))
        labels.extend(int(normalize_code(s.code) in gold[current[0]]) for s in signals)
        keys.extend((current[0], s.system, s.code, _suggestable(kb, s)) for s in signals)
        return np.zeros(len(signals))

    by_doc: dict[str, list[MentionExample]] = {}
    for example in examples:
        by_doc.setdefault(example.group, []).append(example)
    for doc_id in texts:
        current[:] = [doc_id]
        document_scores(kb, by_doc.get(doc_id, []), model, {doc_id: texts[doc_id]}, record)
    return np.vstack(blocks), np.array(labels, dtype=np.int64), keys


def save_rows(path: Path, x: np.ndarray, y: np.ndarray,
              keys: Sequence[tuple[str, str, str, bool]]) -> None:
    """Second-stage rows with their keys, for fitting document-stage variants offline."""
    np.savez_compressed(path, X=x, y=y, doc=np.array([k[0] for k in keys]),
                        system=np.array([k[1] for k in keys]),
                        code=np.array([k[2] for k in keys]),
                        suggestable=np.array([k[3] for k in keys]))
