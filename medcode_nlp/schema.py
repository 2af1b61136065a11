"""The result records of a coding run and their versioned JSON form."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from medcode_nlp.about import SCHEMA_VERSION


@dataclass(slots=True)
class Evidence:
    """A character span of the note; ``text == note[start:end]``."""

    start: int
    end: int
    text: str


@dataclass(slots=True)
class Candidate:
    """A code proposed for one entity."""

    code: str
    system: str
    description: str
    score: float
    billable: bool
    alias: str = ""  # the knowledge-base name that matched
    alias_kind: str = ""
    similarity: float = 0.0  # n-gram similarity of mention and alias (score before ranking)


@dataclass(slots=True)
class Entity:
    """A mention found in the note."""

    text: str
    start: int
    end: int
    label: str
    section: str | None = None
    assertion: str = "present"
    candidates: list[Candidate] = field(default_factory=list)


@dataclass(slots=True)
class CodeSuggestion:
    """A document-level code with its confidence and evidence."""

    code: str
    system: str
    description: str
    score: float
    billable: bool
    evidence: list[Evidence] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ExcludedCode:
    """A code that was considered and dropped, with the reason.

    ``score`` is the confidence a ranked code had when a coding convention dropped it (0 for
    a mention the note does not assert: negated, hypothetical, someone else's)."""

    code: str
    system: str
    reason: str
    evidence: list[Evidence] = field(default_factory=list)
    score: float = 0.0


@dataclass(slots=True)
class CodingResult:
    """Everything medcode_nlp found in one note."""

    entities: list[Entity] = field(default_factory=list)
    codes: list[CodeSuggestion] = field(default_factory=list)
    excluded: list[ExcludedCode] = field(default_factory=list)
    versions: dict[str, Any] = field(default_factory=dict)
    schema_version: str = SCHEMA_VERSION
    #: codes no span of the note supports (whole-note signals only): off the main list
    consider: list[CodeSuggestion] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form, keys ordered as in the published schema."""
        data = asdict(self)
        return {
            "schema_version": data["schema_version"],
            "versions": data["versions"],
            "entities": data["entities"],
            "codes": data["codes"],
            "excluded": data["excluded"],
            "consider": data["consider"],
        }

    def to_json(self, indent: int | None = None) -> str:
        """Serialize to JSON (schema version ``SCHEMA_VERSION``)."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def to_fhir(self, **options: Any) -> dict[str, Any]:
        """A FHIR R4 Bundle of this result (``medcode_nlp[claims]``; options:
        :func:`medcode_nlp.claims.fhir.to_fhir_bundle`)."""
        from medcode_nlp.claims.fhir import to_fhir_bundle

        return to_fhir_bundle(self, **options)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CodingResult:
        """Rebuild a result from :meth:`to_dict` output."""
        entities = [
            Entity(**{**e, "candidates": [Candidate(**c) for c in e.get("candidates", [])]})
            for e in data.get("entities", [])
        ]
        codes = [
            CodeSuggestion(**{**c, "evidence": [Evidence(**v) for v in c.get("evidence", [])]})
            for c in data.get("codes", [])
        ]
        excluded = [
            ExcludedCode(**{**x, "evidence": [Evidence(**v) for v in x.get("evidence", [])]})
            for x in data.get("excluded", [])
        ]
        consider = [
            CodeSuggestion(**{**c, "evidence": [Evidence(**v) for v in c.get("evidence", [])]})
            for c in data.get("consider", [])
        ]
        return cls(
            entities=entities,
            codes=codes,
            excluded=excluded,
            consider=consider,
            versions=dict(data.get("versions", {})),
            schema_version=str(data.get("schema_version", SCHEMA_VERSION)),
        )

    @classmethod
    def from_json(cls, text: str) -> CodingResult:
        """Parse JSON written by :meth:`to_json`."""
        return cls.from_dict(json.loads(text))
