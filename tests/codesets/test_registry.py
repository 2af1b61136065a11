"""The code-system registry drives every label/system/source-kind table: a toy system added
there (and its loader) is accepted by ``medcode kb add``, the knowledge base, the linker's
label routing and the ranker's features, with no other file touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from medcode_nlp.codesets import registry
from medcode_nlp.codesets.base import Alias, CodeEntry
from medcode_nlp.codesets.registry import CodeSystem, SourceKind


def load_toy(path: Path) -> list[CodeEntry]:
    """The toy system's loader: one ``CODE<TAB>title`` per line."""
    rows = [line.split("\t") for line in Path(path).read_text(encoding="utf-8").splitlines()]
    return [CodeEntry(code, "toy", title, aliases=[Alias(title.lower(), "description")])
            for code, title in rows]


@pytest.fixture
def toy_system():
    registry.REGISTRY.register(
        CodeSystem("toy", ("PROBLEM",), "PROBLEM", link_order=5, title="toy codes"),
        SourceKind("toy", f"{__name__}:load_toy", "toy"),
    )
    yield "toy"
    registry.REGISTRY.unregister("toy")


def test_builtin_tables_come_from_the_registry() -> None:
    assert registry.systems() == ("icd10cm", "icd10pcs", "hcpcs", "cpt", "custom")
    assert registry.label_systems() == {
        "PROBLEM": ("icd10cm", "custom"),
        "PROCEDURE": ("icd10pcs", "cpt", "hcpcs", "custom"),
        "DRUG": ("hcpcs", "custom"),  # a drug mention and a supply mention both reach HCPCS
    }
    assert registry.mention_label("hcpcs", "J1234") == "DRUG"
    assert registry.mention_label("hcpcs", "E1390") == "PROCEDURE"
    assert registry.ranked_systems() == ("icd10cm", "icd10pcs")
    assert registry.source_kinds() == ("hcpcs", "cpt", "custom", "icd10cm-index",
                                       "icd10pcs-tables", "icd10pcs-index")
    assert registry.code_source_kind("icd10pcs") == "icd10pcs-tables"
    assert registry.code_source_kind("custom") == "custom"
    assert registry.code_source_kind("icd10cm") is None  # built in, no file kind
    assert registry.code_key(" e11.9 ") == "E119"
    # the evaluation's categories and the FHIR coding of each system
    assert [registry.category_length(n) for n in registry.systems()] == [3, 3, 0, 0, 0]
    assert [registry.get_system(n).fhir_resource for n in ("icd10cm", "icd10pcs", "hcpcs")] == [
        "Condition", "Procedure", "Procedure"]
    assert registry.get_system("custom").fhir_uri == ""  # a custom list has no FHIR system


def test_a_toy_system_with_categories_is_scored_on_them(toy_system) -> None:
    from medcode_nlp.evaluation.coding import CodedNote, GoldCode, RankedCode, score_note

    note = CodedNote("n1", "text", codes=[GoldCode("toy", "TOY12")])
    ranked = [RankedCode("toy", "TOY19", 0.9, True)]
    assert score_note(note, ranked, "toy").cat_tp == 0  # the toy system has no categories
    registry.REGISTRY.register(CodeSystem("toy", ("PROBLEM",), "PROBLEM", category_length=4))
    assert score_note(note, ranked, "toy").cat_tp == 1  # TOY1 is its category


def test_a_toy_system_needs_only_the_registry_and_its_loader(toy_system, tmp_path: Path) -> None:
    from medcode_nlp.kb.build import KnowledgeBaseWriter
    from medcode_nlp.kb.sources import add_source
    from medcode_nlp.kb.store import load_kb
    from medcode_nlp.nlp.components.linker import CodeLinker
    from medcode_nlp.ranking.mention_features import MentionContext, pair_features
    from medcode_nlp.schema import Candidate

    assert registry.systems_for_label("PROBLEM") == ("icd10cm", "toy", "custom")
    assert "toy" in registry.source_kinds() and registry.mention_label("toy") == "PROBLEM"

    kb_dir = tmp_path / "kb"
    writer = KnowledgeBaseWriter(kb_dir)
    writer.replace_system("icd10cm", [CodeEntry("R90.12", "icd10cm", "Quaver of left arm",
                                                aliases=[Alias("left arm quaver", "inclusion")])],
                          {"source": "invented"})
    writer.finish().close()
    source = tmp_path / "toy.tsv"
    source.write_text("TOY1\tBlue toe syndrome\nTOY2\tGreen ear\n", encoding="utf-8")
    info = add_source("toy", source, kb_dir)
    assert "toy" in info["systems"]
    kb = load_kb(kb_dir)
    assert kb.get("toy", "TOY1").description == "Blue toe syndrome"
    kb.close()

    linker = CodeLinker.__new__(CodeLinker)
    linker.systems = None
    assert linker.systems_for("PROBLEM", ["icd10cm", "toy"]) == ["icd10cm", "toy"]
    assert linker.systems_for("PROCEDURE", ["icd10cm", "toy"]) == []

    mention = MentionContext(text="blue toe syndrome", label="PROBLEM")
    candidate = Candidate("TOY1", "toy", "Blue toe syndrome", 0.9, True)
    from medcode_nlp.ranking.mention_features import FEATURE_NAMES, CodePrior

    row = pair_features(mention, [candidate], CodePrior())[0]
    assert row[FEATURE_NAMES.index("label_fits_system")] == 1.0
