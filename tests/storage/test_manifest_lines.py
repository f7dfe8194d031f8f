"""Manifest lines as rectrain writes them are read without the JSON parser: the same entries,
the same refusals, and any other line still parsed as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rectrain.errors import DataError
from rectrain.storage.manifest import (
    ManifestEntry,
    ManifestFile,
    entry_line,
    header_line,
    parse_line,
    read_shard_entries,
)

SHA = "ab" * 32


@pytest.mark.parametrize("entry", [
    ManifestEntry("images/ภาพ_001.png", 0, SHA, "shard-00000.tar"),
    ManifestEntry("a b/c.png", 123456789, SHA),
    ManifestEntry('q"uote\\d.png', 5, SHA, "s.tar"),  # escaped in JSON: parsed as JSON
    ManifestEntry("tab\there.png", 5, SHA),
])
def test_written_lines_read_back_as_the_same_entry(entry: ManifestEntry) -> None:
    line = entry_line(entry)
    assert parse_line(line, "m", 2) == entry
    assert parse_line(line, "m", 2) == parse_line(json.dumps(json.loads(line)) + "\n", "m", 2)


@pytest.mark.parametrize("path", ["../x.png", "a/../../x.png", "/etc/passwd", "a//b.png", "./a.png", "a/.",
                                  "C:x"])
def test_escaping_paths_are_refused_in_the_canonical_form_too(path: str) -> None:
    with pytest.raises(DataError, match="outside"):
        parse_line(entry_line(ManifestEntry(path, 1, SHA)), "m", 3)


def test_other_spellings_are_parsed_as_json_and_checked() -> None:
    upper = '{"path": "a.png", "sha256": "' + SHA.upper() + '", "size": 1}\n'
    assert parse_line(upper, "m", 1) == ManifestEntry("a.png", 1, SHA)
    ascii_escaped = json.dumps({"path": "ภ.png", "sha256": SHA, "size": 2}) + "\n"
    assert parse_line(ascii_escaped, "m", 1) == ManifestEntry("ภ.png", 2, SHA)
    with pytest.raises(DataError):
        parse_line('{"path": "a.png", "sha256": "' + SHA + '", "size": -1}\n', "m", 1)


def test_index_and_shard_reading_match_the_json_reading(tmp_path: Path) -> None:
    entries = [ManifestEntry(f"d{i // 7:02d}/f_{i:03d}.png", i, SHA, f"shard-{i // 40:05d}.tar")
               for i in range(100)]
    entries[50] = ManifestEntry(entries[50].path, 50, SHA.upper(), entries[50].shard)  # a JSON-parsed line
    shards = [ManifestEntry(f"shard-{i:05d}.tar", 1, SHA) for i in range(3)]
    path = tmp_path / "manifest.jsonl"
    lines = [header_line("packed", len(entries), 0, shards, [])]
    lines += [json.dumps({"path": e.path, "sha256": e.sha256, "shard": e.shard, "size": e.size},
                         sort_keys=True) + "\n" for e in entries]
    path.write_text("".join(lines), encoding="utf-8")
    with ManifestFile(path) as manifest:
        assert manifest.files == 100 and manifest.bytes == sum(range(100))
        assert manifest.counts == {"shard-00000.tar": 40, "shard-00001.tar": 40, "shard-00002.tar": 20}
        got = [e for s in shards for e in read_shard_entries(manifest.path, manifest.spans[s.path], s.path)]
        assert [(e.path, e.size, e.sha256, e.shard) for e in got] == [
            (e.path, e.size, e.sha256.lower(), e.shard) for e in entries]
        assert list(manifest.shard_entries("shard-00001.tar", skip=5))[0].path == entries[45].path
    path.write_text(lines[0] + lines[2] + lines[1], encoding="utf-8")  # unsorted: sorted on disk
    with ManifestFile(path) as manifest:
        assert [e.path for e in manifest.entries()] == [entries[0].path, entries[1].path]
    path.write_text(lines[0] + lines[1] + lines[1], encoding="utf-8")
    with pytest.raises(DataError, match="listed twice"):
        ManifestFile(path)
