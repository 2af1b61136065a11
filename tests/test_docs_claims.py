"""The README's first lines promise exactly the code systems the default install codes."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAMES = {"ICD-10-CM": "icd10cm", "ICD-10-PCS": "icd10pcs", "HCPCS Level II": "hcpcs",
         "CPT": "cpt"}


def _first_paragraph() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return " ".join(text.split("\n\n")[1].split())


def test_readme_first_line_names_the_default_install_systems(kb):
    promise, _, rest = _first_paragraph().partition("the default install codes")
    assert rest, "the README's first paragraph must say what the default install codes"
    claimed = {NAMES[name] for name in re.findall(r"\*\*([^*]+)\*\*", promise)}
    assert claimed == set(kb.systems)
    for name, system in NAMES.items():  # every other system says how to add it
        if system not in kb.systems and f"**{name}**" in rest:
            assert f"medcode kb add {system}" in rest


def test_design_doc_does_not_call_a_missing_system_built_in(kb):
    design = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    items = (" ".join(part.split()) for part in design.split("\n- "))
    line = next(part for part in items if "default install codes" in part)
    claimed = {NAMES[n] for n in NAMES if n in line.split(" only.")[0]}
    assert claimed == set(kb.systems)
