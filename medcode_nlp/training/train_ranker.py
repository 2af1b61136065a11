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

The pieces of each stage: :mod:`medcode_nlp.training.mention_stage` (fitting, rescoring,
reviewed decisions) and :mod:`medcode_nlp.training.document_stage` (recipes, rows through the
coding rules).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medcode_nlp.codesets.index_terms import alias_key
from medcode_nlp.evaluation.datasets import normalize_code, read_codiesp
from medcode_nlp.evaluation.metrics import choose_threshold, mean_average_precision
from medcode_nlp.paths import REPO_ROOT, shared_data_dir
from medcode_nlp.ranking.estimators import CodeRanker
from medcode_nlp.ranking.mention_features import FEATURE_NAMES, CodePrior
from medcode_nlp.ranking.model import RankerModel
from medcode_nlp.training.document_stage import (
    SECOND_STAGES,
    TRAINING_SETTING,
    document_rows,
    document_scores,
    fit_note_classifier,
    save_rows,
)
from medcode_nlp.training.mention_stage import (
    TERM_RANKER_ITERATIONS,
    TERM_RANKER_LEAVES,
    TOP_CANDIDATES,
    feedback_examples,
    fit_mention_ranker,
    index_linker,
    trim_candidates,
)
from medcode_nlp.training.ranker_data import index_examples, index_term_rows, pcs_index_rows

logger = logging.getLogger("medcode_nlp.train_ranker")
ROOT = REPO_ROOT
SHARED = shared_data_dir()


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
    doc_examples = trim_candidates(document_examples(
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
    term_linker, index_kb = index_linker(linker, args.index_kb)

    def search(texts: list[str]) -> list[Any]:
        return term_linker.candidates_for([([t], "PROBLEM") for t in texts])

    term_examples = trim_candidates(index_examples(search, rows[: args.index_terms]), TOP_CANDIDATES)
    # the term ranker learns from the terms exact search cannot settle: not a KB alias verbatim
    alias_keys = {alias_key(text) for _, _, text, _ in index_kb.iter_aliases("icd10cm")}
    lookup_examples = trim_candidates(index_examples(
        search, [r for r in rows if alias_key(r[1]) not in alias_keys]), TOP_CANDIDATES)
    logger.info("index terms: %d (held out: %d)", len(term_examples), len(heldout))
    pcs_rows = pcs_index_rows(Path(args.pcs_index)) if Path(args.pcs_index).is_file() else []
    random.shuffle(pcs_rows)  # always drawn, so the folds below do not depend on the option
    if args.pcs_index_for != "none" and args.pcs_index_terms and pcs_rows:
        pcs_examples = trim_candidates(index_examples(
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
        note_model = fit_note_classifier([d for d in train_docs if d.id not in fold], gold_train)
        model = RankerModel(fit_mention_ranker(fit_on, prior, 0, args.seed), prior, note_model=note_model,
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
    # bagged, isotonic calibration (why: models/ranker/MODEL_CARD.md)
    doc_ranker = CodeRanker(max_iter=300, learning_rate=0.05, l2_regularization=1.0,
                            calibration_cv=3, random_state=args.seed,
                            max_features=stage["max_features"], n_bags=stage["n_bags"],
                            ensemble=stage["ensemble"]).fit(
        np.vstack(doc_x), np.concatenate(doc_y))

    prior = CodePrior.from_gold(list(gold_train.values()))
    # uncalibrated like the out-of-fold rankers, so the document stage sees at run time the
    # probabilities it was fit on (models/ranker/MODEL_CARD.md)
    final = fit_mention_ranker(doc_examples + term_examples, prior, 0, args.seed)
    term_ranker = fit_mention_ranker(lookup_examples, prior, 3, args.seed, TERM_RANKER_ITERATIONS,
                       max_leaf_nodes=TERM_RANKER_LEAVES, l2_regularization=1.0)
    model = RankerModel(final, prior, threshold=0.5, note_model=fit_note_classifier(
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
    dev_examples = trim_candidates(document_examples(
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
