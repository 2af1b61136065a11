"""Record the coder's output on ``examples/*.txt`` as the golden behaviour fixture.

``tests/golden/examples_output.json`` holds, for every example note and both care settings,
the suggested, excluded and "consider" codes with their scores rounded to 4 decimals and
their evidence as character offsets (no note text is copied). ``tests/test_golden_output.py``
compares a fresh run with it: a refactor must leave it unchanged. Re-record only when a change
is meant to change coding behaviour, and say so in the commit:

    python -m scripts.record_golden            # writes the fixture
    python -m scripts.record_golden --check    # exits 1 when the output differs
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
FIXTURE = ROOT / "tests" / "golden" / "examples_output.json"
SETTINGS = ("outpatient", "inpatient")


def _codes(rows: Any) -> list[dict[str, Any]]:
    return [
        {
            "code": row.code,
            "system": row.system,
            "score": round(float(row.score), 4),
            "evidence": [[e.start, e.end] for e in row.evidence],
            **({"reason": row.reason} if hasattr(row, "reason") else {}),
        }
        for row in rows
    ]


def record(coder: Any = None) -> dict[str, Any]:
    """The golden output of every example note, in each care setting."""
    if coder is None:
        import medcode_nlp

        coder = medcode_nlp.load()
    out: dict[str, Any] = {}
    for path in sorted(EXAMPLES.glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        for setting in SETTINGS:
            result = coder(text, setting=setting)
            out[f"{path.name}:{setting}"] = {
                "codes": _codes(result.codes),
                "excluded": _codes(result.excluded),
                "consider": _codes(result.consider),
            }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    parser.add_argument("--out", type=Path, default=FIXTURE)
    args = parser.parse_args(argv)
    data = record()
    if args.check:
        same = json.loads(args.out.read_text(encoding="utf-8")) == data
        print("golden output unchanged" if same else "golden output differs")
        return 0 if same else 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({len(data)} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
