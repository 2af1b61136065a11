"""HCPCS Level II codes and modifiers from the official CMS annual file (TXT or XLSX).

CMS publishes ``HCPCyyyy_CONTR_ANWEB`` as a fixed-width text file (320-character records,
layout in ``HCPCSyyyy_recordlayout.txt``) and as an Excel workbook with the same records.
A long description longer than one record continues on the following records:

====  ==========================================================
RIC   record
====  ==========================================================
3     first record of a procedure code (carries the detail fields)
4     continuation of a procedure code's long description
7     first record of a modifier
8     continuation of a modifier's long description
====  ==========================================================

Continuation text is joined with single spaces and runs of white space are collapsed, so
both forms of a release give identical descriptions. Terminated codes are kept, with
``extra["termination_date"]`` (YYYYMMDD); :func:`retire_terminated` turns the codes terminated
before a date into non-billable entries without search aliases (looked up, never suggested).
Besides the dates, the Medicare fields a coder reads are kept in ``extra``: the first pricing
indicator, the coverage code and the BETOS (Berenson-Eggers type of service) code, each with
its meaning where the record layout defines one (``extra["coverage"]``, ``extra["pricing"]``).
"""

from __future__ import annotations

import io
import logging
import os
import re
import warnings
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from medcode_nlp.codesets.base import Alias, CodeEntry
from medcode_nlp.errors import Errors, InputError

SYSTEM = "hcpcs"
logger = logging.getLogger(__name__)

_FIRST = {"3": "procedure", "7": "modifier"}
_CONTINUATION = {"4": "procedure", "8": "modifier"}
_PROCEDURE = re.compile(r"[A-Z][0-9]{4}")
_MODIFIER = re.compile(r"[A-Z0-9]{2}")
# Fixed-width record: code (1-5), sequence (6-10), record identification code (11).
_RECORD = re.compile(r"([A-Z][0-9]{4}| {3}[A-Z0-9]{2})([0-9]{5})([3478])")
# 0-based [start, end) slices of the fixed-width fields this loader keeps.
_LONG = slice(11, 91)
_SHORT = slice(91, 119)
_FIELDS = {
    "pricing_indicator": slice(119, 121),
    "coverage_code": slice(229, 230),
    "betos": slice(256, 259),
    "added_date": slice(268, 276),
    "effective_date": slice(276, 284),
    "termination_date": slice(284, 292),
    "action_code": slice(292, 293),
}
# XLSX column headers (upper case, spaces and underscores removed) -> field names.
_XLSX_COLUMNS = {
    "HCPC": "code",
    "HCPCS": "code",
    "RECID": "ric",
    "LONGDESCRIPTION": "long",
    "SHORTDESCRIPTION": "short",
    "ADDDT": "added_date",
    "ACTEFFDT": "effective_date",
    "TERMDT": "termination_date",
    "ACTIONCD": "action_code",
    "PRICE1": "pricing_indicator",
    "COV": "coverage_code",
    "BETOS": "betos",
}
#: Coverage codes of the CMS record layout.
COVERAGE = {
    "C": "Carrier judgment",
    "D": "Special coverage instructions apply",
    "I": "Not payable by Medicare",
    "M": "Non-covered by Medicare",
    "S": "Non-covered by Medicare statute",
}
#: Pricing indicator groups of the CMS record layout (first digit, then a few exact codes).
PRICING = {
    "00": "Not separately priced by Part B",
    "1": "Physician fee schedule",
    "2": "Clinical lab fee schedule",
    "3": "DMEPOS fee schedule",
    "45": "Customized DME item",
    "46": "Carrier priced DMEPOS",
    "51": "Drug",
    "52": "Reasonable charge",
    "53": "Statute",
    "54": "Vaccination",
    "55": "Splints and casts",
    "56": "Intraocular lens inserted in a physician's office",
    "57": "Other carrier priced",
    "99": "Value not established",
}


@dataclass(slots=True)
class _Draft:
    code: str
    kind: str
    long_parts: list[str]
    short: str
    fields: dict[str, str] = field(default_factory=dict)


def _clean(text: object) -> str:
    return " ".join(str(text).split()) if text is not None else ""


def _fail(path: Path, fmt: str, detail: str) -> InputError:
    return InputError(Errors.E009.format(path=path, fmt=fmt, detail=detail))


def _assemble(
    path: Path, fmt: str, records: Iterable[tuple[str, str, str, str, str, dict[str, str]]]
) -> list[CodeEntry]:
    """Join first and continuation records (where, code, ric, long, short, fields)."""
    drafts: dict[str, _Draft] = {}
    current: _Draft | None = None
    for where, code, ric, long_text, short, fields in records:
        if ric in _FIRST:
            kind = _FIRST[ric]
            pattern = _PROCEDURE if kind == "procedure" else _MODIFIER
            if not pattern.fullmatch(code):
                raise _fail(path, fmt, f"{where}: invalid {kind} code {code!r}")
            if code in drafts:
                raise _fail(path, fmt, f"{where}: code {code} appears twice")
            current = _Draft(code, kind, [long_text], short, fields)
            drafts[code] = current
        elif ric in _CONTINUATION:
            if current is None or current.code != code or current.kind != _CONTINUATION[ric]:
                detail = f"{where}: continuation of {code!r} without its first record"
                raise _fail(path, fmt, detail)
            current.long_parts.append(long_text)
        else:
            raise _fail(path, fmt, f"{where}: unknown record identification code {ric!r}")
    if not drafts:
        raise _fail(path, fmt, "no HCPCS records found")
    for draft in drafts.values():
        if not _clean(" ".join(draft.long_parts)) and not draft.short:
            raise _fail(path, fmt, f"code {draft.code} has no description")
    return [_entry(draft) for draft in drafts.values()]


#: First comma parts too vague to name an item on their own.
_VAGUE_HEADS = frozenset(
    "addition additions infusion foot heel lead sphere cervical preparatory supply supplies "
    "each other miscellaneous unlisted services service device system".split())
_SALTS = frozenset(
    "hydrochloride hcl sodium potassium calcium sulfate acetate phosphate citrate tartrate "
    "maleate mesylate succinate bromide chloride fumarate".split())
#: Title words a note leaves out ("portable gaseous oxygen system" -> "portable oxygen").
_UNSPOKEN = frozenset({"gaseous", "system", "service"})
_PARENS = re.compile(r"\s*\([^)]*\)")
_ZERO_TWO = re.compile(r"\b02\b")  # CMS short titles write oxygen as "02"


def head_aliases(description: str) -> list[str]:
    """Names a note uses for a Level II item or drug, from its CMS title.

    The first comma part names the item ("Oxygen concentrator, single delivery port, ..." ->
    "Oxygen concentrator") unless it is vague, also without the words a note leaves out
    ("Portable gaseous oxygen system" -> "Portable oxygen"); for "Injection, <drug>, <dose>" the drug gives
    "<drug> injection", "<drug>" and the drug without its salt ("ondansetron").
    """
    parts = [_PARENS.sub("", part).strip() for part in description.split(",")]
    parts = [part for part in parts if part]
    if len(parts) < 2:
        return []
    head = parts[0]
    if head.lower() == "injection":
        drug = parts[1]
        if drug.lower().startswith(("per ", "not otherwise")) or any(ch.isdigit() for ch in drug):
            return []
        plain = " ".join(w for w in drug.split() if w.lower() not in _SALTS)
        return list(dict.fromkeys(t for t in (f"{drug} injection", drug, plain) if t))
    words = head.split()
    if (words[0].lower() in _VAGUE_HEADS or len(words) > 6
            or (len(words) == 1 and len(head) < 6)):
        return []
    spoken = " ".join(w for w in words if w.lower() not in _UNSPOKEN)
    return list(dict.fromkeys(t for t in (head, spoken) if len(t) >= 6))


def _entry(draft: _Draft) -> CodeEntry:
    description = _clean(" ".join(draft.long_parts)) or draft.short
    aliases = [Alias(description, "description")]
    short = _ZERO_TWO.sub("O2", draft.short)
    if short and short.lower() != description.lower():
        aliases.append(Alias(short, "short"))
    if draft.kind == "procedure":
        aliases.extend(Alias(text, "head") for text in head_aliases(description))
    extra = {"type": draft.kind}
    extra.update({name: value for name, value in draft.fields.items() if value})
    coverage = COVERAGE.get(extra.get("coverage_code", ""))
    if coverage:
        extra["coverage"] = coverage
    price = extra.get("pricing_indicator", "")
    pricing = PRICING.get(price) or PRICING.get(price[:1]) if price else None
    if pricing:
        extra["pricing"] = pricing
    return CodeEntry(
        code=draft.code,
        system=SYSTEM,
        description=description,
        billable=draft.kind == "procedure",
        aliases=aliases,
        extra=extra,
    )


def _decode(raw: bytes) -> str:
    """Text of a CMS text file: UTF-8 when valid, else Windows-1252/Latin-1 (as CMS ships it)."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _txt_records(path: Path, text: str) -> Iterator[tuple[str, str, str, str, str, dict[str, str]]]:
    seen_record = False
    for number, line in enumerate(text.splitlines(), start=1):
        match = _RECORD.match(line)
        if match is None:
            # Disclaimer lines precede the records; anything else after them is an error.
            if seen_record and line.strip():
                raise _fail(path, "HCPCS fixed-width text", f"line {number}: not an HCPCS record")
            continue
        seen_record = True
        code, _, ric = match.groups()
        record = line.ljust(320)
        fields = {name: record[part].strip() for name, part in _FIELDS.items()}
        yield (
            f"line {number}",
            code.strip(),
            ric,
            record[_LONG],
            _clean(record[_SHORT]),
            fields if ric in _FIRST else {},
        )


def _cell(row: tuple[object, ...], index: int | None) -> object:
    return row[index] if index is not None and index < len(row) else None


def _xlsx_header(row: tuple[object, ...]) -> dict[str, int] | None:
    """Field name -> column index when ``row`` is the header row (first cell ``HCPC``)."""
    names = [re.sub(r"[\s_]", "", str(value or "")).upper() for value in row]
    if not names or names[0] not in ("HCPC", "HCPCS"):
        return None
    return {_XLSX_COLUMNS[name]: i for i, name in enumerate(names) if name in _XLSX_COLUMNS}


def _xlsx_records(path: Path, raw: bytes) -> list[tuple[str, str, str, str, str, dict[str, str]]]:
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    fmt = "HCPCS XLSX workbook"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # e.g. unparsable print header/footer
        try:
            workbook = openpyxl.load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
        except (zipfile.BadZipFile, InvalidFileException, KeyError, ValueError, OSError) as error:
            raise _fail(path, fmt, f"not a readable XLSX workbook ({error})") from error
        try:
            rows = list(workbook.worksheets[0].iter_rows(values_only=True))
        finally:
            workbook.close()
    records = []
    columns: dict[str, int] | None = None
    for number, row in enumerate(rows, start=1):
        if columns is None:
            columns = _xlsx_header(row)
            missing = {"code", "ric", "long", "short"} - set(columns or {})
            if columns is not None and missing:
                raise _fail(path, fmt, f"row {number}: header lacks {', '.join(sorted(missing))}")
            continue
        if all(value in (None, "") for value in row):
            continue
        ric = _clean(_cell(row, columns.get("ric")))
        fields = {}
        if ric in _FIRST:
            fields = {name: _clean(_cell(row, columns.get(name))) for name in _FIELDS}
        long_text = _cell(row, columns.get("long"))
        records.append(
            (
                f"row {number}",
                _clean(_cell(row, columns.get("code"))),
                ric,
                "" if long_text is None else str(long_text),
                _clean(_cell(row, columns.get("short"))),
                fields,
            )
        )
    if columns is None:
        raise _fail(path, fmt, "no header row starting with 'HCPC' in the first sheet")
    return records


def release_date(entries: Iterable[CodeEntry]) -> str:
    """January 1st (YYYYMMDD) of the latest year a code was added or changed in a release."""
    years = [
        value[:4]
        for entry in entries
        for value in (entry.extra.get("added_date", ""), entry.extra.get("effective_date", ""))
        if len(value) == 8 and value.isdigit()
    ]
    return f"{max(years)}0101" if years else "00000101"


def is_terminated(entry: CodeEntry, as_of: str) -> bool:
    """Whether an entry's termination date (YYYYMMDD) falls before ``as_of``."""
    end = entry.extra.get("termination_date", "")
    return len(end) == 8 and end < as_of


def retire_terminated(entries: list[CodeEntry], as_of: str | None = None) -> list[CodeEntry]:
    """Entries with the codes terminated before ``as_of`` (default: :func:`release_date`)
    made non-billable, without aliases and marked ``extra["terminated"]``: they can be looked
    up but never become candidates."""
    cutoff = as_of or release_date(entries)
    for entry in entries:
        if is_terminated(entry, cutoff):
            entry.billable = False
            entry.aliases = []
            entry.extra["terminated"] = f"terminated {entry.extra['termination_date']}"
    return entries


def load_hcpcs_current(path: str | os.PathLike[str]) -> list[CodeEntry]:
    """:func:`load_hcpcs` with codes terminated before the release year retired
    (``medcode kb add hcpcs``)."""
    return retire_terminated(load_hcpcs(path))


def load_hcpcs(path: str | os.PathLike[str]) -> list[CodeEntry]:
    """Read an official CMS HCPCS Level II annual file (fixed-width TXT or XLSX).

    The format is detected from the content (a ZIP signature means XLSX) and the extension.
    Procedure codes are billable; modifiers (two characters) are kept with
    ``extra["type"] == "modifier"`` and ``billable=False``. Other ``extra`` keys, when present:
    ``added_date``, ``effective_date``, ``termination_date`` (YYYYMMDD), ``action_code``,
    ``pricing_indicator`` and ``pricing``, ``coverage_code`` and ``coverage``, ``betos``.
    Terminated codes are returned as they are (see :func:`retire_terminated`).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(Errors.E010.format(path=path))
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise _fail(path, "HCPCS file", f"cannot be read ({error.strerror})") from error
    if raw.startswith(b"PK\x03\x04") or path.suffix.lower() in (".xlsx", ".xlsm"):
        entries = _assemble(path, "HCPCS XLSX workbook", _xlsx_records(path, raw))
    elif raw.startswith(b"\xd0\xcf\x11\xe0"):
        raise _fail(path, "HCPCS file", "legacy .xls workbooks are not supported; use TXT or XLSX")
    elif b"\x00" in raw:
        raise _fail(path, "HCPCS fixed-width text", "the file is binary (it contains NUL bytes)")
    else:
        text = _decode(raw)
        entries = _assemble(path, "HCPCS fixed-width text", _txt_records(path, text))
    logger.info("loaded %d HCPCS codes and modifiers from %s", len(entries), path.name)
    return entries
