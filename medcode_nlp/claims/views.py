"""What ``medcode suggest --format fhir / --hcc / --drg`` and the API add to a result."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from medcode_nlp.errors import InputError
from medcode_nlp.schema import CodingResult


@dataclass(slots=True)
class ClaimOptions:
    """The claim views asked for on one note."""

    hcc_year: int | None = None
    drg: bool = False
    principal: str | None = None
    age: int = 65
    sex: str = "U"
    discharge_status: int = 1
    note_id: str | None = None
    patient: str | None = None

    def check(self, fmt: str, setting: str) -> None:
        """Raise InputError for a combination that cannot be rendered."""
        if self.drg and setting != "inpatient":
            raise InputError("--drg groups inpatient stays: add --setting inpatient.")
        if fmt == "html" and (self.drg or self.hcc_year is not None):
            raise InputError("--hcc and --drg show with --format table, json or fhir.")
        if fmt == "fhir" and self.drg:
            raise InputError("--drg has no FHIR form here; use --format table or json.")


def result_with_claims(result: CodingResult, options: ClaimOptions) -> dict[str, Any]:
    """``result.to_dict()`` with each ICD-10-CM code's ``hcc`` and the ``hcc`` / ``drg``
    summaries asked for."""
    data = result.to_dict()
    if options.hcc_year is not None:
        from medcode_nlp.claims.hcc import get_mapper

        mapper = get_mapper(options.hcc_year)
        for code in data["codes"]:
            code["hcc"] = ([c.hcc for c in mapper.categories(code["code"])]
                           if code["system"] == "icd10cm" else [])
        data["hcc"] = mapper.summarize(result).to_dict()
    if options.drg:
        data["drg"] = drg_for(result, options).to_dict()
    return data


def drg_for(result: CodingResult, options: ClaimOptions) -> Any:
    """The :class:`~medcode_nlp.claims.drg.DrgResult` of a result under these options."""
    from medcode_nlp.claims.drg import group_result

    return group_result(result, principal=options.principal, age=options.age,
                        sex=options.sex, discharge_status=options.discharge_status)


def render_claims(result: CodingResult, text: str, fmt: str, options: ClaimOptions) -> str:
    """The ``suggest`` output for ``fmt`` (table, json or fhir) with the claim views."""
    if fmt == "fhir":
        return json.dumps(result.to_fhir(note_id=options.note_id, text=text,
                                         patient=options.patient, hcc_year=options.hcc_year),
                          indent=2, ensure_ascii=False)
    if fmt == "json":
        return json.dumps(result_with_claims(result, options), indent=2, ensure_ascii=False)
    from medcode_nlp.nlp.render import render_table

    parts = [render_table(result)]
    if options.hcc_year is not None:
        from medcode_nlp.claims.hcc import hcc_summary

        parts.append(hcc_summary(result, options.hcc_year).render())
    if options.drg:
        parts.append(drg_for(result, options).render())
    return "\n\n".join(parts)
