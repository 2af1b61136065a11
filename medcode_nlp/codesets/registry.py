"""The one table of code systems: names, the mention labels they serve, how their codes are
keyed, which the ranker learnt, and the file kinds ``medcode kb add`` loads into them.

Every other table is derived from here (the linker's systems per label, the ranker's "fits"
feature, the label a code's terms carry, the ranked systems, the source kinds, the systems
with categories the evaluation scores, the FHIR coding system and resource), so adding a
code system is one :class:`CodeSystem` (and, for files, one :class:`SourceKind` naming its
loader) plus the loader module. ``tests/codesets/test_registry.py`` adds a toy system that way.

HCPCS Level II serves two labels on purpose: its E, K, L... codes are supplies and services a
PROCEDURE mention names, its J codes drugs a DRUG mention names; both reach HCPCS.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any

#: Mention labels of the NER (and of the dictionary matcher), in feature-column order.
LABELS = ("PROBLEM", "PROCEDURE", "DRUG")


def code_key(code: str) -> str:
    """Lookup form of a code: upper case, no dots, no spaces around it. The one normalisation
    of codes (knowledge base keys, evaluation, the note classifier, the Index walk)."""
    return code.strip().upper().replace(".", "")


@dataclass(frozen=True)
class CodeSystem:
    """One code system the knowledge base can hold."""

    name: str
    #: Mention labels whose candidates it offers.
    labels: tuple[str, ...]
    #: The label its terms carry when the dictionary matcher or search finds them.
    term_label: str
    #: Code prefixes whose terms are drugs (HCPCS J codes).
    drug_prefixes: tuple[str, ...] = ()
    #: Searched after the systems with a lower value for the same label.
    link_order: int = 0
    #: Whether the shipped ranker learnt from it (others get rule-based confidences).
    ranked: bool = False
    title: str = ""
    #: How many leading characters of a code name its category (0: no meaningful category);
    #: the evaluation scores category F1 on them.
    category_length: int = 0
    #: The FHIR ``Coding.system`` URI (empty: not emitted in FHIR Bundles).
    fhir_uri: str = ""
    #: The FHIR resource a code of this system becomes: ``"Condition"`` or ``"Procedure"``.
    fhir_resource: str = "Procedure"


@dataclass(frozen=True)
class SourceKind:
    """A file kind ``medcode kb add KIND FILE`` loads, and what it adds."""

    name: str
    #: ``"module:function"`` called with the file (and ``system=`` when ``system`` is None).
    loader: str
    #: The system it fills; None: the one the user names (custom lists).
    system: str | None
    #: ``"codes"`` replaces the system's codes (the file's stem is its version);
    #: ``"index_terms"`` adds index aliases to its codes.
    adds: str = "codes"

    def load(self, file: Path, system: str) -> Iterable[Any]:
        module, _, function = self.loader.partition(":")
        loader: Callable[..., Iterable[Any]] = getattr(import_module(module), function)
        return loader(file, system=system) if self.system is None else loader(file)


@dataclass
class Registry:
    """Code systems and source kinds, in registration order."""

    systems: dict[str, CodeSystem] = field(default_factory=dict)
    source_kinds: dict[str, SourceKind] = field(default_factory=dict)

    def register(self, system: CodeSystem | None = None, *kinds: SourceKind) -> None:
        if system is not None:
            self.systems[system.name] = system
        for kind in kinds:
            self.source_kinds[kind.name] = kind

    def unregister(self, name: str) -> None:
        """Drop a system and the source kinds that fill it (tests)."""
        self.systems.pop(name, None)
        for kind in [k for k, v in self.source_kinds.items() if v.system == name]:
            del self.source_kinds[kind]


REGISTRY = Registry()
REGISTRY.register(
    CodeSystem("icd10cm", ("PROBLEM",), "PROBLEM", ranked=True, title="ICD-10-CM",
               category_length=3, fhir_uri="http://hl7.org/fhir/sid/icd-10-cm",
               fhir_resource="Condition"),
    SourceKind("icd10cm-index", "medcode_nlp.codesets.icd10cm_index:load_icd10cm_index",
               "icd10cm", adds="index_terms"),
)
REGISTRY.register(
    CodeSystem("icd10pcs", ("PROCEDURE",), "PROCEDURE", ranked=True, title="ICD-10-PCS",
               category_length=3, fhir_uri="http://www.cms.gov/Medicare/Coding/ICD10"),
    SourceKind("icd10pcs-tables", "medcode_nlp.codesets.icd10pcs_official:load_icd10pcs_tables",
               "icd10pcs"),
    SourceKind("icd10pcs-index", "medcode_nlp.codesets.icd10pcs_official:load_icd10pcs_index",
               "icd10pcs", adds="index_terms"),
)
REGISTRY.register(
    CodeSystem("hcpcs", ("PROCEDURE", "DRUG"), "PROCEDURE", drug_prefixes=("J",), link_order=2,
               title="HCPCS Level II",
               fhir_uri="http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"),
    SourceKind("hcpcs", "medcode_nlp.codesets.hcpcs:load_hcpcs_current", "hcpcs"),
)
REGISTRY.register(
    CodeSystem("cpt", ("PROCEDURE",), "PROCEDURE", link_order=1, title="CPT",
               fhir_uri="http://www.ama-assn.org/go/cpt"),
    SourceKind("cpt", "medcode_nlp.codesets.cpt:load_cpt", "cpt"),
)
REGISTRY.register(
    CodeSystem("custom", LABELS, "PROBLEM", link_order=9, title="custom code list"),
    SourceKind("custom", "medcode_nlp.codesets.custom:load_custom", None),
)
#: The order ``medcode kb add`` lists its kinds in.
_KIND_ORDER = ("hcpcs", "cpt", "custom", "icd10cm-index", "icd10pcs-tables", "icd10pcs-index")


def systems() -> tuple[str, ...]:
    """Names of the registered code systems."""
    return tuple(REGISTRY.systems)


def get_system(name: str) -> CodeSystem | None:
    return REGISTRY.systems.get(name)


def systems_for_label(label: str) -> tuple[str, ...]:
    """Systems whose candidates a mention with ``label`` gets, in search order."""
    chosen = [s for s in REGISTRY.systems.values() if label in s.labels]
    return tuple(s.name for s in sorted(chosen, key=lambda s: s.link_order))


def label_systems() -> dict[str, tuple[str, ...]]:
    """Label -> :func:`systems_for_label` for every label."""
    return {label: systems_for_label(label) for label in LABELS}


def mention_label(system: str, code: str = "") -> str:
    """The mention label a code's terms carry: HCPCS J codes are drugs, other Level II codes
    items and services (PROCEDURE); ICD-10-CM and custom codes problems."""
    entry = REGISTRY.systems.get(system)
    if entry is None:
        return "PROBLEM"
    if entry.drug_prefixes and code[:1].upper() in entry.drug_prefixes:
        return "DRUG"
    return entry.term_label


def category_length(system: str) -> int:
    """Leading characters of ``system``'s codes that name their category (0: none)."""
    entry = REGISTRY.systems.get(system)
    return entry.category_length if entry is not None else 0


def ranked_systems() -> tuple[str, ...]:
    """Systems the shipped ranker scores (the others get rule-based confidences)."""
    return tuple(s.name for s in REGISTRY.systems.values() if s.ranked)


def source_kinds() -> tuple[str, ...]:
    """The file kinds ``medcode kb add`` accepts."""
    known = [k for k in _KIND_ORDER if k in REGISTRY.source_kinds]
    return tuple(known + [k for k in REGISTRY.source_kinds if k not in known])


def source_kind(name: str) -> SourceKind | None:
    return REGISTRY.source_kinds.get(name)


def code_source_kind(system: str) -> str | None:
    """The source kind that loads ``system``'s codes (``medcode kb add KIND``), if any."""
    for kind in source_kinds():
        spec = REGISTRY.source_kinds[kind]
        fills = spec.system if spec.system is not None else kind  # custom: its own name
        if spec.adds == "codes" and fills == system:
            return kind
    return None
