"""MS-DRG grouping of an inpatient result, and which secondary codes move the DRG.

The grouping is done by ``msdrg`` (``medcode_nlp[claims]``), a port of the CMS MS-DRG
grouper validated claim by claim against the CMS Java software; this module picks the
principal diagnosis, secondary diagnoses and ICD-10-PCS procedures from a
:class:`~medcode_nlp.schema.CodingResult`, and regroups without each secondary diagnosis (and
with each candidate the note only hints at) to show the codes a CDI specialist would query:
those whose presence changes the DRG.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from medcode_nlp.claims.status import code_assertion
from medcode_nlp.codesets.registry import code_key
from medcode_nlp.errors import InputError, MedcodeError
from medcode_nlp.schema import CodingResult

#: MS-DRG v43.1 (FY2026, from April 2026), the grouper matching ICD-10-CM FY2026
DEFAULT_VERSION = 431
SEXES = {"M": 0, "F": 1, "U": 2}
INSTALL_HINT = 'pip install "medcode_nlp[claims]"'
_CODED = ("present", "historical", "uncertain")


@dataclass(slots=True)
class DrgDiagnosis:
    """A diagnosis as the grouper saw it."""

    code: str
    severity: str  # MCC, CC or NONE (after CC exclusions)
    drg_impact: str  # NONE, INITIAL, FINAL or BOTH: whether it drove the DRG
    valid: bool


@dataclass(slots=True)
class DrgChange:
    """A secondary diagnosis whose presence changes the DRG."""

    code: str
    description: str
    severity: str
    drg_with: int | None
    drg_without: int | None
    #: ``coded``: on the result's list (regrouped without it); ``candidate``: only hinted
    #: at by the note (regrouped with it added)
    status: str


@dataclass(slots=True)
class DrgResult:
    """The MS-DRG of one inpatient stay, with its CC/MCC flags and the codes that move it."""

    version: int
    drg: int | None
    description: str
    mdc: int | None
    mdc_description: str
    severity: str
    return_code: str
    principal: DrgDiagnosis
    secondary: list[DrgDiagnosis] = field(default_factory=list)
    procedures: list[dict[str, str]] = field(default_factory=list)
    changes: list[DrgChange] = field(default_factory=list)
    demographics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (JSON-ready)."""
        return asdict(self)

    def render(self) -> str:
        """A short text summary (codes only, never note text)."""
        drg = f"{self.drg:03d}" if self.drg is not None else "---"
        lines = [f"MS-DRG v{self.version / 10:.1f}: DRG {drg} {self.description} "
                 f"(MDC {self.mdc}; {self.severity}; {self.return_code})",
                 f"  principal: {self.principal.code}"
                 f"{'' if self.principal.valid else ' (not valid for the grouper)'}"]
        for dx in self.secondary:
            flag = "" if dx.severity == "NONE" else f" {dx.severity}"
            drove = " (drives the DRG)" if dx.drg_impact != "NONE" else ""
            bad = "" if dx.valid else " (not valid for the grouper)"
            lines.append(f"  secondary: {dx.code}{flag}{drove}{bad}")
        for proc in self.procedures:
            drove = " (drives the DRG)" if proc["drg_impact"] != "NONE" else ""
            lines.append(f"  procedure: {proc['code']}{drove}")
        for change in self.changes:
            verb = ("without it" if change.status == "coded" else "if documented and coded")
            other = change.drg_without if change.status == "coded" else change.drg_with
            now = change.drg_with if change.status == "coded" else change.drg_without
            name = f" ({change.description})" if change.description else ""
            lines.append(f"  changes the DRG: {change.code} {change.severity}{name}: "
                         f"DRG {now} -> {other} {verb}")
        if not self.changes:
            lines.append("  no single secondary diagnosis changes the DRG")
        return "\n".join(lines)


class DrgGrouper:
    """An open ``msdrg`` grouper for one MS-DRG version (close it, or use ``with``)."""

    def __init__(self, version: int = DEFAULT_VERSION) -> None:
        try:
            import msdrg
        except ImportError:
            raise MedcodeError(f"MS-DRG grouping needs the msdrg package: {INSTALL_HINT}"
                               ) from None
        if version not in msdrg.MsdrgGrouper.available_versions():
            raise InputError(f"Unknown MS-DRG version {version!r}; expected one of "
                             f"{msdrg.MsdrgGrouper.available_versions()}.")
        self.version = version
        self._grouper = msdrg.MsdrgGrouper()

    def close(self) -> None:
        """Free the native grouper."""
        self._grouper.close()

    def __enter__(self) -> DrgGrouper:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()

    def _group(self, principal: str, secondary: Sequence[str], procedures: Sequence[str],
               demographics: dict[str, Any]) -> dict[str, Any]:
        claim = {"version": self.version, **demographics,
                 "pdx": {"code": principal}, "sdx": [{"code": c} for c in secondary],
                 "procedures": [{"code": c} for c in procedures]}
        return dict(self._grouper.group(claim))  # type: ignore[arg-type]

    def group(
        self,
        principal: str,
        secondary: Sequence[str] = (),
        procedures: Sequence[str] = (),
        *,
        candidates: Sequence[str] = (),
        descriptions: dict[str, str] | None = None,
        age: int = 65,
        sex: str = "U",
        discharge_status: int = 1,
    ) -> DrgResult:
        """Group one stay; regroup without each secondary and with each candidate.

        Codes may carry dots. ``age`` in years, ``sex`` M/F/U, ``discharge_status`` the
        UB-04 patient status (1: home)."""
        if not isinstance(principal, str) or not principal.strip():
            raise InputError("Invalid value for principal: an ICD-10-CM code is needed.")
        if isinstance(age, bool) or not isinstance(age, int) or not 0 <= age <= 124:
            raise InputError(f"Invalid value for age: {age!r}; expected 0 to 124 years.")
        if sex not in SEXES:
            raise InputError(f"Invalid value for sex: {sex!r}; expected M, F or U.")
        if (isinstance(discharge_status, bool) or not isinstance(discharge_status, int)
                or not 1 <= discharge_status <= 99):
            raise InputError(f"Invalid value for discharge_status: {discharge_status!r}; "
                             "expected a UB-04 patient status code such as 1 (home).")
        names = {code_key(k): v for k, v in (descriptions or {}).items()}
        shown = {code_key(c): c.strip() for c in [principal, *secondary, *candidates]}
        pdx = code_key(principal)
        sdx = list(dict.fromkeys(c for c in map(code_key, secondary) if c != pdx))
        prs = list(dict.fromkeys(map(code_key, procedures)))
        demographics = {"age": age, "sex": SEXES[sex], "discharge_status": discharge_status}
        out = self._group(pdx, sdx, prs, demographics)
        drg = out.get("final_drg")

        def diagnosis(item: dict[str, Any] | None, code: str) -> DrgDiagnosis:
            item = item or {}
            return DrgDiagnosis(shown.get(code, code), str(item.get("severity") or "NONE"),
                                str(item.get("drg_impact") or "NONE"),
                                "VALID" in (item.get("flags") or []))

        by_code = {str(item.get("code")): item for item in out.get("sdx_output") or []}
        secondary_out = [diagnosis(by_code.get(code), code) for code in sdx]
        changes = []
        for code, dx in zip(sdx, secondary_out, strict=True):
            without = self._group(pdx, [c for c in sdx if c != code], prs, demographics)
            if without.get("final_drg") != drg:
                changes.append(DrgChange(dx.code, names.get(code, ""), dx.severity, drg,
                                         without.get("final_drg"), "coded"))
        for code in dict.fromkeys(map(code_key, candidates)):
            if code == pdx or code in sdx:
                continue
            added = self._group(pdx, [*sdx, code], prs, demographics)
            if added.get("final_drg") != drg:
                found = [i for i in added.get("sdx_output") or [] if i.get("code") == code]
                severity = diagnosis(found[0] if found else None, code).severity
                changes.append(DrgChange(shown.get(code, code), names.get(code, ""), severity,
                                         added.get("final_drg"), drg, "candidate"))
        return DrgResult(
            version=self.version, drg=drg,
            description=str(out.get("final_drg_description") or ""),
            mdc=out.get("final_mdc"),
            mdc_description=str(out.get("final_mdc_description") or ""),
            severity=str(out.get("final_severity") or "NONE"),
            return_code=str(out.get("return_code") or ""),
            principal=diagnosis(out.get("pdx_output"), pdx),
            secondary=secondary_out,
            procedures=[{"code": str(p.get("code")), "drg_impact": str(p.get("drg_impact"))}
                        for p in out.get("proc_output") or []],
            changes=changes,
            demographics={"age": age, "sex": sex, "discharge_status": discharge_status},
        )


def claim_codes(result: CodingResult, principal: str | None = None
                ) -> tuple[str, list[str], list[str], list[str], dict[str, str]]:
    """Principal, secondary diagnoses, ICD-10-PCS procedures and candidates of a result.

    The principal is ``principal`` when given (it need not be suggested), else the first
    ICD-10-CM code of the list; codes of refuted, hypothetical or family mentions are left
    out, and so are ICD-10-PCS partial codes. Candidates: the ICD-10-CM codes of
    ``result.consider``."""
    diagnoses = [c for c in result.codes if c.system == "icd10cm"
                 and code_assertion(result, c) in _CODED]
    procedures = [c.code for c in result.codes if c.system == "icd10pcs" and len(c.code) == 7
                  and code_assertion(result, c) in ("present", "historical")]
    names = {c.code: c.description for c in [*result.codes, *result.consider]}
    if principal is None:
        if not diagnoses:
            raise InputError("No ICD-10-CM code to group: the result has no current "
                             "diagnosis; pass the principal diagnosis.")
        principal = diagnoses[0].code
    key = code_key(principal)
    secondary = [c.code for c in diagnoses if code_key(c.code) != key]
    candidates = [c.code for c in result.consider if c.system == "icd10cm"]
    return principal, secondary, procedures, candidates, names


def group_result(
    result: CodingResult,
    *,
    principal: str | None = None,
    version: int = DEFAULT_VERSION,
    age: int = 65,
    sex: str = "U",
    discharge_status: int = 1,
    extra_candidates: Iterable[str] = (),
) -> DrgResult:
    """The MS-DRG of an inpatient result (see :func:`claim_codes` for what is grouped)."""
    pdx, sdx, prs, candidates, names = claim_codes(result, principal)
    with DrgGrouper(version) as grouper:
        return grouper.group(pdx, sdx, prs, candidates=[*candidates, *extra_candidates],
                             descriptions=names, age=age, sex=sex,
                             discharge_status=discharge_status)
