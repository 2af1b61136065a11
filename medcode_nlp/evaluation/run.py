"""Plain functions behind ``medcode evaluate``: run a model on a file, return a report."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medcode_nlp.errors import Errors, InputError


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)


def evaluate_ner_file(path: Path, fmt: str, ner: str | None = None) -> dict[str, Any]:
    """NER P/R/F1 on a CoNLL/IOB or PubTator file."""
    from medcode_nlp.evaluation.ner import evaluate_ner, read_conll, read_pubtator
    from medcode_nlp.nlp.pipeline import load_ner

    if fmt not in ("conll", "pubtator"):
        raise InputError(Errors.E011.format(value=fmt, name="--format",
                                            allowed=("conll", "pubtator")))
    if not Path(path).is_file():
        raise InputError(Errors.E010.format(path=path))
    examples = read_conll(path) if fmt == "conll" else read_pubtator(path)
    nlp, tag = load_ner(ner)
    report: dict[str, Any] = dict(evaluate_ner(nlp, examples))
    report["model"] = tag
    report["file"] = str(path)
    rows = [("label", "precision", "recall", "f1", "support")]
    scored = [*sorted(report.get("labels", {}).items()), ("micro", report.get("micro", {}))]
    for label, scores in scored:
        rows.append((label, f"{scores.get('p', 0):.4f}", f"{scores.get('r', 0):.4f}",
                     f"{scores.get('f', 0):.4f}", str(scores.get("support", ""))))
    report["table"] = _table(rows)
    return json.loads(json.dumps(report))


def evaluate_context_file(path: Path) -> dict[str, Any]:
    """Assertion metrics on a ConText test-kit TSV."""
    import spacy

    import medcode_nlp.nlp.components.context  # noqa: F401
    import medcode_nlp.nlp.components.sections  # noqa: F401
    from medcode_nlp.evaluation.context import (
        evaluate_context,
        format_context_report,
        read_context_testkit,
    )

    if not Path(path).is_file():
        raise InputError(Errors.E010.format(path=path))
    rows = read_context_testkit(path)
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("medcode_sections")
    nlp.add_pipe("medcode_context")
    report: dict[str, Any] = dict(evaluate_context(nlp, rows))
    report["file"] = str(path)
    report["table"] = format_context_report(report)
    return report


def align_partial_codes(
    predictions: dict[str, list[tuple[str, float]]], gold: dict[str, set[str]]
) -> dict[str, list[tuple[str, float]]]:
    """Credit a full code when the gold gives only its first 4 characters.

    CodiEsp's procedure gold is often a 4-character partial ICD-10-PCS code; a predicted
    7-character code whose first 4 characters equal such a gold code is renamed to it (the
    best score kept). Reported beside the strict figures, never instead of them.
    """
    from medcode_nlp.evaluation.datasets import normalize_code

    aligned = {}
    for doc_id, ranked in predictions.items():
        partial = {g for g in gold.get(doc_id, set()) if len(normalize_code(g)) == 4}
        best: dict[str, float] = {}
        for code, score in ranked:
            key = normalize_code(code)
            if key not in partial and key[:4] in partial:
                key = key[:4]
            best[key] = max(best.get(key, 0.0), score)
        aligned[doc_id] = sorted(best.items(), key=lambda item: -item[1])
    return aligned


def corpus_final_codes(kb: Any, train_gold: dict[str, set[str]], system: str) -> set[str]:
    """Codes a corpus uses as final codes that are not final in the knowledge base.

    CodiEsp was coded with the 2018 code set, without 7th characters: R51 (headache) was
    split into R51.0/R51.9 in FY2021, W19.XXXA is given as W19XXX. Learnt from the *train*
    split's gold codes (those that are non-billable or absent in the knowledge base).
    """
    from medcode_nlp.evaluation.datasets import normalize_code

    found = set()
    for codes in train_gold.values():
        for code in codes:
            entry = kb.get(system, code)
            if entry is None or not entry.billable:
                found.add(normalize_code(code))
    return found


def align_code_version(predictions: dict[str, list[tuple[str, float]]], final: set[str]
                       ) -> dict[str, list[tuple[str, float]]]:
    """Rename each predicted code to its longest prefix among a corpus's ``final`` codes.

    A crosswalk to the corpus's code-set version (R51.9 -> R51, W19.XXXA -> W19XXX); the best
    score is kept. Reported beside the strict figures, never instead of them.
    """
    from medcode_nlp.evaluation.datasets import normalize_code

    aligned = {}
    for doc_id, ranked in predictions.items():
        best: dict[str, float] = {}
        for code, score in ranked:
            key = normalize_code(code)
            for length in range(len(key) - 1, 2, -1):
                if key[:length] in final:
                    key = key[:length]
                    break
            best[key] = max(best.get(key, 0.0), score)
        aligned[doc_id] = sorted(best.items(), key=lambda item: -item[1])
    return aligned


ASSERTION_MODES = ("guidelines", "ignore")
#: How deep each document's CodiEsp ranking goes (the list MAP is computed on, and written).
CODIESP_RANK_DEPTH = 200
#: Which list each CodiEsp metric is computed on (written into the report).
CODIESP_METRIC_LISTS = {
    "map, precision_at_k, recall_at_10, ece, brier": "the full ranked list (every suggested "
    f"code, 'consider' codes included, no threshold, at most {CODIESP_RANK_DEPTH} per "
    "document) - the list --predictions-out writes",
    "precision, recall, f1, ece_above_threshold": "the codes of that list scored at or above "
    "the threshold (the coder's min_score)",
}


DROPPED_SCORE_FACTOR = 0.001


def codiesp_predictions(coder: Any, docs: list[Any], partial_codes: bool = True,
                        dropped_factor: float = DROPPED_SCORE_FACTOR
                        ) -> dict[str, dict[str, list[tuple[str, float]]]]:
    """Ranked codes per document, split into diagnoses (ICD-10-CM) and procedures (PCS).

    The ranking is every code of the result, ``consider`` codes included, by score, then the
    codes a coding convention dropped (integral symptom, one code per mention ...), scored
    ``dropped_factor`` times their confidence so that they rank below every listed code:
    the conventions decide the main list a coder reviews and push what they drop down the
    ranking a MAP measures.

    CodiEsp codes a procedure to its first 4 characters when the note lacks the rest, so the
    coder may suggest such partial codes (``partial_codes``), as its annotators did.
    """
    results = list(coder.pipe((d.text for d in docs), min_score=0.0, top_k=CODIESP_RANK_DEPTH,
                              partial_codes=partial_codes))
    return rankings_by_kind(docs, results, dropped_factor)


def rankings_by_kind(docs: list[Any], results: list[Any],
                     dropped_factor: float = DROPPED_SCORE_FACTOR
                     ) -> dict[str, dict[str, list[tuple[str, float]]]]:
    """Each document's ranking (see :func:`codiesp_predictions`) from its coding result.

    ``dropped_factor=1`` ranks the dropped codes at the confidence the ranker gave them, as if
    the conventions chose the main list only (the side figure that measures what they cost).
    """
    from medcode_nlp.evaluation.datasets import DIAGNOSIS, PROCEDURE

    by_kind: dict[str, dict[str, list[tuple[str, float]]]] = {DIAGNOSIS: {}, PROCEDURE: {}}
    for doc, result in zip(docs, results, strict=True):
        # the full ranking: the main list and the codes offered off it ("consider")
        ranked = [(c.code, c.system, c.score) for c in
                  sorted([*result.codes, *getattr(result, "consider", [])], key=lambda c: -c.score)]
        # then the codes a coding convention took off the list, in their order
        listed = {(code, system) for code, system, _ in ranked}
        tail = sorted((x for x in result.excluded
                       if x.score > 0 and (x.code, x.system) not in listed), key=lambda x: -x.score)
        ranked += [(x.code, x.system, dropped_factor * x.score) for x in tail]
        by_kind[DIAGNOSIS][doc.id] = [(code, score) for code, system, score in ranked
                                      if system == "icd10cm"]
        by_kind[PROCEDURE][doc.id] = [(code, score) for code, system, score in ranked
                                      if system == "icd10pcs"]
    return by_kind


def evaluate_codiesp_dir(
    root: Path,
    split: str,
    *,
    coder: Any = None,
    baseline: bool = True,
    predictions_out: Path | None = None,
    seed: int = 0,
    n_bootstrap: int = 1000,
    plot_dir: Path | None = None,
    partial_codes: bool = True,
    assertions: str = "guidelines",
    compare_coder: Any = None,
) -> dict[str, Any]:
    """The researchers' CodiEsp report: medcode_nlp and the TF-IDF k-NN baseline, D and P.

    ``assertions="ignore"`` codes every mention whatever its assertion (the context component
    off), as CodiEsp's annotators did (they coded negated findings too); ``"guidelines"``
    applies the coding guidelines as the shipped coder does. ``predictions_out`` gets the
    ranked lists the MAP is computed on (the official scorer's input); ``compare_coder`` is
    scored beside the coder. ``report["lists"]`` says which list each metric used.
    """
    import medcode_nlp
    from medcode_nlp.evaluation.baselines import TfidfKnnBaseline
    from medcode_nlp.evaluation.calibration import reliability_diagram
    from medcode_nlp.evaluation.datasets import CODIESP_KINDS, DIAGNOSIS, gold_codes, read_codiesp
    from medcode_nlp.evaluation.report import evaluation_report, write_codiesp_predictions

    root = Path(root)
    if not root.is_dir():
        raise InputError(Errors.E010.format(path=root))
    docs = read_codiesp(root, split)
    coder = coder or medcode_nlp.load()
    threshold = float(coder.options.min_score)
    if assertions not in ASSERTION_MODES:
        raise InputError(Errors.E011.format(value=assertions, name="assertions",
                                            allowed=", ".join(ASSERTION_MODES)))
    context_off = [n for n in ("medcode_context",)
                   if assertions == "ignore" and n in coder.nlp.pipe_names]
    with coder.nlp.select_pipes(disable=context_off):
        results = list(coder.pipe((d.text for d in docs), min_score=0.0,
                                  top_k=CODIESP_RANK_DEPTH, partial_codes=partial_codes))
    predictions = rankings_by_kind(docs, results)
    # side figure: what the conventions cost on a corpus that codes every mention
    by_confidence = rankings_by_kind(docs, results, dropped_factor=1.0)
    compared = None
    if compare_coder is not None:
        compare_off = [n for n in context_off if n in compare_coder.nlp.pipe_names]
        with compare_coder.nlp.select_pipes(disable=compare_off):
            compared = codiesp_predictions(compare_coder, docs, partial_codes)
    report: dict[str, Any] = {"split": split, "documents": len(docs), "seed": seed,
                              "threshold": threshold, "versions": coder.versions(),
                              "partial_codes": partial_codes, "assertions": assertions,
                              "lists": dict(CODIESP_METRIC_LISTS), "systems": {}}
    train_split = read_codiesp(root, "train") if split != "train" else []
    train_docs = train_split if baseline else []
    for kind in CODIESP_KINDS:
        gold = gold_codes(docs, kind)
        pred = predictions[kind]
        entry: dict[str, Any] = {
            "medcode_nlp": evaluation_report(pred, gold, threshold, seed,
                                             n_bootstrap=n_bootstrap),
            "medcode_nlp_partial_codes_credited": evaluation_report(
                align_partial_codes(pred, gold), gold, threshold, seed, n_bootstrap=n_bootstrap),
        }
        entry["medcode_nlp_dropped_codes_at_confidence"] = evaluation_report(
            by_confidence[kind], gold, threshold, seed, n_bootstrap=n_bootstrap)
        if train_split and kind == DIAGNOSIS:  # the version gap is ICD-10-CM's
            final = corpus_final_codes(coder.kb, gold_codes(train_split, kind),
                                       CODIESP_KINDS[kind][1])
            entry["medcode_nlp_corpus_code_version"] = evaluation_report(
                align_code_version(pred, final), gold, threshold, seed,
                n_bootstrap=n_bootstrap)
        if compared is not None:
            entry["compare_ranker"] = evaluation_report(
                compared[kind], gold, float(compare_coder.options.min_score), seed,
                n_bootstrap=n_bootstrap)
        if train_docs:
            knn = TfidfKnnBaseline(k=20, group=kind).fit(train_docs)
            ranked = knn.predict([d.text for d in docs])
            base_pred = {d.id: r for d, r in zip(docs, ranked, strict=True)}
            from medcode_nlp.evaluation.metrics import choose_threshold

            base_threshold = choose_threshold(base_pred, gold)
            entry["tfidf_knn_baseline"] = evaluation_report(
                base_pred, gold, base_threshold, seed, n_bootstrap=n_bootstrap)
        report["systems"][kind] = entry
        if predictions_out is not None:
            target = Path(predictions_out)
            path = target.with_name(f"{target.stem}{CODIESP_KINDS[kind][0]}{target.suffix}")
            write_codiesp_predictions(pred, path, kind, top_k=CODIESP_RANK_DEPTH)
            report.setdefault("predictions_out", []).append(str(path))
        if plot_dir is not None:
            scores, labels = [], []
            from medcode_nlp.evaluation.datasets import normalize_code

            for doc_id, ranked_codes in pred.items():
                wanted = {normalize_code(g) for g in gold.get(doc_id, set())}
                for code, score in ranked_codes:
                    scores.append(score)
                    labels.append(int(normalize_code(code) in wanted))
            if scores:
                reliability_diagram(scores, labels, Path(plot_dir) / f"reliability_{kind}.png")
    report["table"] = format_codiesp_table(report)
    return report


def format_codiesp_table(report: dict[str, Any]) -> str:
    """A terminal table: one row per (kind, method)."""
    rows = [("kind", "method", "MAP", "P", "R", "F1", "P@5", "P@10", "R@10", "ECE", "Brier")]
    for kind, methods in report["systems"].items():
        for method, r in methods.items():
            rows.append((kind, method, *(f"{r.get(k) or 0:.3f}" for k in (
                "map", "precision", "recall", "f1", "precision_at_5", "precision_at_10",
                "recall_at_10", "ece", "brier"))))
    lists = report.get("lists", {})
    return _table(rows) + "".join(f"\n{k}: {v}" for k, v in lists.items())
