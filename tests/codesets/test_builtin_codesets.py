"""The code sets shipped in the package: their files, the default knowledge base built from
them on first use, and one note per code system coded end to end (notes written for the test)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from conftest import shared_path

from medcode_nlp.codesets import shipped
from medcode_nlp.codesets.base import Alias, CodeEntry, mention_label
from medcode_nlp.codesets.hcpcs import head_aliases, release_date, retire_terminated
from medcode_nlp.codesets.icd10cm_tables import table_phrases
from medcode_nlp.coding_rules import ranked_per_system
from medcode_nlp.errors import IntegrityError
from medcode_nlp.nlp.components.linker import top_per_system
from medcode_nlp.nlp.components.matcher import ITEM, DictionaryMatcher, build_terms
from medcode_nlp.ranking.unranked import confidences
from medcode_nlp.schema import Candidate


# ------------------------------------------------------------------ shipped files
def test_every_shipped_file_matches_its_manifest() -> None:
    manifest = shipped.manifest()
    assert set(manifest["files"]) == {shipped.CM_INDEX, shipped.PCS_CODES, shipped.PCS_INDEX,
                                      shipped.HCPCS}
    for name, info in manifest["files"].items():
        raw = (shipped.data_dir() / name).read_bytes()
        assert hashlib.sha256(raw).hexdigest() == info["sha256"], name
        assert info["sources"] and info["version"], name
    assert sum(info["bytes"] for info in manifest["files"].values()) < 8_000_000
    counts = {name: len(shipped.icd10cm_index_terms()[name]) for name in ("index", "neoplasm",
                                                                            "drug")}
    assert counts == manifest["files"][shipped.CM_INDEX]["terms_per_source"]
    pcs = shipped.icd10pcs_entries()
    assert len(pcs) == manifest["files"][shipped.PCS_CODES]["rows"]
    # every ICD-10-PCS section, not only Medical and Surgical
    assert {e.code[0] for e in pcs} == set("0123456789BCDFGHX")


def test_a_changed_shipped_file_is_refused(tmp_path: Path) -> None:
    for name in (shipped.MANIFEST, shipped.PCS_INDEX):
        shutil.copy(shipped.data_dir() / name, tmp_path / name)
    with (tmp_path / shipped.PCS_INDEX).open("r+b") as handle:
        handle.seek(40)
        byte = handle.read(1)
        handle.seek(40)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(IntegrityError, match="Checksum mismatch"):
        shipped.icd10pcs_index_terms(tmp_path)
    with pytest.raises(IntegrityError, match="missing"):
        shipped.hcpcs_entries(tmp_path)  # listed in the manifest, absent from the folder


def test_the_build_script_reproduces_the_shipped_files(tmp_path: Path) -> None:
    data = shared_path()
    shared_path("hcpcs-2019")
    import importlib.util

    script = Path(__file__).resolve().parents[2] / "scripts" / "build_codesets.py"
    spec = importlib.util.spec_from_file_location("build_codesets", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    built = module.build(data, tmp_path)
    for name, info in shipped.manifest()["files"].items():
        assert built["files"][name]["sha256"] == info["sha256"], name


# ------------------------------------------------------------------ derivations
def test_table_cells_read_as_clinical_mentions() -> None:
    assert table_phrases("Malignant Primary", ["Neoplasm, neoplastic", "kidney"]) == [
        "malignant neoplasm of kidney", "kidney cancer"]
    assert table_phrases("Malignant Secondary", ["Neoplasm, neoplastic", "liver"]) == [
        "secondary malignant neoplasm of liver", "liver metastasis"]
    assert table_phrases("Benign", ["Neoplasm, neoplastic"]) == ["benign neoplasm"]
    assert table_phrases("Adverse effect", ["Warfarin"]) == ["adverse effect of warfarin"]
    assert table_phrases("Poisoning Undetermined", ["Aspirin"]) == [
        "poisoning by aspirin, undetermined intent"]
    assert table_phrases("Substance", ["Aspirin"]) == []


def test_hcpcs_titles_give_the_names_a_note_uses() -> None:
    assert head_aliases("Injection, examplemab sodium, per 10 mg") == [
        "examplemab sodium injection", "examplemab sodium", "examplemab"]
    assert head_aliases("Portable gaseous oxygen system, rental") == [
        "Portable gaseous oxygen system", "Portable oxygen"]
    assert head_aliases("Addition to lower extremity, knee joint") == []
    assert head_aliases("Standard wheelchair") == []
    assert mention_label("hcpcs", "J1234") == "DRUG"
    assert mention_label("hcpcs", "E1390") == "PROCEDURE"


def _hcpcs(code: str, added: str, term: str = "") -> CodeEntry:
    extra = {"type": "procedure", "added_date": added}
    if term:
        extra["termination_date"] = term
    return CodeEntry(code, "hcpcs", f"Invented item {code}", aliases=[Alias("item", "head")],
                     extra=extra)


def test_codes_terminated_before_the_release_are_retired() -> None:
    entries = [_hcpcs("X0001", "20010101"), _hcpcs("X0002", "20050101", term="20221231"),
               _hcpcs("X0003", "20230101"), _hcpcs("X0004", "20100101", term="20231231")]
    assert release_date(entries) == "20230101"
    retire_terminated(entries)
    retired = {e.code for e in entries if "terminated" in e.extra}
    assert retired == {"X0002"}  # X0004 ends during the release year: still valid
    gone = next(e for e in entries if e.code == "X0002")
    assert not gone.billable and not gone.aliases


# ------------------------------------------------------------- unranked scoring
def _candidate(code: str, similarity: float, kind: str = "description",
               description: str = "") -> Candidate:
    return Candidate(code, "hcpcs", description or f"Item {code}", similarity, True,
                     alias_kind=kind, similarity=similarity)


def test_unranked_confidence_prefers_exact_titles_and_shares_ties() -> None:
    exact, head = confidences([_candidate("X1", 1.0), _candidate("X2", 1.0, "head")],
                              "item", "PROCEDURE", "item dispensed", None)
    assert exact > 0.8 > head
    tied = confidences([_candidate(f"X{i}", 1.0, "head") for i in range(4)],
                       "item", "PROCEDURE", "item", None)
    assert len(set(tied)) == 1 and tied[0] < exact / 1.5
    catch_all = confidences([_candidate("X9", 1.0, description="Item, miscellaneous")],
                            "item", "PROCEDURE", "item", None)
    assert catch_all[0] < 0.3


def test_a_drug_counts_for_hcpcs_when_given() -> None:
    drug = [_candidate("J1", 1.0, description="Injection, examplemab, 10 mg")]
    given = confidences(drug, "examplemab", "DRUG", "Examplemab 20 mg IV given.", None)[0]
    listed = confidences(drug, "examplemab", "DRUG", "History of examplemab use.", None)[0]
    assert given > 0.8 and listed < 0.25
    oral = _candidate("S1", 1.0, description="Examplemab, oral, 10 mg")
    injected = _candidate("J2", 0.9, description="Injection, examplemab, 10 mg")
    scores = confidences([oral, injected], "examplemab", "DRUG", "examplemab 10 mg IV", None)
    assert scores[1] > scores[0]


def test_candidates_are_kept_and_ranked_per_code_system() -> None:
    pcs = [Candidate(f"0DT{i}", "icd10pcs", "x", 0.5 - i / 100, True) for i in range(3)]
    hcpcs = [Candidate(f"E{i}", "hcpcs", "x", 0.9, True) for i in range(3)]
    kept = top_per_system(hcpcs + pcs, 2)
    assert [c.code for c in kept] == ["E0", "E1", "0DT0", "0DT1"]
    assert [(r, c.code) for r, c in ranked_per_system(hcpcs + pcs, 1)] == [(0, "E0"), (0, "0DT0")]


def test_an_item_term_replaces_the_word_the_ner_found_inside_it() -> None:
    terms = build_terms([("home oxygen", "icd10pcs", "x"), ("oxygen concentrator", "hcpcs",
                                                              "E1390")], 6)
    assert terms["oxygen concentrator"] == ITEM + "PROCEDURE"
    matcher = DictionaryMatcher(None, "m", kb_path=None, max_words=6, mode="fill",  # type: ignore[arg-type]
                                lexicon_path=None)
    matcher._terms = {k: v for k, v in terms.items() if not k.startswith("\x00")}
    matcher._first_words = {key.split(" ", 1)[0] for key in matcher._terms}
    text = "Home oxygen concentrator ordered."
    assert [(text[s:e], label) for s, e, label in matcher.find(text)] == [
        ("oxygen concentrator", ITEM + "PROCEDURE")]


# ---------------------------------------------------- the default knowledge base
@pytest.fixture(scope="module")
def fresh_kb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default knowledge base built from scratch in an empty directory."""
    from medcode_nlp.kb.build import build_default_kb

    path = tmp_path_factory.mktemp("cache") / "kb"
    build_default_kb(path).close()
    return path


@pytest.mark.slow
def test_a_fresh_cache_builds_every_code_system(fresh_kb: Path) -> None:
    from medcode_nlp.kb.store import load_kb

    kb = load_kb(fresh_kb)
    info = kb.info()["systems"]
    assert set(info) == {"icd10cm", "icd10pcs", "hcpcs"}
    for system, details in info.items():
        assert details["source"] and details["version"], system
        assert details["codes"] > 5000 and details["aliases"] >= details["codes"], system
    assert info["icd10pcs"]["codes"] == 78948
    assert {part["part"] for part in info["icd10cm"]["index_sources"]} == {
        "index", "neoplasm", "drug"}
    wheelchair = kb.get("hcpcs", "K0001")
    assert wheelchair is not None and wheelchair.description == "Standard wheelchair"
    assert wheelchair.extra["betos"] and wheelchair.extra["coverage"]
    retired = kb.get("hcpcs", "C9443")  # terminated at the end of 2015
    assert retired is not None and not retired.billable and not retired.aliases
    kb.close()


@pytest.mark.slow
def test_index_and_table_aliases_are_searchable(fresh_kb: Path) -> None:
    from medcode_nlp.kb.search import search_terms

    found = search_terms(["liver metastasis", "adverse effect of warfarin",
                          "portable oxygen concentrator"], kb_path=fresh_kb, top_k=3)
    assert "C78.7" in [r["code"] for r in found[0]]
    assert any(r["code"].startswith("T45.515") for r in found[1])
    assert found[2][0]["code"] == "E1392" and found[2][0]["system"] == "hcpcs"


@pytest.fixture(scope="module")
def fresh_coder(fresh_kb: Path):  # type: ignore[no-untyped-def]
    import medcode_nlp

    return medcode_nlp.load(kb=fresh_kb)


def _codes(coder, text: str, **options: str) -> set[str]:  # type: ignore[no-untyped-def]
    return {c.code for c in coder(text, **options).codes}


@pytest.mark.slow
def test_icd10cm_note(fresh_coder) -> None:  # type: ignore[no-untyped-def]
    codes = _codes(fresh_coder, "Assessment: essential hypertension. Acute appendicitis.")
    assert {"I10", "K35.80"} <= codes


@pytest.mark.slow  # builds the default knowledge base from scratch
def test_icd10pcs_imaging_note(fresh_coder) -> None:  # type: ignore[no-untyped-def]
    codes = _codes(fresh_coder, "A chest x-ray was done on admission.", setting="inpatient")
    assert "BW03ZZZ" in codes  # Imaging section: absent from the old built-in set


@pytest.mark.slow  # builds the default knowledge base from scratch
def test_hcpcs_equipment_drug_and_ambulance_notes(fresh_coder) -> None:  # type: ignore[no-untyped-def]
    equipment = _codes(fresh_coder, "Orders: home oxygen concentrator. Standard wheelchair "
                                    "dispensed.")
    assert {"E1390", "K0001"} <= equipment
    drugs = _codes(fresh_coder, "Ondansetron 4 mg IV given for nausea. Dalbavancin 1500 mg IV "
                                "administered.")
    assert {"J2405", "J0875"} <= drugs
    assert "C9443" not in drugs  # dalbavancin's code terminated in 2015
    ambulance = fresh_coder("Transported by ambulance, basic life support, non-emergency "
                            "transport.").codes
    assert ambulance and ambulance[0].code == "A0428"


@pytest.mark.slow  # builds the default knowledge base from scratch
def test_a_code_medicare_does_not_pay_says_so(fresh_coder) -> None:  # type: ignore[no-untyped-def]
    codes = {c.code: c for c in fresh_coder("Ondansetron 4 mg orally given for nausea.").codes}
    oral = codes["S0119"]  # the oral form: the route agrees, no injection code wins
    assert any("Not payable by Medicare" in prompt for prompt in oral.prompts)
    assert "J2405" not in codes
