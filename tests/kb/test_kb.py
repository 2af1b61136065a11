from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from medcode_nlp.codesets.registry import code_key
from medcode_nlp.errors import IntegrityError
from medcode_nlp.kb.store import CodeKnowledgeBase


def test_kb_icd10cm_counts_match_fy2026(kb):
    info = kb.systems_info()["icd10cm"]
    assert info["billable"] == 74719  # CMS FY2026 count of valid (billable) codes
    assert info["codes"] == 98186
    assert "FY2026" in info["version"]


def test_kb_keeps_categories_named_like_their_block(kb):
    # B20, R99 are single-category blocks in the tabular list: codes, not groupings
    for code in ("B20", "R99"):
        entry = kb.get("icd10cm", code)
        assert entry is not None and entry.billable and entry.parent is None
    assert kb.get("icd10cm", "C50") is not None and not kb.get("icd10cm", "C50").billable
    assert kb.get("icd10cm", "C50.1").parent == "C50"


def test_kb_icd10cm_entry_has_tabular_notes(kb):
    entry = kb.get("icd10cm", "I50.9")
    assert entry.description == "Heart failure, unspecified"
    assert entry.billable and entry.parent == "I50"
    assert any(a.kind == "inclusion" and "Congestive heart failure" in a.text
               for a in entry.aliases)
    assert kb.get("icd10cm", "E11").excludes1
    assert kb.get("icd10cm", "S72").seventh_characters["A"].startswith("initial encounter")
    assert kb.get("icd10cm", "I509") == entry  # lookup without the dot


def test_kb_seventh_character_codes_are_billable_leaves(kb):
    entry = kb.get("icd10cm", "S72.001A")
    assert entry.billable
    assert kb.ancestors("icd10cm", "S72.001A")[:2] == ["S72.001", "S72.00"]
    assert not kb.get("icd10cm", "S72.001").billable


def test_kb_icd10pcs_builtin(kb):
    entry = kb.get("icd10pcs", "0FT44ZZ")
    assert entry is not None and "Gallbladder" in entry.description


def test_kb_billable_descendants(kb):
    children = kb.billable_descendants("icd10cm", "E11", limit=500)
    assert "E11.9" in children and all(kb.get("icd10cm", c).billable for c in children)


def test_kb_code_key():
    assert code_key(" i50.9 ") == "I509"


def test_kb_loads_fast_after_build(kb):
    started = time.perf_counter()
    CodeKnowledgeBase(kb.path).close()
    assert time.perf_counter() - started < 10  # generous: the 1 s target is benchmarked


def test_kb_tampered_file_is_refused(kb, tmp_path: Path):
    copy = tmp_path / "kb"
    shutil.copytree(kb.path, copy)
    manifest = copy / "manifest.json"
    manifest.write_text(manifest.read_text().replace("icd10cm", "icd10cx", 1))
    with pytest.raises(IntegrityError, match="manifest.json"):
        CodeKnowledgeBase(copy)


def test_kb_truncated_index_is_refused(kb, tmp_path: Path):
    copy = tmp_path / "kb"
    shutil.copytree(kb.path, copy)
    index = copy / "index_icd10cm.npz"
    index.write_bytes(index.read_bytes()[:1000])
    with pytest.raises(IntegrityError, match="index_icd10cm.npz"):
        CodeKnowledgeBase(copy)


def test_kb_descriptions_match_entries(kb):
    found = kb.descriptions("icd10cm", ("M25.5", "S00.0"))
    assert found and all(code.startswith(("M25.5", "S00.0")) for code in found)
    assert list(found) == sorted(found)
    for code, description in list(found.items())[:20]:
        assert kb.get("icd10cm", code).description == description
