"""CPT codes from a user's licensed file, plus the public CPT section ranges.

CPT descriptors are copyrighted by the AMA: none are shipped with this project. A user who
holds a CPT licence loads their own file (TSV or CSV; with or without a header; columns
code, descriptor and optionally a short descriptor). The code ranges of the CPT sections
are public facts and are built in, so a code can be placed in its section without any
descriptor.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from medcode_nlp.codesets.base import Alias, CodeEntry
from medcode_nlp.codesets.custom import guess_delimiter, iter_csv_rows, read_utf8_text
from medcode_nlp.errors import Errors, InputError

SYSTEM = "cpt"
logger = logging.getLogger(__name__)

_FMT = "a CPT code file (TSV/CSV)"
_CODE = re.compile(r"[0-9]{4}[0-9FTU]")
_CATEGORY = {"F": "II", "T": "III", "U": "PLA"}

# (section, first code, last code). A code can fall in several ranges (99100-99140 is
# Anesthesia inside the Medicine range 90281-99199): the narrowest range wins.
# The upper ends of the PLA and Category III ranges are open (new codes every quarter).
CPT_SECTIONS: tuple[tuple[str, str, str], ...] = (
    ("Evaluation and Management", "99202", "99499"),
    ("Anesthesia", "00100", "01999"),
    ("Anesthesia", "99100", "99140"),
    ("Surgery", "10004", "69990"),
    ("Radiology", "70010", "79999"),
    ("Pathology and Laboratory", "80047", "89398"),
    ("Pathology and Laboratory", "0001U", "9999U"),
    ("Medicine", "90281", "99199"),
    ("Medicine", "99500", "99607"),
    ("Category II", "0001F", "9007F"),
    ("Category III", "0042T", "9999T"),
)

# Subsections of Surgery by body system (public CPT code ranges).
CPT_SURGERY_SUBSECTIONS: tuple[tuple[str, str, str], ...] = (
    ("General", "10004", "10021"),
    ("Integumentary System", "10030", "19499"),
    ("Musculoskeletal System", "20100", "29999"),
    ("Respiratory System", "30000", "32999"),
    ("Cardiovascular System", "33016", "37799"),
    ("Hemic and Lymphatic Systems", "38100", "38999"),
    ("Mediastinum and Diaphragm", "39000", "39599"),
    ("Digestive System", "40490", "49999"),
    ("Urinary System", "50010", "53899"),
    ("Male Genital System", "54000", "55899"),
    ("Reproductive System Procedures", "55920", "55920"),
    ("Intersex Surgery", "55970", "55980"),
    ("Female Genital System", "56405", "58999"),
    ("Maternity Care and Delivery", "59000", "59899"),
    ("Endocrine System", "60000", "60699"),
    ("Nervous System", "61000", "64999"),
    ("Eye and Ocular Adnexa", "65091", "68899"),
    ("Auditory System", "69000", "69979"),
    ("Operating Microscope", "69990", "69990"),
)

_CODE_HEADERS = {"code", "cpt", "cptcode", "hcpcs", "hcpcscode"}
_LONG_HEADERS = {"descriptor", "description", "longdescriptor", "longdescription", "long"}
_SHORT_HEADERS = {"shortdescriptor", "shortdescription", "short"}


def _key(code: str) -> tuple[str, int]:
    """Sort key comparing codes of the same kind: (final letter or '', number)."""
    if code[-1].isdigit():
        return ("", int(code))
    return (code[-1], int(code[:-1]))


def _lookup(code: str, ranges: tuple[tuple[str, str, str], ...]) -> str | None:
    code = code.strip().upper()
    if not _CODE.fullmatch(code):
        return None
    key = _key(code)
    best: tuple[int, str] | None = None
    for name, first, last in ranges:
        low, high = _key(first), _key(last)
        if low[0] == key[0] and low[1] <= key[1] <= high[1]:
            span = high[1] - low[1]
            if best is None or span < best[0]:
                best = (span, name)
    return best[1] if best else None


def cpt_section(code: str) -> str | None:
    """CPT section of a code (``"Surgery"``, ``"Category III"``, ...), or None if outside."""
    return _lookup(code, CPT_SECTIONS)


def cpt_subsection(code: str) -> str | None:
    """Body-system subsection of a Surgery code (``"Digestive System"``), else None."""
    return _lookup(code, CPT_SURGERY_SUBSECTIONS)


def is_cpt_code(code: str) -> bool:
    """Whether ``code`` has the CPT shape: 4 digits then a digit, F, T or U."""
    return bool(_CODE.fullmatch(code.strip().upper()))


def _fail(path: Path, detail: str) -> InputError:
    return InputError(Errors.E009.format(path=path, fmt=_FMT, detail=detail))


def _columns(header: list[str]) -> tuple[int, int, int | None] | None:
    """(code, descriptor, short) column indexes when ``header`` is a header row."""
    names = [re.sub(r"[\s_\-]", "", cell).lower() for cell in header]
    if not names or any(char.isdigit() for char in header[0]):
        return None
    code = next((i for i, n in enumerate(names) if n in _CODE_HEADERS), 0)
    long = next((i for i, n in enumerate(names) if n in _LONG_HEADERS), 1)
    short = next((i for i, n in enumerate(names) if n in _SHORT_HEADERS), None)
    return code, long, short


def load_cpt(path: str | os.PathLike[str]) -> list[CodeEntry]:
    """Read a licensed CPT file: one code per row, with its descriptor.

    The delimiter is the first of tab, comma, semicolon and pipe found in the first line.
    A first row whose first cell has no digit is a header: columns named ``code``/``cpt``,
    ``descriptor``/``description`` and ``short descriptor`` are found by name; without a
    header the columns are code, descriptor and an optional short descriptor.
    Malformed rows raise :class:`InputError` (E009) naming the file and line.
    """
    path = Path(path)
    text = read_utf8_text(path, _FMT)
    entries: dict[str, CodeEntry] = {}
    columns: tuple[int, int, int | None] = (0, 1, 2)
    width = 3
    first = True
    for line, cells in iter_csv_rows(path, _FMT, text, guess_delimiter(text)):
        if first:
            first = False
            found = _columns(cells)
            if found is not None:
                columns, width = found, len(cells)
                continue
        if len(cells) > width:
            detail = f"line {line}: {len(cells)} fields, expected at most {width}"
            raise _fail(path, detail + " (quote descriptors that contain the delimiter)")
        code_col, long_col, short_col = columns
        code = cells[code_col].upper() if code_col < len(cells) else ""
        if not _CODE.fullmatch(code):
            shown = code[:20]
            raise _fail(path, f"line {line}: {shown!r} is not a CPT code (4 digits + digit/F/T/U)")
        descriptor = cells[long_col] if long_col < len(cells) else ""
        if not descriptor:
            raise _fail(path, f"line {line}: code {code} has no descriptor")
        if code in entries:
            raise _fail(path, f"line {line}: code {code} appears twice")
        aliases = [Alias(descriptor, "description")]
        short = cells[short_col] if short_col is not None and short_col < len(cells) else ""
        if short and short.lower() != descriptor.lower():
            aliases.append(Alias(short, "short"))
        extra = {"category": _CATEGORY.get(code[-1], "I")}
        for name, value in (("section", cpt_section(code)), ("subsection", cpt_subsection(code))):
            if value:
                extra[name] = value
        entries[code] = CodeEntry(
            code=code, system=SYSTEM, description=descriptor, aliases=aliases, extra=extra
        )
    if not entries:
        raise _fail(path, "no CPT codes found")
    logger.info("loaded %d CPT codes from %s", len(entries), path.name)
    return list(entries.values())
