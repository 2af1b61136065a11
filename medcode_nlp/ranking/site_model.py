"""A site model: per-code classifiers learnt from a site's own coded notes (inference side).

Each note becomes a feature dict (:mod:`medcode_nlp.ranking.site_features`); the base coder's
features are weighted up (``meta["weights"]``) so the regularisation shrinks them less than
the many n-grams. Per code of the site's label space, an L2 and an L1 logistic regression
(one-vs-rest) give probabilities that are averaged and blended with the base coder's
decisions (``meta["base_weight"]``: 1 for a code on its main list); a code is kept at or above
its threshold chosen in the training folds (per code for codes of enough notes, else global;
the top code is kept down to a lower floor when none passes). Every kept code carries a span
of the note: the base coder's evidence for it, else the note span of its strongest positive
feature. Codes of the label space are decided by the site model (the base coder's decision is
kept too for "union" codes; "deferred" ones are left to it); the base coder's other codes
pass through as the site's notes chose, per code system and per code; a note left with no
code gets the base coder's top code when the site's notes chose that ("fallback").
Training: :mod:`medcode_nlp.training.site_model`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medcode_nlp.errors import Errors, InputError
from medcode_nlp.integrity import verify_directory, write_checksums
from medcode_nlp.ranking.site_features import (
    NoteFeatures,
    Token,
    _key,
    as_int32,
    base_decisions,
    note_features,
    note_tokens,
    weighted,
)
from medcode_nlp.schema import CodeSuggestion, CodingResult, Evidence, ExcludedCode

__all__ = ["NoteFeatures", "SiteCode", "SiteModel", "Token", "as_int32", "base_decisions",
           "load_site_model", "note_features", "note_tokens", "weighted"]

VECTORIZER_FILE = "site_vectorizer.skops"
CLASSIFIER_FILE = "site_classifier.skops"
META_FILE = "site_model.json"
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.")

@dataclass(slots=True)
class SiteCode:
    """A code the site model keeps for a note, with its probability and evidence."""

    system: str
    code: str
    probability: float
    evidence: list[Evidence]


class SiteModel:
    """Per-code classifiers over :func:`note_features`, with the thresholds chosen in training."""

    def __init__(self, vectorizer: Any, classifier: Any, meta: dict[str, Any]) -> None:
        self.vectorizer = vectorizer
        #: One or more one-vs-rest classifiers (an ensemble whose probabilities are averaged).
        self.classifier = classifier
        self.members: list[Any] = list(classifier) if isinstance(classifier, list) \
            else [classifier]
        self.meta = meta
        self.weights: dict[str, float] = dict(meta.get("weights") or {})
        self.labels: list[tuple[str, str]] = [(s, c) for s, c in meta["labels"]]
        self._deferred = {_key(s, c) for s, c in meta.get("deferred", [])}
        self._index = {_key(s, c): i for i, (s, c) in enumerate(self.labels)
                       if _key(s, c) not in self._deferred}
        #: Label codes the base coder's decisions are kept for, beside the site model's.
        self._union = {_key(s, c) for s, c in meta.get("union", [])}

    @property
    def version(self) -> str:
        return str(self.meta.get("version", "site"))

    def probabilities(self, features: list[NoteFeatures]) -> np.ndarray:
        """Probability of each label code (columns in ``labels`` order) per note."""
        specs = self.meta.get("members") or [{} for _ in self.members]
        matrices: dict[str, Any] = {}
        outputs = []
        for member, spec in zip(self.members, specs, strict=False):
            weights = spec.get("weights", self.weights)
            key = json.dumps(weights, sort_keys=True)
            if key not in matrices:
                matrices[key] = as_int32(self.vectorizer.transform(
                    [weighted(f.values, weights) for f in features]))
            outputs.append(member.predict_proba(matrices[key]))
        probs: np.ndarray = np.mean(outputs, axis=0)
        base_weight = float(self.meta.get("base_weight", 0.0))
        if base_weight:
            labels = [_key(s, c) for s, c in self.labels]
            probs = (1 - base_weight) * probs + base_weight * base_decisions(features, labels)
        return probs

    def decide(self, probs: np.ndarray) -> list[int]:
        """Indices of the label codes kept for one note's probabilities."""
        floor = float(self.meta["floor"])
        threshold = np.asarray(self.meta.get("thresholds") or self.meta["threshold"])
        decided = np.array([_key(s, c) in self._index for s, c in self.labels], dtype=bool)
        probs = np.where(decided, probs, 0.0)  # deferred codes: the base coder decides
        kept = [int(i) for i in np.flatnonzero((probs >= threshold) & decided)]
        if not kept and probs.size and probs.max() >= floor and decided.any():
            kept = [int(probs.argmax())]
        return sorted(kept, key=lambda i: -probs[i])

    def _evidence(self, label: int, text: str, features: NoteFeatures,
                  result: CodingResult) -> list[Evidence]:
        system, code = self.labels[label]
        key = _key(system, code)
        for suggestion in result.codes:
            if _key(suggestion.system, suggestion.code) == key and suggestion.evidence:
                return list(suggestion.evidence)
        for entity in result.entities:
            if entity.assertion == "present" and any(
                    _key(c.system, c.code) == key for c in entity.candidates[:3]):
                return [Evidence(entity.start, entity.end, entity.text)]
        estimators = [m.estimators_[label] for m in self.members
                      if hasattr(m.estimators_[label], "coef_")]
        if not estimators:
            return []
        weights = np.sum([e.coef_.ravel() for e in estimators], axis=0)
        values = weighted(features.values, self.weights)
        vocabulary = self.vectorizer.vocabulary_
        best, best_span = 0.0, None
        for name, span in features.spans.items():
            column = vocabulary.get(name)
            if column is not None:
                contribution = float(weights[column]) * values[name]
                if contribution > best:
                    best, best_span = contribution, span
        if best_span is None:
            return []
        return [Evidence(best_span[0], best_span[1], text[best_span[0]:best_span[1]])]

    def predict(self, text: str, result: CodingResult) -> list[SiteCode]:
        """The label codes kept for one note, each with its evidence (empty if none found)."""
        features = note_features(text, result, pairs=bool(self.meta.get("pairs")),
                                 backward=bool(self.meta.get("backward")))
        probs = self.probabilities([features])[0]
        kept: list[SiteCode] = []
        for label in self.decide(probs):
            system, code = self.labels[label]
            evidence = self._evidence(label, text, features, result)
            kept.append(SiteCode(system, code, float(probs[label]), evidence))
        return kept

    def apply(self, text: str, result: CodingResult) -> CodingResult:
        """``result`` with the label-space codes decided by the site model (a kept code with no
        supporting span goes to ``consider``, not ``codes``)."""
        site = self.predict(text, result)
        passthrough: dict[str, bool] = self.meta.get("passthrough", {})
        overrides: dict[str, bool] = self.meta.get("passthrough_codes", {})
        descriptions: dict[str, list[Any]] = self.meta.get("descriptions", {})
        codes: list[CodeSuggestion] = []
        excluded = list(result.excluded)
        kept = {_key(s.system, s.code) for s in site}
        for suggestion in result.codes:
            key = _key(suggestion.system, suggestion.code)
            if key in self._union and key not in kept:
                codes.append(suggestion)  # the base coder's decision, trusted for this code
                continue
            if key in self._index:
                continue  # the site model decides these
            if (overrides.get(key, passthrough.get(suggestion.system, True))
                    or key in self._deferred):
                codes.append(suggestion)
            else:
                excluded.append(ExcludedCode(
                    suggestion.code, suggestion.system,
                    "site model: this site's coded notes do not use these extra codes",
                    list(suggestion.evidence)))
        for suggestion in result.codes:
            key = _key(suggestion.system, suggestion.code)
            if key in self._index and key not in kept and key not in self._union:
                excluded.append(ExcludedCode(suggestion.code, suggestion.system,
                                             "site model: below this site's threshold",
                                             list(suggestion.evidence)))
        consider = [c for c in result.consider if _key(c.system, c.code) not in self._index]
        for found in site:
            description, billable = descriptions.get(_key(found.system, found.code), ["", True])
            suggestion = CodeSuggestion(
                code=found.code, system=found.system, description=str(description),
                score=round(found.probability, 4), billable=bool(billable),
                evidence=found.evidence, prompts=[f"site model {self.version}"])
            if found.evidence:
                codes.append(suggestion)
            else:  # evidence first: no span of the note, not in the main list
                suggestion.prompts.append("no span of the note supports it; check the note")
                consider.append(suggestion)
        if not codes and result.codes and self.meta.get("fallback"):
            top = max(result.codes, key=lambda c: c.score)  # none kept: the base coder's top
            codes.append(top)
            excluded = [e for e in excluded if (e.system, e.code) != (top.system, top.code)]
        codes.sort(key=lambda c: -c.score)
        unique: dict[str, CodeSuggestion] = {}  # one suggestion per code: the best-scored
        for suggestion in codes:
            unique.setdefault(_key(suggestion.system, suggestion.code), suggestion)
        codes = list(unique.values())
        versions = {**result.versions, "site_model": self.version}
        return CodingResult(entities=result.entities, codes=codes, excluded=excluded,
                            consider=consider, versions=versions,
                            schema_version=result.schema_version)

    # ------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> Path:
        """Write the estimators (skops), the rest as JSON, and the checksum manifest."""
        import skops.io as sio

        target = Path(directory)
        target.mkdir(parents=True, exist_ok=True)
        sio.dump(self.vectorizer, target / VECTORIZER_FILE, compression=8)
        sio.dump(self.classifier, target / CLASSIFIER_FILE, compression=8)
        (target / META_FILE).write_text(json.dumps(self.meta, indent=1), encoding="utf-8")
        write_checksums(target)
        return target

    @classmethod
    def load(cls, directory: str | Path) -> SiteModel:
        """Verify the checksum manifest, then load with skops trusting only known types."""
        target = Path(directory)
        if not (target / META_FILE).is_file():
            raise InputError(Errors.E012.format(path=target, detail=f"no {META_FILE}"))
        verify_directory(target)
        meta = json.loads((target / META_FILE).read_text(encoding="utf-8"))
        return cls(_load_trusted(target / VECTORIZER_FILE),
                   _load_trusted(target / CLASSIFIER_FILE), meta)


def _load_trusted(path: Path) -> Any:
    import skops.io as sio

    if not path.is_file():
        raise InputError(Errors.E012.format(path=path.parent, detail=f"no {path.name}"))
    untrusted = sio.get_untrusted_types(file=path)
    unexpected = [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES)]
    if unexpected:
        raise InputError(Errors.E012.format(path=path, detail=f"unexpected types {unexpected}"))
    return sio.load(path, trusted=untrusted)


def load_site_model(path: str | Path | None) -> SiteModel | None:
    """The site model at ``path`` (None -> None)."""
    return None if path is None else SiteModel.load(path)
