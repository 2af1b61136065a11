"""The mention stage of the ranker's training: candidates kept per mention, example weights,
fitting a :class:`~medcode_nlp.ranking.estimators.CodeRanker` on mention examples, rescoring
examples with a fitted model, coders' reviewed decisions as examples, and the linker index
terms are searched with."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from medcode_nlp.codesets.registry import code_key
from medcode_nlp.ranking.estimators import CodeRanker
from medcode_nlp.ranking.mention_features import CodePrior
from medcode_nlp.ranking.model import RankerModel
from medcode_nlp.training.ranker_data import MentionExample, featurize

#: Candidates kept per mention.
TOP_CANDIDATES = 20
FEEDBACK_WEIGHT = 5.0
#: Boosting iterations of the term ranker (index terms and reviewed decisions only).
TERM_RANKER_ITERATIONS = 300
#: Leaves per tree of the term ranker (with L2 1.0; the choice: models/ranker/MODEL_CARD.md).
TERM_RANKER_LEAVES = 255
#: Weight of index-term mentions (the choice: models/ranker/MODEL_CARD.md).
INDEX_WEIGHT = 1.0


def trim_candidates(examples: Sequence[MentionExample], top: int) -> list[MentionExample]:
    """Copies of the examples with their ``top`` first candidates only."""
    return [replace(e, candidates=e.candidates[:top]) for e in examples]


def fit_mention_ranker(train: Sequence[MentionExample], prior: CodePrior, calibration_cv: int,
         seed: int, max_iter: int = 100, **trees: Any) -> CodeRanker:
    """A ranker fit on the examples' pairs (reviewed decisions weigh ``FEEDBACK_WEIGHT``,
    index terms ``INDEX_WEIGHT``)."""
    pairs = featurize(train, prior)
    weights = np.array([FEEDBACK_WEIGHT if g.startswith("feedback:")
                        else INDEX_WEIGHT if g == "index" else 1.0 for g in pairs.groups])
    return CodeRanker(max_iter=max_iter, calibration_cv=calibration_cv, random_state=seed,
                      **trees).fit(pairs.X, pairs.y, sample_weight=weights)


def feedback_examples(records: Sequence[Any], kb: Any, linker: Any) -> list[MentionExample]:
    """Coders' reviewed decisions as mention examples (group ``feedback:<note id>``).

    Accepted, replaced and added codes are right for their mention; a rejected code is a
    wrong candidate (only it is kept for that mention, its other candidates are unknown).
    """
    from medcode_nlp.ranking.mention_features import MentionContext
    from medcode_nlp.schema import Candidate

    found = linker.candidates_for([([r.entity_text], "PROBLEM" if (r.final_system or
                                   r.suggested_system) == "icd10cm" else "PROCEDURE")
                                   for r in records])
    examples = []
    for record, candidates in zip(records, found, strict=True):
        mention = MentionContext(text=record.entity_text)
        group = f"feedback:{record.note_id}"
        if record.decision == "reject":
            wrong = [c for c in candidates if c.code == record.suggested_code]
            if wrong:
                examples.append(MentionExample(mention, wrong, frozenset(), group))
            continue
        final = record.final_code
        entry = kb.get(record.final_system, final) if final else None
        if entry is None:
            continue
        if all(c.code != entry.code for c in candidates):
            candidates = [*candidates[: TOP_CANDIDATES - 1],
                          Candidate(entry.code, entry.system, entry.description,
                                    min((c.score for c in candidates), default=0.0),
                                    entry.billable, entry.description, "description")]
        examples.append(MentionExample(mention, candidates[:TOP_CANDIDATES],
                                       frozenset({code_key(entry.code)}), group))
    return examples


def rescored(examples: Sequence[MentionExample], model: RankerModel) -> list[MentionExample]:
    """Copies of the examples with ranker probabilities as scores (one predict call)."""
    pairs = featurize(examples, model.prior)
    probabilities = model.ranker.score_pairs(pairs.X) if len(pairs.X) else np.zeros(0)
    output = []
    offset = 0
    for example in examples:
        candidates = [replace(c) for c in example.candidates]
        for c in candidates:
            c.score = float(probabilities[offset])
            offset += 1
        candidates.sort(key=lambda c: -c.score)
        output.append(replace(example, candidates=candidates))
    return output


def index_linker(linker: Any, index_kb: str | None) -> tuple[Any, Any]:
    """A linker like ``linker`` over the knowledge base index terms are searched in, and that
    knowledge base (default: the built-in one)."""
    from medcode_nlp.kb.cache import shared_kb
    from medcode_nlp.nlp.components.linker import CodeLinker

    kb = shared_kb(index_kb)  # builds the built-in one once if missing
    term_linker = CodeLinker(None, "index_linker", kb_path=index_kb,  # type: ignore[arg-type]
                             systems=linker.systems, top_k=linker.top_k,
                             min_similarity=linker.min_similarity)
    return term_linker, kb
