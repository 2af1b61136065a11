"""The ``medcode evaluate`` and ``medcode train`` commands (registered on the app when :mod:`medcode_nlp.cli` is imported)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from medcode_nlp.cli.app import KbOpt, evaluate_app, print_json, train_app


# ------------------------------------------------------------------ evaluate
@evaluate_app.command("ner")
def evaluate_ner_cli(
    file: Path,
    format: Annotated[str, typer.Option("--format", help="conll or pubtator")] = "conll",
    ner: Annotated[str | None, typer.Option(help="NER model (default: shipped).")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Entity-level exact-match P/R/F1 of the NER on a CoNLL/IOB or PubTator file."""
    from medcode_nlp.evaluation.run import evaluate_ner_file

    report = evaluate_ner_file(file, format, ner)
    print_json(report) if as_json else typer.echo(report["table"])


@evaluate_app.command("context")
def evaluate_context_cli(
    file: Path, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """Assertion accuracy and per-class P/R/F1 on a ConText test-kit file."""
    from medcode_nlp.evaluation.run import evaluate_context_file

    report = evaluate_context_file(file)
    print_json(report) if as_json else typer.echo(report["table"])

@evaluate_app.command("coding")
@evaluate_app.command("codiesp")
def evaluate_coding_cli(
    target: Annotated[Path, typer.Argument(
        metavar="GOLD.jsonl|CODIESP_DIR",
        help="Coded notes (JSONL: id, text, setting, codes[{system, code, optional, rank}]) "
             "or a CodiEsp root directory.")],
    split: Annotated[str, typer.Option("--split", help="CodiEsp: train, dev or test")] = "dev",
    as_json: Annotated[bool, typer.Option("--json")] = False,
    predictions_out: Annotated[Path | None, typer.Option(
        "--predictions-out", help="The ranked lists the metrics used (JSONL for coded notes; "
        "CodiEsp: scorer files, D and P suffixes added)")] = None,
    kb: KbOpt = None,
    ner: Annotated[str | None, typer.Option(help="NER model (default: shipped).")] = None,
    baseline: Annotated[bool, typer.Option(
        help="Run the baseline too (coded notes: TF-IDF one-vs-rest logistic regression, "
             "out-of-fold; CodiEsp: TF-IDF k-NN fitted on train).")] = True,
    folds: Annotated[int, typer.Option(help="Coded notes: baseline folds.")] = 5,
    compare_ranker: Annotated[Path | None, typer.Option(
        "--compare-ranker", help="A second ranker directory, scored side by side.")] = None,
    partial_codes: Annotated[bool, typer.Option(
        help="CodiEsp: let the coder suggest 4-character ICD-10-PCS partial codes, as "
             "CodiEsp's gold does.")] = True,
    assertions: Annotated[str, typer.Option(
        help="CodiEsp: guidelines (as shipped) or ignore (code every mention whatever its "
             "assertion, as CodiEsp's annotators did).")] = "guidelines",
    setting: Annotated[str | None, typer.Option(
        help="outpatient or inpatient. Coded notes: for notes without a 'setting' (default "
             "outpatient); CodiEsp: all notes (default inpatient).")] = None,
    seed: int = 0,
) -> None:
    """Score the coder on coded notes or CodiEsp, the baseline beside it.

    Coded notes: per system micro P/R/F1 over required codes, first-listed accuracy,
    category F1, MAP, bootstrap intervals, per setting and note type. CodiEsp: MAP, P/R/F1,
    P@k, R@10, bootstrap intervals, calibration. (`evaluate codiesp` is the same command.)
    """
    import medcode_nlp
    from medcode_nlp.errors import Errors, InputError

    if not target.exists():
        raise InputError(Errors.E010.format(path=target))
    is_file = target.is_file()
    default_setting = setting or ("outpatient" if is_file else "inpatient")
    coder = medcode_nlp.load(kb=kb, ner=ner, setting=default_setting)
    compare = (medcode_nlp.load(kb=kb, ner=ner, ranker=compare_ranker, setting=default_setting)
               if compare_ranker is not None else None)
    if is_file:
        from medcode_nlp.evaluation.coding_run import evaluate_coded_notes

        report = evaluate_coded_notes(target, coder=coder, compare_coder=compare,
                                      baseline=baseline, folds=folds, seed=seed,
                                      predictions_out=predictions_out,
                                      default_setting=default_setting)
    else:
        from medcode_nlp.evaluation.run import evaluate_codiesp_dir

        report = evaluate_codiesp_dir(target, split, coder=coder, baseline=baseline,
                                      predictions_out=predictions_out, seed=seed,
                                      partial_codes=partial_codes, assertions=assertions,
                                      compare_coder=compare)
    print_json(report) if as_json else typer.echo(report["table"])


@train_app.command("ranker")
def train_ranker_cli(
    feedback: Annotated[Path | None, typer.Option(help="Review database (medcode serve).")] = None,
    kb: KbOpt = None,
    ner: Annotated[str | None, typer.Option(help="Mention finder (default: shipped NER).")] = None,
    out: Annotated[Path | None, typer.Option(help="Output directory.")] = None,
    codiesp: Annotated[Path | None, typer.Option(help="CodiEsp root directory.")] = None,
    index_csv: Annotated[Path | None, typer.Option(help="ICD-10-CM index CSV.")] = None,
    gold: Annotated[Path | None, typer.Option(
        help="A site's coded notes (JSONL: id, text, codes): train a site model on them "
             "instead (use it with --site-model).")] = None,
) -> None:
    """Train the ranker (CodiEsp train, index terms, and coders' reviewed decisions), or with
    --gold a site model learnt from a site's own coded notes."""
    if gold is not None:
        from medcode_nlp.errors import Errors, InputError
        from medcode_nlp.training.site_model import train_site_model

        if feedback is not None or codiesp is not None or index_csv is not None:
            raise InputError(Errors.E014.format(
                name="--gold", detail="a site model learns from coded notes only; train the "
                "ranker (--feedback, --codiesp, --index-csv) in a separate run"))

        print_json(train_site_model(gold, out or Path("site_model"), kb=kb, ner=ner))
        return
    from medcode_nlp.training.train_ranker import main as train_main

    argv: list[str] = []
    for flag, value in (("--feedback", feedback), ("--kb", kb), ("--ner", ner), ("--out", out),
                        ("--codiesp", codiesp), ("--index-csv", index_csv)):
        if value is not None:
            argv += [flag, str(value)]
    train_main(argv)
