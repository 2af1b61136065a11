"""The ``medcode`` command line. Each command is a thin wrapper over a plain function."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from medcode_nlp.cli.checks import check_note, check_systems, ensure_kb, first_run_notice
from medcode_nlp.errors import MedcodeError

app = typer.Typer(help="Suggest medical codes from clinical notes.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
kb_app = typer.Typer(help="Build and inspect the code-set knowledge base.", no_args_is_help=True)
evaluate_app = typer.Typer(help="Evaluate on standard data sets.", no_args_is_help=True)
train_app = typer.Typer(help="Train models.", no_args_is_help=True)
app.add_typer(kb_app, name="kb")
app.add_typer(evaluate_app, name="evaluate")
app.add_typer(train_app, name="train")

SystemsOpt = Annotated[
    str | None, typer.Option("--systems", help="Comma-separated: icd10cm,icd10pcs,hcpcs,cpt,custom")
]
KbOpt = Annotated[Path | None, typer.Option("--kb", help="Knowledge-base directory.")]
RankerOpt = Annotated[str | None, typer.Option(
    "--ranker", help="Ranker directory, or 'none' for raw similarity scores "
                     "(default: the shipped ranker).")]
TopOpt = Annotated[int, typer.Option("--top", help="At most this many codes.")]
SettingOpt = Annotated[str, typer.Option(help="outpatient or inpatient")]
MinScoreOpt = Annotated[float | None, typer.Option(help="Confidence threshold.")]
NerOpt = Annotated[str | None, typer.Option(help="NER: 'dictionary' or a spaCy package.")]


def _systems(value: str | None) -> list[str] | None:
    return [s.strip() for s in value.split(",") if s.strip()] if value else None


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


# ------------------------------------------------------------------- suggest
@app.command()
def suggest(
    file: Annotated[str, typer.Argument(help="Note file, or - for standard input.")],
    format: Annotated[str, typer.Option("--format", "-f", help="table, json, html or fhir "
                                        "(a FHIR R4 Bundle)")] = "table",
    systems: SystemsOpt = None,
    top: TopOpt = 20,
    setting: SettingOpt = "outpatient",
    min_score: MinScoreOpt = None,
    ner: NerOpt = None,
    kb: KbOpt = None,
    output: Annotated[Path | None, typer.Option("--output", "-o")] = None,
    ranker: RankerOpt = None,
    site_model: Annotated[Path | None, typer.Option(
        "--site-model", help="Site model directory (medcode train ranker --gold).")] = None,
    max_chars: Annotated[int, typer.Option("--max-chars", help="Longest note accepted.")
                         ] = 1_000_000,
    hcc: Annotated[bool, typer.Option("--hcc", help="CMS-HCC V28 of each ICD-10-CM code and "
                                      "the note's HCCs, hierarchies applied.")] = False,
    hcc_year: Annotated[int, typer.Option("--hcc-year", help="CMS-HCC payment year: 2025, "
                                          "2026 or 2027.")] = 2026,
    drg: Annotated[bool, typer.Option("--drg", help="MS-DRG of the stay (inpatient) and the "
                                      "secondary codes that change it.")] = False,
    principal: Annotated[str | None, typer.Option(
        "--principal", help="Principal diagnosis for --drg (default: first ICD-10-CM code).")
    ] = None,
    age: Annotated[int, typer.Option("--age", help="Patient age for --drg.")] = 65,
    sex: Annotated[str, typer.Option("--sex", help="Patient sex for --drg: M, F or U.")] = "U",
    note_id: Annotated[str | None, typer.Option("--note-id", help="Note id for FHIR.")] = None,
    patient: Annotated[str | None, typer.Option(
        "--patient", help="FHIR subject reference, e.g. Patient/123.")] = None,
) -> None:
    """Suggest codes for one note."""
    import medcode_nlp
    from medcode_nlp.claims.views import ClaimOptions, render_claims
    from medcode_nlp.cli.textio import read_note
    from medcode_nlp.nlp.render import render_html, render_table

    if format not in ("table", "json", "html", "fhir"):
        raise MedcodeError(f"Unknown --format {format!r}; expected table, json, html or fhir.")
    claims = ClaimOptions(hcc_year=hcc_year if hcc else None, drg=drg, principal=principal,
                          age=age, sex=sex, note_id=note_id, patient=patient)
    claims.check(format, setting)
    text = read_note(file)
    check_note(text, "<stdin>" if file == "-" else file, max_chars)
    check_systems(_systems(systems), kb)
    with first_run_notice(kb):
        coder = medcode_nlp.load(ner=ner, kb=kb, ranker=ranker, setting=setting,
                                 systems=_systems(systems), top_k=top, min_score=min_score,
                                 max_chars=max_chars)
    if site_model is not None:
        from medcode_nlp.ranking.site_model import SiteModel

        coder.site_model = SiteModel.load(site_model)
    result = coder(text)
    if format == "fhir" or hcc or drg:
        rendered = render_claims(result, text, format, claims)
    elif format == "json":
        rendered = result.to_json(indent=2)
    elif format == "html":
        rendered = render_html(text, result)
    else:
        rendered = render_table(result)
    if output is not None:
        output.write_text(rendered, encoding="utf-8")
    else:
        typer.echo(rendered)


# -------------------------------------------------------------------- search
@app.command()
def search(
    text: Annotated[str, typer.Argument(help="Query text, or - to read one query per line.")],
    systems: SystemsOpt = None,
    top: Annotated[int, typer.Option("--top")] = 10,
    kb: KbOpt = None,
    ranked: Annotated[bool, typer.Option(
        "--ranked", help="Order by the shipped term ranker's probability (score), not by "
                         "n-gram similarity.")] = False,
) -> None:
    """Search the knowledge base for codes matching a term."""
    from medcode_nlp.kb.search import search_terms

    check_systems(_systems(systems), kb)
    ensure_kb(kb)
    ranker = None
    if ranked:
        from medcode_nlp.ranking.model import load_default_ranker

        ranker = load_default_ranker()

    if text == "-":
        queries = [line.strip() for line in sys.stdin if line.strip()]
        for query, candidates in zip(queries, search_terms(queries, _systems(systems), top, kb, ranker),
                                     strict=True):
            record = {"query": query, "candidates": [
                {k: c[k] for k in ("code", "system", "description", "score", "billable")}
                for c in candidates]}
            typer.echo(json.dumps(record, ensure_ascii=False))
        return
    (candidates,) = search_terms([text], _systems(systems), top, kb, ranker)
    for c in candidates:
        flag = "" if c["billable"] else " (not billable)"
        typer.echo(f"{c['score']:.3f}  {c['system']:<8} {c['code']:<9} {c['description']}{flag}")


@app.command()
def lookup(
    code: Annotated[str, typer.Argument(help="A code, with or without dot.")],
    system: Annotated[str | None, typer.Option(help="Restrict to one code system.")] = None,
    kb: KbOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show a code with its notes (excludes, code first, 7th characters, aliases)."""
    from medcode_nlp.kb.search import describe_code

    check_systems([system] if system else None, kb)
    ensure_kb(kb)
    info = describe_code(code, system, kb)
    if as_json:
        print_json(info)
        return
    for entry in info:
        typer.echo(f"{entry['system']} {entry['code']}: {entry['description']}"
                   f"{'' if entry['billable'] else '  [not billable]'}")
        for key in ("parent", "excludes1", "excludes2", "code_first", "use_additional",
                    "seventh_characters", "extra", "aliases"):
            if entry.get(key):
                typer.echo(f"  {key}: {entry[key]}")


# ------------------------------------------------------------------------ kb
@kb_app.command("build")
def kb_build(path: KbOpt = None) -> None:
    """Build the built-in knowledge base (ICD-10-CM FY2026 + ICD-10-PCS)."""
    from medcode_nlp.kb.build import build_default_kb
    from medcode_nlp.kb.store import default_kb_path

    built = build_default_kb(path or default_kb_path())
    print_json(built.info())


@kb_app.command("info")
def kb_info(kb: KbOpt = None) -> None:
    """Counts and versions per code system."""
    from medcode_nlp.kb.store import load_kb

    print_json(load_kb(kb).info())


@kb_app.command("add")
def kb_add(
    kind: Annotated[str, typer.Argument(help="hcpcs, cpt, custom, icd10cm-index, "
                                        "icd10pcs-tables or icd10pcs-index")],
    file: Annotated[Path, typer.Argument(help="The official or licensed file.")],
    kb: KbOpt = None,
    system: Annotated[str, typer.Option(help="System name for custom lists.")] = "custom",
) -> None:
    """Add a code set or index from an official file to the knowledge base."""
    from medcode_nlp.kb.sources import add_source

    print_json(add_source(kind, file, kb, system=system))




# --------------------------------------------------------------------- batch
@app.command()
def batch(
    input: Annotated[Path, typer.Argument(help="Notes: .jsonl, .csv or .parquet.")],
    output: Annotated[Path, typer.Argument(help="Results: .jsonl or .parquet.")],
    id_field: Annotated[str, typer.Option("--id-field", help="Id field/column.")] = "id",
    text_field: Annotated[str, typer.Option("--text-field", help="Text field/column.")] = "text",
    workers: Annotated[int, typer.Option("--workers", "-w",
                                         help="Processes on this machine (-1: all cores).")] = 1,
    scheduler: Annotated[str | None, typer.Option(
        "--scheduler", help="Dask scheduler address (tcp://host:8786): run on its workers.")
    ] = None,
    chunk_size: Annotated[int, typer.Option("--chunk-size",
                                            help="Notes per committed chunk.")] = 128,
    input_format: Annotated[str | None, typer.Option(
        "--input-format", help="jsonl, csv or parquet (default: from the extension)")] = None,
    output_format: Annotated[str | None, typer.Option(
        "--output-format", help="jsonl or parquet (default: from the extension)")] = None,
    systems: SystemsOpt = None,
    top: TopOpt = 20,
    setting: SettingOpt = "outpatient",
    min_score: MinScoreOpt = None,
    ner: NerOpt = None,
    kb: KbOpt = None,
    max_chars: Annotated[int, typer.Option("--max-chars", help="Longest note accepted.")
                         ] = 1_000_000,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
    ranker: RankerOpt = None,
    rows: Annotated[str, typer.Option("--rows", help="Parquet: notes (one row per note, the "
                                      "result as JSON) or codes (one row per code, the "
                                      "columns of to_dataframe)")] = "notes",
    hcc_year: Annotated[int, typer.Option("--hcc-year", help="--rows codes: CMS-HCC payment "
                                          "year of the hcc column.")] = 2026,
) -> None:
    """Code many notes; resumable: after a crash, run the same command again."""
    from medcode_nlp.batch.runner import run_batch

    load_options: dict[str, Any] = {"ner": ner, "setting": setting, "top_k": top,
                                    "min_score": min_score, "max_chars": max_chars,
                                    "systems": _systems(systems)}
    if kb is not None:
        load_options["kb"] = str(kb)
    if ranker is not None:
        load_options["ranker"] = ranker
    check_systems(_systems(systems), kb)
    ensure_kb(kb)
    summary = run_batch(input, output, id_field=id_field, text_field=text_field,
                        input_format=input_format, output_format=output_format,
                        workers=workers, chunk_size=chunk_size, load_options=load_options,
                        scheduler=scheduler, progress=progress, rows=rows,
                        hcc_year=hcc_year)
    print_json(summary.to_dict())


# --------------------------------------------------------------------- serve
@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on; any but loopback "
                                      "needs an API token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    token: Annotated[str | None, typer.Option(help="API token (better: $MEDCODE_API_TOKEN, "
                                              "which ps cannot show).")] = None,
    db: Annotated[Path | None, typer.Option(help="Review database (default: in the user "
                                            "data directory, or $MEDCODE_REVIEW_DB).")] = None,
    ner: NerOpt = None,
    kb: KbOpt = None,
    workers: Annotated[int, typer.Option(help="Worker processes (each loads the model).")] = 1,
    max_body_mb: Annotated[float, typer.Option(help="Request body limit in MiB.")] = 5.0,
    log_level: Annotated[str, typer.Option(help="critical, error, warning, info, debug")] = "info",
) -> None:
    """Serve the HTTP API and the coder review UI (needs the serve extra)."""
    from medcode_nlp.serve import run_server

    run_server(host=host, port=port, token=token, db=db, ner=ner, kb=kb, workers=workers,
               max_body_bytes=int(max_body_mb * 1024 * 1024), log_level=log_level)



# ----------------------------------------------------------------------- main
LOG_LEVEL_ENV = "MEDCODE_LOG_LEVEL"


def log_level_from_env() -> int:
    """The level named by ``$MEDCODE_LOG_LEVEL`` (debug, info, ...); WARNING by default."""
    name = os.environ.get(LOG_LEVEL_ENV, "").strip().upper()
    level = logging.getLevelName(name) if name else logging.WARNING
    return level if isinstance(level, int) else logging.WARNING


def main() -> None:
    """Console entry point: errors become one clear line and exit code 2."""
    logging.basicConfig(level=log_level_from_env(), format="%(levelname)s %(name)s: %(message)s")
    try:
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            raise SystemExit(code)
    except MedcodeError as error:
        typer.echo(f"error: {error}", err=True)
        raise SystemExit(2) from None
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        raise SystemExit(130) from None
    except Exception as error:  # noqa: BLE001  (the CLI never shows a traceback)
        import click

        if isinstance(error, click.ClickException):
            error.show()
            raise SystemExit(error.exit_code) from None
        # The message of an unexpected error could quote input: show only its type.
        typer.echo(f"error: unexpected {type(error).__name__}; set MEDCODE_DEBUG=1 and use "
                   "the Python API to see details", err=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
