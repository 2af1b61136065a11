"""scispaCy's candidate generator over a code set: its ``KnowledgeBase``
(:class:`CodeSetKnowledgeBase`), the TF-IDF + nmslib HNSW index (:func:`build_scispacy_index`,
:func:`load_scispacy_generator`) and the linking method (:class:`ScispacyMethod`).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scispacy.linking_utils import Entity, KnowledgeBase

from benchmarks.linking_aliases import TFIDF_SETTINGS, AliasTable, batches, keep_billable

# HNSW graph size: smaller than scispaCy's (see build_scispacy_index)
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 400
HNSW_EF_SEARCH = 200  # scispaCy's default query-time efSearch


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
        for batch in batches(mentions, self.batch_size):
            for candidates in self.generator(batch, self.k):
                ranked = rank_scispacy_candidates(candidates)
                results.append(keep_billable(ranked, self.billable, self.top_k))
        return results
