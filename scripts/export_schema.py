"""Write docs/record.schema.json, the JSON Schema of a line of records.jsonl, from `benchmark.record.Record`
(tests/test_records.py fails while the committed file differs from what the code makes):

    python scripts/export_schema.py
"""

from pathlib import Path

from benchmark.record import json_schema_text

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "docs" / "record.schema.json"


def main() -> None:
    SCHEMA_FILE.write_text(json_schema_text(), encoding="utf-8")
    print(f"wrote {SCHEMA_FILE}")


if __name__ == "__main__":
    main()
