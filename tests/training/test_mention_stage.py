"""Coders' reviewed decisions change what the ranker puts first for the reviewed pattern."""

from __future__ import annotations

import pytest

from medcode_nlp.ranking.mention_features import CodePrior, MentionContext
from medcode_nlp.ranking.model import RankerModel
from medcode_nlp.review.feedback import FeedbackRecord
from medcode_nlp.training.mention_stage import feedback_examples, fit_mention_ranker
from medcode_nlp.training.ranker_data import MentionExample

# Term -> code pairs written for this test (a small stand-in for the index-term data).
BASE_PAIRS = [
    ("congestive heart failure", "I50.9"), ("pneumonia", "J18.9"), ("acute cystitis", "N30.00"),
    ("essential hypertension", "I10"), ("type 2 diabetes", "E11.9"), ("asthma", "J45.909"),
    ("urinary tract infection", "N39.0"), ("chest pain", "R07.9"), ("low back pain", "M54.50"),
    ("gastroesophageal reflux", "K21.9"), ("hyperlipidemia", "E78.5"), ("anemia", "D64.9"),
    ("major depression", "F32.9"), ("atrial fibrillation", "I48.91"), ("headache", "R51.9"),
    ("migraine", "G43.909"), ("obesity", "E66.9"), ("hypothyroidism", "E03.9"),
    ("osteoarthritis of knee", "M17.9"), ("acute bronchitis", "J20.9"), ("dizziness", "R42"),
    ("constipation", "K59.00"), ("insomnia", "G47.00"), ("fatigue", "R53.83"),
]
REVIEWED = "kidney disease due to type 2 diabetes"


def _record(note: str, decision: str, suggested: str | None, final: str | None) -> FeedbackRecord:
    return FeedbackRecord(
        note_id=note, entity_text=REVIEWED, start=0, end=len(REVIEWED), decision=decision,
        suggested_system="icd10cm" if suggested else None, suggested_code=suggested,
        final_system="icd10cm" if final else None, final_code=final, confidence=None,
        reviewer="tester", decided_at="2026-11-27T00:00:00Z", model_version=None,
        code_set_versions="",
    )


def _top(model: RankerModel, candidates) -> str:
    scores = model.score(MentionContext(text=REVIEWED), candidates)
    return max(zip(candidates, scores, strict=True), key=lambda cs: cs[1])[0].code


@pytest.mark.slow
def test_feedback_decisions_change_the_ranking(dictionary_coder, kb):
    linker = dictionary_coder.nlp.get_pipe("medcode_linker")
    found = linker.candidates_for([([text], "PROBLEM") for text, _ in BASE_PAIRS])
    base = [MentionExample(MentionContext(text=text), cands[:10], frozenset({code.replace(".", "")}),
                           "index")
            for (text, code), cands in zip(BASE_PAIRS, found, strict=True)]
    prior = CodePrior()
    before = RankerModel(fit_mention_ranker(base, prior, 0, 0), prior)
    (candidates,) = linker.candidates_for([([REVIEWED], "PROBLEM")])
    candidates = candidates[:10]
    first = _top(before, candidates)
    wanted = next(c.code for c in candidates if c.billable and c.code != first)
    records = [_record(f"note-{i}", "replace", first, wanted) for i in range(6)]
    records += [_record("note-r", "reject", first, None)]
    examples = feedback_examples(records, kb, linker)
    assert examples and all(e.group.startswith("feedback:") for e in examples)
    after = RankerModel(fit_mention_ranker(base + examples, prior, 0, 0), prior)
    assert _top(after, candidates) == wanted
