"""The public entry point: ``Coder`` turns note text into a ``CodingResult``.

The coding itself (ranking, document stage, coding rules) is the pipeline's last component,
``medcode_coder`` (:mod:`medcode_nlp.nlp.components.coding`): ``coder(text)`` is
``coder.nlp(text)._.coding`` with the call's options, so ``coder.nlp`` saved with ``to_disk``
codes the same after ``spacy.load``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from spacy.language import Language
from spacy.tokens import Doc

from medcode_nlp.coding_rules import SETTINGS, CodingOptions
from medcode_nlp.errors import Errors, InputError
from medcode_nlp.kb.cache import shared_kb
from medcode_nlp.kb.store import CodeKnowledgeBase
from medcode_nlp.nlp.components.coding import (
    SHIPPED,
    CodingRun,
    code_doc,
    find_coder,
    mention_from_span,
    result_versions,
)
from medcode_nlp.schema import CodingResult

logger = logging.getLogger(__name__)

DEFAULT_MAX_CHARS = 1_000_000


def check_text(text: object, max_chars: int) -> str:
    """The note as str, or an InputError naming what is wrong (never quoting the note)."""
    if not isinstance(text, str):
        raise InputError(Errors.E004.format(type_name=type(text).__name__))
    if len(text) > max_chars:
        raise InputError(Errors.E003.format(length=len(text), limit=max_chars))
    if not _encodable(text):  # else spaCy raises a UnicodeEncodeError that holds the text
        raise InputError(Errors.E014.format(
            name="text", detail="it has lone surrogates (undecodable bytes); pass valid Unicode"))
    return text


def _encodable(text: str) -> bool:
    """False when ``text`` has lone surrogates (which cannot be encoded as UTF-8)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Coder:
    """A loaded pipeline, knowledge base and ranker; call it on note text.

    When ``nlp`` ends with a ``medcode_coder`` component (as from :func:`load`), the coding
    runs there with this coder's ranker, options and versions; else on the processed doc.
    """

    def __init__(
        self,
        nlp: Language,
        *,
        kb_path: str | Path | None = None,
        ranker: Any = None,
        options: CodingOptions | None = None,
        max_chars: int = DEFAULT_MAX_CHARS,
        model_version: str = "dictionary",
        mode: dict[str, str] | None = None,
    ) -> None:
        self.nlp = nlp
        nlp.max_length = max(nlp.max_length, max_chars)  # spaCy refuses longer texts
        self.kb_path = kb_path
        self.ranker = ranker
        self.options = options or CodingOptions()
        self.max_chars = max_chars
        self.model_version = model_version
        self._site_model: Any = None
        self.mode = mode or {
            "ner": "dictionary" if model_version == "dictionary" else "custom",
            "ranker": "similarity" if ranker is None else "custom",
        }

    @classmethod
    def from_nlp(cls, nlp: Language, *, max_chars: int = DEFAULT_MAX_CHARS) -> Coder:
        """A coder over a pipeline that has a ``medcode_coder`` component (e.g. one from
        ``spacy.load``), with that component's knowledge base, ranker and options."""
        found = find_coder(nlp)
        if found is None:
            raise InputError(Errors.E014.format(
                name="nlp", detail="the pipeline has no medcode_coder component"))
        component = found[1]
        coder = cls(nlp, kb_path=component.kb_path, ranker=component.ranker,
                    options=component.options, max_chars=max_chars,
                    model_version=component.model_version, mode=component.mode)
        coder._site_model = component.site_model
        return coder

    @property
    def site_model(self) -> Any:
        """A SiteModel that decides the codes of its label space, or None."""
        return self._site_model

    @site_model.setter
    def site_model(self, model: Any) -> None:
        self._site_model = model
        found = find_coder(self.nlp)
        if found is not None:  # nlp(text) codes as the coder does
            found[1].site_model = model

    @property
    def kb(self) -> CodeKnowledgeBase:
        """The knowledge base this coder uses."""
        return shared_kb(self.kb_path)

    def _options(self, overrides: dict[str, Any]) -> CodingOptions:
        options = replace(self.options, **{k: v for k, v in overrides.items() if v is not None})
        if options.setting not in SETTINGS:
            raise InputError(Errors.E011.format(value=options.setting, name="setting",
                                                allowed=SETTINGS))
        if options.systems is not None:
            options.systems = tuple(options.systems)
            unknown = [s for s in options.systems if s not in self.kb.systems]
            if unknown:
                raise InputError(Errors.E005.format(system=unknown[0],
                                                    known=", ".join(self.kb.systems)))
        return options

    def versions(self) -> dict[str, Any]:
        """Versions recorded in every result."""
        return result_versions(self.kb, self.model_version, self.ranker, self.mode)

    def _run(self, options: CodingOptions) -> CodingRun:
        return CodingRun(options, self.ranker, self.versions(), self.kb_path, self.site_model)

    def __call__(self, text: str, **options: Any) -> CodingResult:
        """Code one note. Options: setting, systems, top_k, min_score, partial_codes."""
        resolved = self._options(options)
        text = check_text(text, self.max_chars)
        if not text.strip():
            return CodingResult(versions=self.versions())
        found = find_coder(self.nlp)
        if found is None:
            return self.result_from_doc(self.nlp(text), resolved)
        doc = self.nlp(text, component_cfg={found[0]: {"run": self._run(resolved)}})
        result: CodingResult = doc._.coding
        return result

    def pipe(self, texts: Iterable[str], batch_size: int = 16, **options: Any
             ) -> Iterator[CodingResult]:
        """Code many notes (results in input order)."""
        resolved = self._options(options)
        checked = (check_text(t, self.max_chars) for t in texts)
        found = find_coder(self.nlp)
        config = {found[0]: {"run": self._run(resolved)}} if found is not None else None
        for doc in self.nlp.pipe(checked, batch_size=batch_size, component_cfg=config):
            if not doc.text.strip():
                yield CodingResult(versions=self.versions())
            elif found is not None:
                yield doc._.coding
            else:
                yield self.result_from_doc(doc, resolved)

    def result_from_doc(self, doc: Doc, options: CodingOptions) -> CodingResult:
        """Turn a processed Doc into the coding result (the ranker rescores a doc once)."""
        return code_doc(doc, self._run(options))

    _mention = staticmethod(mention_from_span)


def load(
    *,
    ner: str | None = None,
    kb: str | Path | None = None,
    ranker: str | Path | None = None,
    setting: str = "outpatient",
    systems: Iterable[str] | None = None,
    top_k: int = 20,
    min_score: float | None = None,
    max_chars: int = DEFAULT_MAX_CHARS,
    matcher: str = "fill",
    site_model: str | Path | None = None,
) -> Coder:
    """Load the default coder: shipped NER and ranker, built-in knowledge base.

    ``ner``: None (shipped model), "dictionary", or an installed spaCy/scispaCy NER package
    name or path. ``kb``: a knowledge-base directory (default: built once in the user cache).
    ``ranker``: a ranker directory, "none" for raw similarity, None for the shipped one.
    A missing or altered shipped model raises an IntegrityError naming the file; the
    dictionary matcher and similarity scores run only when asked for as above. Every result's
    ``versions["mode"]`` says which ran: ``ner`` shipped/dictionary/custom, ``ranker``
    shipped/similarity/custom. ``site_model``: a directory written by ``medcode train ranker
    --gold``; its classifiers decide the codes of the site's label space.
    """
    from medcode_nlp.nlp.pipeline import DICTIONARY, build_pipeline
    from medcode_nlp.ranking.model import NO_RANKER, default_ranker_path, load_default_ranker

    shared_kb(kb)  # build or verify the knowledge base before the pipeline needs it
    nlp, model_version = build_pipeline(ner=ner, kb_path=kb, matcher=matcher)
    loaded_ranker = load_default_ranker(ranker)
    threshold = min_score if min_score is not None else getattr(loaded_ranker, "threshold", 0.2)
    options = CodingOptions(
        setting=setting,
        systems=tuple(systems) if systems is not None else None,
        top_k=top_k,
        min_score=threshold,
    )
    mode = {
        "ner": "shipped" if ner is None else "dictionary" if ner == DICTIONARY else "custom",
        "ranker": ("shipped" if ranker is None
                   else "similarity" if str(ranker) == NO_RANKER else "custom"),
    }
    logger.info("coder mode: ner=%s, ranker=%s", mode["ner"], mode["ranker"])
    component = nlp.add_pipe("medcode_coder", config={
        "kb_path": str(kb) if kb else None,
        "ranker": SHIPPED if ranker is None else str(ranker),
        "setting": setting,
        "systems": list(options.systems) if options.systems is not None else None,
        "top_k": top_k,
        "min_score": min_score,
        "model_version": model_version,
        "mode": mode,
    })
    source = (default_ranker_path() if ranker is None
              else None if str(ranker) == NO_RANKER else Path(ranker))
    component.set_ranker(loaded_ranker, source)  # type: ignore[attr-defined]
    coder = Coder(nlp, kb_path=kb, ranker=loaded_ranker, options=options,
                  max_chars=max_chars, model_version=model_version, mode=mode)
    if site_model is not None:
        from medcode_nlp.ranking.site_model import SiteModel

        coder.site_model = SiteModel.load(site_model)
    coder._options({})  # validate setting and systems now
    return coder
