"""Candidate-search methods compared by ``benchmarks/linking_benchmark.py``.

Every method is a callable with one interface::

    method(mentions: list[str]) -> list[list[str]]   # per mention: codes, best first

so that further columns (the trained ranker, a lexicon-expanded search) plug in without
touching the evaluation. All methods search the same alias set: the aliases of one code
system of a medcode_nlp knowledge base (:class:`benchmarks.linking_aliases.AliasTable`).

* :class:`CandidateIndexMethod` - the project's exact n-gram search
  (:class:`medcode_nlp.kb.index.CandidateIndex`).
* :class:`TfidfExactMethod` - plain TF-IDF of character 3-grams (``char_wb``, ``min_df=10``,
  scispaCy's vectorizer settings), exact cosine top-k by a sparse product.
* ``ScispacyMethod`` - scispaCy's ``CandidateGenerator`` over a scispaCy ``KnowledgeBase``
  built from the same aliases and an nmslib HNSW index (:mod:`benchmarks.linking_scispacy`).
* :class:`RankerMethod` - candidates of the project's search re-ordered by a trained
  ``RankerModel`` (or anything with its ``score(mention, candidates)`` method).
* :class:`LexiconSearchMethod` - :func:`medcode_nlp.kb.search.search_terms` (search plus
  lexicon expansions), when :mod:`medcode_nlp.nlp.lexicon` is available.

Each method can be restricted to billable codes (``billable_only=True``): non-billable codes
are dropped from a deeper candidate list (see ``pool``/``k`` of each method).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.linking_aliases import TFIDF_SETTINGS, AliasTable, batches, keep_billable


# ------------------------------------------------- project's CandidateIndex
class CandidateIndexMethod:
    """:meth:`CandidateIndex.search` (exact character + word n-gram search).

    With ``billable_only`` the search returns ``pool`` codes and the first ``top_k``
    billable ones are kept.
    """

    def __init__(
        self,
        index: Any,
        billable: frozenset[str] | None = None,
        *,
        top_k: int = 10,
        pool: int = 100,
        batch_size: int = 256,
    ) -> None:
        self.index = index
        self.billable = billable
        self.top_k = top_k
        self.pool = pool if billable is not None else top_k
        self.batch_size = batch_size

    def __call__(self, mentions: list[str]) -> list[list[str]]:
        hits = self.index.search(mentions, top_k=self.pool, batch_size=self.batch_size)
        return [
            keep_billable((h.code for h in found), self.billable, self.top_k) for found in hits
        ]


# ------------------------------------------------------------ exact TF-IDF
class TfidfExactMethod:
    """Cosine similarity of TF-IDF character 3-grams, exact top-k over every alias.

    The vectorizer has scispaCy's settings (``char_wb`` 3-grams, ``min_df``, L2 norm) and is
    fitted on ``table.aliases``; a code scores its best alias. A mention with no known
    3-gram gets no candidates (as in scispaCy).
    """

    def __init__(
        self,
        table: AliasTable,
        *,
        billable_only: bool = False,
        top_k: int = 10,
        batch_size: int = 64,
        min_df: int = TFIDF_SETTINGS["min_df"],
        vectorizer: Any = None,
        matrix: Any = None,
    ) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        if vectorizer is None:
            settings = {**TFIDF_SETTINGS, "min_df": min_df}
            vectorizer = TfidfVectorizer(**settings, dtype=np.float32)
            matrix = vectorizer.fit_transform(table.aliases)
        self.vectorizer = vectorizer
        self.matrix_t = matrix.T.tocsr().astype(np.float32)  # features x aliases
        self.pair_alias, self.pair_code, self.codes = table.pairs(billable_only)
        self.top_k = top_k
        self.batch_size = batch_size

    def __call__(self, mentions: list[str]) -> list[list[str]]:
        results: list[list[str]] = []
        for batch in batches(mentions, self.batch_size):
            queries = self.vectorizer.transform(batch).astype(np.float32)
            scores = (queries @ self.matrix_t).toarray()  # batch x aliases, nearly dense
            pair_scores = scores[:, self.pair_alias]
            for row in pair_scores:
                results.append(self._top_codes(row))
        return results

    def _top_codes(self, row: np.ndarray) -> list[str]:
        if row.size == 0 or float(row.max()) <= 0.0:
            return []
        depth = min(row.size, self.top_k * 8)
        while True:
            picked = np.argpartition(-row, depth - 1)[:depth] if depth < row.size else np.arange(
                row.size
            )
            picked = picked[row[picked] > 0]
            # best first; ties broken by code order (as CandidateIndex does)
            order = np.lexsort((self.pair_code[picked], -row[picked]))
            ranked: list[str] = []
            seen: set[int] = set()
            for p in picked[order]:
                code = int(self.pair_code[p])
                if code not in seen:
                    seen.add(code)
                    ranked.append(self.codes[code])
                    if len(ranked) == self.top_k:
                        return ranked
            if depth >= row.size or len(picked) < depth:
                return ranked
            depth = min(row.size, depth * 4)


# -------------------------------------------------------------- the ranker
class RankerMethod:
    """Project candidates (:class:`CandidateIndexMethod` search) re-ordered by a ranker.

    ``scorer`` is a ``medcode_nlp.ranking.model.RankerModel`` or anything with
    ``score(MentionContext, list[Candidate]) -> probabilities``. Each mention becomes a
    ``MentionContext`` with label ``PROBLEM`` and no surrounding text; its candidates are the
    ``pool`` best codes of the search, built as the ``medcode_linker`` builds them.
    """

    def __init__(
        self,
        scorer: Any,
        index: Any,
        kb: Any,
        *,
        system: str = "icd10cm",
        billable_only: bool = False,
        top_k: int = 10,
        pool: int = 20,
        batch_size: int = 256,
    ) -> None:
        self.scorer = scorer
        self.index = index
        self.kb = kb
        self.system = system
        self.billable_only = billable_only
        self.top_k = top_k
        self.pool = pool
        self.batch_size = batch_size

    def _score_all(self, pools: list[tuple[str, list[Any]]]) -> list[Any]:
        return _score_all_default(self.scorer, pools)

    def __call__(self, mentions: list[str]) -> list[list[str]]:
        from medcode_nlp.schema import Candidate

        hits = self.index.search(mentions, top_k=self.pool, batch_size=self.batch_size)
        alias_info = self.kb.alias_texts(h.alias_id for found in hits for h in found)
        results: list[list[str]] = []
        pools: list[tuple[str, list[Any]]] = []
        for mention, found in zip(mentions, hits, strict=True):
            candidates = []
            for hit in found:
                entry = self.kb.get(self.system, hit.code)
                if entry is None:
                    continue
                alias_text, alias_kind = alias_info.get(hit.alias_id, ("", ""))
                candidates.append(
                    Candidate(code=hit.code, system=self.system, description=entry.description,
                              score=round(float(hit.score), 4), billable=entry.billable,
                              alias=alias_text, alias_kind=alias_kind)
                )
            candidates.sort(key=lambda c: (-c.score, not c.billable, c.code))
            pools.append((mention, candidates))
        probabilities = self._score_all(pools)
        for (_, candidates), scores in zip(pools, probabilities, strict=True):
            if not candidates:
                results.append([])
                continue
            ranked = sorted(
                zip(candidates, scores, strict=True),
                key=lambda cp: (-float(cp[1]), not cp[0].billable, cp[0].code),
            )
            codes = [c.code for c, _ in ranked if c.billable or not self.billable_only]
            results.append(codes[: self.top_k])
        return results


def _score_all_default(scorer: Any, pools: list[tuple[str, list[Any]]]) -> list[Any]:
    """Probabilities per pool; a RankerModel scores every pair in one call."""
    from medcode_nlp.ranking.mention_features import MentionContext, pair_features

    if hasattr(scorer, "ranker") and hasattr(scorer, "prior"):
        blocks = [pair_features(MentionContext(text=m), c, scorer.prior) for m, c in pools if c]
        flat = scorer.score_rows(np.vstack(blocks), standalone=True) if blocks else []
        out, offset = [], 0
        for _, candidates in pools:
            out.append(flat[offset : offset + len(candidates)])
            offset += len(candidates)
        return out
    return [scorer.score(MentionContext(text=m), c) if c else [] for m, c in pools]


def load_ranker(path: str | Path) -> Any:
    """A trained ``RankerModel`` directory (checksums verified, loaded with skops)."""
    from medcode_nlp.ranking.model import RankerModel

    return RankerModel.load(Path(path))


# ---------------------------------------------- search + lexicon (optional)
def lexicon_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("medcode_nlp.nlp.lexicon") is not None


class LexiconSearchMethod:
    """:func:`medcode_nlp.kb.search.search_terms` (each mention and its lexicon expansions)."""

    def __init__(
        self,
        kb_path: Path | None = None,
        *,
        billable_only: bool = False,
        top_k: int = 10,
        pool: int = 100,
        batch_size: int = 256,
    ) -> None:
        self.kb_path = kb_path
        self.billable_only = billable_only
        self.top_k = top_k
        self.pool = pool if billable_only else top_k
        self.batch_size = batch_size

    def __call__(self, mentions: list[str]) -> list[list[str]]:
        from medcode_nlp.kb.search import search_terms

        results: list[list[str]] = []
        for batch in batches(mentions, self.batch_size):
            for rows in search_terms(batch, ["icd10cm"], top_k=self.pool, kb_path=self.kb_path):
                codes = [r["code"] for r in rows if r["billable"] or not self.billable_only]
                results.append(codes[: self.top_k])
        return results
