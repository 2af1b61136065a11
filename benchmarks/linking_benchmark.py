"""Linking benchmark on held-out ICD-10-CM Alphabetic Index terms (issue 2 item 7, issue 5 item 3).

Mentions are built from terms of the ICD-10-CM Alphabetic Index (CDC, FY2025 CSV export)
whose code is a billable ICD-10-CM FY2026 code of the knowledge base and whose text is not
an alias of the knowledge base searched, so no method can find them by an exact alias match.
Each method returns ranked codes for each mention (``benchmarks/linking_methods.py``, and
``benchmarks/linking_scispacy.py`` for scispaCy); accuracy@k counts a mention when the index
term's exact code is among the first k. Held-out selection, the leave-out knowledge base,
scoring and the written report are ``linking_heldout``, ``linking_leave_out_kb``,
``linking_accuracy`` and ``linking_report`` beside this module.

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
import json
import logging
import os
import platform
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import linking_methods as lm
from benchmarks import linking_scispacy as sp
from benchmarks.common import RESULTS, ROOT, shared_data
from benchmarks.linking_accuracy import accuracy_report, timed_run
from benchmarks.linking_aliases import TFIDF_SETTINGS, AliasTable
from benchmarks.linking_heldout import eligible_mentions, load_or_select
from benchmarks.linking_leave_out_kb import default_kb_minus_heldout
from benchmarks.linking_report import markdown_section, previous_run, shown_path, update_docs
from medcode_nlp.codesets.index_terms import alias_key, read_index_rows
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
logger = logging.getLogger("linking_benchmark")


def build_methods(
    args: argparse.Namespace, kb: Any, table: AliasTable, setup: dict[str, Any]
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
        sci_kb = sp.CodeSetKnowledgeBase(table)
        setup["scispacy_kb_seconds"] = round(time.perf_counter() - started, 2)
        if set(sci_kb.alias_to_cuis) != set(table.aliases):
            raise SystemExit("scispaCy knowledge base aliases differ from the alias table")
        index_dir = sp.scispacy_cache_dir(args.cache_dir, table, args.hnsw_m, args.hnsw_efc,
                                           args.min_df)
        if not (index_dir / "nmslib_index.bin").is_file():
            logger.info("building the scispaCy index in %s (once)", index_dir)
            sp.build_scispacy_index(
                sci_kb, index_dir, m=args.hnsw_m, ef_construction=args.hnsw_efc,
                min_df=args.min_df,
            )
        setup["scispacy_index_dir"] = str(index_dir)
        setup["scispacy_index_build"] = json.loads((index_dir / "build.json").read_text())
        started = time.perf_counter()
        one = sp.load_scispacy_generator(sci_kb, index_dir, num_threads=1)
        setup["scispacy_index_load_seconds"] = round(time.perf_counter() - started, 2)
        every = sp.load_scispacy_generator(sci_kb, index_dir, num_threads=None)
        methods["scispaCy CandidateGenerator (HNSW)"] = (
            sp.ScispacyMethod(one, None, k=args.scispacy_k),
            sp.ScispacyMethod(one, table.billable, k=args.scispacy_k),
            {"batch_size": 64, "all_threads_method": sp.ScispacyMethod(every, None,
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
    parser.add_argument("--min-df", type=int, default=TFIDF_SETTINGS["min_df"])
    parser.add_argument("--hnsw-m", type=int, default=sp.HNSW_M)
    parser.add_argument("--hnsw-efc", type=int, default=sp.HNSW_EF_CONSTRUCTION)
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
    table = AliasTable.from_kb(kb, "icd10cm")
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
        if isinstance(method, sp.ScispacyMethod) and exact is not None:
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
    ) + (f" --previous {shown_path(args.previous)}" if args.previous else "")
    results: dict[str, Any] = {
        "benchmark": "ICD-10-CM linking on held-out Alphabetic Index terms",
        "command": command,
        "settings": {
            "mentions": len(heldout),
            "seed": args.seed,
            "target": "exact billable ICD-10-CM FY2026 code of the index term",
            "knowledge_base": kb.version,
            "knowledge_base_dir": shown_path(kb.path),
            "left_out": {**left_out, "source": shown_path(Path(left_out["source"]))}
            if left_out else None,
            "aliases": len(table.aliases),
            "codes": len(table.descriptions),
            "billable_codes": len(table.billable),
            "tfidf_min_df": args.min_df,
            "hnsw": {"M": args.hnsw_m, "efConstruction": args.hnsw_efc, "post": 0,
                     "efSearch": sp.HNSW_EF_SEARCH},
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
