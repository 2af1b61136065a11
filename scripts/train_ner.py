"""Train, evaluate and package the medcode_nlp NER model in one reproducible command.

From the project root, with the public data sets in ../shared/data:

    python -m scripts.train_ner

Steps (all outputs except the packaged model go to training_runs/, which is git-ignored):

1. build the corpora (``medcode_nlp.training.ner_data``) into ``<run>/corpus``;
2. save a blank pipeline with the clinical tokenizer to ``<run>/base`` (the config copies the
   tokenizer from it with spaCy's built-in ``spacy.copy_from_base_model.v1``);
3. ``python -m spacy train configs/ner.cfg`` on one thread with a fixed seed into ``<run>/model``;
4. copy ``model-best`` to ``models/ner`` (tokenizer, vocab, ner, config.cfg, meta.json; the
   string store is cut down to the label names, so no word list from the training texts);
5. run ``benchmarks/ner_eval.py`` on the packaged model, write ``MODEL_CARD.md`` and
   ``checksums.sha256`` (sha256 of every file in ``models/ner``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from medcode_nlp.nlp.tokenizer import blank_clinical
from medcode_nlp.paths import shared_data_dir
from medcode_nlp.training.ner_data import build_corpora

ROOT = Path(__file__).resolve().parents[1]  # the checkout: configs/, models/, benchmarks/

CONFIG = ROOT / "configs" / "ner.cfg"
MODEL_DIR = ROOT / "models" / "ner"
EVAL_JSON = ROOT / "benchmarks" / "results" / "ner_eval.json"
SINGLE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def write_checksums(model_dir: Path) -> Path:
    """Write ``checksums.sha256`` (``sha256sum`` format) for every file under ``model_dir``."""
    out = model_dir / "checksums.sha256"
    lines = []
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file() and p != out):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        lines.append(f"{digest}  {path.relative_to(model_dir).as_posix()}")
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def train(run: Path, seed: int, max_steps: int | None, log: Path) -> tuple[float, float]:
    """Run ``spacy train`` in a single-threaded subprocess; return wall-clock and CPU seconds."""
    cmd = [
        sys.executable, "-m", "spacy", "train", str(CONFIG),
        "--output", str(run / "model"),
        "--paths.train", str(run / "corpus" / "train.spacy"),
        "--paths.dev", str(run / "corpus" / "dev.spacy"),
        "--paths.base", str(run / "base"),
        "--system.seed", str(seed),
    ]  # fmt: skip
    if max_steps is not None:
        cmd += ["--training.max_steps", str(max_steps)]
    env = {**os.environ, **SINGLE_THREAD}
    start = time.perf_counter()
    cpu_start = resource.getrusage(resource.RUSAGE_CHILDREN)
    with log.open("w", encoding="utf-8") as fh:
        subprocess.run(cmd, check=True, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    cpu_end = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_end.ru_utime + cpu_end.ru_stime) - (cpu_start.ru_utime + cpu_start.ru_stime)
    return time.perf_counter() - start, cpu


def package(best: Path, model_dir: Path, info: dict[str, Any]) -> None:
    """Copy the trained pipeline to ``model_dir`` with clean paths and meta."""
    if model_dir.exists():
        shutil.rmtree(model_dir)
    shutil.copytree(best, model_dir)
    # The string store would list every word of the training texts; the model needs none of
    # them (features are hashes), so only the label names are kept.
    labels = json.loads((model_dir / "meta.json").read_text(encoding="utf-8"))["labels"]["ner"]
    (model_dir / "vocab" / "strings.json").write_text(
        json.dumps(sorted(labels), indent=2) + "\n", encoding="utf-8"
    )
    cfg = (model_dir / "config.cfg").read_text(encoding="utf-8").splitlines()
    cleaned = []
    section = ""
    for line in cfg:
        if line.startswith("["):
            section = line.strip()
        if section == "[paths]" and "=" in line:
            line = line.split("=")[0].rstrip() + " = null"
        cleaned.append(line)
    (model_dir / "config.cfg").write_text("\n".join(cleaned) + "\n", encoding="utf-8")
    meta = json.loads((model_dir / "meta.json").read_text(encoding="utf-8"))
    meta.update(
        {
            "name": "medcode_ner",
            "version": info["version"],
            "description": "medcode_nlp clinical NER: PROBLEM, PROCEDURE, DRUG (see MODEL_CARD.md)",
            "license": "Apache-2.0 (weights); training data: see MODEL_CARD.md",
            "sources": info["sources"],
        }
    )
    (model_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def _pct(x: float) -> str:
    return f"{100 * x:.2f}"


def _hyper_parameters(config_path: Path) -> list[tuple[str, str]]:
    from spacy.util import load_config

    cfg = load_config(config_path, interpolate=True)
    model = cfg["components"]["ner"]["model"]
    t2v = model["tok2vec"]
    tr = cfg["training"]
    return [
        ("architecture", "spacy.TransitionBasedParser.v2 (hidden 64) + embedded spacy.Tok2Vec.v2"),
        ("embedding", f"MultiHashEmbed attrs {t2v['embed']['attrs']} rows {t2v['embed']['rows']}"),
        ("encoder", f"MaxoutWindowEncoder width {t2v['encode']['width']}, "
                    f"depth {t2v['encode']['depth']}, window {t2v['encode']['window_size']}"),
        ("static vectors", "none"),
        ("optimizer", f"Adam lr {tr['optimizer']['learn_rate']}, L2 {tr['optimizer']['L2']}, "
                      f"grad clip {tr['optimizer']['grad_clip']}, "
                      f"parameter averaging {tr['optimizer']['use_averages']}"),
        ("batching", "batch_by_words, compounding 100 -> 1000 words (x1.001 per step)"),
        ("dropout", str(tr["dropout"])),
        ("steps", f"{tr['max_steps']} (fixed budget; checkpoint chosen on the held-out dev set, "
                  f"evaluated every {tr['eval_frequency']} steps)"),
        ("seed", str(cfg["system"]["seed"])),
    ]  # fmt: skip


def write_model_card(model_dir: Path, info: dict[str, Any], eval_json: Path) -> None:
    """Write ``MODEL_CARD.md`` from the run info, the config and the benchmark results."""
    ev = json.loads(eval_json.read_text(encoding="utf-8"))
    meta = json.loads((model_dir / "meta.json").read_text(encoding="utf-8"))
    stats = info["corpus_stats"]
    size = sum(p.stat().st_size for p in model_dir.rglob("*") if p.is_file())
    align_path = ROOT / "benchmarks" / "results" / "tokenizer_alignment.json"
    lines = [
        "# medcode_nlp NER model (`models/ner`)",
        "",
        f"Version {info['version']}. A spaCy {meta.get('spacy_version', '')} pipeline with two "
        "parts: the clinical tokenizer (`medcode_nlp.nlp.tokenizer`) and a transition-based NER with "
        "its own CNN token-to-vector layer (no pretrained vectors). Labels: **PROBLEM**, "
        "**PROCEDURE**, **DRUG** (definitions: "
        "[docs/ner_guidelines.md](../../docs/ner_guidelines.md)). "
        f'Size on disk: {size / 1e6:.1f} MB. Loads with `spacy.load("models/ner")` alone (no '
        "custom code); verify it first with `cd models/ner && sha256sum -c checksums.sha256`.",
        "",
        "## Metrics",
        "",
        "Exact-match entity P/R/F1 (start, end and label must all match), produced by "
        "`python -m benchmarks.ner_eval` (results in `benchmarks/results/ner_eval.json`).",
        "",
        "| test set | label | P | R | F1 | gold mentions |",
        "|---|---|---|---|---|---|",
    ]
    for key, name in (("bc5cdr_test", "BC5CDR test"), ("ncbi_disease_test", "NCBI Disease test")):
        res = ev[key]
        for label, m in [*res["labels"].items(), ("micro", res["micro"])]:
            lab = f"**{label}**" if label == "micro" else label
            lines.append(
                f"| {name} | {lab} | {_pct(m['p'])} | {_pct(m['r'])} | {_pct(m['f'])} | "
                f"{m['support']} |"
            )
    lines += [
        "",
        'BC5CDR: PROBLEM vs Disease, DRUG vs Chemical (500 abstracts, title + " " + abstract). '
        "NCBI Disease: PROBLEM vs Disease, per sentence of the IOB file (tokens joined by spaces). "
        "PROCEDURE predictions are not scored (neither corpus annotates procedures); there is no "
        "gold PROCEDURE test set. Reference points: scispaCy `en_ner_bc5cdr_md` 84.28 F1 on the "
        "same BC5CDR test set; a vector-less spaCy efficiency NER trained on BC5CDR train+dev "
        "alone measured ~83.3 here.",
        "",
        "| speed, one core, `nlp.pipe` | NER tokens/CPU-s | NER words/CPU-s | NER words/wall-s "
        "| blank spaCy tokenizer tokens/CPU-s |",
        "|---|---|---|---|---|",
    ]
    for name, s in ev["speed"].items():
        ner, blank = s["ner_pipeline"], s["blank_spacy_tokenizer"]
        lines.append(
            f"| {name} | {ner['tokens_per_cpu_s']:,} | {ner['words_per_cpu_s']:,} | "
            f"{ner['words_per_s']:,} | {blank['tokens_per_cpu_s']:,} |"
        )
    env = ev["environment"]
    lines += [
        "",
        "Speed is measured single-threaded and divided by the process's CPU time (what one core "
        "delivers); wall-clock throughput depends on other load on the machine (load average "
        f"during this run: {env.get('load_average_1_5_15min')}). ",
        f'Model load time: {ev["reload_seconds"]:.2f} s for `spacy.load("models/ner")`; the '
        f"first `spacy.load` in a fresh process took {ev['load_seconds']:.2f} s "
        f"({ev['load_cpu_seconds']:.2f} s CPU) because spaCy then also imports every installed "
        "`spacy_factories` entry point (medcode_nlp's own components included). "
        "Words = whitespace-separated words; tokens = tokens of the respective tokenizer.",
        "",
    ]
    for ab in info.get("ablations", []):
        lines += [f"**Ablation: {ab['name']}** — {ab['text']}", ""]
    if align_path.exists():
        al = json.loads(align_path.read_text(encoding="utf-8"))["results"]
        lines += [
            "## Tokenizer choice",
            "",
            "Gold BC5CDR mentions (train+dev+test) that do not start and end on token boundaries "
            "(`python -m benchmarks.tokenizer_alignment`):",
            "",
            "| tokenizer | misaligned mentions | % |",
            "|---|---|---|",
            *[
                f"| {k} | {v['misaligned']} / {v['mentions']} | {v['misaligned_pct']:.2f} |"
                for k, v in al.items()
            ],
            "",
        ]
    lines += [
        "## Training data",
        "",
        "Read from `../shared/data` by `medcode_nlp/training/ner_data.py`; none of it is shipped.",
        "",
        "| part | docs | tokens | PROBLEM | DRUG | PROCEDURE | tokens without a label (missing) |",
        "|---|---|---|---|---|---|---|",
    ]
    for part, c in stats["parts"].items():
        e = c["entities"]
        lines.append(
            f"| {part} | {c['docs']} | {c['tokens']:,} | {e.get('PROBLEM', 0):,} | "
            f"{e.get('DRUG', 0):,} | {e.get('PROCEDURE', 0):,} | {c['missing_tokens']:,} |"
        )
    lines += [
        "",
        "- **BC5CDR** (NCBI, public domain): training set + development set (one Doc per "
        "abstract); "
        f"every {stats['settings']['dev_every']}th development abstract is held out as the dev set "
        "that picks the checkpoint. Disease -> PROBLEM, Chemical -> DRUG. Procedure-lexicon words "
        "outside gold mentions are *missing* (BC5CDR does not annotate procedures).",
        "- **NCBI Disease** (public domain): "
        + (
            "train + devel, Disease -> PROBLEM, sentences grouped by "
            f"{stats['settings']['ncbi_sentences_per_doc']}; chemical and procedure words missing."
            if info["use_ncbi"]
            else "not used for training in this model (opt in with `--with-ncbi`; see the "
            "ablation under Metrics); its test set is reported above as an out-of-corpus check."
        ),
        f"- **CodiEsp** (CC BY 4.0, Miranda-Escalada et al., CLEF eHealth 2020): the first "
        f"{info['codiesp_docs']} train case reports (English machine translation), weakly "
        "labelled: PROCEDURE from a procedure lexicon (imaging, endoscopy, operations, "
        "`-ectomy`/`-scopy`/`-graphy`/... words, ICD-10-PCS root operations present in the "
        "document's gold PCS codes) with anatomical/approach premodifiers (ICD-10-PCS body parts); "
        "PROBLEM from the titles, inclusion terms and Alphabetic Index terms of the document's "
        "gold ICD-10-CM codes (`simple_icd_10_cm`, ICD-10-CM 2025 index) plus gold disease names "
        "from BC5CDR/NCBI and ICD-10-CM index main terms with a disease-like head; DRUG from gold "
        "BC5CDR chemical names and the ICD-10-CM Table of Drugs. Only matched spans are labelled; "
        "function words, punctuation, numbers and words unknown to all lexicons are O; all other "
        "tokens are *missing* so unlabelled clinical mentions are not learnt as O.",
        "",
        "## Recipe",
        "",
        "```",
        info["command"],
        "```",
        "",
        "(`scripts/train_ner.py`) builds the corpora, trains with `python -m spacy train configs/ner.cfg` (one thread, "
        "fixed seed) into `training_runs/` (git-ignored), copies `model-best` here, runs "
        "`benchmarks/ner_eval.py`, writes this card and `checksums.sha256`. "
        f"Corpus build {info['corpus_seconds']:.0f} s, training {info['train_seconds'] / 60:.1f} "
        "min wall clock on a 2-core machine shared with other jobs"
        + (
            f" ({info['train_cpu_seconds'] / 60:.1f} min CPU)."
            if "train_cpu_seconds" in info
            else "."
        )
        + (f" {info['note']}" if "note" in info else ""),
        "",
        "| hyper-parameter | value |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in _hyper_parameters(ROOT / "configs" / "ner.cfg")],
        "",
        f"Best checkpoint on the held-out dev abstracts: ents_f "
        f"{_pct(meta.get('performance', {}).get('ents_f', 0.0))}.",
        "",
        "## Limitations",
        "",
        "- PROCEDURE is learnt from weak labels only (lexicon matches in machine-translated "
        "Spanish case reports); its boundaries follow the lexicon and it has no gold evaluation.",
        "- Clinical PROBLEM and DRUG labels come mostly from PubMed abstracts; clinical notes "
        "(abbreviations, telegraphic style) differ. Lab analytes may be tagged DRUG, as in BC5CDR.",
        "- The model does not decide negation, history or experiencer (see the assertion "
        "component).",
        "",
    ]
    (model_dir / "MODEL_CARD.md").write_text("\n".join(lines), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=shared_data_dir())
    parser.add_argument("--run", type=Path, default=ROOT / "training_runs" / "ner")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-steps", type=int, default=None, help="override the config")
    parser.add_argument(
        "--with-ncbi", action="store_true", help="add NCBI Disease train+devel (see the card)"
    )
    parser.add_argument(
        "--codiesp-docs", type=int, default=250, help="weakly labelled CodiEsp train docs"
    )
    parser.add_argument("--no-package", action="store_true", help="train only")
    parser.add_argument(
        "--package-only", action="store_true", help="package an existing run (skip training)"
    )
    args = parser.parse_args()
    run: Path = args.run.resolve()
    info_path = run / "train_info.json"
    if not args.package_only:
        run.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        stats = build_corpora(
            args.data, run / "corpus", use_ncbi=args.with_ncbi, codiesp_limit=args.codiesp_docs
        )
        corpus_seconds = time.perf_counter() - start
        blank_clinical().to_disk(run / "base")
        print(f"corpora built in {corpus_seconds:.0f}s; training (log: {run / 'train.log'})")
        seconds, cpu_seconds = train(run, args.seed, args.max_steps, run / "train.log")
        info = {
            "command": " ".join(["python", "-m", "scripts.train_ner", *sys.argv[1:]]),
            "seed": args.seed,
            "use_ncbi": args.with_ncbi,
            "codiesp_docs": args.codiesp_docs,
            "corpus_seconds": round(corpus_seconds, 1),
            "train_seconds": round(seconds, 1),
            "train_cpu_seconds": round(cpu_seconds, 1),
            "corpus_stats": stats,
        }
        info_path.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        print(f"trained in {seconds / 60:.1f} min")
    if args.no_package:
        return
    info = json.loads(info_path.read_text(encoding="utf-8"))
    from medcode_nlp.about import __version__

    info["version"] = __version__
    info["sources"] = [
        {"name": "BC5CDR", "url": "https://biocreative.bioinformatics.udel.edu/"},
        {"name": "NCBI Disease", "url": "https://www.ncbi.nlm.nih.gov/CBBresearch/Dogan/DISEASE/"},
        {"name": "CodiEsp (English MT, CC BY 4.0)", "url": "https://zenodo.org/record/3837305"},
    ]
    package(run / "model" / "model-best", MODEL_DIR, info)
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "ner_eval.py"), "--data", str(args.data)],
        check=True,
        env={**os.environ, **SINGLE_THREAD},
        cwd=ROOT,
    )
    write_model_card(MODEL_DIR, info, EVAL_JSON)
    write_checksums(MODEL_DIR)
    print(f"packaged {MODEL_DIR}")


if __name__ == "__main__":
    main()
