"""FHIR R4 output: a coding result, or coders' accepted review decisions, as a Bundle.

A ``collection`` Bundle holds

* one ``DocumentReference`` for the note (its id, size and SHA-1; the text itself only when
  asked for with ``include_text``),
* a ``Condition`` per ICD-10-CM code (``verificationStatus`` *confirmed* for a current or
  historical mention, *provisional* for an uncertain one; refuted, hypothetical and family
  mentions are never emitted),
* a ``Procedure`` per ICD-10-PCS, CPT or HCPCS code,
* a ``Provenance`` per code whose ``entity`` points at the DocumentReference with the
  evidence offsets (Unicode code points of the note) in an extension, and the ``Device``
  (medcode_nlp, its version) as the agent; a reviewed code also names its reviewer.

Codes carry their confidence and, for ICD-10-CM, their CMS-HCC V28 category as extensions.
The resources use only R4 (4.0.1) elements; they are checked against the ``fhir.resources``
R4B models (R4B is R4 plus new resources; fhir.resources 7+ has no separate R4 package).
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from medcode_nlp.about import __version__
from medcode_nlp.claims.status import code_assertion
from medcode_nlp.codesets.registry import get_system
from medcode_nlp.errors import InputError, MedcodeError
from medcode_nlp.schema import CodingResult

FHIR_VERSION = "4.0.1"
INSTALL_HINT = 'pip install "medcode_nlp[claims]"'
_EXT = "urn:medcode-nlp:fhir:extension:"
EXT_EVIDENCE = _EXT + "evidence-span"
EXT_CONFIDENCE = _EXT + "confidence"
EXT_HCC = _EXT + "cms-hcc"
HCC_SYSTEM = "urn:medcode-nlp:fhir:cms-hcc-v28"
NOTE_ID_SYSTEM = "urn:medcode-nlp:note-id"
_VER_STATUS = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
_CLIN_STATUS = "http://terminology.hl7.org/CodeSystem/condition-clinical"
_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
_PROV_ROLE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
#: assertion -> Condition.verificationStatus; assertions not listed are never emitted
VERIFICATION = {"present": "confirmed", "historical": "confirmed", "uncertain": "provisional"}
PROCEDURE_STATUS = {"present": "completed", "historical": "completed", "uncertain": "unknown"}
_NAMESPACE = uuid.UUID("6f1f8c52-8d0e-4d8a-9a57-6b0f4f3c2a11")


@dataclass(slots=True)
class FhirCode:
    """One code to emit: system, code, evidence spans and what is known about it."""

    system: str
    code: str
    description: str
    assertion: str = "present"
    score: float | None = None
    evidence: list[tuple[int, int, str]] = field(default_factory=list)
    hcc: list[tuple[str, str]] = field(default_factory=list)
    reviewer: str | None = None


def _timestamp(recorded: datetime | str | None) -> str:
    if recorded is None:
        recorded = datetime.now(UTC)
    if isinstance(recorded, str):
        try:
            recorded = datetime.fromisoformat(recorded)
        except ValueError:
            raise InputError(f"Invalid value for recorded: {recorded!r} is not an ISO 8601 "
                             "date-time.") from None
    if recorded.tzinfo is None:
        raise InputError("Invalid value for recorded: a FHIR instant needs a time zone.")
    return recorded.isoformat(timespec="seconds").replace("+00:00", "Z")


def _patient_ref(patient: str | None) -> dict[str, Any]:
    if patient is None:
        return {"display": "patient of the coded note (not identified)"}
    if not isinstance(patient, str) or not patient.strip() or any(c.isspace() for c in patient):
        raise InputError(f"Invalid value for patient: {patient!r} is not a FHIR reference "
                         "such as 'Patient/123'.")
    return {"reference": patient}


class _Builder:
    """Collects the entries of one Bundle; ids are UUIDs derived from ``seed``."""

    def __init__(self, seed: str, patient: str | None, recorded: datetime | str | None
                 ) -> None:
        self.seed = seed
        self.subject = _patient_ref(patient)
        self.recorded = _timestamp(recorded)
        self.entries: list[dict[str, Any]] = []
        self.device = self._add("Device", "device", {
            "resourceType": "Device",
            "deviceName": [{"name": "medcode_nlp", "type": "model-name"}],
            "version": [{"value": __version__}],
        })

    def _url(self, *parts: str) -> str:
        return f"urn:uuid:{uuid.uuid5(_NAMESPACE, '/'.join((self.seed, *parts)))}"

    def _add(self, kind: str, key: str, resource: dict[str, Any]) -> str:
        url = self._url(kind, key)
        self.entries.append({"fullUrl": url, "resource": resource})
        return url

    def document(self, note_id: str | None, text: str | None, include_text: bool) -> str:
        attachment: dict[str, Any] = {"contentType": "text/plain; charset=utf-8"}
        if text is not None:
            data = text.encode("utf-8")
            attachment["size"] = len(data)
            attachment["hash"] = base64.b64encode(hashlib.sha1(data).digest()).decode("ascii")
            if include_text:
                attachment["data"] = base64.b64encode(data).decode("ascii")
        resource: dict[str, Any] = {
            "resourceType": "DocumentReference",
            "status": "current",
            "subject": self.subject,
            "description": "Clinical note coded by medcode_nlp; evidence offsets are "
                           "Unicode code points of its text.",
            "content": [{"attachment": attachment}],
        }
        if note_id is not None:
            resource["identifier"] = [{"system": NOTE_ID_SYSTEM, "value": str(note_id)}]
        return self._add("DocumentReference", note_id or "note", resource)

    def code(self, item: FhirCode, document: str, key: str) -> bool:
        """Add the resource of one code and its Provenance; False when not emitted."""
        system = get_system(item.system)  # URI and resource: codesets/registry.py
        uri = system.fhir_uri if system is not None else ""
        if not uri:
            return False
        concept = {"coding": [{"system": uri, "code": item.code, "display": item.description}],
                   "text": item.description}
        extensions: list[dict[str, Any]] = []
        if item.score is not None:
            extensions.append({"url": EXT_CONFIDENCE, "valueDecimal": round(item.score, 4)})
        for hcc, label in item.hcc:
            extensions.append({"url": EXT_HCC, "valueCoding": {
                "system": HCC_SYSTEM, "code": hcc, "display": label}})
        resource: dict[str, Any]
        if system is not None and system.fhir_resource == "Condition":
            verification = VERIFICATION.get(item.assertion)
            if verification is None:
                return False
            resource = {"resourceType": "Condition"}
            if item.assertion != "historical":
                resource["clinicalStatus"] = {"coding": [
                    {"system": _CLIN_STATUS, "code": "active"}]}
            resource.update({
                "verificationStatus": {"coding": [
                    {"system": _VER_STATUS, "code": verification}]},
                "category": [{"coding": [{"system": _CATEGORY,
                                          "code": "encounter-diagnosis"}]}],
                "code": concept,
                "subject": self.subject,
                "evidence": [{"detail": [{"reference": document}]}],
            })
            kind = "Condition"
        else:
            status = PROCEDURE_STATUS.get(item.assertion)
            if status is None:
                return False
            resource = {"resourceType": "Procedure", "status": status, "code": concept,
                        "subject": self.subject}
            kind = "Procedure"
        if extensions:
            resource["extension"] = extensions
        target = self._add(kind, key, resource)
        entity: dict[str, Any] = {"role": "source", "what": {"reference": document}}
        spans = [{"url": EXT_EVIDENCE, "extension": [
            {"url": "start", "valueInteger": start}, {"url": "end", "valueInteger": end},
            *([{"url": "text", "valueString": text}] if text else [])]}
            for start, end, text in item.evidence]
        if spans:
            entity["extension"] = spans
        agents: list[dict[str, Any]] = [{
            "type": {"coding": [{"system": _PROV_ROLE, "code": "assembler"}]},
            "who": {"reference": self.device}}]
        if item.reviewer:
            agents.append({"type": {"coding": [{"system": _PROV_ROLE, "code": "verifier"}]},
                           "who": {"display": item.reviewer}})
        self._add("Provenance", key, {
            "resourceType": "Provenance", "target": [{"reference": target}],
            "recorded": self.recorded, "agent": agents, "entity": [entity]})
        return True

    def bundle(self) -> dict[str, Any]:
        return {"resourceType": "Bundle", "type": "collection", "timestamp": self.recorded,
                "meta": {"tag": [{"system": "urn:medcode-nlp:fhir", "code": "fhir-" +
                                  FHIR_VERSION}]},
                "entry": self.entries}


def validate_bundle(bundle: Mapping[str, Any]) -> None:
    """Check a Bundle and every resource in it against the fhir.resources R4B models.

    Raises :class:`InputError` naming the first problems (never a note's text)."""
    try:
        from fhir.resources.R4B.bundle import Bundle
    except ImportError:
        raise MedcodeError(f"FHIR output needs the fhir.resources package: {INSTALL_HINT}"
                           ) from None
    from pydantic import ValidationError

    try:
        Bundle.model_validate(dict(bundle))
    except ValidationError as error:
        where = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                          for e in error.errors()[:5])
        raise InputError(f"The FHIR Bundle is not valid R4: {where}") from None


def result_codes(result: CodingResult, hcc_year: int | None = None) -> list[FhirCode]:
    """The codes of a result as :class:`FhirCode` items (assertion, evidence, HCC)."""
    mapper = None
    if hcc_year is not None:
        from medcode_nlp.claims.hcc import get_mapper

        mapper = get_mapper(hcc_year)
    items = []
    for code in result.codes:
        hcc = ([(c.hcc, c.label) for c in mapper.categories(code.code)]
               if mapper is not None and code.system == "icd10cm" else [])
        items.append(FhirCode(code.system, code.code, code.description,
                              code_assertion(result, code), code.score,
                              [(e.start, e.end, e.text) for e in code.evidence], hcc))
    return items


def to_fhir_bundle(
    result: CodingResult,
    *,
    note_id: str | None = None,
    text: str | None = None,
    include_text: bool = False,
    patient: str | None = None,
    hcc_year: int | None = None,
    recorded: datetime | str | None = None,
    validate: bool = True,
) -> dict[str, Any]:
    """A coding result as a FHIR R4 ``collection`` Bundle (a JSON-ready dict).

    ``text``: the note, for the DocumentReference's size and hash (and its data with
    ``include_text``); ``patient``: a reference such as ``Patient/123``; ``hcc_year``: add
    each ICD-10-CM code's CMS-HCC V28 category for that payment year; ``recorded``: the
    Provenance time (default now, UTC). ``validate`` checks the Bundle with fhir.resources.
    """
    if include_text and text is None:
        raise InputError("Invalid value for include_text: pass the note as text to include it.")
    if text is not None and not isinstance(text, str):
        raise InputError(f"Expected the note as str, got {type(text).__name__}.")
    seed = hashlib.sha256(json.dumps([note_id, result.to_dict()], sort_keys=True,
                                     ensure_ascii=False).encode("utf-8")).hexdigest()
    builder = _Builder(seed, patient, recorded)
    document = builder.document(note_id, text, include_text)
    for index, item in enumerate(result_codes(result, hcc_year)):
        builder.code(item, document, f"{index}/{item.system}/{item.code}")
    bundle = builder.bundle()
    if validate:
        validate_bundle(bundle)
    return bundle


def decisions_to_fhir(
    decisions: Iterable[Any],
    *,
    patient: str | None = None,
    hcc_year: int | None = None,
    recorded: datetime | str | None = None,
    validate: bool = True,
) -> dict[str, Any]:
    """Coders' accepted codes (accept, replace, add) as one FHIR R4 Bundle.

    ``decisions``: :class:`~medcode_nlp.review.store.Decision` objects or their dicts
    (current decisions; rejects are left out). Each note gets a DocumentReference (its id
    only: the review store never holds note text); each accepted code its Condition or
    Procedure (confirmed by the coder) and a Provenance naming the reviewer."""
    rows: list[Mapping[str, Any]] = []
    for decision in decisions:
        row = decision if isinstance(decision, Mapping) else _as_dict(decision)
        if row.get("decision") in ("accept", "replace", "add") and row.get("final_code"):
            rows.append(row)
    seed = hashlib.sha256(json.dumps(
        [[r.get("id"), r.get("note_id"), r.get("final_system"), r.get("final_code")]
         for r in rows], sort_keys=True).encode("utf-8")).hexdigest()
    builder = _Builder(seed, patient, recorded)
    mapper = None
    if hcc_year is not None:
        from medcode_nlp.claims.hcc import get_mapper

        mapper = get_mapper(hcc_year)
    documents: dict[str, str] = {}
    for index, row in enumerate(rows):
        note_id = str(row.get("note_id") or "")
        if note_id not in documents:
            documents[note_id] = builder.document(note_id or None, None, False)
        system, code = str(row.get("final_system")), str(row.get("final_code"))
        hcc = ([(c.hcc, c.label) for c in mapper.categories(code)]
               if mapper is not None and system == "icd10cm" else [])
        evidence = [(int(e["start"]), int(e["end"]), str(e.get("text") or ""))
                    for e in _evidence_list(row.get("evidence"))]
        item = FhirCode(system, code, str(row.get("final_description") or code), "present",
                        None, evidence, hcc, reviewer=str(row.get("reviewer") or "") or None)
        builder.code(item, documents[note_id], f"{index}/{note_id}/{system}/{code}")
    bundle = builder.bundle()
    if validate:
        validate_bundle(bundle)
    return bundle


def _as_dict(decision: Any) -> dict[str, Any]:
    from dataclasses import asdict, is_dataclass

    if is_dataclass(decision) and not isinstance(decision, type):
        return asdict(decision)
    raise InputError(f"Expected a review decision (dataclass or dict), got "
                     f"{type(decision).__name__}.")


def _evidence_list(value: Any) -> Sequence[Mapping[str, Any]]:
    if isinstance(value, str):
        value = json.loads(value or "[]")
    return [e for e in value or [] if isinstance(e, Mapping) and "start" in e and "end" in e]
