"""Train the shipped ranker: ``python -m medcode_nlp.training.train_ranker``.

1. Run the pipeline (ranker off) over CodiEsp train and keep every entity's candidates;
   a candidate is right when its code is in the document's gold set.
2. Add ICD-10-CM Alphabetic Index terms as mentions (minus the rows held out for the linking
   benchmark) and coders' reviewed decisions when a feedback database is given. ICD-10-PCS
   Index terms (a partial-code target: any full code under it is right) are added only on
   request (``--pcs-index-for``): both measured accuracies fell with them.
3. Five-fold out-of-fold (by document) fits of the mention ranker and the whole-note
   classifier give honest signals per (note, code) through the coding rules; the second stage
   (document ranker, calibrated) is fit on them, with ICD-10-PCS partial codes among the
   candidates.
4. The final mention ranker and note classifier are fit on everything; a term ranker for
   terms looked up on their own (no note around them) on the index terms and reviewed
   decisions only; the decision threshold is chosen on CodiEsp dev.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from medcode_nlp.codesets.index_terms import alias_key
from medcode_nlp.codesets.registry import code_key
from medcode_nlp.coding_rules import CodingOptions, Mention, code_document
from medcode_nlp.evaluation.datasets import normalize_code, read_codiesp
from medcode_nlp.evaluation.metrics import choose_threshold, mean_average_precision
from medcode_nlp.paths import REPO_ROOT, shared_data_dir
from medcode_nlp.ranking.document_features import (
    COMPACT_DOC_FEATURES,
    DOC_FEATURE_NAMES,
    CodeSignals,
    DocumentScoring,
    document_features,
)
from medcode_nlp.ranking.estimators import CodeRanker
from medcode_nlp.ranking.mention_features import FEATURE_NAMES, CodePrior
from medcode_nlp.ranking.model import RankerModel
from medcode_nlp.schema import Entity
from medcode_nlp.training.ranker_data import (
    MentionExample,
    featurize,
    index_examples,
    index_term_rows,
    pcs_index_rows,
)

logger = logging.getLogger("medcode_nlp.train_ranker")
ROOT = REPO_ROOT
SHARED = shared_data_dir()
TOP_CANDIDATES = 20


def _trim(examples: Sequence[MentionExample], top: int) -> list[MentionExample]:
    return [replace(e, candidates=e.candidates[:top]) for e in examples]


FEEDBACK_WEIGHT = 5.0
#: Boosting iterations of the term ranker (index terms and reviewed decisions only).
TERM_RANKER_ITERATIONS = 300
#: Leaves per tree of the term ranker (with L2 1.0; the choice: models/ranker/MODEL_CARD.md).
TERM_RANKER_LEAVES = 255
#: Weight of index-term mentions (the choice: models/ranker/MODEL_CARD.md).
INDEX_WEIGHT = 1.0


def _fit(train: Sequence[MentionExample], prior: CodePrior, calibration_cv: int,
         seed: int, max_iter: int = 100, **trees: Any) -> CodeRanker:
    pairs = featurize(train, prior)
    weights = np.array([FEEDBACK_WEIGHT if g.startswith("feedback:")
                        else INDEX_WEIGHT if g == "index" else 1.0 for g in pairs.groups])
    return CodeRanker(max_iter=max_iter, calibration_cv=calibration_cv, random_state=seed,
                      **trees).fit(pairs.X, pairs.y, sample_weight=weights)


def feedback_examples(records: Sequence[Any], kb: Any, linker: Any) -> list[MentionExample]:
    """Coders' reviewed decisions as mention examples (group ``feedback:<note id>``).

    Accepted, replaced and added codes are right for their mention; a rejected code is a
    wrong candidate (only it is kept for that mention, its other candidates are unknown).
    """
    from medcode_nlp.ranking.mention_features import MentionContext
    from medcode_nlp.schema import Candidate

    found = linker.candidates_for([([r.entity_text], "PROBLEM" if (r.final_system or
                                   r.suggested_system) == "icd10cm" else "PROCEDURE")
                                   for r in records])
    examples = []
    for record, candidates in zip(records, found, strict=True):
        mention = MentionContext(text=record.entity_text)
        group = f"feedback:{record.note_id}"
        if record.decision == "reject":
            wrong = [c for c in candidates if c.code == record.suggested_code]
            if wrong:
                examples.append(MentionExample(mention, wrong, frozenset(), group))
            continue
        final = record.final_code
        entry = kb.get(record.final_system, final) if final else None
        if entry is None:
            continue
        if all(c.code != entry.code for c in candidates):
            candidates = [*candidates[: TOP_CANDIDATES - 1],
                          Candidate(entry.code, entry.system, entry.description,
                                    min((c.score for c in candidates), default=0.0),
                                    entry.billable, entry.description, "description")]
        examples.append(MentionExample(mention, candidates[:TOP_CANDIDATES],
                                       frozenset({code_key(entry.code)}), group))
    return examples


def _rescored(examples: Sequence[MentionExample], model: RankerModel) -> list[MentionExample]:
    """Copies of the examples with ranker probabilities as scores (one predict call)."""
    pairs = featurize(examples, model.prior)
    probabilities = model.ranker.score_pairs(pairs.X) if len(pairs.X) else np.zeros(0)
    output = []
    offset = 0
    for example in examples:
        candidates = [replace(c) for c in example.candidates]
        for c in candidates:
            c.score = float(probabilities[offset])
            offset += 1
        candidates.sort(key=lambda c: -c.score)
        output.append(replace(example, candidates=candidates))
    return output


#: Second-stage recipes, each over the same out-of-fold rows. ``compact`` (shipped): 3 models
#: over the first 31 document features, each split seeing 70% of them, each one set of trees
#: with isotonic calibration from 3 folds (3 tree sets to evaluate, as ``single``).
#: ``single``: one model whose 3 calibration folds each keep their trees. ``bagged``: 5 models
#: over every feature, siblings and co-occurrence included, 3 tree sets each. Their history
#: and dev MAP: models/ranker/MODEL_CARD.md (``benchmarks/second_stage_variants.py``).
SECOND_STAGES: dict[str, dict[str, Any]] = {
    "compact": {"features": COMPACT_DOC_FEATURES, "n_bags": 3, "max_features": 0.7,
                "ensemble": False},
    "single": {"features": COMPACT_DOC_FEATURES, "n_bags": 1, "max_features": 1.0,
               "ensemble": True},
    "bagged": {"features": DOC_FEATURE_NAMES, "n_bags": 5, "max_features": 0.5,
               "ensemble": True},
}
#: Coding setting of the second-stage rows: CodiEsp notes are case reports of hospital stays.
TRAINING_SETTING = "inpatient"


def document_scores(kb: Any, examples: Sequence[MentionExample], model: RankerModel,
                    texts: dict[str, str] | None = None, scorer: Any = None,
                    setting: str = TRAINING_SETTING,
                    ) -> dict[str, list[tuple[str, str, float]]]:
    """(system, code, combined score) per document, through the coding rules."""
    by_doc: dict[str, list[MentionExample]] = {}
    for example in _rescored(examples, model):
        by_doc.setdefault(example.group, []).append(example)
    for doc_id in texts or {}:
        by_doc.setdefault(doc_id, [])
    options = CodingOptions(setting=setting, min_score=0.0, top_k=1000, partial_codes=True)
    scorer = scorer or model.scorer
    scores = {}
    for doc_id, items in by_doc.items():
        mentions = [
            Mention(Entity(text=e.mention.text, start=e.start, end=e.end,
                           label=e.mention.label, section=e.mention.section,
                           assertion=e.mention.assertion, candidates=e.candidates),
                    context=e.mention.context)
            for e in items
        ]
        note = model.note_scores(texts[doc_id], kb) if texts else None
        scoring = DocumentScoring(model.combine, note, scorer, model.category_codes)
        codes, _ = code_document(kb, mentions, options, scoring)
        scores[doc_id] = [(c.system, c.code, c.score) for c in codes]
    return scores


def _note_model(docs: Sequence[Any], gold: dict[str, set[str]]) -> Any:
    """The whole-note code classifier, fit on these documents' gold codes."""
    from medcode_nlp.ranking.note_classifier import DocumentCodeClassifier

    return DocumentCodeClassifier().fit([d.text for d in docs], [gold[d.id] for d in docs])


def _suggestable(kb: Any, signals: CodeSignals) -> bool:
    """Whether the code may be suggested: a partial procedure code or a billable code."""
    entry = kb.get(signals.system, signals.code)
    return signals.partial or (entry is not None and entry.billable)


def document_rows(kb: Any, examples: Sequence[MentionExample], model: RankerModel,
                  texts: dict[str, str], gold: dict[str, set[str]]
                  ) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str, str, bool]]]:
    """Second-stage rows (``document_features``), exact-match labels and, per row, the note,
    system, code and whether the code can be suggested (billable or a partial code)."""
    blocks: list[np.ndarray] = []
    labels: list[int] = []
    keys: list[tuple[str, str, str, bool]] = []
    current: list[str] = []

    def record(signals: list[CodeSignals], note_mentions: int) -> np.ndarray:
        blocks.append(document_features(signals, model.prior, note_mentions,
                                        model.document_feature_count))
        labels.extend(int(normalize_code(s.code) in gold[current[0]]) for s in signals)
        keys.extend((current[0], s.system, s.code, _suggestable(kb, s)) for s in signals)
        return np.zeros(len(signals))

    by_doc: dict[str, list[MentionExample]] = {}
    for example in examples:
        by_doc.setdefault(example.group, []).append(example)
    for doc_id in texts:
        current[:] = [doc_id]
        document_scores(kb, by_doc.get(doc_id, []), model, {doc_id: texts[doc_id]}, record)
    return np.vstack(blocks), np.array(labels, dtype=np.int64), keys


def save_rows(path: Path, x: np.ndarray, y: np.ndarray,
              keys: Sequence[tuple[str, str, str, bool]]) -> None:
    """Second-stage rows with their keys, for fitting document-stage variants offline."""
    np.savez_compressed(path, X=x, y=y, doc=np.array([k[0] for k in keys]),
                        system=np.array([k[1] for k in keys]),
                        code=np.array([k[2] for k in keys]),
                        suggestable=np.array([k[3] for k in keys]))


def _index_linker(linker: Any, index_kb: str | None) -> tuple[Any, Any]:
    """A linker like ``linker`` over the knowledge base index terms are searched in, and that
    knowledge base (default: the built-in one)."""
    from medcode_nlp.kb.cache import shared_kb
    from medcode_nlp.nlp.components.linker import CodeLinker

    kb = shared_kb(index_kb)  # builds the built-in one once if missing
    index_linker = CodeLinker(None, "index_linker", kb_path=index_kb,  # type: ignore[arg-type]
                              systems=linker.systems, top_k=linker.top_k,
                              min_similarity=linker.min_similarity)
    return index_linker, kb


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Run the recipe; returns the metrics written next to the model."""
    import medcode_nlp

    random.seed(args.seed)
    started = time.time()
    coder = medcode_nlp.load(ner=args.ner, kb=args.kb, ranker="none")
    kb = coder.kb
    linker: Any = coder.nlp.get_pipe("medcode_linker")
    from medcode_nlp.training.ranker_data import document_examples

    train_docs = read_codiesp(Path(args.codiesp), "train")
    gold_train = {d.id: {normalize_code(c) for c in d.all_codes()} for d in train_docs}
    texts = {d.id: d.text for d in train_docs}
    doc_examples = _trim(document_examples(
        coder.nlp, [(d.id, d.text, gold_train[d.id]) for d in train_docs]), TOP_CANDIDATES)
    logger.info("CodiEsp train: %d docs, %d mentions", len(train_docs), len(doc_examples))

    heldout: set[int] = set()
    if args.heldout and Path(args.heldout).is_file():
        heldout = set(json.loads(Path(args.heldout).read_text())["row_ids"])
    rows = [r for r in index_term_rows(Path(args.index_csv)) if r[0] not in heldout]
    rows = [r for r in rows if (entry := kb.get("icd10cm", r[2])) is not None and entry.billable]
    random.shuffle(rows)

    # index terms are searched in a knowledge base without ICD-10-CM index aliases (the
    # built-in one by default): in one that has them every term would find itself verbatim
    index_linker, index_kb = _index_linker(linker, args.index_kb)

    def search(texts: list[str]) -> list[Any]:
        return index_linker.candidates_for([([t], "PROBLEM") for t in texts])

    term_examples = _trim(index_examples(search, rows[: args.index_terms]), TOP_CANDIDATES)
    # the term ranker learns from the terms exact search cannot settle: not a KB alias verbatim
    alias_keys = {alias_key(text) for _, _, text, _ in index_kb.iter_aliases("icd10cm")}
    lookup_examples = _trim(index_examples(
        search, [r for r in rows if alias_key(r[1]) not in alias_keys]), TOP_CANDIDATES)
    logger.info("index terms: %d (held out: %d)", len(term_examples), len(heldout))
    pcs_rows = pcs_index_rows(Path(args.pcs_index)) if Path(args.pcs_index).is_file() else []
    random.shuffle(pcs_rows)  # always drawn, so the folds below do not depend on the option
    if args.pcs_index_for != "none" and args.pcs_index_terms and pcs_rows:
        pcs_examples = _trim(index_examples(
            lambda texts: linker.candidates_for([([t], "PROCEDURE") for t in texts]),
            pcs_rows[: args.pcs_index_terms], label="PROCEDURE"), TOP_CANDIDATES)
        lookup_examples += pcs_examples
        if args.pcs_index_for == "both":
            term_examples += pcs_examples
        logger.info("ICD-10-PCS index terms: %d", len(pcs_examples))

    if args.feedback:
        from medcode_nlp.review.feedback import load_feedback

        records = load_feedback(Path(args.feedback))
        reviewed = feedback_examples(records, kb, linker)
        term_examples += reviewed
        lookup_examples += reviewed
        logger.info("feedback: %d reviewed decisions", len(records))

    doc_ids = sorted(gold_train)
    random.shuffle(doc_ids)
    folds = [set(doc_ids[i :: args.folds]) for i in range(args.folds)]
    stage = SECOND_STAGES[args.second_stage]
    doc_x, doc_y, doc_keys = [], [], []
    for k, fold in enumerate(folds):
        prior = CodePrior.from_gold([gold_train[d] for d in doc_ids if d not in fold])
        fit_on = [e for e in doc_examples if e.group not in fold] + term_examples
        note_model = _note_model([d for d in train_docs if d.id not in fold], gold_train)
        model = RankerModel(_fit(fit_on, prior, 0, args.seed), prior, note_model=note_model,
                            meta={"document_features": stage["features"]})
        held = [e for e in doc_examples if e.group in fold]
        x, y, keys = document_rows(kb, held, model, {d: texts[d] for d in sorted(fold)},
                                   gold_train)
        doc_x.append(x)
        doc_y.append(y)
        doc_keys.extend(keys)
        logger.info("fold %d/%d done (%.0f s)", k + 1, args.folds, time.time() - started)
    if args.save_document_rows:
        Path(args.save_document_rows).mkdir(parents=True, exist_ok=True)
        save_rows(Path(args.save_document_rows) / "train_rows.npz", np.vstack(doc_x),
                  np.concatenate(doc_y), doc_keys)
    # bagged: single models' dev MAP moved by +-0.005 with the random state alone (the
    # early-stopping split); isotonic beat sigmoid
    doc_ranker = CodeRanker(max_iter=300, learning_rate=0.05, l2_regularization=1.0,
                            calibration_cv=3, random_state=args.seed,
                            max_features=stage["max_features"], n_bags=stage["n_bags"],
                            ensemble=stage["ensemble"]).fit(
        np.vstack(doc_x), np.concatenate(doc_y))

    prior = CodePrior.from_gold(list(gold_train.values()))
    # uncalibrated like the out-of-fold rankers, so the document stage sees at run time the
    # probabilities it was fit on (calibrated: CodiEsp dev diagnosis MAP 0.382 vs 0.389)
    final = _fit(doc_examples + term_examples, prior, 0, args.seed)
    term_ranker = _fit(lookup_examples, prior, 3, args.seed, TERM_RANKER_ITERATIONS,
                       max_leaf_nodes=TERM_RANKER_LEAVES, l2_regularization=1.0)
    model = RankerModel(final, prior, threshold=0.5, note_model=_note_model(
        train_docs, gold_train), doc_ranker=doc_ranker, term_ranker=term_ranker, meta={
        "version": args.version,
        "features": FEATURE_NAMES,
        "document_features": stage["features"],
        "training": {"codiesp_train_docs": len(train_docs),
                     "codiesp_train_mentions": len(doc_examples),
                     "index_terms": len(term_examples), "heldout_index_rows": len(heldout),
                     "pcs_index_terms": sum(e.mention.label == "PROCEDURE"
                                            for e in lookup_examples if e.group == "index"),
                     "pcs_index_for": args.pcs_index_for,
                     "term_ranker_terms": len(lookup_examples),
                     "folds": args.folds, "seed": args.seed, "ner": args.ner or "shipped",
                     "setting": TRAINING_SETTING, "second_stage": args.second_stage,
                     "top_candidates": TOP_CANDIDATES},
    })

    dev_docs = read_codiesp(Path(args.codiesp), "dev")
    gold_dev = {d.id: {normalize_code(c) for c in d.all_codes()} for d in dev_docs}
    dev_examples = _trim(document_examples(
        coder.nlp, [(d.id, d.text, gold_dev[d.id]) for d in dev_docs]), TOP_CANDIDATES)
    dev_texts = {d.id: d.text for d in dev_docs}
    scored = document_scores(kb, dev_examples, model, dev_texts)
    if args.save_document_rows:
        save_rows(Path(args.save_document_rows) / "dev_rows.npz",
                  *document_rows(kb, dev_examples, model, dev_texts, gold_dev))
    predictions = {doc_id: [(code, score) for _, code, score in codes]
                   for doc_id, codes in scored.items()}
    model.threshold = float(choose_threshold(predictions, gold_dev))
    dev_map = {}
    for kind, system in (("diagnosis", "icd10cm"), ("procedure", "icd10pcs")):
        ranked = {doc_id: [(code, score) for s, code, score in codes if s == system]
                  for doc_id, codes in scored.items()}
        dev_map[kind] = round(mean_average_precision(
            ranked, {d.id: set(d.codes.get(kind, set())) for d in dev_docs}), 4)
    metrics = {"threshold_dev": model.threshold, "dev_map": dev_map,
               "seconds": round(time.time() - started, 1), **model.meta["training"]}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # written before the model, so that the checksum manifest covers this run's metrics
    (out / "training_metrics.json").write_text(json.dumps(metrics, indent=1))
    model.save(out)
    logger.info("saved ranker to %s: %s", out, metrics)
    return metrics


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codiesp", default=str(SHARED / "codiesp"))
    parser.add_argument("--index-csv", default=str(SHARED / "icd10cm-2025" /
                                                   "ICD10CM_2025_Index.csv"))
    parser.add_argument("--heldout", default=str(ROOT / "benchmarks" / "results" /
                                                 "linking_heldout_ids.json"))
    parser.add_argument("--kb", default=None, help="knowledge base (default: built-in)")
    parser.add_argument("--index-kb", default=None,
                        help="knowledge base the ICD-10-CM index terms are searched in; "
                        "without index aliases (default: built-in)")
    parser.add_argument("--ner", default=None, help="mention finder (default: shipped NER)")
    parser.add_argument("--index-terms", type=int, default=30000)
    parser.add_argument("--pcs-index", default=str(SHARED / "icd10pcs-2025" /
                                                   "icd10pcs_index_2025.xml"))
    parser.add_argument("--pcs-index-for", choices=("none", "term-ranker", "both"),
                        default="none", help="which rankers learn from the ICD-10-PCS index "
                        "terms (none: both lowered the measured accuracy, see the model card)")
    parser.add_argument("--pcs-index-terms", type=int, default=14314,
                        help="ICD-10-PCS index terms used (0: none)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--second-stage", choices=tuple(SECOND_STAGES), default="compact",
                        help="document stage recipe (see SECOND_STAGES and the model card)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--version", default="ranker-0.1.0")
    parser.add_argument("--feedback", default=None, help="review database (medcode serve)")
    parser.add_argument("--out", default=str(ROOT / "models" / "ranker"))
    parser.add_argument("--save-document-rows", default=None,
                        help="also write the second-stage rows of train (out of fold) and "
                        "dev to train_rows.npz and dev_rows.npz in this directory")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    train(args)


if __name__ == "__main__":
    main()
