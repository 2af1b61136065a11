"""Golden test: the codes a certified coder assigns to the project's example notes.

The notes in ``examples/`` were written for the project; the expected codes follow the
ICD-10-CM Official Guidelines (Alphabetic Index first, Tabular conventions, integral symptoms
not coded, uncertain outpatient diagnoses not coded, history coded as history). A listed code
must be suggested; a forbidden code must not be.
"""

from __future__ import annotations

from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

GOLDEN = {
    "office_visit.txt": ("outpatient", {
        "E11.42",  # type 2 diabetes with diabetic polyneuropathy (combination code)
        "I10",
        "E78.5",  # hyperlipidemia, treated (continue atorvastatin)
        "Z79.84",  # long-term oral hypoglycemic (metformin)
    }, {"G47.33", "I25.10", "C50.919", "E11.9", "R20.8"}),
    "ed_visit.txt": ("outpatient", {
        "S72.001A",  # displaced fracture of neck of right femur, initial encounter
        "I48.91",
        "Z79.01",  # long-term anticoagulant (apixaban)
        "J2270",  # morphine 4 mg IV given in the ED
    }, {"M25.551", "R52", "J18.9", "S0093"}),
    "discharge_summary.txt": ("inpatient", {
        "J18.9",
        "J44.0",  # COPD with acute lower respiratory infection
        "I50.23",  # acute on chronic systolic heart failure
        "N18.30",
        "Z87.891",  # former smoker
    }, {"R50.9", "R05.9", "R09.02", "I26.99", "C18.9", "F17.210"}),
    "dme_order.txt": ("outpatient", {
        "J44.9",
        "J96.11",  # chronic respiratory failure with hypoxia (hypoxemic)
        "E11.9",
        "Z79.4",
        "E1390",  # oxygen concentrator
        "K0001",  # standard wheelchair
        "E0570",  # nebulizer with compressor
    }, {"R69", "I10", "N18.9"}),
    "operative_note.txt": ("outpatient", {
        "K80.00",  # calculus of gallbladder with acute cholecystitis
    }, {"K81.0", "K80.20", "R10.11", "R50.9", "R20.0"}),
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_example_note_codes(default_coder, name):
    setting, expected, forbidden = GOLDEN[name]
    result = default_coder((EXAMPLES / name).read_text(), setting=setting)
    codes = {c.code for c in result.codes}
    assert expected <= codes, f"missing {sorted(expected - codes)}; got {sorted(codes)}"
    assert not codes & forbidden, f"should not be coded: {sorted(codes & forbidden)}"
