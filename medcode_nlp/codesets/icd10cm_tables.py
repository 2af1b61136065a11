"""The ICD-10-CM Neoplasm Table and Table of Drugs and Chemicals as clinical-style aliases.

Both CDC files (``icd-10-cm-neoplasm-YYYY.xml``, ``icd-10-cm-drug-YYYY.xml``) list a term
path (main term, subterms) with one code per column. Each coded cell becomes an
:class:`IndexTerm` phrased the way a note or a tabular title says it, so that it can be
searched next to the code titles:

* neoplasm cells: the site (written as a mention, "pterygoid fossa connective tissue") in the
  column's phrase: "malignant neoplasm of ...", "secondary malignant neoplasm of ...",
  "carcinoma in situ of ...", "benign neoplasm of ...", "neoplasm of uncertain behavior of
  ...", "neoplasm of unspecified behavior of ..."; a primary site also gives "... cancer", a
  secondary one "... metastasis";
* drug cells: "accidental poisoning by X", "intentional self-harm poisoning by X", "assault
  poisoning by X", "poisoning by X, undetermined intent", "adverse effect of X", "underdosing
  of X".

Nonessential modifiers and parenthesised text are dropped (see
:func:`medcode_nlp.codesets.index_terms.mention_text`). Cells marked ``--`` have no code.
"""

from __future__ import annotations

import logging
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from medcode_nlp.codesets.base import IndexTerm
from medcode_nlp.codesets.icd10cm_index import dotted_index_code
from medcode_nlp.errors import Errors, InputError

SYSTEM = "icd10cm"
TABLES = ("neoplasm", "drug")
logger = logging.getLogger(__name__)

_FMT = "ICD-10-CM table XML"
_TERMS = ("mainTerm", "term")
#: Column heading (lower case, letters only) -> phrase templates ({} = site or substance).
_PHRASES: dict[str, tuple[str, ...]] = {
    "malignantprimary": ("malignant neoplasm of {}", "{} cancer"),
    "malignantsecondary": ("secondary malignant neoplasm of {}", "{} metastasis"),
    "cainsitu": ("carcinoma in situ of {}",),
    "benign": ("benign neoplasm of {}",),
    "uncertainbehavior": ("neoplasm of uncertain behavior of {}",),
    "unspecifiedbehavior": ("neoplasm of unspecified behavior of {}",),
    "poisoningaccidentalunintentional": ("accidental poisoning by {}",),
    "poisoningintentionalselfharm": ("intentional self-harm poisoning by {}",),
    "poisoningassault": ("assault poisoning by {}",),
    "poisoningundetermined": ("poisoning by {}, undetermined intent",),
    "adverseeffect": ("adverse effect of {}",),
    "underdosing": ("underdosing of {}",),
}
_NEOPLASM_MAIN = "neoplasm"
#: A site path already naming the tumour gets no "... cancer" / "... metastasis" variant.
_NAMED_TUMOUR = re.compile(r"carcinoma|cancer|neoplasm|tumou?r|sarcoma|melanoma|lymphoma", re.I)


def _heading_key(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalpha())


def _title(element: ET.Element) -> str:
    """Title text without nonessential modifiers or deleted text."""
    parts = [element.text or ""]
    for child in element:
        if child.tag not in ("nemod", "old"):
            parts.append("".join(child.itertext()))
        parts.append(child.tail or "")
    return " ".join("".join(parts).split())


def table_phrases(heading: str, path: list[str]) -> list[str]:
    """Clinical-style texts of one cell: its column ``heading`` applied to the term ``path``."""
    from medcode_nlp.codesets.index_terms import mention_text

    templates = _PHRASES.get(_heading_key(heading))
    if not templates:
        return []
    is_neoplasm = _heading_key(heading) in (
        "malignantprimary", "malignantsecondary", "cainsitu", "benign", "uncertainbehavior",
        "unspecifiedbehavior")
    if is_neoplasm and path and path[0].lower().startswith(_NEOPLASM_MAIN):
        path = path[1:]
    subject = mention_text(path)
    if not subject:
        if not is_neoplasm:
            return []
        return [" ".join(templates[0].replace("of {}", "").split())]
    named = _NAMED_TUMOUR.search(subject) is not None
    return [template.format(subject) for template in templates
            if not (named and template.startswith("{}"))]


def _walk(path: Path, handle: IO[bytes]) -> Iterator[IndexTerm]:
    headings: dict[str, str] = {}
    titles: list[str] = []
    tags: list[str] = []
    for event, element in ET.iterparse(handle, events=("start", "end")):
        if event == "start":
            if not tags and element.tag != "ICD10CM.index":
                raise _fail(path, f"root element is <{element.tag}>, expected <ICD10CM.index>")
            tags.append(element.tag)
            if element.tag in _TERMS:
                titles.append("")
            continue
        tags.pop()
        parent = tags[-1] if tags else ""
        if element.tag == "head" and parent == "indexHeading":
            headings[element.get("col", "")] = " ".join("".join(element.itertext()).split())
        elif element.tag == "title" and parent in _TERMS:
            titles[-1] = _title(element)
        elif element.tag == "cell" and parent in _TERMS:
            code = dotted_index_code("".join(element.itertext()))
            if code is None:
                continue  # "--": no code in this column
            for text in table_phrases(headings.get(element.get("col", ""), ""), titles):
                yield IndexTerm(term=text, code=code, system=SYSTEM)
        elif element.tag in _TERMS:
            titles.pop()
            element.clear()


def _fail(path: Path, detail: str) -> InputError:
    return InputError(Errors.E009.format(path=path, fmt=_FMT, detail=detail))


def load_table_terms(path: str | os.PathLike[str]) -> list[IndexTerm]:
    """Clinical-style aliases from a CDC Neoplasm Table or Table of Drugs XML (module doc)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(Errors.E010.format(path=path))
    try:
        with open(path, "rb") as handle:
            found = list(_walk(path, handle))
    except ET.ParseError as error:
        raise _fail(path, f"malformed XML ({error})") from error
    if not found:
        raise _fail(path, "no coded cells under a known Neoplasm or Drug table heading")
    terms = list({(t.term.lower(), t.code): t for t in found}.values())
    logger.info("loaded %d table terms from %s", len(terms), path.name)
    return terms
