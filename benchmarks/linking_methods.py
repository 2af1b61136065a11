"""Candidate-search methods compared by ``benchmarks/linking_benchmark.py``.

Every method is a callable with one interface::

    method(mentions: list[str]) -> list[list[str]]   # per mention: codes, best first

so that further columns (the trained ranker, a lexicon-expanded search) plug in without
touching the evaluation. All methods search the same alias set: the aliases of one code
system of a medcode_nlp knowledge base (:class:`AliasTable`).

* :class:`CandidateIndexMethod` - the project's exact n-gram search
  (:class:`medcode_nlp.kb.index.CandidateIndex`).
* :class:`TfidfExactMethod` - plain TF-IDF of character 3-grams (``char_wb``, ``min_df=10``,
  scispaCy's vectorizer settings), exact cosine top-k by a sparse product.
* :class:`ScispacyMethod` - scispaCy's ``CandidateGenerator`` over a scispaCy
  ``KnowledgeBase`` built from the same aliases (:class:`CodeSetKnowledgeBase`) and an nmslib
  HNSW index built by :func:`build_scispacy_index`.
* :class:`RankerMethod` - candidates of the project's search re-ordered by a trained
  ``RankerModel`` (or anything with its ``score(mention, candidates)`` method).
* :class:`LexiconSearchMethod` - :func:`medcode_nlp.kb.search.search_terms` (search plus
  lexicon expansions), when :mod:`medcode_nlp.nlp.lexicon` is available.

Each method can be restricted to billable codes (``billable_only=True``): non-billable codes
are dropped from a deeper candidate list (see ``pool``/``k`` of each method).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scispacy.linking_utils import Entity, KnowledgeBase

logger = logging.getLogger(__name__)

LinkingMethod = Callable[[list[str]], list[list[str]]]

# scispaCy's create_tfidf_ann_index settings, except the HNSW graph size (see build_scispacy_index)
TFIDF_SETTINGS: dict[str, Any] = {"analyzer": "char_wb", "ngram_range": (3, 3), "min_df": 10}
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 400
HNSW_EF_SEARCH = 200  # scispaCy's default query-time efSearch


# ------------------------------------------------------------------ alias set
@dataclass(frozen=True)
class AliasTable:
    """The unique alias strings of one code system and the codes each one names.

    ``aliases`` is sorted (deterministic order for every index built from it); an alias
    string shared by several codes (``"Other chorioretinal inflammations"``) is one entry
    with several codes, as in scispaCy's ``alias_to_cuis``.
    """

    aliases: list[str]
    alias_codes: list[tuple[str, ...]]
    descriptions: dict[str, str]
    billable: frozenset[str]

    @classmethod
    def from_rows(
        cls,
        rows: Iterable[tuple[int, str, str, str]],
        billable: Iterable[str],
        descriptions: dict[str, str] | None = None,
    ) -> AliasTable:
        """From ``(alias_id, code, text, kind)`` rows (``CodeKnowledgeBase.iter_aliases``).

        Descriptions default to the ``description`` aliases; a code without one uses its
        first alias.
        """
        codes_of: dict[str, set[str]] = defaultdict(set)
        found: dict[str, str] = {}
        first: dict[str, str] = {}
        for _, code, text, kind in rows:
            text = text.strip()
            if not text:
                continue
            codes_of[text].add(code)
            first.setdefault(code, text)
            if kind == "description":
                found.setdefault(code, text)
        merged = {**first, **found, **(descriptions or {})}
        for code, text in merged.items():  # a canonical name is an alias too (as in scispaCy)
            codes_of[text].add(code)
        aliases = sorted(codes_of)
        return cls(
            aliases=aliases,
            alias_codes=[tuple(sorted(codes_of[a])) for a in aliases],
            descriptions=merged,
            billable=frozenset(billable),
        )

    @classmethod
    def from_kb(cls, kb: Any, system: str = "icd10cm") -> AliasTable:
        """Every alias of ``system`` in a :class:`medcode_nlp.kb.store.CodeKnowledgeBase`."""
        return cls.from_rows(kb.iter_aliases(system), kb.codes(system, billable_only=True))

    @property
    def codes(self) -> list[str]:
        return sorted(self.descriptions)

    def signature(self) -> str:
        """SHA-256 of the alias -> codes mapping (names cached index builds)."""
        digest = hashlib.sha256()
        for alias, codes in zip(self.aliases, self.alias_codes, strict=True):
            digest.update(f"{alias}\t{','.join(codes)}\n".encode())
        return digest.hexdigest()

    def pairs(self, billable_only: bool = False) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(alias position, code position) of every alias-code pair, and the sorted codes."""
        codes = self.codes
        position = {code: i for i, code in enumerate(codes)}
        alias_pos: list[int] = []
        code_pos: list[int] = []
        for i, alias_codes in enumerate(self.alias_codes):
            for code in alias_codes:
                if billable_only and code not in self.billable:
                    continue
                alias_pos.append(i)
                code_pos.append(position[code])
        return np.array(alias_pos, dtype=np.int64), np.array(code_pos, dtype=np.int64), codes


def _keep_billable(codes: Iterable[str], billable: frozenset[str] | None, top_k: int) -> list[str]:
    kept = [c for c in codes if billable is None or c in billable]
    return kept[:top_k]


# ------------------------------------------------- 1. project's CandidateIndex
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
            _keep_billable((h.code for h in found), self.billable, self.top_k) for found in hits
        ]


# --------------------------------------------------------- 2. exact TF-IDF
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
        for start in range(0, len(mentions), self.batch_size):
            batch = mentions[start : start + self.batch_size]
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


# ------------------------------------------------------------- 3. scispaCy
class CodeSetKnowledgeBase(KnowledgeBase):
    """scispaCy ``KnowledgeBase``: ``concept_id`` = code, canonical name = its description,
    aliases = every alias of the code in the :class:`AliasTable`.

    ``alias_to_cuis`` then holds exactly ``table.aliases`` (descriptions are aliases too).
    """

    def __init__(self, table: AliasTable) -> None:
        aliases_of: dict[str, list[str]] = defaultdict(list)
        for alias, codes in zip(table.aliases, table.alias_codes, strict=True):
            for code in codes:
                aliases_of[code].append(alias)
        entities = [
            Entity(
                concept_id=code,
                canonical_name=table.descriptions[code],
                aliases=aliases_of[code],
                types=["billable" if code in table.billable else "header"],
            )
            for code in table.codes
        ]
        super().__init__(entities)


def scispacy_cache_dir(
    cache_root: Path,
    table: AliasTable,
    m: int = HNSW_M,
    ef_construction: int = HNSW_EF_CONSTRUCTION,
    min_df: int = TFIDF_SETTINGS["min_df"],
) -> Path:
    """Directory of a cached scispaCy index for this alias set and these settings."""
    tag = f"scispacy-{table.signature()[:16]}-M{m}-efc{ef_construction}-mindf{min_df}"
    return Path(cache_root) / tag


def build_scispacy_index(
    kb: Any,
    out_dir: Path,
    *,
    m: int = HNSW_M,
    ef_construction: int = HNSW_EF_CONSTRUCTION,
    threads: int | None = None,
    min_df: int = TFIDF_SETTINGS["min_df"],
) -> dict[str, Any]:
    """What ``scispacy.candidate_generation.create_tfidf_ann_index`` does, in float32.

    Differences from scispaCy 0.6.2 (which refuses to run on scipy >= 1.11 because it stores
    the alias vectors as float16 sparse matrices): the vectors are saved as float32; the
    HNSW graph uses ``M=32, efConstruction=400`` (scispaCy: 100 and 2000, ~7x slower to
    build on 2 cores) with ``post=0`` as in scispaCy; aliases are indexed in sorted order.
    The files are the ones scispaCy's ``LinkerPaths.from_directory`` expects, so
    :func:`load_scispacy_generator` loads them with scispaCy's own loader. Returns build
    statistics. The directory is written under a temporary name and renamed when complete.
    """
    import joblib
    import nmslib
    import scipy.sparse
    from scispacy.candidate_generation import LinkerPaths
    from sklearn.feature_extraction.text import TfidfVectorizer

    out_dir = Path(out_dir)
    staging = out_dir.parent / f".{out_dir.name}.building-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    paths = LinkerPaths.from_directory(staging)

    concept_aliases = sorted(kb.alias_to_cuis)
    started = time.perf_counter()
    vectorizer = TfidfVectorizer(**{**TFIDF_SETTINGS, "min_df": min_df}, dtype=np.float32)
    vectors = vectorizer.fit_transform(concept_aliases).astype(np.float32)
    fit_seconds = time.perf_counter() - started
    non_empty = np.asarray(vectors.sum(axis=1)).ravel() != 0  # nmslib crashes on empty rows
    concept_aliases = [a for a, keep in zip(concept_aliases, non_empty, strict=True) if keep]
    vectors = vectors[non_empty]

    joblib.dump(vectorizer, paths.tfidf_vectorizer)
    Path(paths.concept_aliases_list).write_text(json.dumps(concept_aliases), encoding="utf-8")
    scipy.sparse.save_npz(paths.tfidf_vectors, vectors)  # float32 (scispaCy: float16)

    started = time.perf_counter()
    index = nmslib.init(
        method="hnsw", space="cosinesimil_sparse", data_type=nmslib.DataType.SPARSE_VECTOR
    )
    index.addDataPointBatch(vectors)
    index.createIndex(
        {
            "M": m,
            "indexThreadQty": threads or os.cpu_count() or 1,
            "efConstruction": ef_construction,
            "post": 0,
        },
        print_progress=False,
    )
    index.saveIndex(paths.ann_index)
    hnsw_seconds = time.perf_counter() - started
    stats = {
        "aliases_indexed": len(concept_aliases),
        "aliases_dropped_empty": int((~non_empty).sum()),
        "vocabulary": len(vectorizer.vocabulary_),
        "tfidf_fit_seconds": round(fit_seconds, 2),
        "hnsw_build_seconds": round(hnsw_seconds, 2),
        "M": m,
        "efConstruction": ef_construction,
        "post": 0,
        "min_df": min_df,
        "dtype": "float32",
    }
    (staging / "build.json").write_text(json.dumps(stats, indent=1), encoding="utf-8")
    shutil.rmtree(out_dir, ignore_errors=True)
    staging.rename(out_dir)
    return stats


class ThreadLimitedIndex:
    """Proxy of an nmslib index whose batch queries use a fixed number of threads.

    scispaCy calls ``ann_index.knnQueryBatch(vectors, k=k)``, which uses every core; the
    benchmark wraps the index to report single-thread speed as well.
    """

    def __init__(self, index: Any, num_threads: int) -> None:
        self._index = index
        self.num_threads = num_threads

    def knnQueryBatch(self, queries: Any, k: int = 10, num_threads: int = 0) -> Any:  # noqa: N802
        return self._index.knnQueryBatch(queries, k=k, num_threads=self.num_threads)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._index, name)


def load_scispacy_generator(
    kb: Any, index_dir: Path, *, ef_search: int = HNSW_EF_SEARCH, num_threads: int | None = None
) -> Any:
    """scispaCy ``CandidateGenerator`` over ``kb`` and the index in ``index_dir``.

    All four constructor arguments are given (leaving any out makes scispaCy download its
    UMLS index). ``num_threads`` pins the threads of the nmslib batch query (None = all).
    """
    from scispacy.candidate_generation import CandidateGenerator, LinkerPaths

    concept_aliases, vectorizer, ann_index = LinkerPaths.from_directory(index_dir).load(
        ef_search=ef_search
    )
    if num_threads is not None:
        ann_index = ThreadLimitedIndex(ann_index, num_threads)
    return CandidateGenerator(
        ann_index=ann_index,
        tfidf_vectorizer=vectorizer,
        ann_concept_aliases_list=concept_aliases,
        kb=kb,
    )


def rank_scispacy_candidates(candidates: Sequence[Any]) -> list[str]:
    """Codes of scispaCy ``MentionCandidate``s by best similarity (ties: concept id order).

    ``CandidateGenerator`` returns candidates sorted by concept id, not by score.
    """
    ordered = sorted(candidates, key=lambda c: (-max(c.similarities), c.concept_id))
    return [c.concept_id for c in ordered]


class ScispacyMethod:
    """scispaCy ``CandidateGenerator(mentions, k)``, candidates sorted by similarity.

    ``k`` is the number of nearest aliases asked for (the codes found are fewer: aliases are
    canonicalised to codes); with ``billable_only`` non-billable codes are dropped from them.
    """

    def __init__(
        self,
        generator: Any,
        billable: frozenset[str] | None = None,
        *,
        k: int = 100,
        top_k: int = 10,
        batch_size: int = 64,
    ) -> None:
        self.generator = generator
        self.billable = billable
        self.k = k
        self.top_k = top_k
        self.batch_size = batch_size

    def __call__(self, mentions: list[str]) -> list[list[str]]:
        results: list[list[str]] = []
        for start in range(0, len(mentions), self.batch_size):
            batch = mentions[start : start + self.batch_size]
            for candidates in self.generator(batch, self.k):
                ranked = rank_scispacy_candidates(candidates)
                results.append(_keep_billable(ranked, self.billable, self.top_k))
        return results


# ------------------------------------------------------------ 4. the ranker
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
        import numpy as np

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


# ------------------------------------------------- 5. search + lexicon (optional)
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
        for start in range(0, len(mentions), self.batch_size):
            batch = mentions[start : start + self.batch_size]
            for rows in search_terms(batch, ["icd10cm"], top_k=self.pool, kb_path=self.kb_path):
                codes = [r["code"] for r in rows if r["billable"] or not self.billable_only]
                results.append(codes[: self.top_k])
        return results
