"""ICD-10-CM Alphabetic Index terms from the official CDC index XML files.

One reader handles the three CDC files that share the ``ICD10CM.index`` root element:

* the Index to Diseases and Injuries and the External Cause Index (``<code>`` per term);
* the Neoplasm Table and the Table of Drugs and Chemicals (``<cell col="n">`` per term,
  whose column heading comes from ``<indexHeading>``).

Term text: the main term first, then each subterm, joined with ``", "`` (``"Fracture,
femur, neck"``). For table cells the lower-cased column heading is appended (``"Neoplasm,
neoplastic, breast, malignant primary"``). Nonessential modifiers (``<nemod>``, printed in
parentheses) are dropped by default: see ``nemod`` of :func:`load_icd10cm_index`.

Codes are given in dotted ICD-10-CM form (``A00.0``). A code the index prints with a
trailing dash still needs more characters; it keeps the dash, after a dot when only the
category is given: ``S72.0-``, ``C79.8-``, ``I63.-``. Stripping ``-`` and ``.`` gives the
prefix every valid completion starts with. ``see category``/``see subcategory`` pointers
(``<seecat>``, ``<subcat>``) become such dashed codes as well. ``<see>``/``<seeAlso>``
cross-references carry no code and are skipped; ``<manif>`` paired manifestation codes are
emitted for the same term when they look like codes.

The CDC also publishes the Index to Diseases and Injuries as a CSV export (``RowID, Letter,
Level, Term, ..., Code``; levels give the hierarchy). Each coded row becomes one term written
as a note would say it (``"iron deficiency anemia"``, built by
:func:`medcode_nlp.codesets.index_terms.mention_text`); ``see`` rows carry no code and are
skipped.
"""

from __future__ import annotations

import csv
import logging
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from medcode_nlp.codesets.base import IndexTerm
from medcode_nlp.errors import Errors, InputError

SYSTEM = "icd10cm"
NEMOD_MODES = ("drop", "keep", "both")
logger = logging.getLogger(__name__)

_ROOT = "ICD10CM.index"
_TERMS = ("mainTerm", "term")
_CODE = re.compile(r"([A-Z][0-9][0-9A-Z])\.?([0-9A-Z]{0,4})\.?(-*)")
_FMT = "ICD-10-CM index XML"


def dotted_index_code(text: str) -> str | None:
    """Dotted ICD-10-CM form of an index code (``S720`` -> ``S72.0``), or None if not a code.

    A trailing dash is kept (``S72.0-``; ``I63.-`` when only the category is given).
    """
    match = _CODE.fullmatch(text.strip().upper().replace(" ", ""))
    if match is None:
        return None
    category, rest, dash = match.groups()
    code = f"{category}.{rest}" if rest else category
    if dash:
        code += "-" if rest else ".-"
    return code


def _title_text(title: ET.Element, keep_nemod: bool) -> str:
    """Text of a ``<title>``, without (or with) its nonessential modifiers and deleted text."""
    parts = [title.text or ""]
    for child in title:
        if child.tag == "nemod":
            if keep_nemod:
                parts.append(f" {''.join(child.itertext()).strip()} ")
        elif child.tag != "old":
            parts.append("".join(child.itertext()))
        parts.append(child.tail or "")
    return " ".join("".join(parts).split())


def _join(titles: list[str]) -> str:
    return ", ".join(title for title in titles if title)


def _iter_terms(path: Path, nemod: str) -> Iterator[IndexTerm]:
    with open(path, "rb") as handle:
        yield from _walk(path, handle, nemod)


def _walk(path: Path, handle: IO[bytes], nemod: str) -> Iterator[IndexTerm]:
    headings: dict[str, str] = {}
    # One frame per open mainTerm/term: (title without nemods, title with nemods).
    frames: list[tuple[str, str]] = []
    tags: list[str] = []
    variants = {"drop": (False,), "keep": (True,), "both": (False, True)}[nemod]
    skipped = 0
    for event, element in ET.iterparse(handle, events=("start", "end")):
        if event == "start":
            if not tags and element.tag != _ROOT:
                raise _fail(path, f"root element is <{element.tag}>, expected <{_ROOT}>")
            tags.append(element.tag)
            if element.tag in _TERMS:
                frames.append(("", ""))
            continue
        tags.pop()
        parent = tags[-1] if tags else ""
        tag = element.tag
        if tag == "head" and parent == "indexHeading":
            headings[element.get("col", "")] = " ".join("".join(element.itertext()).split())
        elif tag == "title" and parent in _TERMS:
            frames[-1] = (_title_text(element, False), _title_text(element, True))
        elif tag in ("code", "manif", "subcat", "seecat", "cell") and parent in _TERMS:
            raw = "".join(element.itertext()).strip()
            if tag == "cell" and raw.strip("-") == "":
                continue  # "-" / "--": no code in this column
            if tag in ("subcat", "seecat"):
                raw = raw.rstrip("-") + "-"
            code = dotted_index_code(raw)
            if code is None:
                if tag != "manif":
                    skipped += 1
                    logger.debug("skipped non-code <%s> value %r", tag, raw[:40])
                continue
            suffix = ""
            if tag == "cell":
                heading = headings.get(element.get("col", ""), "")
                suffix = heading.lower() if heading else f"column {element.get('col')}"
            texts = []
            for keep in variants:
                titles = [frame[1] if keep else frame[0] for frame in frames]
                text = _join([*titles, suffix])
                if text and text not in texts:
                    texts.append(text)
            for text in texts:
                yield IndexTerm(term=text, code=code, system=SYSTEM)
        elif tag in _TERMS:
            frames.pop()
            element.clear()
    if skipped:
        logger.warning("skipped %d index entries whose code is not an ICD-10-CM code", skipped)


def _load_csv(path: Path) -> list[IndexTerm]:
    """Coded rows of the index CSV export as clinical-style terms (module doc)."""
    from medcode_nlp.codesets.index_terms import mention_text, read_index_rows

    unique: dict[tuple[str, str], IndexTerm] = {}
    skipped = 0
    try:
        for row in read_index_rows(path):
            if not row.code:
                continue
            code, text = dotted_index_code(row.code), mention_text(row.path)
            if code is None or not text:
                skipped += 1
                continue
            unique.setdefault((text.lower(), code), IndexTerm(term=text, code=code, system=SYSTEM))
    except UnicodeDecodeError as error:
        raise _fail(path, f"not UTF-8 text (byte {error.start})", "ICD-10-CM index CSV") from error
    except (KeyError, TypeError) as error:
        raise _fail(path, f"missing column {error}", "ICD-10-CM index CSV") from error
    except ValueError as error:
        raise _fail(path, f"bad Level or RowID value ({error})", "ICD-10-CM index CSV") from error
    except csv.Error as error:
        raise _fail(path, f"malformed CSV ({error})", "ICD-10-CM index CSV") from error
    if not unique:
        raise _fail(path, "no coded index rows", "ICD-10-CM index CSV")
    if skipped:
        logger.warning("skipped %d index rows whose code is not an ICD-10-CM code", skipped)
    logger.info("loaded %d ICD-10-CM index terms from %s", len(unique), path.name)
    return list(unique.values())


def _fail(path: Path, detail: str, fmt: str = _FMT) -> InputError:
    return InputError(Errors.E009.format(path=path, fmt=fmt, detail=detail))


def load_icd10cm_index(path: str | os.PathLike[str], *, nemod: str = "drop") -> list[IndexTerm]:
    """Read a CDC ICD-10-CM index XML (disease, external-cause, neoplasm or drug index), or
    the CSV export of the Index to Diseases and Injuries (``.csv``; ``nemod`` does not apply).

    ``nemod`` says what to do with nonessential modifiers: ``"drop"`` them (the default;
    the essential term is what a note is most likely to say), ``"keep"`` them in
    parentheses as printed, or emit ``"both"`` forms when they differ. The file is read
    with ``iterparse``, so memory stays small on the full index.
    """
    if nemod not in NEMOD_MODES:
        raise InputError(Errors.E011.format(value=nemod, name="nemod", allowed=NEMOD_MODES))
    path = Path(path)
    if not path.exists():
        raise InputError(Errors.E010.format(path=path))
    if not path.is_file():
        raise _fail(path, "not a regular file")
    if path.suffix.lower() == ".csv":
        return _load_csv(path)
    try:
        unique = {(term.term, term.code): term for term in _iter_terms(path, nemod)}
    except ET.ParseError as error:
        raise _fail(path, f"malformed XML ({error})") from error
    except OSError as error:
        raise _fail(path, f"cannot be read ({error.strerror})") from error
    terms = list(unique.values())
    logger.info("loaded %d ICD-10-CM index terms from %s", len(terms), path.name)
    return terms
