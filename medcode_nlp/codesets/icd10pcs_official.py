"""ICD-10-PCS codes and index terms from the official CMS XML files.

``icd10pcs_tables_YYYY.xml``: each ``<pcsTable>`` fixes characters 1-3 (section, body
system, operation); each of its ``<pcsRow>`` lists the allowed labels for characters 4-7,
and every combination of them is a valid code. Titles are built from the axis labels in
one consistent form (close to, but not always equal to, the CMS long titles)::

    <Operation> <Body Part>[ to <Qualifier>][ with <Device>][, <Qualifier>], <Approach> Approach

``to <Qualifier>`` is used for the root operation Bypass (its qualifier is the destination),
``, <Qualifier>`` otherwise. The placeholder labels "No Device", "No Qualifier" and "None"
are left out. In sections whose fifth character is not an approach (imaging contrast,
duration, ...) that label follows as ``, <label>``. Example: "Bypass Cerebral Ventricle to
Nasopharynx with Autologous Tissue Substitute, Open Approach".

``icd10pcs_index_YYYY.xml``: a term (main term, then subterms, joined with ``", "``) points
to a full code (``<code>``), a partial code (``<codes>``, 4-6 characters) or a table
(``<tab>``, 3 characters). Partial codes are kept as published: they are prefixes that
every valid completion starts with. ``<see>``/``<use>`` references that carry a code
(``see Resection, Uterus 0UT9``) give an index term for the referring term; references
without a code are skipped.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TypeVar

from medcode_nlp.codesets.base import Alias, CodeEntry, IndexTerm
from medcode_nlp.errors import Errors, InputError

SYSTEM = "icd10pcs"
logger = logging.getLogger(__name__)

_PLACEHOLDERS = {"No Device", "No Qualifier", "None"}
_PCS_CODE = re.compile(r"[0-9A-HJ-NP-Z]{3,7}")
_T = TypeVar("_T")


def _fail(path: Path, fmt: str, detail: str) -> InputError:
    return InputError(Errors.E009.format(path=path, fmt=fmt, detail=detail))


def _read_xml(
    path: str | os.PathLike[str], fmt: str, reader: Callable[[Path, IO[bytes]], Iterator[_T]]
) -> list[_T]:
    """Run a streaming ``reader`` over an XML file, mapping failures to E010/E009."""
    path = Path(path)
    if not path.exists():
        raise InputError(Errors.E010.format(path=path))
    if not path.is_file():
        raise _fail(path, fmt, "not a regular file")
    try:
        with open(path, "rb") as handle:
            return list(reader(path, handle))
    except ET.ParseError as error:
        raise _fail(path, fmt, f"malformed XML ({error})") from error
    except OSError as error:
        raise _fail(path, fmt, f"cannot be read ({error.strerror})") from error


def _text(element: ET.Element | None) -> str:
    return " ".join("".join(element.itertext()).split()) if element is not None else ""


def _check_root(path: Path, fmt: str, element: ET.Element, expected: str) -> None:
    if element.tag != expected:
        raise _fail(path, fmt, f"root element is <{element.tag}>, expected <{expected}>")


def pcs_title(labels: list[str], approach_axis: bool = True) -> str:
    """Title of a code from its seven axis labels (see the module docstring for the form)."""
    operation, body_part, fifth, device, qualifier = (labels[2], *labels[3:])

    def given(label: str) -> bool:
        return bool(label) and label not in _PLACEHOLDERS

    title = operation if not given(body_part) else f"{operation} {body_part}"
    if operation == "Bypass" and given(qualifier):
        title += f" to {qualifier}"
        qualifier = ""
    if given(device):
        title += f" with {device}"
    if given(qualifier):
        title += f", {qualifier}"
    if approach_axis and given(fifth):
        title += f", {fifth} Approach"
    elif given(fifth):
        title += f", {fifth}"
    return title


def _axes(
    path: Path, where: str, parent: ET.Element, positions: range
) -> dict[int, list[tuple[str, str, str]]]:
    """pos -> [(code character, label, axis title)] for the ``<axis>`` children of ``parent``."""
    fmt = "ICD-10-PCS tables XML"
    axes: dict[int, list[tuple[str, str, str]]] = {}
    for axis in parent.findall("axis"):
        try:
            pos = int(axis.get("pos", ""))
        except ValueError:
            raise _fail(path, fmt, f"{where}: axis without a numeric pos") from None
        title = _text(axis.find("title"))
        labels = [(label.get("code", ""), _text(label), title) for label in axis.findall("label")]
        if not labels or any(len(code) != 1 for code, _, _ in labels):
            raise _fail(path, fmt, f"{where}: axis {pos} has no labels or a bad label code")
        axes[pos] = labels
    if set(axes) != set(positions):
        found = ", ".join(str(p) for p in sorted(axes))
        expected = f"{positions[0]}-{positions[-1]}"
        raise _fail(path, fmt, f"{where}: expected axes {expected}, got {found}")
    return axes


def _table_codes(path: Path, handle: IO[bytes]) -> Iterator[CodeEntry]:
    fmt = "ICD-10-PCS tables XML"
    tables = 0
    root: ET.Element | None = None
    for event, element in ET.iterparse(handle, events=("start", "end")):
        if event == "start":
            if root is None:
                root = element
                _check_root(path, fmt, element, "ICD10PCS.tabular")
            continue
        if element.tag != "pcsTable":
            continue
        tables += 1
        where = f"table {tables}"
        head = _axes(path, where, element, range(1, 4))
        if any(len(labels) != 1 for labels in head.values()):
            raise _fail(path, fmt, f"{where}: axes 1-3 must have exactly one label")
        prefix = [head[pos][0] for pos in (1, 2, 3)]
        table = "".join(code for code, _, _ in prefix)
        for number, row in enumerate(element.findall("pcsRow"), start=1):
            axes = _axes(path, f"{where} ({table}) row {number}", row, range(4, 8))
            approach_axis = axes[5][0][2] == "Approach"
            for combo in itertools.product(*(axes[pos] for pos in (4, 5, 6, 7))):
                chosen = [*prefix, *combo]
                code = "".join(c for c, _, _ in chosen)
                title = pcs_title([label for _, label, _ in chosen], approach_axis)
                yield CodeEntry(
                    code=code,
                    system=SYSTEM,
                    description=title,
                    parent=table,
                    aliases=[Alias(title, "description")],
                )
        element.clear()
    if tables == 0:
        raise _fail(path, fmt, "no <pcsTable> elements found")


def load_icd10pcs_tables(path: str | os.PathLike[str]) -> list[CodeEntry]:
    """Expand the CMS ICD-10-PCS tables XML into every valid code (78,948 for FY2025).

    Each entry's description is the title built from its axis labels, ``parent`` is the
    three-character table, and every code is billable.
    """
    entries = _read_xml(path, "ICD-10-PCS tables XML", _table_codes)
    logger.info("expanded %d ICD-10-PCS codes from %s", len(entries), Path(path).name)
    return entries


def _index_terms(references: bool) -> Callable[[Path, IO[bytes]], Iterator[IndexTerm]]:
    fmt = "ICD-10-PCS index XML"

    def read(path: Path, handle: IO[bytes]) -> Iterator[IndexTerm]:
        titles: list[str] = []  # one per open mainTerm/term
        tags: list[str] = []
        skipped = unresolved = 0
        for event, element in ET.iterparse(handle, events=("start", "end")):
            tag = element.tag
            if event == "start":
                if not tags:
                    _check_root(path, fmt, element, "ICD10PCS.index")
                tags.append(tag)
                if tag in ("mainTerm", "term"):
                    titles.append("")
                continue
            tags.pop()
            parent = tags[-1] if tags else ""
            if tag == "title" and parent in ("mainTerm", "term"):
                titles[-1] = _text(element)
            elif tag in ("code", "codes", "tab") and parent in ("mainTerm", "term", "see", "use"):
                if parent in ("see", "use") and not references:
                    continue
                code = _text(element).upper()
                term = ", ".join(title for title in titles if title)
                if not _PCS_CODE.fullmatch(code) or not term:
                    skipped += 1
                    continue
                yield IndexTerm(term=term, code=code, system=SYSTEM)
            elif tag in ("see", "use") and not any(
                child.tag in ("codes", "code", "tab") for child in element
            ):
                unresolved += 1
            elif tag in ("mainTerm", "term"):
                titles.pop()
                element.clear()
        if skipped:
            logger.warning("skipped %d PCS index entries with an invalid code or no term", skipped)
        logger.debug("%d see/use references without a code were skipped", unresolved)

    return read


def load_icd10pcs_index(
    path: str | os.PathLike[str], *, references: bool = True
) -> list[IndexTerm]:
    """Read the CMS ICD-10-PCS index XML into index terms (full or partial codes).

    With ``references`` (the default) a ``see``/``use`` reference that names a code or
    table also yields a term for the referring entry; set it False to keep only the
    entries that name a code directly.
    """
    found = _read_xml(path, "ICD-10-PCS index XML", _index_terms(references))
    terms = list({(term.term, term.code): term for term in found}.values())
    logger.info("loaded %d ICD-10-PCS index terms from %s", len(terms), Path(path).name)
    return terms
