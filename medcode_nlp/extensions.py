"""Every spaCy extension attribute medcode_nlp uses, registered in one place."""

from __future__ import annotations

from spacy.tokens import Doc, Span

ASSERTIONS = ("present", "negated", "hypothetical", "uncertain", "family", "historical")

_SPAN_ATTRS: dict[str, object] = {
    "section": None,  # section type of the span ("past_medical_history", ...), None if no header
    "assertion": "present",  # the single assertion that drives coding (see ASSERTIONS)
    "is_negated": False,
    "is_historical": False,
    "is_family": False,
    "is_hypothetical": False,
    "is_uncertain": False,
    "expansion": None,  # long form of an abbreviation, when known
    "candidates": None,  # ranked list of medcode_nlp.schema.Candidate
}

_DOC_ATTRS: dict[str, object] = {
    "sections": None,  # list of (start_char, end_char, section_type, header_text)
}


def register_extensions() -> None:
    """Register the extension attributes once (safe to call many times)."""
    for name, default in _SPAN_ATTRS.items():
        if not Span.has_extension(name):
            Span.set_extension(name, default=default)
    for name, default in _DOC_ATTRS.items():
        if not Doc.has_extension(name):
            Doc.set_extension(name, default=default)


register_extensions()
