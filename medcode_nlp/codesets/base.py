"""Records shared by every code-system loader."""

from __future__ import annotations

from dataclasses import dataclass, field

from medcode_nlp.codesets.registry import mention_label, systems

__all__ = ["ALIAS_KINDS", "Alias", "CodeEntry", "IndexTerm", "mention_label", "systems"]


# Alias kinds: where an alias comes from. The ranker uses them as features.
ALIAS_KINDS = ("description", "short", "inclusion", "index", "abbreviation", "head", "custom")


@dataclass(slots=True)
class Alias:
    """One searchable name of a code."""

    text: str
    kind: str  # one of ALIAS_KINDS


@dataclass(slots=True)
class CodeEntry:
    """One code of a code system, as the knowledge base stores it."""

    code: str  # canonical form: ICD-10-CM with dot (I50.9), others as published
    system: str  # one of SYSTEMS
    description: str
    billable: bool = True
    parent: str | None = None
    aliases: list[Alias] = field(default_factory=list)
    # Tabular notes (ICD-10-CM); empty for other systems.
    excludes1: list[str] = field(default_factory=list)
    excludes2: list[str] = field(default_factory=list)
    code_first: list[str] = field(default_factory=list)
    use_additional: list[str] = field(default_factory=list)
    seventh_characters: dict[str, str] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class IndexTerm:
    """An alphabetic-index term pointing to a code (ICD-10-CM or ICD-10-PCS index)."""

    term: str  # full term with its parent terms joined, e.g. "Fracture, femur, neck"
    code: str
    system: str
