"""Build spaCy training corpora (DocBin files) for the PROBLEM / PROCEDURE / DRUG NER.

Sources (read from ``../shared/data``; nothing from them is copied into the project):

* BC5CDR (PubTator): one Doc per abstract (title + " " + abstract); Disease -> PROBLEM,
  Chemical -> DRUG. BC5CDR does not annotate procedures, so tokens matching the procedure
  lexicon outside gold mentions are marked *missing* rather than O.
* NCBI Disease (IOB tsv; optional, ``use_ncbi``): Disease -> PROBLEM; sentences grouped into
  Docs of ``NCBI_SENTENCES_PER_DOC``. Chemicals are not annotated there, so tokens matching the
  chemical lexicon (gold BC5CDR training mentions) and procedure lexicon are marked missing.
* CodiEsp English case reports (the first ``CODIESP_DOCS`` of the train split), weakly
  labelled: PROCEDURE from a lexicon of procedure names (imaging, endoscopy, operations,
  ``-ectomy``/``-scopy``/... words, ICD-10-PCS root operations that match the document's gold
  PCS codes) with anatomical premodifiers (ICD-10-PCS body parts); PROBLEM from the titles,
  inclusion terms and index terms of the document's gold ICD-10-CM codes plus disease names from
  the gold corpora and ICD-10-CM index main terms; DRUG from gold BC5CDR chemical names and the
  ICD-10-CM Table of Drugs. Only matched spans are labelled; function words, punctuation,
  numbers and words unknown to every lexicon are O, and every other token is *missing* (no
  loss), so unlabelled clinical mentions are not taught as O.

Run ``python -m medcode_nlp.training.ner_data --data ../shared/data --out corpus/ner``.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from spacy.language import Language
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc, DocBin, Span, Token
from spacy.util import filter_spans

from medcode_nlp.evaluation.ner import read_conll, read_pubtator
from medcode_nlp.nlp.tokenizer import blank_clinical
from medcode_nlp.paths import shared_data_dir
from medcode_nlp.training.ner_lexicons import (
    BC5CDR_TRAIN,
    Lexicons,
    build_lexicons,
    cm_code_aliases,
)
from medcode_nlp.training.ner_terms import (
    PCS_GUIDED_OPERATIONS,
    PROCEDURE_SUFFIX_RE,
    PROCEDURE_SUFFIX_STOP,
)

logger = logging.getLogger(__name__)

LABELS = ("PROBLEM", "PROCEDURE", "DRUG")
NCBI_SENTENCES_PER_DOC = 10
#: Weakly labelled CodiEsp train documents used (the first ones by file name).
CODIESP_DOCS = 250
#: Every n-th BC5CDR development abstract is held out as the dev set used to pick the checkpoint.
DEV_EVERY = 10



# --- Doc construction --------------------------------------------------------------------------
class Labeller:
    """Lexicon matching on Docs made by the clinical tokenizer."""

    def __init__(self, nlp: Language, lex: Lexicons) -> None:
        self.nlp = nlp
        self.lex = lex
        self.matchers: dict[str, PhraseMatcher] = {}
        for label, terms in (
            ("PROBLEM", lex.problem),
            ("DRUG", lex.drug),
            ("PROCEDURE", lex.procedure),
            ("CHEMICAL_GOLD", lex.chemical_gold),
        ):
            matcher = PhraseMatcher(nlp.vocab, attr="LOWER")
            matcher.add(label, [nlp.make_doc(t) for t in sorted(terms)])
            self.matchers[label] = matcher

    def match(self, doc: Doc, label: str, extra: Iterable[str] = ()) -> list[tuple[int, int]]:
        """Token spans of ``label``'s lexicon (plus ``extra`` terms) in ``doc``."""
        found = [(s, e) for _, s, e in self.matchers[label](doc)]
        extra = sorted(set(extra))
        if extra:
            matcher = PhraseMatcher(self.nlp.vocab, attr="LOWER")
            matcher.add("X", [self.nlp.make_doc(t) for t in extra])
            found += [(s, e) for _, s, e in matcher(doc)]
        return found

    def procedures(self, doc: Doc, operations: Iterable[str] = ()) -> list[tuple[int, int]]:
        """Procedure spans: lexicon, suffix words, guided root operations; with premodifiers."""
        spans = self.match(doc, "PROCEDURE", extra=operations)
        for tok in doc:
            if PROCEDURE_SUFFIX_RE.match(tok.lower_) and tok.lower_ not in PROCEDURE_SUFFIX_STOP:
                spans.append((tok.i, tok.i + 1))
        out = []
        for s, e in spans:
            while s > 0 and doc[s - 1].lower_ in self.lex.proc_modifiers and doc[s - 1].is_alpha:
                s -= 1
            out.append((s, e))
        return out


def _resolve(doc: Doc, cands: Mapping[str, list[tuple[int, int]]]) -> list[Span]:
    """Longest non-overlapping spans; identical spans claimed by two labels are dropped."""
    by_span: dict[tuple[int, int], set[str]] = defaultdict(set)
    for label, found in cands.items():
        for s, e in found:
            by_span[(s, e)].add(label)
    spans = [
        Span(doc, s, e, label=next(iter(labels)))
        for (s, e), labels in by_span.items()
        if len(labels) == 1
    ]
    return filter_spans(spans)


def _safe_outside(tok: Token, vocab: set[str]) -> bool:
    if tok.is_punct or tok.is_space or tok.like_num or tok.is_stop or tok.is_digit:
        return True
    return tok.is_alpha and tok.is_lower and tok.lower_ not in vocab


def weak_doc(doc: Doc, ents: list[Span], vocab: set[str]) -> Doc:
    """Set ``ents``; safe tokens are O, tokens touching an entity and all others are missing."""
    covered = {i for sp in ents for i in range(sp.start, sp.end)}
    near = set()
    for sp in ents:
        near.update({sp.start - 1, sp.end})
        if sp.end < len(doc) and doc[sp.end].lower_ in {"of", "with", "in"}:
            near.update(range(sp.end, min(sp.end + 4, len(doc))))
    outside = [
        doc[i : i + 1]
        for i, tok in enumerate(doc)
        if i not in covered and _safe_outside(tok, vocab) and (i not in near or tok.is_punct)
    ]
    doc.set_ents(ents, outside=outside, default="missing")
    return doc


def gold_doc(doc: Doc, ents: list[Span], missing: list[tuple[int, int]]) -> Doc:
    """Set gold ``ents`` (others O), except ``missing`` token spans outside any gold entity."""
    covered = {i for sp in ents for i in range(sp.start, sp.end)}
    idx = {i for s, e in missing if not any(j in covered for j in range(s, e)) for i in range(s, e)}
    miss = [doc[i : i + 1] for i in sorted(idx)]
    doc.set_ents(ents, missing=miss, default="outside")
    return doc


def _gold_ents(doc: Doc, spans: Iterable[tuple[int, int, str]]) -> tuple[list[Span], int]:
    ents: list[Span] = []
    dropped = 0
    for s, e, lab in spans:
        sp = doc.char_span(s, e, label=lab, alignment_mode="strict")
        if sp is None:
            sp = doc.char_span(s, e, label=lab, alignment_mode="expand")
            dropped += 1
        if sp is not None:
            ents.append(sp)
    return filter_spans(ents), dropped


def bc5cdr_docs(path: Path, labeller: Labeller) -> Iterator[Doc]:
    """Gold BC5CDR docs (Disease -> PROBLEM, Chemical -> DRUG); procedures marked missing."""
    for text, spans in read_pubtator(path):
        doc = labeller.nlp.make_doc(text)
        ents, _ = _gold_ents(doc, spans)
        yield gold_doc(doc, ents, labeller.procedures(doc))


def ncbi_docs(path: Path, labeller: Labeller) -> Iterator[Doc]:
    """Gold NCBI Disease docs (groups of sentences); chemicals and procedures marked missing."""
    sentences = read_conll(path)
    for i in range(0, len(sentences), NCBI_SENTENCES_PER_DOC):
        chunk = sentences[i : i + NCBI_SENTENCES_PER_DOC]
        text, spans, offset = "", [], 0
        for sent, sp in chunk:
            if text:
                text += " "
                offset += 1
            text += sent
            spans += [(s + offset, e + offset, "PROBLEM") for s, e, _ in sp]
            offset += len(sent)
        doc = labeller.nlp.make_doc(text)
        ents, _ = _gold_ents(doc, spans)
        missing = labeller.procedures(doc) + labeller.match(doc, "CHEMICAL_GOLD")
        yield gold_doc(doc, ents, missing)


def read_codes(path: Path) -> dict[str, list[str]]:
    """CodiEsp ``doc_id<TAB>code`` file -> codes per document."""
    codes: dict[str, list[str]] = defaultdict(list)
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            cols = line.rstrip("\n").split("\t")
            if len(cols) >= 2 and cols[1]:
                codes[cols[0]].append(cols[1].strip())
    return codes


def codiesp_docs(
    text_dir: Path,
    labeller: Labeller,
    dx_codes: Mapping[str, list[str]],
    px_codes: Mapping[str, list[str]],
    limit: int | None = None,
) -> Iterator[Doc]:
    """Weakly labelled CodiEsp English docs, guided by each document's gold codes."""
    lex = labeller.lex
    files = sorted(text_dir.glob("*.txt"))[:limit]
    for file in files:
        doc_id = file.stem
        text = file.read_text(encoding="utf-8")
        doc = labeller.nlp.make_doc(text)
        problem_extra: set[str] = set()
        for code in dx_codes.get(doc_id, []):
            problem_extra |= cm_code_aliases(code, lex)
        operations = set()
        for code in px_codes.get(doc_id, []):
            op = lex.pcs_operations.get((code[:1].lower(), code[2:3].lower()))
            if op in PCS_GUIDED_OPERATIONS:
                operations.add(op)
        cands = {
            "PROBLEM": labeller.match(doc, "PROBLEM", extra=problem_extra),
            "DRUG": labeller.match(doc, "DRUG"),
            "PROCEDURE": labeller.procedures(doc, operations),
        }
        yield weak_doc(doc, _resolve(doc, cands), lex.vocab)


def _count(docs: list[Doc]) -> dict[str, Any]:
    labels: Counter[str] = Counter(ent.label_ for d in docs for ent in d.ents)
    tokens = sum(len(d) for d in docs)
    missing = sum(1 for d in docs for t in d if t.ent_iob == 0)
    return {
        "docs": len(docs),
        "tokens": tokens,
        "missing_tokens": missing,
        "entities": dict(sorted(labels.items())),
    }


def build_corpora(
    data: Path,
    out: Path,
    *,
    use_ncbi: bool = False,
    use_codiesp: bool = True,
    codiesp_limit: int | None = CODIESP_DOCS,
) -> dict[str, Any]:
    """Write ``train.spacy``, ``dev.spacy`` and ``stats.json`` into ``out``; return the stats."""
    nlp = blank_clinical()
    lex = build_lexicons(data, nlp)
    labeller = Labeller(nlp, lex)
    parts: dict[str, list[Doc]] = {}
    bc_train = list(bc5cdr_docs(data / "bc5cdr" / BC5CDR_TRAIN[0], labeller))
    bc_dev_all = list(bc5cdr_docs(data / "bc5cdr" / BC5CDR_TRAIN[1], labeller))
    parts["dev (held-out BC5CDR dev abstracts)"] = [
        d for i, d in enumerate(bc_dev_all) if i % DEV_EVERY == DEV_EVERY - 1
    ]
    parts["bc5cdr"] = bc_train + [
        d for i, d in enumerate(bc_dev_all) if i % DEV_EVERY != DEV_EVERY - 1
    ]
    if use_ncbi:
        parts["ncbi"] = [
            d
            for name in ("train.tsv", "devel.tsv")
            for d in ncbi_docs(data / "ncbi-disease" / name, labeller)
        ]
    if use_codiesp:
        cdir = data / "codiesp" / "train"
        parts["codiesp_weak"] = list(
            codiesp_docs(
                cdir / "text_files_en",
                labeller,
                read_codes(cdir / "trainD.tsv"),
                read_codes(cdir / "trainP.tsv"),
                limit=codiesp_limit,
            )
        )
    out.mkdir(parents=True, exist_ok=True)
    train_docs = [d for k, v in parts.items() if not k.startswith("dev") for d in v]
    dev_docs = parts["dev (held-out BC5CDR dev abstracts)"]
    DocBin(docs=train_docs, store_user_data=False).to_disk(out / "train.spacy")
    DocBin(docs=dev_docs, store_user_data=False).to_disk(out / "dev.spacy")
    stats = {
        "parts": {k: _count(v) for k, v in parts.items()},
        "train_total": _count(train_docs),
        "lexicon_sizes": {
            "problem": len(lex.problem),
            "drug": len(lex.drug),
            "procedure": len(lex.procedure),
            "cm_codes_with_index_aliases": len(lex.cm_aliases),
        },
        "settings": {
            "use_ncbi": use_ncbi,
            "use_codiesp": use_codiesp,
            "codiesp_limit": codiesp_limit,
            "dev_every": DEV_EVERY,
            "ncbi_sentences_per_doc": NCBI_SENTENCES_PER_DOC,
        },
    }
    (out / "stats.json").write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    return stats


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build the NER training corpora (DocBin).")
    parser.add_argument("--data", type=Path, default=shared_data_dir())
    parser.add_argument("--out", type=Path, default=Path("corpus/ner"))
    parser.add_argument("--with-ncbi", action="store_true", help="add NCBI Disease train+devel")
    parser.add_argument("--no-codiesp", action="store_true", help="leave CodiEsp weak docs out")
    parser.add_argument("--codiesp-limit", type=int, default=CODIESP_DOCS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    stats = build_corpora(
        args.data,
        args.out,
        use_ncbi=args.with_ncbi,
        use_codiesp=not args.no_codiesp,
        codiesp_limit=args.codiesp_limit,
    )
    logger.info("%s", json.dumps(stats, indent=2))


if __name__ == "__main__":
    main()
