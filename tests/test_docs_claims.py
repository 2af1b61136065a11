"""The README's first lines and design.md promise exactly the code systems the default
install codes."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAMES = {"ICD-10-CM": "icd10cm", "ICD-10-PCS": "icd10pcs", "HCPCS Level II": "hcpcs",
         "CPT": "cpt"}
ADD_LATER = "once you add"


def _first_paragraph() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return " ".join(text.split("\n\n")[1].split())


def test_readme_first_line_names_the_default_install_systems(kb):
    """A system named in bold is promised unless "once you add" follows its name."""
    parts = re.split(r"\*\*([^*]+)\*\*", _first_paragraph())
    promised, later = set(), set()
    for name, after in zip(parts[1::2], parts[2::2], strict=True):
        (later if ADD_LATER in after else promised).add(NAMES[name])
    assert promised == set(kb.systems)
    for system in later:
        assert f"medcode kb add {system}" in _first_paragraph()


def test_design_doc_names_built_in_systems_and_how_to_add_the_others(kb):
    design = " ".join((ROOT / "docs" / "design.md").read_text(encoding="utf-8").split())
    section = design.split("## Knowledge base")[1].split("## ")[0]
    for name, system in NAMES.items():
        if system in kb.systems:
            assert name in section or name.split()[0] in section
        else:
            assert f"medcode kb add {system}" in section
