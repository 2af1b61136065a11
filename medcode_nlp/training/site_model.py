"""Train a site model from a site's coded notes (``medcode train ranker --gold coded.jsonl``).

1. Run the base coder over every note (cached on disk when asked: a re-run is fast).
2. Features per note (:func:`medcode_nlp.ranking.site_features.note_features`); features
   seen in fewer than two notes are dropped. The base coder's code and candidate features
   are scaled by ``GROUP_WEIGHTS``.
3. Inner cross-validation on the training notes only: for each member of the ensemble (one
   logistic regression per code with an L2, and one with an L1 penalty) the regularisation
   strength with the best out-of-fold micro F1 is chosen; the members' out-of-fold
   probabilities are averaged with the base coder's decisions (1 for a code on its main list,
   else 0) at the weight of ``BASE_WEIGHTS`` with the best micro F1, and the blend chooses the
   global threshold and the top-code floor by micro
   F1 over required codes (a kept optional code is neither a hit nor a false positive), then
   per-code thresholds for codes with at least ``PER_CODE_MIN`` gold notes (each moved in
   turn while micro F1 rises); with ``defer=True`` (site-0.2.0, site-0.4.0) the label codes
   the base coder decides at least as well as the site model are left to it ("deferred").
   site-0.4.0: label codes whose base-coder decisions, added, raise micro F1 are kept from
   the base coder too ("union"); each code system's extra base codes (outside the label
   space) pass through only if they raise micro F1, then each extra code may depart from
   its system's choice when that raises micro F1 (the base coder never saw the training
   notes, so its codes on them are fair evidence); a note left with no code gets the base
   coder's top code if that raises micro F1 ("fallback").
4. The final members are fit on all the training notes with their chosen strengths.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medcode_nlp.codesets.registry import code_key
from medcode_nlp.errors import Errors, InputError
from medcode_nlp.ranking.site_features import (
    NoteFeatures,
    as_int32,
    base_decisions,
    note_features,
    weighted,
)
from medcode_nlp.ranking.site_model import SiteModel
from medcode_nlp.schema import CodingResult
from medcode_nlp.training.site_decision import (  # noqa: F401 (re-exported)
    FLOORS,
    PER_CODE_MIN,
    THRESHOLDS,
    Code,
    _base_keys,
    _code_passthrough,
    _deferred,
    _fallback,
    _kept_matrix,
    _norm,
    _passthrough,
    _Scorer,
    choose_decision,
    f1,
    kept_indexes,
    micro_counts,
    per_code_thresholds,
    union_codes,
)

logger = logging.getLogger("medcode_nlp.train_site_model")

#: Regularisation strengths tried in the inner folds (inverse L2 weight).
C_GRID = (1.0, 4.0, 16.0)
#: Codes in fewer training notes than this are left to the base coder (not learnt).
MIN_NOTES = 3
#: Members of the averaged ensemble: one logistic regression per code for each penalty.
PENALTIES = ("l2", "l1")
#: Feature groups scaled up against the word n-grams (less shrunk by the regularisation):
#: the base coder's codes and its entities' candidate codes.
GROUP_WEIGHTS = {"base": 5.0, "cand": 5.0}
#: Weights of the base coder as a member of the ensemble (its main-list codes as probability
#: 1, the others 0), one chosen in the inner folds; 0: the classifiers alone.
BASE_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
DEFAULT_SYSTEM = "icd10cm"


@dataclass(frozen=True, slots=True)
class CodedNote:
    """A note with the codes its coder gave it (optional codes apart)."""

    id: str
    text: str
    required: frozenset[Code]
    optional: frozenset[Code] = frozenset()


def read_coded_notes(path: str | Path) -> list[CodedNote]:
    """Coded notes from JSONL (``{"id", "text", "codes": [{"system", "code", "optional"}]}``),
    read by :func:`medcode_nlp.evaluation.coding.read_coded_notes` (the one reader); a code
    without a system is ICD-10-CM; codes kept as written (dots too) for the model's output."""
    from medcode_nlp.evaluation.coding import ANY_SYSTEM
    from medcode_nlp.evaluation.coding import read_coded_notes as read_gold

    notes: list[CodedNote] = []
    for note in read_gold(path):
        required: set[Code] = set()
        optional: set[Code] = set()
        for gold in note.codes:
            system = DEFAULT_SYSTEM if gold.system == ANY_SYSTEM else gold.system
            (optional if gold.optional else required).add((system, gold.written or gold.code))
        notes.append(CodedNote(note.id, note.text, frozenset(required),
                               frozenset(optional - required)))
    if len(notes) < 2:
        raise InputError(Errors.E014.format(name="--gold", detail=f"{path} has {len(notes)} "
                                            "coded notes; at least 2 are needed"))
    return notes


def _fingerprint(text: str, versions: dict[str, Any]) -> str:
    payload = json.dumps(versions, sort_keys=True) + "\0" + text
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def code_notes(coder: Any, notes: Sequence[CodedNote], cache: str | Path | None = None
               ) -> list[CodingResult]:
    """The base coder's result for each note; ``cache``: a JSONL file reused when it matches."""
    versions = coder.versions()
    keys = [_fingerprint(n.text, versions) for n in notes]
    stored: dict[str, dict[str, Any]] = {}
    cache_path = Path(cache) if cache is not None else None
    if cache_path is not None and cache_path.is_file():
        for line in cache_path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                entry = json.loads(line)
                stored[entry["key"]] = entry["result"]
    missing = [i for i, key in enumerate(keys) if key not in stored]
    if missing:
        for i, result in zip(missing, coder.pipe([notes[i].text for i in missing]), strict=True):
            stored[keys[i]] = result.to_dict()
        if cache_path is not None:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            with cache_path.open("w", encoding="utf-8") as handle:
                for key in dict.fromkeys(keys):
                    handle.write(json.dumps({"key": key, "result": stored[key]}) + "\n")
    return [CodingResult.from_dict(stored[key]) for key in keys]


def _classifier(c: float, seed: int, penalty: str = "l2", balanced: bool = False) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    # scikit-learn 1.8 deprecated ``penalty`` for ``l1_ratio`` (0: L2, 1: L1)
    if LogisticRegression().get_params().get("penalty") == "deprecated":
        mix: dict[str, Any] = {"l1_ratio": 1.0 if penalty == "l1" else 0.0}
    else:
        mix = {"penalty": penalty}
    return OneVsRestClassifier(LogisticRegression(
        C=c, solver="liblinear", max_iter=1000, random_state=seed,
        class_weight="balanced" if balanced else None, **mix))


def _fit(matrix: Any, y: np.ndarray, c: float, seed: int, penalty: str = "l2",
         balanced: bool = False) -> Any:
    """One logistic regression per label (a label constant in ``y`` gets a constant model)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Label not .* is present in all training")
        return _classifier(c, seed, penalty, balanced).fit(matrix, y)


def _fit_predict(matrix: Any, y: np.ndarray, train: np.ndarray, test: np.ndarray, c: float,
                 seed: int, penalty: str = "l2", balanced: bool = False) -> np.ndarray:
    classifier = _fit(as_int32(matrix[train]), y[train], c, seed, penalty, balanced)
    probs: np.ndarray = classifier.predict_proba(as_int32(matrix[test]))
    return probs


def _choose_member(matrix: Any, y: np.ndarray, labels: Sequence[str], notes: Sequence[CodedNote],
                   spec: str, c_grid: Sequence[float], folds: int, seed: int
                   ) -> dict[str, Any]:
    """The strength of one member by inner-fold micro F1, with its out-of-fold probs.
    ``spec``: its penalty ("l2", "l1"), then ``+balanced`` for class-balanced weights."""
    from sklearn.model_selection import KFold

    penalty, *options = spec.split("+")
    balanced = "balanced" in options
    best: dict[str, Any] = {"f1": -1.0, "all": []}
    for c in c_grid:
        probs = np.zeros(y.shape)
        for train, test in KFold(folds, shuffle=True, random_state=seed).split(matrix):
            probs[test] = _fit_predict(matrix, y, train, test, c, seed, penalty, balanced)
        score = choose_decision(probs, labels, notes)[2]
        logger.info("inner folds: %s C=%s micro F1 %.4f", spec, c, score)
        member = {"f1": score, "C": c, "penalty": penalty, "balanced": balanced,
                  "unweighted": "unweighted" in options, "probs": probs}
        best["all"].append(member)
        if score > best["f1"]:
            best.update(member)
    return best


def fit_site_model(notes: Sequence[CodedNote], results: Sequence[CodingResult], *,
                   seed: int = 0, inner_folds: int = 3, c_grid: Sequence[float] = C_GRID,
                   kb: Any = None, version: str = "site-0.4.0", per_code: bool = True,
                   per_code_min: int = PER_CODE_MIN, min_notes: int = MIN_NOTES,
                   penalties: Sequence[str] = PENALTIES,
                   weights: dict[str, float] | None = None,
                   c_average: bool = False,
                   base_weights: Sequence[float] = BASE_WEIGHTS, defer: bool = True,
                   pairs: bool = False, union: bool = True, backward: bool = True,
                   code_passthrough: bool = True, fallback: bool = True) -> SiteModel:
    """Fit a :class:`SiteModel` on coded notes and the base coder's results for them.

    Its label space: the codes of at least ``min_notes`` notes (rarer ones are left to the
    base coder). One member per penalty in ``penalties`` (its C chosen in the inner folds);
    their probabilities are averaged, then blended with the base coder's decisions at the
    weight of ``base_weights`` the inner folds prefer (``()``: no blend). ``weights``:
    feature-group weights (default :data:`GROUP_WEIGHTS`; ``{}`` for none); ``defer``: leave
    label codes the base coder decides at least as well to it (site-0.2.0); ``c_average``: every
    C of the grid a member instead of the best; ``penalties`` entries may add ``+unweighted``
    or ``+balanced``; ``pairs``: (reason word, diagnosis word) pair features; ``union``: label codes
    whose base-coder decisions raise inner-fold micro F1 are kept from the base coder too;
    ``backward``: post-posed uncertainty triggers mark the words before them;
    ``code_passthrough``: per extra base code, pass it through or not against its system's
    choice when the training notes' F1 rises; ``fallback``: a note left with no code gets the
    base coder's top code, if the training notes' F1 rises with it."""
    from sklearn.feature_extraction import DictVectorizer

    if len(notes) != len(results):
        raise InputError(Errors.E014.format(name="results", detail="one result per note needed"))
    counts: dict[str, int] = {}
    written: dict[str, Code] = {}
    for note in notes:
        for code in note.required | note.optional:
            counts[_norm(code)] = counts.get(_norm(code), 0) + 1
            written.setdefault(_norm(code), code)
    labels = sorted(label for label, n in counts.items() if n >= min_notes)
    if not labels:
        raise InputError(Errors.E014.format(
            name="--gold", detail=f"no code is in {min_notes} or more of the coded notes"))
    weights = dict(GROUP_WEIGHTS if weights is None else weights)
    features = [note_features(n.text, r, pairs=pairs, backward=backward)
                for n, r in zip(notes, results, strict=True)]
    vectorizer = DictVectorizer().fit([_frequent(features)])
    matrix = as_int32(vectorizer.transform([weighted(f.values, weights) for f in features]))
    y = np.array([[int(label in {_norm(c) for c in n.required | n.optional}) for label in labels]
                  for n in notes])
    folds = min(inner_folds, len(notes))
    plain = as_int32(vectorizer.transform([f.values for f in features]))
    members = [_choose_member(plain if "+unweighted" in p else matrix, y, labels, notes, p,
                              c_grid, folds, seed) for p in penalties]
    if c_average:  # every strength of the grid a member: no choice of C
        members = [m for chosen in members for m in chosen["all"]]
    probs = np.mean([m["probs"] for m in members], axis=0)
    base_weight = 0.0
    if base_weights:  # the base coder as one more member, its weight chosen in the inner folds
        decided = base_decisions(features, labels)
        scores = {w: choose_decision((1 - w) * probs + w * decided, labels, notes)[2]
                  for w in base_weights}
        base_weight = max(scores, key=lambda w: (scores[w] + 1e-9 * -w))
        logger.info("inner folds: base coder weight %s (micro F1 %s)", base_weight,
                    {w: round(v, 4) for w, v in scores.items()})
        probs = (1 - base_weight) * probs + base_weight * decided
    threshold, floor, score = choose_decision(probs, labels, notes)
    logger.info("inner folds: %d members, threshold=%.3f floor=%.2f micro F1 %.4f",
                len(members), threshold, floor, score)
    thresholds: list[float] | None = None
    if per_code:
        thresholds, score = per_code_thresholds(probs, labels, notes, threshold, floor,
                                                per_code_min)
        logger.info("inner folds: per-code thresholds micro F1 %.4f", score)
    kept = [{labels[i] for i in row} for row in kept_indexes(
        probs, np.array(thresholds) if thresholds else threshold, floor)]
    deferred = _deferred(results, kept, labels, notes) if defer else []
    unioned = union_codes([{f"{c.system}|{code_key(c.code)}" for c in r.codes} for r in results],
                          kept, labels, notes) if union else []
    passthrough = _passthrough(results, kept, set(labels), notes)
    overrides: dict[str, bool] = {}
    final = [k | {e for e in set(_base_keys(r)) - set(labels)
                  if passthrough.get(e.split("|")[0], True)}
             for k, r in zip(kept, results, strict=True)]
    if code_passthrough:
        overrides, final = _code_passthrough(results, kept, set(labels), notes, passthrough)
    use_fallback = fallback and _fallback(results, final, notes)
    classifiers = [_fit(plain if m["unweighted"] else matrix, y, m["C"], seed, m["penalty"],
                        m["balanced"]) for m in members]
    meta = {
        "version": version,
        "labels": [list(written[label]) for label in labels],
        "threshold": threshold,
        "floor": floor,
        "thresholds": thresholds,
        "C": members[0]["C"],
        "members": [{"penalty": m["penalty"], "C": m["C"], "balanced": m["balanced"],
                     **({"weights": {}} if m["unweighted"] else {})} for m in members],
        "weights": weights,
        "base_weight": base_weight,
        "pairs": pairs,
        "passthrough": passthrough,
        "deferred": [list(written[label]) for label in deferred],
        "passthrough_codes": overrides,
        "fallback": use_fallback,
        "union": [list(written[label]) for label in unioned],
        "backward": backward,
        "descriptions": _descriptions(kb, [written[label] for label in labels]),
        "training": {"notes": len(notes), "codes": len(labels), "features": len(
            vectorizer.vocabulary_), "inner_folds": folds, "inner_micro_f1": round(score, 4),
            "seed": seed},
    }
    return SiteModel(vectorizer, classifiers, meta)


def _frequent(features: Sequence[NoteFeatures], min_notes: int = 2) -> dict[str, float]:
    """One dict holding every feature seen in at least ``min_notes`` notes (for the vocabulary)."""
    seen: dict[str, int] = {}
    for f in features:
        for name in f.values:
            seen[name] = seen.get(name, 0) + 1
    return {name: 1.0 for name, n in seen.items() if n >= min_notes}


def _descriptions(kb: Any, codes: Sequence[Code]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for system, code in codes:
        entry = kb.get(system, code) if kb is not None and system in kb.systems else None
        if entry is not None:
            out[_norm((system, code))] = [entry.description, bool(entry.billable)]
    return out


def train_site_model(gold: str | Path, out: str | Path, *, kb: str | Path | None = None,
                     ner: str | None = None, seed: int = 0, cache: str | Path | None = None
                     ) -> dict[str, Any]:
    """Read coded notes, code them with the base coder, fit and save a site model."""
    import medcode_nlp
    from medcode_nlp.kb.cache import shared_kb

    notes = read_coded_notes(gold)
    coder = medcode_nlp.load(kb=kb, ner=ner)
    results = code_notes(coder, notes, cache)
    model = fit_site_model(notes, results, seed=seed, kb=shared_kb(kb))
    model.save(out)
    logger.info("saved site model to %s: %s", out, model.meta["training"])
    return dict(model.meta["training"])


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gold", required=True, help="coded notes (JSONL)")
    parser.add_argument("--out", default="site_model", help="output directory")
    parser.add_argument("--kb", default=None, help="knowledge base (default: built-in)")
    parser.add_argument("--ner", default=None, help="mention finder (default: shipped NER)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default=None, help="JSONL cache of the base coder's results")
    args = parser.parse_args(argv)
    return train_site_model(args.gold, args.out, kb=args.kb, ner=args.ner, seed=args.seed,
                            cache=args.cache)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    main()
