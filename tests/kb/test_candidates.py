from __future__ import annotations

from medcode_nlp.kb.cache import shared_index
from medcode_nlp.kb.search import search_terms


def test_candidates_exact_alias_ranks_first(kb):
    index = shared_index(None, "icd10cm")
    (hits,) = index.search(["Congestive heart failure"], top_k=5)
    assert hits[0].code == "I50.9"
    assert hits[0].score > 0.99
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_candidates_batch_equals_single(kb):
    index = shared_index(None, "icd10cm")
    queries = ["pneumonia", "urinary tract infection", "acute myocardial infarction"]
    batch = index.search(queries, top_k=5)
    single = [index.search([q], top_k=5)[0] for q in queries]
    assert batch == single


def test_candidates_abbreviation_expanded_by_lexicon(kb):
    (results,) = search_terms(["UTI"], ["icd10cm"], 5)
    assert results[0]["code"] == "N39.0"
    (results,) = search_terms(["CHF"], ["icd10cm"], 10)
    assert any(r["code"].startswith("I50") for r in results)


def test_candidates_system_filter(kb):
    (results,) = search_terms(["cholecystectomy"], ["icd10pcs"], 5)
    assert results and all(r["system"] == "icd10pcs" for r in results)


def test_candidates_unknown_words_lower_similarity(kb):
    index = shared_index(None, "icd10cm")
    (plain,) = index.search(["pneumonia"], top_k=1)
    (noisy,) = index.search(["pneumonia zzqxv wrrtk"], top_k=1)
    assert noisy[0].score < plain[0].score
