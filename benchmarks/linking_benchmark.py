"""Linking benchmark on held-out ICD-10-CM Alphabetic Index terms (issue 2 item 7, issue 5 item 3).

Mentions are built from terms of the ICD-10-CM Alphabetic Index (CDC, FY2025 CSV export)
whose code is a billable ICD-10-CM FY2026 code of the knowledge base and whose text is not
an alias of the knowledge base searched, so no method can find them by an exact alias match.
Each method returns ranked codes for each mention (``benchmarks/linking_methods.py``);
accuracy@k counts a mention when the index term's exact code is among the first k.

    python -m benchmarks.linking_benchmark [--index-csv PATH] [--ranker models/ranker]
        [--cache-dir ~/.cache/medcode_nlp/bench] [--previous OLD_RESULTS.json]
        [--kb DIR [--reselect] [--n 2000] [--seed 0]]

Knowledge base: by default the one ``medcode_nlp.load()`` uses (the user cache, built from
the data shipped in the package) with only the held-out terms taken out. That knowledge base
holds the Alphabetic Index as aliases, so each held-out term would otherwise find itself:
the ``index`` aliases of ICD-10-CM whose comparison form (:func:`alias_key`) is the mention
text, the printed entry or the row term of a held-out row are deleted from a copy of it,
whose ICD-10-CM candidate index is then rebuilt (cached in ``--cache-dir``). Everything else
(the other index, Neoplasm and Drug table aliases) stays. The unmodified default knowledge
base is measured too, for the two project methods: there the held-out terms are aliases, so
that figure is an exact-lookup check, not a linking result. ``--kb DIR`` searches DIR as it
is (no terms taken out).

The held-out rows are kept in ``benchmarks/results/linking_heldout_ids.json`` as RowIDs of
the CSV (never their text), so that ranker training can leave exactly these rows out; the
file is reused on later runs. ``--reselect`` draws a new set, only with ``--kb`` a knowledge
base without index aliases (in one with them no index term is eligible). Results go to
``benchmarks/results/linking_benchmark.json`` and to the "Linking" section of
``docs/benchmarks.md``; ``--previous`` puts the accuracies of an earlier results file beside
them. No term text is printed or saved.

Mention text (see :func:`mention_text`): an index entry is the path from its main term
(level 0) to the row, e.g. main term "Anemia" > "deficiency" > "iron". Parenthesised text
and the markers NEC/NOS are removed; one-word comma variants of a term that repeat its
stem ("Abdomen, abdominal") are dropped, other comma parts are qualifiers put in front
("Abruption, placenta" -> "placenta abruption") or, when they start with a connecting word,
put after the main term. Subterms are modifiers put in front of the
main term, the deepest first ("iron deficiency anemia"), until the first subterm that starts
with a connecting word (with, without, due to, in, following, ...): it and every deeper
subterm follow the main term in index order ("anemia in chronic kidney disease").
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import platform
import random
import re
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import linking_methods as lm
from benchmarks.common import RESULTS, ROOT, shared_data
from medcode_nlp.codesets.index_terms import (
    IndexRow,
    alias_key,
    full_term,
    mention_text,
    read_index_rows,
)
from medcode_nlp.integrity import sha256_file

DEFAULT_INDEX_CSV = (
    shared_data()
    / "icd10cm-2025"
    / "ICD10CM_2025_Index.csv"
)
DEFAULT_HELDOUT = RESULTS / "linking_heldout_ids.json"
DEFAULT_OUT = RESULTS / "linking_benchmark.json"
DEFAULT_DOCS = ROOT / "docs" / "benchmarks.md"
DEFAULT_CACHE = (
    Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "medcode_nlp" / "bench"
)
SECTION = "## Linking (ICD-10-CM index terms)"
KS = (1, 5)
logger = logging.getLogger("linking_benchmark")

_BILLABLE_FORM = re.compile(r"[A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?")


# -------------------------------------------------------------- selection
@dataclass(frozen=True, slots=True)
class Mention:
    row_id: int
    text: str
    code: str
    level: int


def eligible_mentions(
    rows: Iterable[IndexRow],
    alias_keys: set[str],
    billable: set[str] | frozenset[str],
    stats: Counter[str] | None = None,
) -> list[Mention]:
    """Index rows usable as held-out mentions, in RowID order.

    Kept: the row has one code in plain form, billable in the knowledge base; the mention
    text, the printed index entry and the row's own term are none of them an alias of the
    knowledge base (compared with :func:`alias_key`). Mention texts built from several rows
    are kept once if all point to the same code and dropped if they disagree (ambiguous).
    """
    stats = stats if stats is not None else Counter()
    by_text: dict[str, list[Mention]] = {}
    for row in rows:
        stats["rows"] += 1
        if not row.code:
            stats["no_code"] += 1
            continue
        if not _BILLABLE_FORM.fullmatch(row.code) or row.code not in billable:
            stats["code_not_billable_fy2026"] += 1
            continue
        text = mention_text(row.path)
        key = alias_key(text)
        if not key:
            stats["empty_text"] += 1
            continue
        if {key, alias_key(full_term(row.path)), alias_key(row.term)} & alias_keys:
            stats["text_is_kb_alias"] += 1
            continue
        by_text.setdefault(key, []).append(Mention(row.row_id, text, row.code, row.level))
    kept = []
    for found in by_text.values():
        if len({m.code for m in found}) > 1:
            stats["ambiguous_text"] += len(found)
            continue
        stats["duplicate_text"] += len(found) - 1
        kept.append(found[0])
    stats["eligible"] = len(kept)
    return sorted(kept, key=lambda m: m.row_id)


def select_heldout(eligible: list[Mention], n: int, seed: int) -> list[Mention]:
    """``n`` mentions drawn uniformly with ``random.Random(seed)``, in RowID order."""
    if n > len(eligible):
        raise SystemExit(f"only {len(eligible)} eligible index terms, {n} requested")
    chosen = random.Random(seed).sample(eligible, n)
    return sorted(chosen, key=lambda m: m.row_id)


# ------------------------------------------- default knowledge base minus held-out terms
def heldout_keys(rows: Iterable[IndexRow], row_ids: Iterable[int]) -> set[str]:
    """Comparison forms of the held-out rows: mention text, printed entry and row term, the
    three texts :func:`eligible_mentions` checks against the knowledge-base aliases."""
    wanted = set(row_ids)
    keys: set[str] = set()
    for row in rows:
        if row.row_id in wanted:
            keys |= {alias_key(mention_text(row.path)), alias_key(full_term(row.path)),
                     alias_key(row.term)}
    keys.discard("")
    return keys


def leave_out_kb_dir(cache_dir: Path, source: Path, row_ids: list[int]) -> Path:
    """Cache directory of ``source`` without the held-out terms (named by both)."""
    digest = hashlib.sha256(json.dumps(sorted(row_ids)).encode()).hexdigest()[:12]
    return cache_dir / f"{source.name}-minus-linking-heldout-{digest}"


def build_leave_out_kb(source: Path, target: Path, keys: set[str],
                       system: str = "icd10cm") -> dict[str, Any]:
    """Copy the knowledge base at ``source`` to ``target`` without the ``index`` aliases of
    ``system`` whose :func:`alias_key` is in ``keys``; rebuild that system's candidate index.

    Built in a staging directory renamed into place; returns what was removed (also stored
    in the manifest under ``linking_benchmark_left_out``).
    """
    import sqlite3

    from medcode_nlp.kb.build import KnowledgeBaseWriter
    from medcode_nlp.kb.store import DB_FILE

    staging = target.parent / f".{target.name}.building-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging)
    with sqlite3.connect(staging / DB_FILE) as db:
        found = db.execute("SELECT id, text FROM aliases WHERE system = ? AND kind = 'index'",
                           (system,)).fetchall()
        drop = [(alias_id,) for alias_id, text in found if alias_key(text) in keys]
        db.executemany("DELETE FROM aliases WHERE id = ?", drop)
    writer = KnowledgeBaseWriter(staging)
    info = {"source": str(source), "system": system, "kind": "index",
            "held_out_keys": len(keys), "aliases_removed": len(drop)}
    writer.manifest["linking_benchmark_left_out"] = info
    writer.changed.add(system)
    writer.finish().close()
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return info


def default_kb_minus_heldout(args: argparse.Namespace) -> tuple[Any, Any, dict[str, Any]]:
    """(default knowledge base, the same without the held-out terms, what was left out)."""
    from medcode_nlp.kb.store import MANIFEST_FILE, load_kb

    default = load_kb(None)
    if args.reselect or not args.heldout.is_file():
        raise SystemExit("the default knowledge base holds the Index as aliases, so no index "
                         "term is eligible there: draw held-out rows with --kb DIR, a "
                         "knowledge base without index aliases")
    row_ids = json.loads(args.heldout.read_text(encoding="utf-8"))["row_ids"]
    target = leave_out_kb_dir(args.cache_dir, default.path, row_ids)
    if not (target / MANIFEST_FILE).is_file():
        logger.info("building the default knowledge base minus the held-out terms in %s "
                    "(once)", target)
        target.parent.mkdir(parents=True, exist_ok=True)
        keys = heldout_keys(read_index_rows(args.index_csv), row_ids)
        build_leave_out_kb(default.path, target, keys)
    kb = load_kb(target)
    return default, kb, dict(kb.manifest["linking_benchmark_left_out"])


# ------------------------------------------------------------- evaluation
def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion."""
    if n == 0:
        return (0.0, 0.0)
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def accuracy_report(predictions: list[list[str]], gold: list[str]) -> dict[str, Any]:
    """accuracy@k (exact code among the first k) with 95% intervals, and related counts."""
    n = len(gold)
    report: dict[str, Any] = {"n": n}
    for k in KS:
        hits = sum(g in p[:k] for p, g in zip(predictions, gold, strict=True))
        low, high = wilson(hits, n)
        report[f"acc@{k}"] = round(hits / n, 4) if n else 0.0
        report[f"acc@{k}_ci95"] = [round(low, 4), round(high, 4)]
    category = sum(bool(p) and p[0][:3] == g[:3] for p, g in zip(predictions, gold, strict=True))
    report["category@1"] = round(category / n, 4) if n else 0.0
    report["no_candidates"] = sum(not p for p in predictions)
    return report


def timed_run(
    method: Callable[[list[str]], list[list[str]]], mentions: list[str], warmup: int = 16
) -> tuple[list[list[str]], float]:
    """Predictions and wall-clock seconds over all mentions (after a small warm-up call)."""
    method(mentions[:warmup])
    started = time.perf_counter()
    predictions = method(mentions)
    return predictions, time.perf_counter() - started


# ---------------------------------------------------------------- reporting
def markdown_section(results: dict[str, Any]) -> str:
    """The "Linking" section of docs/benchmarks.md."""
    s = results["settings"]
    sel = results["selection"]
    left_out = s.get("left_out")
    previous = results.get("previous")
    if left_out:
        searched = (
            "Every method searches the default knowledge base (the one `medcode_nlp.load()` "
            "builds in the user cache from the data shipped in the package) with only the "
            f"held-out terms taken out: {left_out['aliases_removed']:,} ICD-10-CM `index` "
            "aliases whose text is a held-out mention, printed entry or row term are deleted "
            "from a copy of it (the Index holds every held-out term, so each would otherwise "
            "find itself); the other Alphabetic Index, Neoplasm and Drug table aliases stay. "
            f"That is {s['aliases']:,} unique ICD-10-CM aliases of {s['codes']:,} codes."
        )
        drawn = (f"drawn once from the {sel['heldout_drawn_from']:,} terms eligible in the "
                 f"knowledge base `{sel['heldout_drawn_in']}`, which held no index aliases"
                 if sel.get("heldout_drawn_from") else "drawn once")
        intro = (
            f"{s['mentions']:,} held-out ICD-10-CM Alphabetic Index terms (CDC FY2025 index "
            f"CSV, seed {s['seed']}, {drawn}) whose code is a billable ICD-10-CM FY2026 code. "
            + searched
        )
    else:
        intro = (
            f"{s['mentions']:,} held-out ICD-10-CM Alphabetic Index terms (CDC FY2025 index "
            f"CSV, seed {s['seed']}) whose code is a billable ICD-10-CM FY2026 code of the "
            "knowledge base and whose text is not one of its aliases "
            f"({sel['eligible']:,} eligible of {sel['rows']:,} index rows). Every method "
            f"searches the same {s['aliases']:,} unique aliases of {s['codes']:,} codes."
        )
    header = ("| Method | acc@1 | acc@5 | acc@1 billable only | acc@5 billable only | "
              "mentions/s | batch |")
    rule = "|---|---|---|---|---|---|---|"
    if previous:
        header += " acc@1 / acc@5, previous run |"
        rule += "---|"
    lines = [
        SECTION,
        "",
        intro + " A mention counts at k when the exact billable code is among the first k "
        "codes; *billable only* drops non-billable codes from the list first. Speed: "
        "mentions per second over the whole set, one process on a "
        f"{s['cpus']}-core machine, batches as listed, one thread unless stated.",
        "",
        header,
        rule,
    ]

    def cell(block: dict[str, Any] | None, key: str) -> str:
        return f"{100 * block[key]:.1f}%" if block else "-"

    for name, row in results["methods"].items():
        plain = row.get("all_codes")
        only = row.get("billable_only")
        line = (
            f"| {name} | {cell(plain, 'acc@1')} | {cell(plain, 'acc@5')} | "
            f"{cell(only, 'acc@1')} | {cell(only, 'acc@5')} | "
            f"{row['mentions_per_s']:,.0f} | {row['batch_size']} |"
        )
        if previous:
            old = previous["methods"].get(name)
            line += (f" {cell(old, 'acc@1')} / {cell(old, 'acc@5')} |" if old else " - |")
        lines.append(line)
    lines += [
        "",
        "95% Wilson intervals are about ±2 points at this size (see the JSON file).",
        "",
        "Notes:",
        "",
        "- *Mention text*: main term and subterms of the index entry, parenthesised "
        "modifiers and NEC/NOS removed; subterms become modifiers in front of the main term "
        "(deepest first) until a subterm starting with a connecting word (*with*, *due to*, "
        "*in*, ...), which follows it: \"iron deficiency anemia\", \"anemia in chronic kidney "
        "disease\". Details in the docstring of `benchmarks/linking_benchmark.py`.",
        "- *project search*: `CandidateIndex.search` of the knowledge base (hashed "
        "character 3-grams + words, common n-grams dropped, exact top-k).",
        "- *TF-IDF exact*: scikit-learn `TfidfVectorizer(analyzer=\"char_wb\", "
        f"ngram_range=(3, 3), min_df={s['tfidf_min_df']})` fitted on the aliases, exact cosine "
        "top-k by a sparse product (scispaCy's vectorizer without the approximate index).",
        "- *scispaCy*: `scispacy.candidate_generation.CandidateGenerator` with all four "
        "arguments: a scispaCy `KnowledgeBase` of the code set (concept id = code, canonical "
        "name = description, aliases = the knowledge-base aliases), the same TF-IDF vectorizer "
        "and an nmslib HNSW index (`cosinesimil_sparse`). Deviation from "
        "`create_tfidf_ann_index`: the alias vectors are kept in float32 (scispaCy 0.6.2 "
        "stores float16 sparse matrices, which scipy >= 1.11 rejects) and the graph uses "
        f"M={s['hnsw']['M']}, efConstruction={s['hnsw']['efConstruction']}, post=0 "
        "(scispaCy: M=100, efConstruction=2000; ~7x longer to build here); efSearch "
        f"{s['hnsw']['efSearch']}, k={s['scispacy_k']} nearest aliases per mention. Its "
        "candidates come back ordered by code, so they are sorted by similarity here.",
        "- Billable-only variants filter a deeper list: the project search returns "
        f"{s['pool']} codes, scispaCy {s['scispacy_k']} aliases; the exact TF-IDF search "
        "masks non-billable codes before the top-k.",
    ]
    if previous:
        lines.append(
            f"- *Previous run* (`{previous['file']}`, {previous['mentions']:,} of the same "
            f"held-out terms, `{previous['command']}`): knowledge base "
            f"`{previous['knowledge_base']}`, {previous['aliases']:,} unique ICD-10-CM "
            "aliases, " + ("the held-out terms taken out." if previous.get("left_out")
                           else "searched as it was.")
        )
    lookup = results.get("default_kb_lookup")
    if lookup:
        found = ", ".join(
            f"{name} {cell(row, 'acc@1')} / {cell(row, 'acc@5')}" for name, row in lookup.items()
        )
        lines.append(
            "- The default knowledge base as a user gets it, nothing taken out (acc@1 / acc@5, "
            f"same run): {found}. There every held-out term is an alias, so this checks the "
            "exact lookup, not linking; a term can still miss when its alias also names "
            "other codes."
        )
    extra = results.get("notes") or []
    lines += [f"- {note}" for note in extra]
    lines += [
        "",
        "Reproduce (the held-out RowIDs are in `benchmarks/results/linking_heldout_ids.json`; "
        "results in `benchmarks/results/linking_benchmark.json`):",
        "",
        "```",
        results["command"],
        "```",
        "",
    ]
    return "\n".join(lines)


def update_docs(path: Path, section: str) -> None:
    """Replace (or append) the Linking section of ``path``, leaving other sections alone."""
    text = path.read_text(encoding="utf-8") if path.is_file() else "# Benchmarks\n\n"
    start = text.find(SECTION)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        following = re.search(r"^## ", text[start + len(SECTION) :], re.M)
        end = start + len(SECTION) + following.start() if following else len(text)
        text = text[:start] + section + ("\n" if following else "") + text[end:]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


# --------------------------------------------------------------------- main
def load_or_select(
    args: argparse.Namespace, eligible: list[Mention], source_sha: str, kb_version: str
) -> list[Mention]:
    """The held-out mentions: from the RowIDs file, or a fresh seeded draw saved there."""
    by_id = {m.row_id: m for m in eligible}
    if args.heldout.is_file() and not args.reselect:
        saved = json.loads(args.heldout.read_text(encoding="utf-8"))
        if saved.get("source_sha256") != source_sha:
            logger.warning("index CSV differs from the one the held-out RowIDs were drawn from")
        missing = [i for i in saved["row_ids"] if i not in by_id]
        if missing:  # e.g. the knowledge base gained one of these texts as an alias
            logger.warning("%d held-out RowIDs are no longer eligible and are left out of "
                           "this run (--reselect draws a new set)", len(missing))
            args.heldout_missing = len(missing)
        return [by_id[i] for i in saved["row_ids"] if i in by_id]
    chosen = select_heldout(eligible, args.n, args.seed)
    args.heldout.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "description": "RowIDs of ICD10CM_2025_Index.csv held out for the linking benchmark "
        "(benchmarks/linking_benchmark.py); leave these rows out of ranker training.",
        "source": "ICD10CM_2025_Index.csv (CDC ICD-10-CM FY2025 Alphabetic Index, CSV export)",
        "source_sha256": source_sha,
        "knowledge_base": kb_version,
        "seed": args.seed,
        "n": len(chosen),
        "eligible": len(eligible),
        "selection": "billable FY2026 code in the knowledge base; mention text, printed "
        "entry and row term not a knowledge-base alias; unambiguous mention text; uniform "
        "sample with random.Random(seed).sample",
        "row_ids": [m.row_id for m in chosen],
    }
    args.heldout.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    return chosen


def build_methods(
    args: argparse.Namespace, kb: Any, table: lm.AliasTable, setup: dict[str, Any]
) -> dict[str, tuple[Callable[[list[str]], list[list[str]]], Callable[..., Any], dict[str, Any]]]:
    """name -> (method on all codes, method on billable codes, info)."""
    from medcode_nlp.kb.index import CandidateIndex

    methods: dict[str, Any] = {}
    started = time.perf_counter()
    index = CandidateIndex.load(kb.path, "icd10cm")
    setup["project_index_load_seconds"] = round(time.perf_counter() - started, 2)
    methods["project search (CandidateIndex)"] = (
        lm.CandidateIndexMethod(index, None),
        lm.CandidateIndexMethod(index, table.billable, pool=args.pool),
        {"batch_size": 256},
    )

    started = time.perf_counter()
    tfidf = lm.TfidfExactMethod(table, min_df=args.min_df)
    setup["tfidf_fit_seconds"] = round(time.perf_counter() - started, 2)
    setup["tfidf_vocabulary"] = len(tfidf.vectorizer.vocabulary_)
    tfidf_billable = lm.TfidfExactMethod(
        table, billable_only=True, vectorizer=tfidf.vectorizer, matrix=tfidf.matrix_t.T
    )
    methods["TF-IDF char 3-grams, exact"] = (tfidf, tfidf_billable, {"batch_size": 64})

    if not args.skip_scispacy:
        started = time.perf_counter()
        sci_kb = lm.CodeSetKnowledgeBase(table)
        setup["scispacy_kb_seconds"] = round(time.perf_counter() - started, 2)
        if set(sci_kb.alias_to_cuis) != set(table.aliases):
            raise SystemExit("scispaCy knowledge base aliases differ from the alias table")
        index_dir = lm.scispacy_cache_dir(args.cache_dir, table, args.hnsw_m, args.hnsw_efc,
                                           args.min_df)
        if not (index_dir / "nmslib_index.bin").is_file():
            logger.info("building the scispaCy index in %s (once)", index_dir)
            lm.build_scispacy_index(
                sci_kb, index_dir, m=args.hnsw_m, ef_construction=args.hnsw_efc,
                min_df=args.min_df,
            )
        setup["scispacy_index_dir"] = str(index_dir)
        setup["scispacy_index_build"] = json.loads((index_dir / "build.json").read_text())
        started = time.perf_counter()
        one = lm.load_scispacy_generator(sci_kb, index_dir, num_threads=1)
        setup["scispacy_index_load_seconds"] = round(time.perf_counter() - started, 2)
        every = lm.load_scispacy_generator(sci_kb, index_dir, num_threads=None)
        methods["scispaCy CandidateGenerator (HNSW)"] = (
            lm.ScispacyMethod(one, None, k=args.scispacy_k),
            lm.ScispacyMethod(one, table.billable, k=args.scispacy_k),
            {"batch_size": 64, "all_threads_method": lm.ScispacyMethod(every, None,
                                                                      k=args.scispacy_k)},
        )

    if args.lexicon and lm.lexicon_available():
        methods["project search + lexicon (search_terms)"] = (
            lm.LexiconSearchMethod(kb.path),
            lm.LexiconSearchMethod(kb.path, billable_only=True, pool=args.pool),
            {"batch_size": 256},
        )
    elif args.lexicon:
        setup["lexicon"] = "medcode_nlp.nlp.lexicon not available: column skipped"
        logger.warning("medcode_nlp.nlp.lexicon not available: search_terms column skipped")

    if args.ranker is not None:
        ranker = lm.load_ranker(args.ranker)
        methods[f"ranker ({Path(args.ranker).name})"] = (
            lm.RankerMethod(ranker, index, kb),
            lm.RankerMethod(ranker, index, kb, billable_only=True),
            {"batch_size": 256},
        )
    return methods


def _shown(path: Path) -> str:
    """A path as written in the results: relative to the checkout, or with ``~``."""
    path = Path(path).resolve()
    if path.is_relative_to(ROOT):
        return str(path.relative_to(ROOT))
    return str(path).replace(str(Path.home()), "~", 1)


def default_kb_lookup(
    args: argparse.Namespace, kb: Any, mentions: list[str], gold: list[str]
) -> dict[str, Any]:
    """Project search (and the ranker) on the unmodified default knowledge base, where every
    held-out term is an alias: an exact-lookup check beside the linking figures."""
    from medcode_nlp.kb.index import CandidateIndex

    index = CandidateIndex.load(kb.path, "icd10cm")
    methods: dict[str, Callable[[list[str]], list[list[str]]]] = {
        "project search (CandidateIndex)": lm.CandidateIndexMethod(index, None)}
    if args.ranker is not None:
        methods[f"ranker ({Path(args.ranker).name})"] = lm.RankerMethod(
            lm.load_ranker(args.ranker), index, kb)
    return {name: accuracy_report(method(mentions), gold) for name, method in methods.items()}


def previous_run(path: Path) -> dict[str, Any]:
    """acc@1 / acc@5 per method of an earlier results file, with its knowledge base."""
    old = json.loads(path.read_text(encoding="utf-8"))
    return {
        "file": _shown(path),
        "command": old.get("command"),
        "knowledge_base": old["settings"]["knowledge_base"],
        "aliases": old["settings"]["aliases"],
        "mentions": old["settings"]["mentions"],
        "left_out": old["settings"].get("left_out"),
        "methods": {name: {k: row["all_codes"][k] for k in ("acc@1", "acc@5")}
                    for name, row in old["methods"].items()},
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--index-csv", type=Path, default=DEFAULT_INDEX_CSV)
    parser.add_argument("--kb", type=Path, default=None, help="knowledge base (default built-in)")
    parser.add_argument("--n", type=int, default=2000, help="held-out mentions to draw")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reselect", action="store_true", help="draw new held-out RowIDs")
    parser.add_argument("--heldout", type=Path, default=DEFAULT_HELDOUT)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--docs", default=str(DEFAULT_DOCS),
                        help="markdown file whose Linking section is rewritten ('' = none)")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE,
                        help="where the scispaCy index build is cached")
    parser.add_argument("--ranker", type=Path, default=None,
                        help="trained RankerModel directory: adds a ranker column")
    parser.add_argument("--no-lexicon", dest="lexicon", action="store_false",
                        help="leave out the search_terms column (search + lexicon expansions)")
    parser.add_argument("--skip-scispacy", action="store_true")
    parser.add_argument("--scispacy-k", type=int, default=100)
    parser.add_argument("--pool", type=int, default=100,
                        help="codes searched before billable-only filtering")
    parser.add_argument("--min-df", type=int, default=lm.TFIDF_SETTINGS["min_df"])
    parser.add_argument("--hnsw-m", type=int, default=lm.HNSW_M)
    parser.add_argument("--hnsw-efc", type=int, default=lm.HNSW_EF_CONSTRUCTION)
    parser.add_argument("--previous", type=Path, default=None,
                        help="an earlier results JSON whose accuracies go beside these")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("nmslib").setLevel(logging.WARNING)  # it logs every factory at INFO
    args = parse_args(argv)
    from medcode_nlp.kb.store import load_kb

    default_kb: Any = None
    left_out: dict[str, Any] | None = None
    if args.kb is None:
        default_kb, kb, left_out = default_kb_minus_heldout(args)
    else:
        kb = load_kb(args.kb)
    table = lm.AliasTable.from_kb(kb, "icd10cm")
    alias_keys = {alias_key(a) for a in table.aliases}
    stats: Counter[str] = Counter()
    eligible = eligible_mentions(read_index_rows(args.index_csv), alias_keys, table.billable,
                                 stats)
    source_sha = sha256_file(args.index_csv)
    args.heldout_missing = 0
    heldout = load_or_select(args, eligible, source_sha, kb.version)
    drawn = json.loads(args.heldout.read_text(encoding="utf-8"))
    mentions = [m.text for m in heldout]
    gold = [m.code for m in heldout]
    logger.info("%d held-out mentions (%d eligible)", len(heldout), len(eligible))

    setup: dict[str, Any] = {"load_average_before": [round(x, 2) for x in os.getloadavg()]}
    methods = build_methods(args, kb, table, setup)
    rows: dict[str, Any] = {}
    exact: list[list[str]] | None = None
    for name, (method, billable_method, info) in methods.items():
        predictions, seconds = timed_run(method, mentions)
        if isinstance(method, lm.TfidfExactMethod):
            exact = predictions
        billable_predictions, billable_seconds = timed_run(billable_method, mentions)
        row: dict[str, Any] = {
            "all_codes": accuracy_report(predictions, gold),
            "billable_only": accuracy_report(billable_predictions, gold),
            "seconds": round(seconds, 2),
            "mentions_per_s": round(len(mentions) / seconds, 1),
            "billable_only_mentions_per_s": round(len(mentions) / billable_seconds, 1),
            "batch_size": info["batch_size"],
            "threads": 1,
        }
        if isinstance(method, lm.ScispacyMethod) and exact is not None:
            # how far the HNSW index is from the exact search with the same vectorizer
            row["same_top1_as_exact_tfidf"] = sum(
                a[:1] == b[:1] for a, b in zip(predictions, exact, strict=True))
            row["same_top5_as_exact_tfidf"] = sum(
                a[:5] == b[:5] for a, b in zip(predictions, exact, strict=True))
        if "all_threads_method" in info:
            _, all_seconds = timed_run(info["all_threads_method"], mentions)
            row["mentions_per_s_all_threads"] = round(len(mentions) / all_seconds, 1)
        rows[name] = row
        logger.info("%s: %s", name, {k: row["all_codes"][k] for k in ("acc@1", "acc@5")})

    setup["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    lookup = default_kb_lookup(args, default_kb, mentions, gold) if default_kb else None
    import scipy
    import scispacy
    import sklearn

    command = "python -m benchmarks.linking_benchmark" + (
        f" --kb {args.kb}" if args.kb else ""
    ) + (f" --ranker {args.ranker}" if args.ranker else "") + (
        "" if args.lexicon else " --no-lexicon"
    ) + (f" --previous {_shown(args.previous)}" if args.previous else "")
    results: dict[str, Any] = {
        "benchmark": "ICD-10-CM linking on held-out Alphabetic Index terms",
        "command": command,
        "settings": {
            "mentions": len(heldout),
            "seed": args.seed,
            "target": "exact billable ICD-10-CM FY2026 code of the index term",
            "knowledge_base": kb.version,
            "knowledge_base_dir": _shown(kb.path),
            "left_out": {**left_out, "source": _shown(Path(left_out["source"]))}
            if left_out else None,
            "aliases": len(table.aliases),
            "codes": len(table.descriptions),
            "billable_codes": len(table.billable),
            "tfidf_min_df": args.min_df,
            "hnsw": {"M": args.hnsw_m, "efConstruction": args.hnsw_efc, "post": 0,
                     "efSearch": lm.HNSW_EF_SEARCH},
            "scispacy_k": args.scispacy_k,
            "pool": args.pool,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "versions": {"scispacy": scispacy.__version__, "scikit-learn": sklearn.__version__,
                         "scipy": scipy.__version__},
        },
        "selection": {**dict(stats), "index_csv_sha256": source_sha,
                      "heldout_no_longer_eligible": args.heldout_missing,
                      "heldout_drawn_from": drawn.get("eligible"),
                      "heldout_drawn_in": drawn.get("knowledge_base"),
                      "heldout_ids": str(args.heldout.relative_to(ROOT))
                      if args.heldout.is_relative_to(ROOT) else str(args.heldout),
                      "levels": dict(sorted(Counter(m.level for m in heldout).items()))},
        "setup": setup,
        "methods": rows,
        "default_kb_lookup": lookup,
        "previous": previous_run(args.previous) if args.previous else None,
        "notes": [],
    }
    sci = rows.get("scispaCy CandidateGenerator (HNSW)")
    if sci is not None:
        results["notes"].append(
            f"scispaCy with nmslib's default thread pool (all {os.cpu_count()} cores): "
            f"{sci['mentions_per_s_all_threads']:,.0f} mentions/s."
        )
        if "same_top5_as_exact_tfidf" in sci:
            results["notes"].append(
                "The HNSW index returns the same first code as the exact TF-IDF search for "
                f"{sci['same_top1_as_exact_tfidf']:,} of {len(mentions):,} mentions and the "
                f"same first five for {sci['same_top5_as_exact_tfidf']:,}: the accuracy gap "
                "between the two is the approximate search's."
            )
    lexicon_row = rows.get("project search + lexicon (search_terms)")
    if lexicon_row is not None:
        results["notes"].append(
            "*project search + lexicon*: `medcode_nlp.kb.search.search_terms`, each mention "
            "searched together with its lexicon expansions (best score per code)."
        )
    load = (setup["load_average_before"][0], setup["load_average_after"][0])
    results["notes"].append(
        f"Load average (1 min) at the start and end of the run: {load[0]:.1f} / {load[1]:.1f} "
        f"on {os.cpu_count()} cores; speeds are only comparable within one run."
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    if args.docs:
        update_docs(Path(args.docs), markdown_section(results))
    print(json.dumps({k: {"acc@1": v["all_codes"]["acc@1"], "acc@5": v["all_codes"]["acc@5"],
                          "billable acc@1": v["billable_only"]["acc@1"],
                          "billable acc@5": v["billable_only"]["acc@5"],
                          "mentions/s": v["mentions_per_s"]} for k, v in rows.items()},
                     indent=1))
    return results


if __name__ == "__main__":
    main()
