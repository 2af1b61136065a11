"""Numeric features of a (mention, candidate code) pair, for the ranker.

Families: string similarity (n-gram cosine from the index, word overlaps with the title and
the matched alias), which alias matched, the code's specificity and billability, how the
mention's label fits the code system, section and assertion, words of the note around the
mention found in the code title, code frequency priors learned from training data, and the
candidate's place in the code hierarchy among the other candidates.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from medcode_nlp.codesets.registry import code_key, systems_for_label
from medcode_nlp.schema import Candidate

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    "a an and as at by for from in into of on or the to with without due other unspecified "
    "nos nec not elsewhere classified specified type site part".split()
)
#: Feature columns, in the order the shipped ranker was fit on: never reorder them. Each is
#: checked against its source (codesets, the registry, the NER labels, the assertions) by
#: tests/ranking/test_feature_columns.py.
ALIAS_KINDS = ("description", "head", "inclusion", "index", "short", "custom", "abbreviation")
SYSTEM_GROUPS = ("icd10cm", "icd10pcs", "hcpcs", "cpt", "custom")
LABELS = ("PROBLEM", "PROCEDURE", "DRUG")
ASSERTIONS = ("present", "negated", "historical", "family", "hypothetical", "uncertain")
CHAPTER_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
#: Title words that narrow a code to a population or cause; absent from the mention they
#: usually mean the wrong code (a congenital, perinatal, maternal or post-procedural variant).
QUALIFIERS = frozenset(
    "congenital newborn neonatal fetal fetus perinatal maternal pregnancy puerperium "
    "childbirth postprocedural postoperative traumatic drug induced poisoning sequelae "
    "personal family history screening".split()
)
SECTION_GROUPS: dict[str, tuple[str, ...]] = {
    "diagnosis": ("assessment", "plan", "assessment_and_plan", "impression", "diagnoses",
                  "discharge_diagnoses", "admission_diagnoses", "preoperative_diagnosis",
                  "postoperative_diagnosis", "problem_list"),
    "history": ("past_medical_history", "past_surgical_history", "family_history",
                "social_history", "medications", "allergies"),
    "procedure": ("procedures", "operative_findings", "indications", "anesthesia",
                  "hospital_course", "description_of_procedure"),
    "findings": ("physical_exam", "labs", "imaging", "review_of_systems", "vital_signs",
                 "history_of_present_illness", "chief_complaint", "pathology"),
}

FEATURE_NAMES: list[str] = (
    [
        "similarity", "rank", "gap_to_top", "is_top", "n_candidates",
        "jaccard_title", "jaccard_alias", "mention_in_title", "title_in_mention",
        "context_in_title", "title_extra_words", "mention_words", "billable", "code_length",
        "has_7th_character", "unspecified", "other_specified", "label_fits_system",
        "category_support", "is_ancestor_of_candidate", "has_children_in_list",
        "prior_code", "prior_category", "prior_known",
        "missing_mention_words", "char_jaccard_title", "stem_overlap", "laterality_match",
        "with_mismatch", "billable_rank", "gap_to_best_billable", "depth_over_shallowest",
        "qualifier_mismatch",
    ]
    + [f"chapter_{letter}" for letter in CHAPTER_LETTERS]
    + [f"alias_{k}" for k in ALIAS_KINDS]
    + [f"system_{s}" for s in SYSTEM_GROUPS]
    + [f"label_{label}" for label in LABELS]
    + [f"assertion_{a}" for a in ASSERTIONS]
    + [f"section_{g}" for g in (*SECTION_GROUPS, "other", "none")]
    + ["standalone"]  # a term looked up on its own (search, index term), not a note mention
)


def content_words(text: str) -> frozenset[str]:
    """Lower-case words of a text without function words."""
    return frozenset(w for w in _WORD.findall(text.lower()) if w not in _STOP)


@lru_cache(maxsize=300_000)
def _title_words(description: str) -> frozenset[str]:
    return content_words(description)


@dataclass(slots=True)
class MentionContext:
    """What the ranker knows about a mention besides its candidates."""

    text: str
    label: str = "PROBLEM"
    section: str | None = None
    assertion: str = "present"
    expansion: str | None = None
    context: str = ""  # words of the note around the mention


@dataclass(slots=True)
class CodePrior:
    """Smoothed log-frequency of codes and categories in training gold sets, and how often
    two codes were coded together (``pair_counts``, keys in sorted order)."""

    code_counts: dict[str, int] = field(default_factory=dict)
    category_counts: dict[str, int] = field(default_factory=dict)
    total_documents: int = 0
    pair_counts: dict[tuple[str, str], int] = field(default_factory=dict)
    _by_category: dict[str, list[str]] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_gold(cls, gold_sets: list[set[str]]) -> CodePrior:
        codes: Counter[str] = Counter()
        categories: Counter[str] = Counter()
        pairs: Counter[tuple[str, str]] = Counter()
        for gold in gold_sets:
            keys = sorted({code_key(c) for c in gold})
            codes.update(keys)
            categories.update({k[:3] for k in keys})
            pairs.update(itertools.combinations(keys, 2))
        return cls(dict(codes), dict(categories), len(gold_sets), dict(pairs))

    def values(self, code: str) -> tuple[float, float, float]:
        key = code_key(code)
        n = max(self.total_documents, 1)
        code_count = self.code_counts.get(key, 0)
        category_count = self.category_counts.get(key[:3], 0)
        return (
            math.log1p(code_count) / math.log1p(n),
            math.log1p(category_count) / math.log1p(n),
            float(code_count > 0),
        )

    def conditional(self, code: str, given: str) -> float:
        """How often ``code`` was coded in the training notes that had ``given`` (smoothed)."""
        a, b = code_key(code), code_key(given)
        together = self.pair_counts.get((a, b) if a < b else (b, a), 0)
        return together / (self.code_counts.get(b, 0) + 1)

    def frequent_in_category(self, category: str) -> list[str]:
        """Training codes (keys) of a 3-character category, most frequent first."""
        if self._by_category is None:
            by_category: dict[str, list[tuple[int, str]]] = {}
            for key, count in self.code_counts.items():
                by_category.setdefault(key[:3], []).append((-count, key))
            self._by_category = {c: [k for _, k in sorted(v)] for c, v in by_category.items()}
        return self._by_category.get(code_key(category)[:3], [])

    def to_dict(self) -> dict[str, Any]:
        return {"code_counts": self.code_counts, "category_counts": self.category_counts,
                "total_documents": self.total_documents,
                "pair_counts": [[a, b, n] for (a, b), n in sorted(self.pair_counts.items())]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CodePrior:
        pairs = {(str(a), str(b)): int(n) for a, b, n in data.get("pair_counts", [])}
        return cls(dict(data["code_counts"]), dict(data["category_counts"]),
                   int(data["total_documents"]), pairs)


_SIDES = frozenset({"left", "right", "bilateral", "unilateral"})


@lru_cache(maxsize=300_000)
def _char_grams(text: str) -> frozenset[str]:
    padded = f" {' '.join(_WORD.findall(text.lower()))} "
    return frozenset(padded[i : i + 3] for i in range(len(padded) - 2))


def _stems(words: frozenset[str]) -> frozenset[str]:
    return frozenset(w[:5] for w in words)


def _laterality(mention: frozenset[str], title: frozenset[str]) -> float:
    wanted, offered = mention & _SIDES, title & _SIDES
    if wanted and wanted & offered:
        return 1.0
    if offered and not wanted:
        return -1.0
    return 0.0


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def _section_group(section: str | None) -> str:
    if not section:
        return "none"
    for group, members in SECTION_GROUPS.items():
        if section in members:
            return group
    return "other"


def pair_features(
    mention: MentionContext, candidates: list[Candidate], prior: CodePrior
) -> np.ndarray:
    """One row of ``FEATURE_NAMES`` per candidate (candidates in similarity order)."""
    rows = np.zeros((len(candidates), len(FEATURE_NAMES)), dtype=np.float32)
    if not candidates:
        return rows
    mention_words = content_words(" ".join(filter(None, [mention.text, mention.expansion])))
    context_words = content_words(mention.context) - mention_words
    top = max(c.score for c in candidates)
    keys = [code_key(c.code) for c in candidates]
    categories = Counter(k[:3] for k in keys)
    section_group = _section_group(mention.section)
    fits = systems_for_label(mention.label)
    mention_grams = _char_grams(mention.text)
    mention_stems = _stems(mention_words)
    mention_has_with = "with" in mention.text.lower().split()
    billable_scores = [c.score for c in candidates if c.billable]
    best_billable = max(billable_scores) if billable_scores else 0.0
    shallowest = min(len(k) for k in keys)
    billable_rank = 0
    standalone = float(not mention.context.strip())
    for i, candidate in enumerate(candidates):
        key = keys[i]
        title = _title_words(candidate.description)
        alias = content_words(candidate.alias) if candidate.alias else title
        extra = title - mention_words
        prior_code, prior_category, prior_known = prior.values(candidate.code)
        values = [
            candidate.score,
            float(i),
            top - candidate.score,
            float(i == 0),
            float(len(candidates)),
            _jaccard(mention_words, title),
            _jaccard(mention_words, alias),
            len(mention_words & title) / max(len(mention_words), 1),
            len(mention_words & title) / max(len(title), 1),
            len(context_words & extra) / max(len(extra), 1),
            float(len(extra)),
            float(len(mention_words)),
            float(candidate.billable),
            float(len(key)),
            float(candidate.system == "icd10cm" and len(key) == 7),
            float("unspecified" in candidate.description.lower()),
            float(candidate.description.lower().startswith("other")),
            float(candidate.system in fits),
            float(categories[key[:3]]),
            float(any(k != key and k.startswith(key) for k in keys)),
            float(any(k != key and key.startswith(k) for k in keys)),
            prior_code,
            prior_category,
            prior_known,
            float(len(mention_words - title)),
            _jaccard(mention_grams, _char_grams(candidate.description)),
            len(mention_stems & _stems(title)) / max(len(mention_stems), 1),
            _laterality(mention_words, title),
            float(" with " in f" {candidate.description.lower()} " and not mention_has_with),
            float(billable_rank if candidate.billable else -1),
            best_billable - candidate.score,
            float(len(key) - shallowest),
            float(len((title & QUALIFIERS) - mention_words)),
        ]
        values += [float(key[:1] == letter) for letter in CHAPTER_LETTERS]
        billable_rank += int(candidate.billable)
        values += [float(candidate.alias_kind == k) for k in ALIAS_KINDS]
        values += [float(candidate.system == s) for s in SYSTEM_GROUPS]
        values += [float(mention.label == label) for label in LABELS]
        values += [float(mention.assertion == a) for a in ASSERTIONS]
        values += [float(section_group == g) for g in (*SECTION_GROUPS, "other", "none")]
        values.append(standalone)
        rows[i] = values
    return rows


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
