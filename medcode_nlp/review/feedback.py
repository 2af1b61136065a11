"""Reviewed decisions from the review database as training records for the ranker.

``load_feedback(db)`` reads the *current* decision of every reviewed item (a later decision
about the same code of the same note supersedes an earlier one) and turns it into one
:class:`FeedbackRecord` per evidence span. Each record says, for one mention of one note,
which code the system suggested, which code the reviewer settled on, and the decision:

========  =================  ==============  ===========================================
decision  suggested code     final code      training pairs (``record.pairs()``)
========  =================  ==============  ===========================================
accept    the suggestion     the suggestion  (suggested, 1)
reject    the suggestion     None            (suggested, 0)
replace   the suggestion     reviewer's code (suggested, 0), (final, 1)
add       None               reviewer's code (final, 1)
========  =================  ==============  ===========================================

Only what the ranker needs is kept: the note id, the mention text and its character offsets,
the codes, the decision and provenance (reviewer, time, versions). Never the note text.
Decisions without an evidence span (e.g. a code added without selecting text) carry no
mention to learn from and are skipped unless ``require_evidence=False``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from medcode_nlp.errors import Errors, InputError

FEEDBACK_FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class FeedbackRecord:
    """One reviewed (mention, code) decision."""

    note_id: str
    entity_text: str
    start: int | None
    end: int | None
    decision: str  # accept | reject | replace | add
    suggested_system: str | None
    suggested_code: str | None
    final_system: str | None
    final_code: str | None
    confidence: float | None  # the model's score for the suggested code
    reviewer: str
    decided_at: str
    model_version: str | None
    code_set_versions: str  # "system=version;..." as recorded with the decision

    def pairs(self) -> list[tuple[str, str, int]]:
        """``(system, code, label)`` training pairs: 1 = right code for the mention, 0 = wrong."""
        found: list[tuple[str, str, int]] = []
        if self.suggested_code and self.suggested_system:
            if self.decision == "accept":
                found.append((self.suggested_system, self.suggested_code, 1))
            elif self.decision in ("reject", "replace"):
                found.append((self.suggested_system, self.suggested_code, 0))
        if self.decision in ("replace", "add") and self.final_code and self.final_system:
            found.append((self.final_system, self.final_code, 1))
        return found

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (one JSON line of ``feedback_jsonl``)."""
        return asdict(self)


def load_feedback(
    db_path: str | Path, *, require_evidence: bool = True
) -> list[FeedbackRecord]:
    """Training records from a review database written by ``medcode serve``."""
    from medcode_nlp.review.store import ReviewStore

    path = Path(db_path)
    if not path.is_file():
        raise InputError(Errors.E010.format(path=path))
    store = ReviewStore(path)
    records: list[FeedbackRecord] = []
    for decision in store.decisions(latest_only=True):
        versions = ";".join(f"{k}={v}" for k, v in sorted(decision.code_set_versions.items()))
        spans = [e for e in decision.evidence if isinstance(e, dict)]
        if not spans:
            if require_evidence:
                continue
            spans = [{"start": None, "end": None, "text": ""}]
        for span in spans:
            records.append(FeedbackRecord(
                note_id=decision.note_id,
                entity_text=str(span.get("text") or ""),
                start=span.get("start"),
                end=span.get("end"),
                decision=decision.decision,
                suggested_system=decision.suggested_system,
                suggested_code=decision.suggested_code,
                final_system=decision.final_system,
                final_code=decision.final_code,
                confidence=decision.confidence,
                reviewer=decision.reviewer,
                decided_at=decision.created_at or "",
                model_version=decision.model_version,
                code_set_versions=versions,
            ))
    return records


def feedback_jsonl(records: list[FeedbackRecord]) -> str:
    """The records as JSON lines (for inspection or for training outside Python)."""
    return "".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in records)
