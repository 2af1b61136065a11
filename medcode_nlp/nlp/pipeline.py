"""Assemble the spaCy pipeline: tokenizer, sentences, NER, abbreviations, sections,
assertion and candidate linking (:func:`medcode_nlp.load` adds ``medcode_coder`` last)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import spacy
from spacy.language import Language

import medcode_nlp.nlp.components.abbreviations  # noqa: F401  (registers factories)
import medcode_nlp.nlp.components.coding  # noqa: F401
import medcode_nlp.nlp.components.context  # noqa: F401
import medcode_nlp.nlp.components.label_mapper  # noqa: F401
import medcode_nlp.nlp.components.linker  # noqa: F401
import medcode_nlp.nlp.components.matcher  # noqa: F401
import medcode_nlp.nlp.components.sections  # noqa: F401
from medcode_nlp.errors import Errors, InputError, IntegrityError
from medcode_nlp.integrity import verify_directory
from medcode_nlp.nlp.tokenizer import blank_clinical
from medcode_nlp.paths import locate_models, models_dir  # noqa: F401  (public here since 0.1)

logger = logging.getLogger(__name__)
# scispaCy's AbbreviationDetector warns on every doc that its global matcher has no patterns.
warnings.filterwarnings("ignore", message=r"\[W036\]")

DICTIONARY = "dictionary"
MATCHER_MODES = ("fill", "off")


def default_ner_path() -> Path:
    """The trained NER pipeline shipped with the project."""
    return models_dir() / "ner"


def load_ner(ner: str | None) -> tuple[Language, str]:
    """The base pipeline holding the mention finder, and its version tag."""
    if ner is None:
        path = default_ner_path()
        if not (path / "meta.json").is_file():
            raise IntegrityError(Errors.E016.format(
                kind="NER", path=path / "meta.json",
                fallback="the dictionary matcher (ner=\"dictionary\", --ner dictionary)"))
        verify_directory(path)
        nlp = spacy.load(path)
        return nlp, f"ner:{nlp.meta.get('name', 'ner')}-{nlp.meta.get('version', '?')}"
    if ner == DICTIONARY:
        return blank_clinical(), DICTIONARY
    try:
        nlp = spacy.load(ner)
    except (OSError, ValueError) as error:
        raise InputError(Errors.E013.format(name=ner, detail=type(error).__name__)) from error
    if "ner" not in nlp.pipe_names:
        raise InputError(Errors.E013.format(name=ner, detail="the pipeline has no 'ner'"))
    keep = {"tok2vec", "ner", "transformer", "senter", "parser", "attribute_ruler", "tagger"}
    for name in list(nlp.pipe_names):
        if name not in keep:
            nlp.remove_pipe(name)
    nlp.add_pipe("medcode_label_mapper", after="ner")
    return nlp, f"ner:{ner}"


def build_pipeline(
    *,
    ner: str | None = None,
    kb_path: str | Path | None = None,
    matcher: str = "fill",
    top_k: int = 20,
) -> tuple[Language, str]:
    """The full pipeline and a version tag of its mention finder.

    ``ner``: None for the shipped model, ``"dictionary"`` for the dictionary matcher alone,
    or the name/path of any installed spaCy/scispaCy NER pipeline (labels are mapped).
    ``matcher``: ``"fill"`` adds dictionary matches where the NER found nothing; ``"off"``.
    """
    if matcher not in MATCHER_MODES:
        raise InputError(Errors.E011.format(value=matcher, name="matcher", allowed=MATCHER_MODES))
    nlp, tag = load_ner(ner)
    kb = str(kb_path) if kb_path else None
    if not any(name in nlp.pipe_names for name in ("parser", "senter", "sentencizer")):
        nlp.add_pipe("sentencizer", first=True)
    # scispaCy's detector under medcode_nlp's factory (spacy.load needs no scispaCy import)
    nlp.add_pipe("medcode_abbreviation_detector", name="abbreviation_detector")
    if tag == DICTIONARY or matcher == "fill":
        mode = "replace" if tag == DICTIONARY else "fill"
        dictionary = nlp.add_pipe("medcode_dictionary_matcher",
                                  config={"kb_path": kb, "mode": mode})
        dictionary.initialize()  # type: ignore[attr-defined]
    nlp.add_pipe("medcode_abbreviations")
    nlp.add_pipe("medcode_sections")
    nlp.add_pipe("medcode_context")
    nlp.add_pipe("medcode_linker", config={"kb_path": kb, "top_k": top_k})
    return nlp, tag
