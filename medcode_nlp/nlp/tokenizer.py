"""Tokenizer for clinical and biomedical text.

spaCy's English tokenizer with extra infix rules: brackets, ``/ + = ; :`` and hyphens split
inside a token, so that mentions such as ``(HIV)-associated`` or ``5-fluorouracil/leucovorin``
begin and end on token boundaries. Measured on BC5CDR (``benchmarks/tokenizer_alignment.py``),
this misaligns far fewer gold mentions than spaCy's default rules or scispaCy's
``combined_rule_tokenizer``.

Only the tokenizer's regular expressions are changed, and spaCy serializes those, so a pipeline
saved with ``nlp.to_disk`` loads back with ``spacy.load`` and no custom code.
"""

from __future__ import annotations

from spacy.language import Language
from spacy.tokenizer import Tokenizer
from spacy.util import compile_infix_regex

#: Characters that always split a token when they occur inside it.
CLINICAL_INFIXES: tuple[str, ...] = (
    r"[()\[\]{}]",
    r"[/+=;:]",
    r"[-\u2010\u2011\u2012\u2013\u2014\u2212~]",
)


def create_clinical_tokenizer(nlp: Language) -> Language:
    """Add the clinical infix rules to ``nlp.tokenizer`` in place and return ``nlp``.

    Call it on a fresh pipeline (e.g. ``spacy.blank("en")``) before training or processing.
    Calling it twice is harmless.
    """
    tokenizer = nlp.tokenizer
    if not isinstance(tokenizer, Tokenizer):
        raise TypeError(f"Expected a spaCy Tokenizer, got {type(tokenizer).__name__}.")
    infixes = list(nlp.Defaults.infixes or [])
    infixes += [p for p in CLINICAL_INFIXES if p not in infixes]
    tokenizer.infix_finditer = compile_infix_regex(infixes).finditer
    return nlp


def blank_clinical(lang: str = "en") -> Language:
    """A blank pipeline with the clinical tokenizer."""
    import spacy

    return create_clinical_tokenizer(spacy.blank(lang))
