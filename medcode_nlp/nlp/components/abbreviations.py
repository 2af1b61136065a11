"""``medcode_abbreviations``: long forms for abbreviated entities.

scispaCy's ``AbbreviationDetector`` finds abbreviations defined in the note itself
("congestive heart failure (CHF)"); when a note uses an abbreviation it never defines, the
project's lexicon supplies the usual long form. The result goes to ``span._.expansion``.

``medcode_abbreviation_detector`` is scispaCy's detector under a factory this package
registers (with an entry point), so that a saved pipeline loads with ``spacy.load`` and no
``import scispacy.abbreviation``. It keeps ``doc._.abbreviations`` serializable (scispaCy's
``make_serializable``: dicts, not spans) so that docs travel between processes.
"""

from __future__ import annotations

import warnings
from typing import Any

from spacy.language import Language
from spacy.tokens import Doc

import medcode_nlp.nlp.extensions  # noqa: F401  (registers extensions)
from medcode_nlp.nlp.lexicon import Lexicon, load_lexicon


class AbbreviationExpander:
    """Set ``span._.expansion`` on entities that are abbreviations."""

    def __init__(self, nlp: Language, name: str, *, use_lexicon: bool) -> None:
        self.name = name
        self.use_lexicon = use_lexicon

    @property
    def lexicon(self) -> Lexicon:
        """The packaged lexicon (``load_lexicon`` caches it for every component)."""
        return load_lexicon()

    def __call__(self, doc: Doc) -> Doc:
        defined: dict[str, str] = {}
        if Doc.has_extension("abbreviations"):
            for short in doc._.abbreviations or []:
                if isinstance(short, dict):  # scispaCy's serializable form
                    defined[short["short_text"]] = short["long_text"]
                else:
                    defined[short.text] = short._.long_form.text
        for ent in doc.ents:
            long_form = defined.get(ent.text)
            if long_form is None and self.use_lexicon:
                entry = self.lexicon.lookup(ent.text)
                if entry is not None and entry.kind == "abbreviation" and entry.expansions:
                    long_form = entry.expansions[0]
            if long_form and long_form.lower() != ent.text.lower():
                ent._.expansion = long_form
        return doc


@Language.factory(
    "medcode_abbreviations",
    assigns=["span._.expansion"],
    default_config={"use_lexicon": True},
)
def make_abbreviations(nlp: Language, name: str, use_lexicon: bool) -> AbbreviationExpander:
    """Factory of the abbreviation expander."""
    return AbbreviationExpander(nlp, name, use_lexicon=use_lexicon)


#: Name of the pattern that keeps scispaCy's empty global matcher from warning.
_NEVER = "medcode_nlp:never"


@Language.factory(
    "medcode_abbreviation_detector",
    assigns=["doc._.abbreviations", "span._.long_form"],
    default_config={"make_serializable": True},
)
def make_abbreviation_detector(nlp: Language, name: str, make_serializable: bool) -> Any:
    """scispaCy's ``AbbreviationDetector`` (Schwartz & Hearst), registered by medcode_nlp."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from scispacy.abbreviation import AbbreviationDetector

    detector = AbbreviationDetector(nlp, name, make_serializable=make_serializable)
    # Its global matcher, empty between docs, warns on every doc (spaCy W036): one pattern
    # that can never match (a one-letter ORTH of length 2) keeps it quiet.
    detector.global_matcher.add(_NEVER, [[{"ORTH": "a", "LENGTH": 2}]])
    return detector
