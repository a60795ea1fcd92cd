"""Resumable result rows survive a torn last line and skip finished cells."""
import json

from proxygrad.report.rows import ResultRows, cell_key


def test_append_then_reopen_skips_finished_cells(tmp_path):
    path = tmp_path / "cells.jsonl"
    rows = ResultRows(path)
    key = cell_key({"method": "relu", "slope": 0.0})
    rows.append(key, activation=1.5)
    again = ResultRows(path)
    assert again.done(key) and again.get(key)["activation"] == 1.5
    assert not again.done(cell_key({"method": "relu", "slope": 0.1}))
    assert cell_key({"b": 1, "a": 2}) == cell_key({"a": 2, "b": 1})


def test_torn_last_line_is_dropped_and_repaired(tmp_path):
    path = tmp_path / "cells.jsonl"
    path.write_text(json.dumps({"key": "a", "v": 1}) + "\n" + '{"key": "b", "v"')
    rows = ResultRows(path)
    assert [r["key"] for r in rows] == ["a"]
    rows.append("c", v=3)
    assert [json.loads(line)["key"] for line in path.read_text().splitlines()] == ["a", "c"]
