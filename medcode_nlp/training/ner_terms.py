"""Word lists and filters of the weak NER labels: procedure terms, operations, suffixes, modifiers, and the problem/drug name filters."""

from __future__ import annotations

import re

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


def norm_term(text: str) -> str:
    """Lower case with white space folded (the comparison form of a lexicon term)."""
    return re.sub(r"\s+", " ", text.strip().lower())


def clean_title(title: str) -> list[str]:
    """Short names from an ICD-10-CM title or inclusion term (``Fever, unspecified`` -> fever).

    Only the part before the first comma is used (what follows qualifies it: site, laterality,
    encounter); ``A and B`` gives both.
    """
    t = re.sub(r"\[[^\]]*\]|\([^)]*\)", " ", title)
    t = re.sub(r"\b(?:NOS|NEC)\b", " ", t)
    t = re.split(r"[,;]", t)[0]
    out = []
    for part in re.split(r" and | or ", t):
        part = norm_term(re.sub(r"^(?:other|unspecified)\s+", "", part.strip(), flags=re.I))
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


def is_problem_name(name: str, gold: set[str], heads: set[str]) -> bool:
    """A lexicon name is kept as PROBLEM if gold, or its last word looks like a disease head."""
    if name in gold:
        return True
    words = name.split()
    if name in GENERIC_TERMS or words[-1] in NOT_PROBLEMS or ADJECTIVE_RE.fullmatch(name):
        return False
    return bool(DISEASE_SUFFIX_RE.search(words[-1])) or words[-1] in heads


def is_drug_name(name: str, gold: set[str]) -> bool:
    """A Table-of-Drugs name is kept as DRUG if gold, or one word with a drug-like ending."""
    if name in gold:
        return True
    return (
        " " not in name
        and len(name) >= 6
        and name not in NOT_DRUGS
        and bool(DRUG_SUFFIX_RE.search(name))
    )
