"""Exact candidate search over code aliases with character and word n-grams.

Every alias is a TF-IDF vector made of two blocks, character 3-grams (within word
boundaries) and whole words, each L2-normalised and weighted so that the dot product of two
vectors is ``char_weight * cos_char + (1 - char_weight) * cos_word``. N-grams found in more
than ``max_df`` of a system's aliases (" of", "unspecified", ...) carry almost no information
and are dropped, which keeps the alias matrix sparse enough for an exact top-k product
(``sparse_dot_topn``) at thousands of queries per second.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.preprocessing import normalize
from sparse_dot_topn import sp_matmul_topn

from medcode_nlp.errors import Errors, InputError
from medcode_nlp.kb.npz_mmap import load_npz
from medcode_nlp.kb.search_cache import SearchCache

logger = logging.getLogger(__name__)

N_FEATURES = 1 << 20
#: Small code lists are never pruned: an n-gram must be in at least this many aliases to go.
MIN_PRUNED_DF = 200


@dataclass(frozen=True, slots=True)
class Hit:
    """One code found for a query: the best-matching alias decides the score."""

    code: str
    score: float
    alias_id: int


class NgramVectorizer:
    """Stateless hashing of texts into the two feature blocks."""

    def __init__(self) -> None:
        self._char = HashingVectorizer(
            analyzer="char_wb",
            ngram_range=(3, 3),
            n_features=N_FEATURES,
            alternate_sign=False,
            norm=None,
            lowercase=True,
            dtype=np.float32,
        )
        self._word = HashingVectorizer(
            analyzer="word",
            token_pattern=r"(?u)\b\w+\b",
            n_features=N_FEATURES,
            alternate_sign=False,
            norm=None,
            lowercase=True,
            dtype=np.float32,
        )

    def counts(self, texts: list[str]) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """Raw n-gram counts of each block."""
        return self._char.transform(texts).tocsr(), self._word.transform(texts).tocsr()


_VECTORIZER = NgramVectorizer()


class CandidateIndex:
    """The alias matrix of one code system and the search over it."""

    def __init__(
        self,
        system: str,
        matrix_t: sp.csr_matrix,
        idf_char: np.ndarray,
        idf_word: np.ndarray,
        alias_ids: np.ndarray,
        alias_code: np.ndarray,
        codes: list[str],
        char_weight: float,
    ) -> None:
        self.system = system
        self.matrix_t = matrix_t  # features x aliases
        self.idf_char = idf_char
        self.idf_word = idf_word
        self.alias_ids = alias_ids
        self.alias_code = alias_code
        self.codes = codes
        self.char_weight = char_weight
        self._recent: SearchCache = SearchCache()

    # ------------------------------------------------------------------ build
    @classmethod
    def build(
        cls,
        kb: object,
        system: str,
        *,
        max_df: float = 0.05,
        char_weight: float = 0.6,
    ) -> CandidateIndex:
        """Index every alias of ``system`` in knowledge base ``kb``."""
        rows = list(kb.iter_aliases(system))  # type: ignore[attr-defined]
        if not rows:
            raise InputError(Errors.E007.format(path=system, detail="no aliases to index"))
        texts = [text for _, _, text, _ in rows]
        codes = sorted({code for _, code, _, _ in rows})
        position = {code: i for i, code in enumerate(codes)}
        char_counts, word_counts = _VECTORIZER.counts(texts)
        idf_char = _idf(char_counts, max_df)
        idf_word = _idf(word_counts, max_df)
        matrix = cls._weight(char_counts, word_counts, idf_char, idf_word, char_weight)
        index = cls(
            system=system,
            matrix_t=matrix.T.tocsr(),
            idf_char=idf_char,
            idf_word=idf_word,
            alias_ids=np.array([r[0] for r in rows], dtype=np.int64),
            alias_code=np.array([position[r[1]] for r in rows], dtype=np.int32),
            codes=codes,
            char_weight=char_weight,
        )
        logger.info("indexed %d aliases of %d %s codes", len(rows), len(codes), system)
        return index

    @staticmethod
    def _weight(
        char_counts: sp.csr_matrix,
        word_counts: sp.csr_matrix,
        idf_char: np.ndarray,
        idf_word: np.ndarray,
        char_weight: float,
    ) -> sp.csr_matrix:
        char = normalize(char_counts.multiply(idf_char).tocsr()) * np.sqrt(char_weight)
        word = normalize(word_counts.multiply(idf_word).tocsr()) * np.sqrt(1 - char_weight)
        return sp.hstack([char, word], format="csr", dtype=np.float32)

    # ----------------------------------------------------------------- search
    def vectorize(self, texts: list[str]) -> sp.csr_matrix:
        """Query vectors in the index's feature space."""
        char_counts, word_counts = _VECTORIZER.counts(texts)
        return self._weight(char_counts, word_counts, self.idf_char, self.idf_word,
                            self.char_weight)

    def search(
        self, texts: list[str], top_k: int = 10, min_score: float = 0.0, batch_size: int = 256
    ) -> list[list[Hit]]:
        """Top ``top_k`` codes for each text, best first (exact, no approximation).

        Each text's hits depend on that text alone (rows of the product are independent), so
        a text searched before with the same ``top_k`` and ``min_score`` is answered from a
        bounded per-index cache, and a text given twice is searched once."""
        found = self._recent.get_many([(text, top_k, min_score) for text in texts])
        todo = list(dict.fromkeys(t for t, hits in zip(texts, found, strict=True)
                                  if hits is None))
        fresh: dict[str, list[Hit]] = {}
        top_aliases = min(max(top_k * 4, 20), self.matrix_t.shape[1])
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            scores = _top_products(self.vectorize(batch), self.matrix_t, top_aliases,
                                   max(min_score, 1e-6))
            for row, text in enumerate(batch):
                lo, hi = scores.indptr[row], scores.indptr[row + 1]
                fresh[text] = self._collapse(scores.indices[lo:hi], scores.data[lo:hi], top_k)
        self._recent.put_many({(text, top_k, min_score): hits for text, hits in fresh.items()})
        return [list(hits if hits is not None else fresh[text])
                for text, hits in zip(texts, found, strict=True)]

    def _collapse(self, alias_rows: np.ndarray, values: np.ndarray, top_k: int) -> list[Hit]:
        best: dict[int, Hit] = {}
        for alias_row, value in zip(alias_rows.tolist(), values.tolist(), strict=True):
            code_position = int(self.alias_code[alias_row])
            if code_position not in best or value > best[code_position].score:
                best[code_position] = Hit(
                    self.codes[code_position], float(value), int(self.alias_ids[alias_row])
                )
        ranked = sorted(best.values(), key=lambda h: (-h.score, h.code))
        return ranked[:top_k]

    # ------------------------------------------------------------ persistence
    def save(self, directory: Path) -> None:
        """Write ``index_<system>.npz`` and ``index_<system>.json``."""
        m = self.matrix_t
        np.savez(
            directory / f"index_{self.system}.npz",
            data=m.data,
            indices=m.indices,
            indptr=m.indptr,
            shape=np.array(m.shape),
            idf_char=self.idf_char,
            idf_word=self.idf_word,
            alias_ids=self.alias_ids,
            alias_code=self.alias_code,
        )
        meta = {"system": self.system, "codes": self.codes, "char_weight": self.char_weight}
        (directory / f"index_{self.system}.json").write_text(json.dumps(meta), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path, system: str) -> CandidateIndex:
        """Read an index written by :meth:`save` (no pickle involved)."""
        npz_path = directory / f"index_{system}.npz"
        json_path = directory / f"index_{system}.json"
        if not npz_path.is_file() or not json_path.is_file():
            raise InputError(Errors.E007.format(path=directory, detail=f"no index for {system}"))
        arrays = load_npz(npz_path)  # memory-mapped: shared by every process, read lazily
        shape = tuple(int(x) for x in arrays["shape"])
        matrix_t = sp.csr_matrix(
            (arrays["data"], arrays["indices"], arrays["indptr"]), shape=shape, copy=False
        )
        meta = json.loads(json_path.read_text(encoding="utf-8"))
        return cls(
            system=system,
            matrix_t=matrix_t,
            idf_char=arrays["idf_char"],
            idf_word=arrays["idf_word"],
            alias_ids=arrays["alias_ids"],
            alias_code=arrays["alias_code"],
            codes=list(meta["codes"]),
            char_weight=float(meta["char_weight"]),
        )


def _top_products(
    queries: sp.csr_matrix, matrix_t: sp.csr_matrix, top_n: int, threshold: float
) -> sp.csr_matrix:
    """Exact top-n of ``queries @ matrix_t`` per row, best first.

    ``sparse_dot_topn``'s public function copies the index arrays of both matrices on every
    call (``astype`` with the default copy); the alias matrix is large, so its sorted kernel is
    called directly with arrays already of the right type. Falls back to the public function.
    """
    if queries.nnz == 0 or matrix_t.nnz == 0:
        return sp.csr_matrix((queries.shape[0], matrix_t.shape[1]), dtype=np.float32)
    try:
        from sparse_dot_topn import _core

        result = _core.sp_matmul_topn_sorted(
            top_n=top_n, nrows=queries.shape[0], ncols=matrix_t.shape[1], threshold=threshold,
            density=1.0, A_data=queries.data,
            A_indptr=queries.indptr.astype(np.int32, copy=False),
            A_indices=queries.indices.astype(np.int32, copy=False),
            B_data=matrix_t.data,
            B_indptr=matrix_t.indptr.astype(np.int32, copy=False),
            B_indices=matrix_t.indices.astype(np.int32, copy=False),
        )
        return sp.csr_matrix(result, shape=(queries.shape[0], matrix_t.shape[1]))
    except (ImportError, AttributeError, TypeError):  # private API changed: use the public one
        return sp_matmul_topn(queries, matrix_t, top_n=top_n, threshold=threshold,
                              sort=True).tocsr()


def _idf(counts: sp.csr_matrix, max_df: float) -> np.ndarray:
    """Smoothed IDF per hashed feature; features in more than ``max_df`` of texts (and in
    more than ``MIN_PRUNED_DF`` texts) get 0.

    Features never seen in the aliases keep the highest weight, so that unknown words
    still lower a query's similarity to every alias.
    """
    n_docs = counts.shape[0]
    df = np.bincount(counts.indices, minlength=counts.shape[1]).astype(np.float64)
    idf = np.log((1.0 + n_docs) / (1.0 + df)) + 1.0
    idf[df > max(max_df * n_docs, MIN_PRUNED_DF)] = 0.0
    return idf.astype(np.float32)
