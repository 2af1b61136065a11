"""The assertion behind a suggested code: read from the mentions its evidence spans cover."""

from __future__ import annotations

from medcode_nlp.schema import CodeSuggestion, CodingResult, Evidence

#: When a code's evidence covers mentions of several assertions, the first listed wins:
#: one current mention makes the code current.
ASSERTION_ORDER = ("present", "historical", "uncertain", "hypothetical", "family", "negated")


def _overlaps(span: Evidence, start: int, end: int) -> bool:
    return span.start < end and start < span.end


def code_assertion(result: CodingResult, code: CodeSuggestion) -> str:
    """``present``, ``historical``, ``uncertain``, ... for a suggested code.

    The assertion of the mentions (``result.entities``) its evidence overlaps; ``present``
    when no mention overlaps (a code supported by the whole note)."""
    found = {entity.assertion for entity in result.entities
             if any(_overlaps(span, entity.start, entity.end) for span in code.evidence)}
    for assertion in ASSERTION_ORDER:
        if assertion in found:
            return assertion
    return sorted(found)[0] if found else "present"
