"""``medcode kb add``: official and licensed files join the knowledge base."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import pytest
from conftest import FIXTURES, shared_path

from medcode_nlp.errors import InputError
from medcode_nlp.kb.cache import shared_index
from medcode_nlp.kb.sources import add_source
from medcode_nlp.kb.store import CodeKnowledgeBase
from medcode_nlp.training.mention_stage import index_linker


@pytest.fixture
def kb_copy(kb, tmp_path):
    target = tmp_path / "kb"
    shutil.copytree(kb.path, target)
    return target


def test_kb_sources_cpt_from_licensed_file(kb_copy):
    info = add_source("cpt", FIXTURES / "cpt_sample.tsv", kb_copy)
    assert info["systems"]["cpt"]["codes"] >= 4
    kb = CodeKnowledgeBase(kb_copy)
    assert kb.get("cpt", "99213").description == "Test descriptor gamma"
    (hits,) = shared_index(kb_copy, "cpt").search(["test descriptor beta"], top_k=1)
    assert hits[0].code == "27447"


def test_kb_sources_custom_list(kb_copy):
    info = add_source("custom", FIXTURES / "custom_codes.csv", kb_copy, system="custom")
    assert info["systems"]["custom"]["codes"] > 0
    assert info["systems"]["icd10cm"]["billable"] == 74719  # other systems untouched


def test_kb_sources_hcpcs_official_file(kb_copy):
    path = shared_path("hcpcs-2019", "HCPC2019_CONTR_ANWEB.txt")
    info = add_source("hcpcs", path, kb_copy)
    assert info["systems"]["hcpcs"]["codes"] == 6800
    kb = CodeKnowledgeBase(kb_copy)
    assert "rutch" in kb.get("hcpcs", "E0114").description
    (hits,) = shared_index(kb_copy, "hcpcs").search(["blood glucose test strips"], top_k=5)
    assert "A4253" in [h.code for h in hits]


def test_kb_sources_unknown_kind(kb_copy):
    with pytest.raises(InputError, match="source kind"):
        add_source("icd9", FIXTURES / "cpt_sample.tsv", kb_copy)


def test_kb_sources_missing_file(kb_copy):
    with pytest.raises(InputError, match="does not exist"):
        add_source("hcpcs", FIXTURES / "nope.txt", kb_copy)


@pytest.mark.slow
def test_kb_sources_icd10cm_index_csv(kb_copy):
    # the built-in knowledge base already carries the FY2026 Index terms; adding a year's Index
    # file records it as a source of its own and its terms stay findable
    path = shared_path("icd10cm-2025", "ICD10CM_2025_Index.csv")
    info = add_source("icd10cm-index", path, kb_copy)
    sources = info["systems"]["icd10cm"]["index_sources"]
    (source,) = [s for s in sources if s["source"] == "file ICD10CM_2025_Index.csv"]
    assert source["terms"] > 55_000
    (hits,) = shared_index(kb_copy, "icd10cm").search(["asiderotic anemia"], top_k=1)
    assert hits[0].code == "D50.9"
    # ranker training searches index terms in the knowledge base it is given (--index-kb)
    like = SimpleNamespace(systems=None, top_k=5, min_similarity=0.0)
    linker, used = index_linker(like, str(kb_copy))
    (found,) = linker.candidates_for([(["asiderotic anemia"], "PROBLEM")])
    assert found[0].alias.lower() == "asiderotic anemia" and used.path == kb_copy
