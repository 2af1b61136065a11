"""The packaged clinical lexicon and its loader."""

from __future__ import annotations

import json
import re
import warnings
from collections import Counter
from pathlib import Path

import pytest

from medcode_nlp.errors import InputError
from medcode_nlp.nlp.lexicon import KINDS, LABELS, Lexicon, LexiconEntry, load_lexicon

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    "a an and the of or in on to with without by for due other unspecified not elsewhere "
    "classified nos as at from".split()
)


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    return load_lexicon()


def _content_words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower())) - _STOP


def _write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _entry(term: str = "CHF", **changes: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "term": term,
        "expansions": ["congestive heart failure"],
        "kind": "abbreviation",
        "label": "PROBLEM",
        "case_sensitive": True,
    }
    entry.update(changes)
    return entry


def test_size_and_labels(lexicon: Lexicon) -> None:
    assert len(lexicon) >= 400
    labels = Counter(entry.label for entry in lexicon.entries)
    assert set(labels) == set(LABELS)
    assert all(entry.kind in KINDS for entry in lexicon.entries)
    assert labels["PROBLEM"] >= 200 and labels["PROCEDURE"] >= 80 and labels["DRUG"] >= 50


def test_no_duplicate_terms(lexicon: Lexicon) -> None:
    keys = [
        (e.term if e.case_sensitive else e.term.casefold(), e.case_sensitive)
        for e in lexicon.entries
    ]
    duplicates = [key for key, count in Counter(keys).items() if count > 1]
    assert duplicates == []


def test_entries_are_well_formed(lexicon: Lexicon) -> None:
    for entry in lexicon.entries:
        assert isinstance(entry, LexiconEntry)
        assert entry.term == entry.term.strip() and entry.term
        assert entry.expansions and all(x.strip() for x in entry.expansions)
        assert all(x.casefold() != entry.term.casefold() for x in entry.expansions), entry


def test_required_terms_present(lexicon: Lexicon) -> None:
    expected = {
        "HTN": "hypertension",
        "T2DM": "type 2 diabetes mellitus",
        "UTI": "urinary tract infection",
        "CKD": "chronic kidney disease",
        "MI": "myocardial infarction",
        "CABG": "coronary artery bypass",
        "TKA": "replacement of knee joint",
        "AFib": "atrial fibrillation",
        "A-fib": "atrial fibrillation",
        "AF": "atrial fibrillation",
        "SOB": "shortness of breath",
        "EGD": "esophagogastroduodenoscopy",
        "ORIF": "open reduction internal fixation",
        "lap chole": "laparoscopic cholecystectomy",
        "CXR": "chest x-ray",
        "EKG": "electrocardiogram",
        "ECG": "electrocardiogram",
        "kidney stones": "calculus of kidney",
        "ASA": "aspirin",
        "APAP": "acetaminophen",
        "glucometer": "blood glucose monitor",
        "test strips": "blood glucose test strips",
    }
    for term, expansion in expected.items():
        entry = lexicon.lookup(term)
        assert entry is not None, term
        assert expansion in entry.expansions, (term, entry.expansions)
    htn = lexicon.lookup("HTN")
    assert htn is not None and htn.expansions[0] == "essential (primary) hypertension"
    for term in ("GERD", "COPD", "DVT", "N/V", "BPH", "OSA", "CAD", "PVD", "PAD", "ESRD", "AKI",
                 "CVA", "stroke", "TIA", "s/p", "hx", "CT", "MRI", "PCI", "cath", "TURP",
                 "C-section", "D&C", "HCTZ", "NTG", "walker", "wheelchair", "CPAP",
                 "nebulizer", "oxygen concentrator", "high blood pressure", "sugar diabetes",
                 "broken hip"):
        assert lexicon.lookup(term) is not None, term


def test_case_sensitive_pe(lexicon: Lexicon) -> None:
    entry = lexicon.lookup("PE")
    assert entry is not None and entry.case_sensitive
    assert entry.expansions[0] == "pulmonary embolism"
    assert lexicon.lookup("pe") is None
    assert lexicon.expand("PE") == ["pulmonary embolism"]
    assert lexicon.expand("pe") == []
    assert lexicon.expand("will pe the patient") == []
    assert lexicon.expand("acute PE") == ["acute pulmonary embolism"]


def test_case_insensitive_lookup(lexicon: Lexicon) -> None:
    assert lexicon.lookup("afib") == lexicon.lookup("AFIB") == lexicon.lookup("AFib")
    assert lexicon.lookup("chf") is None  # CHF is case-sensitive
    assert lexicon.lookup("Heart Attack") is not None
    assert lexicon.lookup("no such term") is None


def test_expand_whole_mention(lexicon: Lexicon) -> None:
    expected = ["myocardial infarction", "acute myocardial infarction"]
    assert lexicon.expand("heart attack") == expected
    assert lexicon.expand("HEART ATTACK")[0] == "myocardial infarction"
    assert lexicon.expand("N/V") == ["nausea with vomiting", "nausea and vomiting"]


def test_expand_tokens_inside_mention(lexicon: Lexicon) -> None:
    assert lexicon.expand("CHF exacerbation") == ["congestive heart failure exacerbation"]
    variants = lexicon.expand("hx of HTN")
    assert variants[0] == "history of essential (primary) hypertension"
    assert any(v.endswith("of hypertension") for v in variants)
    assert lexicon.expand("s/p CABG")[0] == "status post coronary artery bypass"
    assert lexicon.expand("RLQ pain") == ["right lower quadrant pain"]
    assert lexicon.expand("history of heart attack")[0] == "history of myocardial infarction"


def test_expand_prefers_longest_term(lexicon: Lexicon) -> None:
    assert lexicon.expand("CVA tenderness")[0] == "costovertebral angle tenderness"
    assert lexicon.expand("PE tubes")[0] == "pressure equalization tubes"
    assert lexicon.expand("heat stroke") == ["heatstroke and sunstroke"]


def test_expand_spelling_variants(lexicon: Lexicon) -> None:
    assert lexicon.expand("a fib") == ["atrial fibrillation"]
    assert lexicon.expand("UTIs")[0] == "urinary tract infection"
    assert lexicon.expand("Crohn’s")[0] == "Crohn's disease [regional enteritis]"


def test_expand_nothing(lexicon: Lexicon) -> None:
    assert lexicon.expand("") == []
    assert lexicon.expand("chronic kidney disease") == []
    assert lexicon.expand("COVID-19") == []  # "COVID" glued to "-19" is not a term
    assert lexicon.expand("Walker") == []  # "walker" is case-sensitive (a surname otherwise)


def test_default_load_is_cached() -> None:
    assert load_lexicon() is load_lexicon()


def test_load_from_path(tmp_path: Path) -> None:
    path = _write(tmp_path / "lex.json", {"version": "1", "entries": [_entry()]})
    custom = load_lexicon(path)
    assert len(custom) == 1
    assert custom.expand("CHF") == ["congestive heart failure"]


@pytest.mark.parametrize(
    "data",
    [
        [],
        {"entries": [_entry()]},
        {"version": "1", "entries": {"CHF": "congestive heart failure"}},
        {"version": "1", "entries": ["CHF"]},
        {"version": "1", "entries": [_entry(label="DISEASE")]},
        {"version": "1", "entries": [_entry(kind="acronym")]},
        {"version": "1", "entries": [_entry(expansions=[])]},
        {"version": "1", "entries": [_entry(expansions="congestive heart failure")]},
        {"version": "1", "entries": [_entry(expansions=[""])]},
        {"version": "1", "entries": [_entry(case_sensitive="yes")]},
        {"version": "1", "entries": [_entry(term=" ")]},
        {"version": "1", "entries": [{"term": "CHF"}]},
        {"version": "1", "entries": [_entry(), _entry()]},
        {"version": "1", "entries": [_entry("chf", case_sensitive=False),
                                     _entry("CHF", case_sensitive=False)]},
    ],
)
def test_malformed_file_raises(tmp_path: Path, data: object) -> None:
    path = _write(tmp_path / "bad.json", data)
    with pytest.raises(InputError, match="Could not parse"):
        load_lexicon(path)


def test_invalid_json_raises(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"version": "1", "entries": [', encoding="utf-8")
    with pytest.raises(InputError, match="Could not parse"):
        load_lexicon(path)


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_lexicon(tmp_path / "absent.json")


@pytest.fixture(scope="module")
def icd10cm_words() -> set[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        cm = pytest.importorskip("simple_icd_10_cm")
    words: set[str] = set()
    for code in cm.get_all_codes():
        words.update(_WORD.findall(cm.get_description(code).lower()))
    return words


def test_problem_expansions_use_icd10cm_vocabulary(
    lexicon: Lexicon, icd10cm_words: set[str]
) -> None:
    problems = [entry for entry in lexicon.entries if entry.label == "PROBLEM"]
    sharing = [
        entry for entry in problems
        if any(_content_words(x) & icd10cm_words for x in entry.expansions)
    ]
    assert len(sharing) >= 0.85 * len(problems), sorted(
        {e.term for e in problems} - {e.term for e in sharing}
    )


def test_problem_expansions_are_phrased_in_icd10cm_words(
    lexicon: Lexicon, icd10cm_words: set[str]
) -> None:
    """Stricter: some expansion uses only words that occur in ICD-10-CM titles."""
    problems = [entry for entry in lexicon.entries if entry.label == "PROBLEM"]
    phrased = [
        entry for entry in problems
        if any(_content_words(x) <= icd10cm_words for x in entry.expansions)
    ]
    assert len(phrased) >= 0.95 * len(problems)
