"""Written results of the linking benchmark: the "Linking" section of docs/benchmarks.md
(:func:`markdown_section`, :func:`update_docs`) and an earlier run to compare with
(:func:`previous_run`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT

SECTION = "## Linking (ICD-10-CM index terms)"


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


def shown_path(path: Path) -> str:
    """A path as written in the results: relative to the checkout, or with ``~``."""
    path = Path(path).resolve()
    if path.is_relative_to(ROOT):
        return str(path.relative_to(ROOT))
    return str(path).replace(str(Path.home()), "~", 1)


def previous_run(path: Path) -> dict[str, Any]:
    """acc@1 / acc@5 per method of an earlier results file, with its knowledge base."""
    old = json.loads(path.read_text(encoding="utf-8"))
    return {
        "file": shown_path(path),
        "command": old.get("command"),
        "knowledge_base": old["settings"]["knowledge_base"],
        "aliases": old["settings"]["aliases"],
        "mentions": old["settings"]["mentions"],
        "left_out": old["settings"].get("left_out"),
        "methods": {name: {k: row["all_codes"][k] for k in ("acc@1", "acc@5")}
                    for name, row in old["methods"].items()},
    }
