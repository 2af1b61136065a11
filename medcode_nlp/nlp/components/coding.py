"""``medcode_coder``: ranking, the document stage and the coding rules as one spaCy component.

Placed after ``medcode_linker`` (itself after any NER whose labels are PROBLEM / PROCEDURE /
DRUG, e.g. through ``medcode_label_mapper``; ``medcode_sections`` and ``medcode_context`` give
the mentions their section and assertion), it does what :class:`medcode_nlp.Coder` does with
a processed doc:

* the ranker (``ranker``: ``"shipped"``, ``"none"`` for similarity scores, or a directory
  written by ``medcode train ranker``) turns the similarity scores in ``span._.candidates``
  into probabilities;
* the document stage and the coding rules (:func:`medcode_nlp.coding_rules.code_document`),
  the ICD-10-CM conventions (:func:`medcode_nlp.rules.conventions.apply_conventions`) and, when one
  is set, a site model;
* it writes ``doc._.codes``, ``doc._.excluded``, ``doc._.consider`` and ``doc._.coding`` (the
  whole :class:`~medcode_nlp.schema.CodingResult`, as ``Coder`` returns it), and
  ``doc.spans[spans_key]``: each mention labelled ``"LABEL | assertion | code"`` for
  ``displacy.render(doc, style="span")`` (``spans_key`` ``"sc"`` is displaCy's default).

``nlp(text, component_cfg={"medcode_coder": {"run": CodingRun(...)}})`` codes one call with
other options (this is how ``Coder`` passes its per-call options).

Serialization (``to_disk``/``from_disk``, and bytes): the ranker bundle (``ranker/``, the
files it was loaded from, checksums included), the site model (``site_model/``) and a
reference to the knowledge base (``kb.json``, see :mod:`medcode_nlp.kb.ref`).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import srsly
from spacy.language import Language
from spacy.tokens import Doc, Span

import medcode_nlp.nlp.extensions  # noqa: F401  (registers extensions)
from medcode_nlp.about import SCHEMA_VERSION, __version__
from medcode_nlp.coding_rules import SETTINGS, CodingOptions, Mention, code_document, treated_now
from medcode_nlp.errors import Errors, InputError
from medcode_nlp.kb.cache import shared_kb
from medcode_nlp.kb.store import CodeKnowledgeBase
from medcode_nlp.nlp.components.serial import directory_from_bytes, directory_to_bytes
from medcode_nlp.schema import CodingResult, Entity

SHIPPED = "shipped"
RANKER_DIR = "ranker"
SITE_MODEL_DIR = "site_model"
CFG_FILE = "cfg.json"
#: ``doc.user_data`` key set once the ranker has rescored the doc's candidates (never twice).
RANKED = "medcode_nlp.ranked"
#: ``doc.user_data`` key naming the span group of the coded mentions.
SPANS_KEY = "medcode_nlp.spans_key"


@dataclass
class CodingRun:
    """Everything one coding call uses besides the doc."""

    options: CodingOptions
    ranker: Any  # a RankerModel, or None for similarity scores
    versions: dict[str, Any]
    kb_path: str | Path | None = None
    site_model: Any = None  # a SiteModel, or None


def result_versions(kb: CodeKnowledgeBase, model_version: str, ranker: Any,
                    mode: dict[str, str]) -> dict[str, Any]:
    """Versions recorded in every result."""
    return {
        "medcode_nlp": __version__,
        "schema": SCHEMA_VERSION,
        "model": model_version,
        "ranker": getattr(ranker, "version", None),
        "mode": dict(mode),
        "code_sets": {s: i.get("version") for s, i in kb.systems_info().items()},
    }


def mention_from_span(span: Span) -> Mention:
    """What the coding rules need to know about one entity."""
    from medcode_nlp.ranking.mention_features import sentence_context

    entity = Entity(
        text=span.text,
        start=span.start_char,
        end=span.end_char,
        label=span.label_,
        section=span._.section,
        assertion=span._.assertion or "present",
        candidates=list(span._.candidates or []),
    )
    flags = {name: bool(getattr(span._, name)) for name in
             ("is_negated", "is_historical", "is_family", "is_hypothetical", "is_uncertain")}
    has_sentences = span.doc.has_annotation("SENT_START")
    sentence = sentence_context(span) if has_sentences else span.text
    if entity.assertion == "historical" and treated_now(sentence):
        entity.assertion = "present"  # a chronic condition the note treats is current
    return Mention(entity=entity, context=sentence, flags=flags)


def code_doc(doc: Doc, run: CodingRun) -> CodingResult:
    """The coding result of a processed doc (the ranker rescores its candidates once)."""
    from medcode_nlp.rules.conventions import apply_conventions

    versions = {k: dict(v) if isinstance(v, dict) else v for k, v in run.versions.items()}
    if not doc.text.strip():
        return CodingResult(versions=versions)
    kb = shared_kb(run.kb_path)
    options, ranker = run.options, run.ranker
    if ranker is not None and not doc.user_data.get(RANKED):
        ranker.rescore_doc(doc, kb)
        doc.user_data[RANKED] = True
    mentions = [mention_from_span(span) for span in doc.ents]
    if ranker is not None:
        codes, excluded = code_document(kb, mentions, options,
                                        ranker.document_scoring(doc.text, kb))
    else:
        codes, excluded = code_document(kb, mentions, options)
    reviewed = apply_conventions(kb, doc.text, mentions, codes, excluded,
                                 options.setting, options.systems)
    result = CodingResult(
        entities=[m.entity for m in mentions],
        codes=reviewed.codes[: options.top_k],
        excluded=reviewed.excluded,
        consider=reviewed.consider,
        versions=versions,
    )
    return result if run.site_model is None else run.site_model.apply(doc.text, result)


def set_coding(doc: Doc, result: CodingResult, spans_key: str | None) -> None:
    """Write ``result`` to the doc's extension attributes (and the displaCy span group)."""
    from medcode_nlp.nlp.render import mention_label

    doc._.coding = result
    doc._.codes = result.codes
    doc._.excluded = result.excluded
    doc._.consider = result.consider
    if spans_key:
        by_offsets = {(e.start, e.end): e for e in result.entities}
        spans = []
        for ent in doc.ents:
            entity = by_offsets.get((ent.start_char, ent.end_char))
            if entity is not None:
                spans.append(Span(doc, ent.start, ent.end, label=mention_label(entity, result)))
        doc.spans[spans_key] = spans
        doc.user_data[SPANS_KEY] = spans_key  # where medcode_nlp.nlp.render looks


def _copy_ranker(ranker: Any, source: Path | None, target: Path) -> None:
    """The ranker's files: copied from the verified directory it was loaded from, else saved."""
    from medcode_nlp.integrity import CHECKSUM_FILE, verify_directory

    if target.exists():
        shutil.rmtree(target)
    if source is not None and (source / CHECKSUM_FILE).is_file():
        verify_directory(source)  # the files are still the ones the ranker was loaded from
        shutil.copytree(source, target)
    else:
        ranker.save(target)


class MedcodeCoder:
    """spaCy component: the note's codes from its linked entities (see the module doc)."""

    def __init__(
        self,
        nlp: Language,
        name: str = "medcode_coder",
        *,
        kb_path: str | None = None,
        ranker: str = SHIPPED,
        setting: str = "outpatient",
        systems: list[str] | None = None,
        top_k: int = 20,
        min_score: float | None = None,
        partial_codes: bool = False,
        model_version: str | None = None,
        mode: dict[str, str] | None = None,
        spans_key: str | None = "sc",
    ) -> None:
        if setting not in SETTINGS:
            raise InputError(Errors.E011.format(value=setting, name="setting", allowed=SETTINGS))
        self.name = name
        self.kb_path = kb_path
        self.ranker_spec = ranker
        self.setting = setting
        self.systems = list(systems) if systems is not None else None
        self.top_k = top_k
        self.min_score = min_score
        self.partial_codes = partial_codes
        meta = nlp.meta if nlp is not None else {}
        self.model_version = model_version or (
            f"ner:{meta.get('name', 'pipeline')}-{meta.get('version', '?')}")
        self.mode = dict(mode) if mode else {
            "ner": "custom",
            "ranker": {SHIPPED: "shipped", "none": "similarity"}.get(ranker, "custom"),
        }
        self.spans_key = spans_key
        self.site_model: Any = None
        self._ranker: Any = None
        self._ranker_ready = False
        self._ranker_source: Path | None = None

    # ------------------------------------------------------------------ state
    @property
    def ranker(self) -> Any:
        """The ranker (loaded on first use from ``ranker``), or None for similarity scores."""
        if not self._ranker_ready:
            from medcode_nlp.ranking.model import (
                NO_RANKER,
                default_ranker_path,
                load_default_ranker,
            )

            spec = self.ranker_spec
            if spec == NO_RANKER:
                self.set_ranker(None)
            elif spec == SHIPPED:
                self.set_ranker(load_default_ranker(None), default_ranker_path())
            elif spec and Path(spec).is_dir():
                self.set_ranker(load_default_ranker(spec), Path(spec))
            else:
                raise InputError(Errors.E020.format(value=spec))
        return self._ranker

    def set_ranker(self, ranker: Any, source: str | Path | None = None) -> None:
        """Use ``ranker`` (None: similarity scores); ``source``: the directory it came from."""
        self._ranker = ranker
        self._ranker_ready = True
        self._ranker_source = Path(source) if source is not None else None

    @property
    def kb(self) -> CodeKnowledgeBase:
        """The knowledge base this component codes with."""
        return shared_kb(self.kb_path)

    @property
    def options(self) -> CodingOptions:
        """The coding options from the config (``min_score`` None: the ranker's threshold)."""
        threshold = (self.min_score if self.min_score is not None
                     else getattr(self.ranker, "threshold", 0.2))
        return CodingOptions(
            setting=self.setting,
            systems=tuple(self.systems) if self.systems is not None else None,
            top_k=self.top_k,
            min_score=threshold,
            partial_codes=self.partial_codes,
        )

    def versions(self) -> dict[str, Any]:
        """Versions recorded in every result of this component."""
        return result_versions(self.kb, self.model_version, self.ranker, self.mode)

    def default_run(self) -> CodingRun:
        """The coding run of the config."""
        return CodingRun(self.options, self.ranker, self.versions(), self.kb_path,
                         self.site_model)

    # ---------------------------------------------------------------- running
    def __call__(self, doc: Doc, run: CodingRun | None = None) -> Doc:
        run = run if run is not None else self.default_run()
        set_coding(doc, code_doc(doc, run), self.spans_key)
        return doc

    def pipe(self, docs: Iterable[Doc], *, batch_size: int = 16,
             run: CodingRun | None = None) -> Iterable[Doc]:
        run = run if run is not None else self.default_run()
        for doc in docs:
            yield self(doc, run)

    # ---------------------------------------------------------- serialization
    def to_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> None:
        from medcode_nlp.kb.ref import write_reference

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        write_reference(path, self.kb_path)
        ranker = self.ranker
        if ranker is not None and RANKER_DIR not in exclude:
            _copy_ranker(ranker, self._ranker_source, path / RANKER_DIR)
        if self.site_model is not None and SITE_MODEL_DIR not in exclude:
            self.site_model.save(path / SITE_MODEL_DIR)
        srsly.write_json(path / CFG_FILE, {"ranker": ranker is not None,
                                           "site_model": self.site_model is not None})

    def from_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> MedcodeCoder:
        from medcode_nlp.kb.ref import read_reference
        from medcode_nlp.ranking.model import RankerModel

        path = Path(path)
        found, kb_path = read_reference(path, self.kb_path, self.name)
        if found:
            self.kb_path = kb_path
        cfg = srsly.read_json(path / CFG_FILE) if (path / CFG_FILE).is_file() else {}
        if (path / RANKER_DIR).is_dir() and RANKER_DIR not in exclude:
            self.set_ranker(RankerModel.load(path / RANKER_DIR), path / RANKER_DIR)
        elif cfg.get("ranker") is False:
            self.set_ranker(None)
        if (path / SITE_MODEL_DIR).is_dir() and SITE_MODEL_DIR not in exclude:
            from medcode_nlp.ranking.site_model import SiteModel

            self.site_model = SiteModel.load(path / SITE_MODEL_DIR)
        return self

    def to_bytes(self, *, exclude: Iterable[str] = ()) -> bytes:
        return directory_to_bytes(lambda path: self.to_disk(path, exclude=exclude))

    def from_bytes(self, data: bytes, *, exclude: Iterable[str] = ()) -> MedcodeCoder:
        def read(path: Path) -> None:
            self.from_disk(path, exclude=exclude)
            self._ranker_source = None  # the temporary directory is gone after this

        directory_from_bytes(data, read)
        return self


def find_coder(nlp: Language) -> tuple[str, MedcodeCoder] | None:
    """The (name, component) of the pipeline's ``medcode_coder``, if it has one."""
    for name, component in nlp.pipeline:
        if isinstance(component, MedcodeCoder):
            return name, component
    return None


@Language.factory(
    "medcode_coder",
    assigns=["doc._.codes", "doc._.excluded", "doc._.consider", "doc._.coding",
             "span._.candidates"],
    requires=["doc.ents"],
    default_config={
        "kb_path": None,
        "ranker": SHIPPED,
        "setting": "outpatient",
        "systems": None,
        "top_k": 20,
        "min_score": None,
        "partial_codes": False,
        "model_version": None,
        "mode": None,
        "spans_key": "sc",
    },
)
def make_coder(
    nlp: Language,
    name: str,
    kb_path: str | None,
    ranker: str,
    setting: str,
    systems: list[str] | None,
    top_k: int,
    min_score: float | None,
    partial_codes: bool,
    model_version: str | None,
    mode: dict[str, str] | None,
    spans_key: str | None,
) -> MedcodeCoder:
    """Factory of the coder component (see the module doc for the settings)."""
    return MedcodeCoder(nlp, name, kb_path=kb_path, ranker=ranker, setting=setting,
                        systems=systems, top_k=top_k, min_score=min_score,
                        partial_codes=partial_codes, model_version=model_version, mode=mode,
                        spans_key=spans_key)
