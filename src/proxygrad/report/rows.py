"""Resumable result tables: one JSON object per line, appended and flushed as each cell finishes.

A run that is killed loses at most the cell in progress; a rerun reads the file, skips the cells whose key is
already there, and a torn last line (from a kill during the write) is ignored and overwritten.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator


def cell_key(settings: dict[str, Any]) -> str:
    """A stable text key for a cell's settings (sorted JSON)."""
    return json.dumps(settings, sort_keys=True, default=str)


class ResultRows:
    """Rows of ``path`` (``.jsonl``). Each row holds ``"key"`` (from :func:`cell_key`) plus its results."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._rows: list[dict] = []
        if self.path.exists():
            self._rows = list(self._read())
            self._rewrite_if_torn()

    def _read(self) -> Iterator[dict]:
        for line in self.path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn line from an interrupted write
            if isinstance(row, dict) and "key" in row:
                yield row

    def _rewrite_if_torn(self) -> None:
        text = self.path.read_text()
        clean = "".join(json.dumps(r) + "\n" for r in self._rows)
        if text != clean:
            from .files import write_bytes

            write_bytes(self.path, clean.encode())

    def done(self, key: str) -> bool:
        return any(row["key"] == key for row in self._rows)

    def get(self, key: str) -> dict | None:
        return next((row for row in self._rows if row["key"] == key), None)

    def append(self, key: str, **results: Any) -> dict:
        """Add one finished cell and flush it to disk (fsync) before returning."""
        row = {"key": key, **results}
        line = json.dumps(row, default=str) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        self._rows.append(row)
        return row

    def __iter__(self) -> Iterator[dict]:
        return iter(list(self._rows))

    def __len__(self) -> int:
        return len(self._rows)
