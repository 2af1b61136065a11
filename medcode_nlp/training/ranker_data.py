"""Training pairs for the ranker: CodiEsp documents and ICD-10-CM / ICD-10-PCS index terms.

A *mention set* is a list of (MentionContext, candidates, gold keys) triples: the gold keys
say which candidate codes are right. Features are computed later, with the code prior of the
fold the mention is scored in (out-of-fold priors avoid leaking a document's own codes).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medcode_nlp.codesets.index_terms import mention_text, read_index_rows
from medcode_nlp.codesets.registry import code_key
from medcode_nlp.ranking.mention_features import (
    CodePrior,
    MentionContext,
    mention_context,
    pair_features,
)
from medcode_nlp.schema import Candidate

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class MentionExample:
    """A mention with its candidates and the gold code keys of its document (or term)."""

    mention: MentionContext
    candidates: list[Candidate]
    gold: frozenset[str]
    group: str  # document id, or "index" for index terms
    start: int = 0
    end: int = 0


@dataclass(slots=True)
class PairSet:
    """Feature rows, labels and the group of each row."""

    X: np.ndarray
    y: np.ndarray
    groups: list[str] = field(default_factory=list)


def is_match(candidate_code: str, gold: frozenset[str]) -> bool:
    """A candidate matches a gold code if equal, or if the gold code is a 4-character partial
    code it starts with (CodiEsp's procedure gold is often given at 4 characters)."""
    key = code_key(candidate_code)
    return key in gold or any(len(g) == 4 < len(key) and key.startswith(g) for g in gold)


def featurize(examples: Sequence[MentionExample], prior: CodePrior) -> PairSet:
    """Feature rows of every (mention, candidate) pair with its 0/1 label."""
    blocks: list[np.ndarray] = []
    labels: list[int] = []
    groups: list[str] = []
    for example in examples:
        if not example.candidates:
            continue
        blocks.append(pair_features(example.mention, example.candidates, prior))
        labels.extend(int(is_match(c.code, example.gold)) for c in example.candidates)
        groups.extend([example.group] * len(example.candidates))
    if not blocks:
        return PairSet(np.zeros((0, 0), np.float32), np.zeros(0, np.int64), [])
    return PairSet(np.vstack(blocks), np.array(labels, dtype=np.int64), groups)


def document_examples(nlp, docs: Iterable[tuple[str, str, set[str]]]) -> list[MentionExample]:  # type: ignore[no-untyped-def]
    """Run the pipeline over (doc id, text, gold codes) and keep every entity's candidates."""
    examples = []
    items = list(docs)
    texts = (text for _, text, _ in items)
    for (doc_id, _, gold), doc in zip(items, nlp.pipe(texts, batch_size=16), strict=True):
        gold_keys = frozenset(code_key(c) for c in gold)
        for span in doc.ents:
            candidates = list(span._.candidates or [])
            examples.append(MentionExample(mention_context(span), candidates, gold_keys, doc_id,
                                           span.start_char, span.end_char))
    return examples


def index_term_rows(csv_path: Path) -> list[tuple[int, str, str]]:
    """(RowID, mention text, code) for every coded row of the ICD-10-CM index CSV.

    The mention text is built as in the linking benchmark
    (:func:`medcode_nlp.codesets.index_terms.mention_text`): "iron deficiency anemia".
    """
    return [(row.row_id, mention_text(row.path), row.code)
            for row in read_index_rows(Path(csv_path)) if row.code]


#: Lengths of the ICD-10-PCS index targets kept for training: a partial code (section, body
#: system, root operation, body part; any full code starting with it is right, as
#: :func:`is_match` does for CodiEsp's partial gold) or a full code. A 3-character table
#: leaves the body part open (too many right answers), 5-6 characters are rare.
PCS_TARGET_LENGTHS = (4, 7)


def pcs_index_rows(xml_path: Path) -> list[tuple[int, str, str]]:
    """(row number, mention text, code) for the ICD-10-PCS index entries usable as training.

    "Excision, Joint, Hip, Left" -> "left hip joint excision" (built like the ICD-10-CM
    mentions); the row number is the entry's position in the file, stable across runs.
    """
    from medcode_nlp.codesets.icd10pcs_official import load_icd10pcs_index

    rows = []
    for number, term in enumerate(load_icd10pcs_index(xml_path)):
        code = code_key(term.code)
        text = mention_text(term.term.split(", "))
        if len(code) in PCS_TARGET_LENGTHS and text:
            rows.append((number, text, code))
    return rows


def index_examples(
    linker_search, rows: Sequence[tuple[int, str, str]],  # type: ignore[no-untyped-def]
    label: str = "PROBLEM",
) -> list[MentionExample]:
    """Mention examples from index terms; ``linker_search(texts)`` returns candidate lists."""
    candidate_lists = linker_search([text for _, text, _ in rows])
    return [
        MentionExample(MentionContext(text=text, label=label), candidates,
                       frozenset({code_key(code)}), "index")
        for (_, text, code), candidates in zip(rows, candidate_lists, strict=True)
    ]
