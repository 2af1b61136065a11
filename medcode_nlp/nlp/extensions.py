"""Every spaCy extension attribute medcode_nlp uses, registered in one place.

The values of ``span._.candidates`` and of the coding attributes (``doc._.codes``,
``doc._.excluded``, ``doc._.consider``, ``doc._.coding``) are the dataclasses of
:mod:`medcode_nlp.schema`; msgpack encoders registered here let ``Doc.to_bytes`` (and so
``nlp.pipe(..., n_process=2)`` and ``DocBin``) carry them.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import srsly
from spacy.tokens import Doc, Span

from medcode_nlp.schema import (
    Candidate,
    CodeSuggestion,
    CodingResult,
    Entity,
    Evidence,
    ExcludedCode,
)

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
    # set by the medcode_coder component:
    "codes": None,  # list of CodeSuggestion, best first (the result's ``codes``)
    "excluded": None,  # list of ExcludedCode (considered and dropped, with the reason)
    "consider": None,  # list of CodeSuggestion supported by the note as a whole only
    "coding": None,  # the whole CodingResult (entities, codes, excluded, consider, versions)
}

#: Key of the msgpack maps that stand for a schema dataclass.
_MSGPACK_KEY = "__medcode_nlp__"
_SCHEMA_CLASSES = (Candidate, CodeSuggestion, CodingResult, Entity, Evidence, ExcludedCode)
_SCHEMA_TYPES: dict[str, type] = {cls.__name__: cls for cls in _SCHEMA_CLASSES}


def register_extensions() -> None:
    """Register the extension attributes once (safe to call many times)."""
    for name, default in _SPAN_ATTRS.items():
        if not Span.has_extension(name):
            Span.set_extension(name, default=default)
    for name, default in _DOC_ATTRS.items():
        if not Doc.has_extension(name):
            Doc.set_extension(name, default=default)


def encode_schema(obj: Any, chain: Any = None) -> Any:
    """msgpack encoder: a schema dataclass as a map of its fields (nested ones in turn)."""
    if isinstance(obj, _SCHEMA_CLASSES):
        return {_MSGPACK_KEY: type(obj).__name__,
                "fields": {f.name: getattr(obj, f.name) for f in fields(obj)}}
    return obj if chain is None else chain(obj)


def decode_schema(obj: Any, chain: Any = None) -> Any:
    """msgpack decoder: the dataclass back from :func:`encode_schema`'s map."""
    if isinstance(obj, dict) and _MSGPACK_KEY in obj:
        return _SCHEMA_TYPES[obj[_MSGPACK_KEY]](**obj["fields"])
    return obj if chain is None else chain(obj)


register_extensions()
srsly.msgpack_encoders.register("medcode_nlp_schema", func=encode_schema)
srsly.msgpack_decoders.register("medcode_nlp_schema", func=decode_schema)
