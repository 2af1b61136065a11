"""The second-stage document scorer: its features, and how the coding rules use it."""

from __future__ import annotations

from collections import Counter

import numpy as np

from medcode_nlp.coding_rules import (
    PARTIAL_PROMPT,
    SIBLING_PROMPT,
    SIBLINGS_PER_CATEGORY,
    CodingOptions,
    Mention,
    code_document,
)
from medcode_nlp.ranking.document_features import (
    DOC_FEATURE_NAMES,
    CodeSignals,
    DocumentScoring,
    document_features,
    partial_description,
    partial_pcs_code,
)
from medcode_nlp.ranking.mention_features import CodePrior
from medcode_nlp.schema import Candidate, Entity


def _named(row: np.ndarray) -> dict[str, float]:
    return dict(zip(DOC_FEATURE_NAMES, row.tolist(), strict=True))


def test_doc_scorer_features_summarise_the_evidence():
    prior = CodePrior.from_gold([{"J18.9"}, {"J18.9", "R50.9"}])
    signals = [
        CodeSignals("icd10cm", "J18.9", probabilities=[0.5, 0.4], similarities=[0.9, 0.7],
                    ranks=[0, 2], assertions=["present", "historical"], note_probability=0.3),
        CodeSignals("icd10cm", "R50.9", probabilities=[0.2], similarities=[0.6], ranks=[1],
                    assertions=["present"]),
        CodeSignals("icd10pcs", "0BJ0", partial=True, note_probability=0.8),
    ]
    rows = document_features(signals, prior, note_mentions=7)
    assert rows.shape == (3, len(DOC_FEATURE_NAMES))
    first, second, third = (_named(r) for r in rows)
    assert first["mentions"] == 2 and first["max_probability"] == np.float32(0.5)
    assert abs(first["noisy_or"] - 0.7) < 1e-6
    assert first["best_rank"] == 0 and first["top_share"] == 0.5
    assert first["historical_mentions"] == 1 and first["note_modelled"] == 1
    assert first["mention_rank"] == 0 and second["mention_rank"] == 1
    assert first["prior_code"] > second["prior_code"]
    assert second["note_probability"] == -1 and second["note_modelled"] == 0
    assert third["partial_code"] == 1 and third["system_icd10pcs"] == 1
    assert third["mention_rank"] == 999 and third["note_rank"] == 0  # ranked in its own group
    assert {r["note_mentions"] for r in (first, second, third)} == {7}


def test_doc_scorer_category_and_position_features():
    prior = CodePrior.from_gold([{"J18.9"}])
    signals = [
        CodeSignals("icd10cm", "J18.9", probabilities=[0.5], positions=[0.8, 0.2],
                    mention_words=[2, 1], expanded=[True]),
        CodeSignals("icd10cm", "J18.1", probabilities=[0.2], note_probability=0.6),
        CodeSignals("icd10cm", "R50.9", probabilities=[0.4]),
    ]
    first, second, third = (_named(r) for r in document_features(signals, prior, 3))
    assert abs(first["category_noisy_or"] - 0.6) < 1e-6 and first["category_codes"] == 2
    assert first["category_rank"] == 0 and second["category_rank"] == 1
    assert abs(first["category_best_other"] - 0.2) < 1e-6 and third["category_best_other"] == 0
    assert abs(first["category_note_max"] - 0.6) < 1e-6 and third["category_note_max"] == -1
    assert first["first_position"] == np.float32(0.2) and first["last_position"] == np.float32(0.8)
    assert first["evidence_spans"] == 2 and first["min_mention_words"] == 1
    assert first["expanded_share"] == 1 and second["expanded_share"] == -1
    assert first["code_length"] == 4 and third["chapter"] == ord("R")


def test_doc_scorer_partial_code_helpers():
    assert partial_pcs_code("0DJD8ZZ") == "0DJD"
    assert partial_pcs_code("0DJD") is None
    assert partial_description("Inspection Lower Intestinal Tract, Via Natural Opening").startswith(
        "Inspection Lower Intestinal Tract (partial code")


def _procedure_mention(kb) -> Mention:
    code = kb.first_with_prefix("icd10pcs", "0DT")
    assert code is not None
    entry = kb.get("icd10pcs", code)
    candidate = Candidate(entry.code, "icd10pcs", entry.description, 0.9, True, similarity=0.8)
    entity = Entity(text="resection", start=0, end=9, label="PROCEDURE", candidates=[candidate])
    return Mention(entity, context="resection")


def test_doc_scorer_drives_scores_and_partial_codes(kb):
    mention = _procedure_mention(kb)
    seen: list[list[CodeSignals]] = []

    def scorer(signals: list[CodeSignals], note_mentions: int) -> list[float]:
        seen.append(signals)
        assert note_mentions == 1
        return [0.25 if s.partial else 0.75 for s in signals]

    full_code = mention.entity.candidates[0].code
    codes, _ = code_document(kb, [mention], CodingOptions(min_score=0.0), DocumentScoring(scorer=scorer))
    assert [(c.code, c.score) for c in codes] == [(full_code, 0.75)]  # partial codes off
    codes, _ = code_document(kb, [mention], CodingOptions(min_score=0.0, partial_codes=True),
                             DocumentScoring(scorer=scorer))
    by_code = {c.code: c for c in codes}
    partial = by_code[full_code[:4]]
    assert partial.score == 0.25 and not partial.billable and PARTIAL_PROMPT in partial.prompts
    assert [s.similarities for s in seen[-1] if not s.partial] == [[0.8]]


def test_doc_scorer_note_only_partial_code_needs_a_real_stem(kb):
    mention = _procedure_mention(kb)
    note = {("icd10pcs", "0DTJ"): 0.6, ("icd10pcs", "ZZZZ"): 0.9}
    codes, _ = code_document(kb, [mention], CodingOptions(min_score=0.0, partial_codes=True),
                             DocumentScoring(note_scores=note, scorer=lambda s, n: [0.5] * len(s)))
    found = {c.code for c in codes}
    assert "0DTJ" in found and "ZZZZ" not in found


def test_doc_scorer_shipped_model_has_a_document_stage(default_coder):
    ranker = default_coder.ranker
    assert ranker is not None and ranker.doc_ranker is not None
    result = default_coder("Colonoscopy with biopsy of the sigmoid colon.", partial_codes=True,
                           min_score=0.0)
    assert all(0.0 <= c.score <= 1.0 for c in result.codes)


def test_doc_scorer_cooccurrence_features_follow_training_pairs():
    # I10 was coded with E11.9 in 2 of the 3 notes that had E11.9; R50.9 never was
    prior = CodePrior.from_gold([{"E11.9", "I10"}, {"E11.9", "I10"}, {"E11.9"}, {"R50.9"}])
    signals = [
        CodeSignals("icd10cm", "E11.9", probabilities=[0.9]),
        CodeSignals("icd10cm", "I10", probabilities=[0.1]),
        CodeSignals("icd10cm", "R50.9", probabilities=[0.1]),
    ]
    diabetes, hypertension, fever = (_named(r) for r in document_features(signals, prior, 3))
    assert abs(hypertension["cooccurrence_max"] - 0.9 * 2 / 4) < 1e-6
    assert fever["cooccurrence_max"] == 0 and diabetes["cooccurrence_max"] == 0  # I10 is weak
    assert {r["context_codes"] for r in (diabetes, hypertension, fever)} == {1}
    assert hypertension["category_sibling"] == 0


def test_doc_scorer_prior_pairs_and_categories_round_trip():
    prior = CodePrior.from_gold([{"E11.9", "I10"}, {"E11.9", "E11.65"}, {"E11.65"}])
    assert prior.frequent_in_category("E11") == ["E1165", "E119"]  # ties: code order
    assert prior.conditional("I10", "E11.9") == 1 / 3
    again = CodePrior.from_dict(prior.to_dict())
    assert again.pair_counts == prior.pair_counts and again.code_counts == prior.code_counts
    legacy = {k: v for k, v in prior.to_dict().items() if k != "pair_counts"}
    assert CodePrior.from_dict(legacy).conditional("I10", "E11.9") == 0.0


def test_doc_scorer_proposes_frequent_codes_of_a_supported_category(kb):
    codes = kb.codes("icd10cm", billable_only=True)
    per_category = Counter(c[:3] for c in codes)
    category = next(c for c, n in per_category.items() if n >= SIBLINGS_PER_CATEGORY + 2)
    billable = [c for c in codes if c.startswith(category)]
    mention_code, frequent = billable[0], billable[1:]
    entry = kb.get("icd10cm", mention_code)
    candidate = Candidate(entry.code, "icd10cm", entry.description, 0.9, True, similarity=0.9)
    mention = Mention(Entity(text="x", start=0, end=1, label="PROBLEM", candidates=[candidate]),
                      context="x")
    seen: list[list[CodeSignals]] = []

    def scorer(signals: list[CodeSignals], note_mentions: int) -> list[float]:
        seen.append(signals)
        return [0.2 if s.sibling else 0.8 for s in signals]

    def category_codes(cat: str) -> list[str]:
        return [mention_code.replace(".", ""), "NOTACODE",
                *(c.replace(".", "") for c in frequent)]

    options = CodingOptions(min_score=0.0)
    codes, _ = code_document(kb, [mention], options,
                             DocumentScoring(scorer=scorer, category_codes=category_codes))
    siblings = [c for c in codes if SIBLING_PROMPT in c.prompts]
    assert [c.code for c in siblings] == [kb.get("icd10cm", c).code for c in frequent[:SIBLINGS_PER_CATEGORY]]
    assert all(c.score == 0.2 and not c.evidence for c in siblings)
    assert sum(s.sibling for s in seen[-1]) == len(siblings)
    codes, _ = code_document(kb, [mention], options, DocumentScoring(category_codes=category_codes))
    assert all(SIBLING_PROMPT not in c.prompts for c in codes)  # needs the second stage
