from __future__ import annotations

import pytest

from rectrain.cli.main import main
from rectrain.data.split import split_labels


def _write(tmp_path):
    lines = [f"page{p:02d}/crop{c}.png\tw{p}_{c}\n" for p in range(20) for c in range(5)]
    src = tmp_path / "labels.txt"
    src.write_text("".join(lines) + "\nno tab here\n", encoding="utf-8")
    return src


def _read(p):
    return p.read_text(encoding="utf-8").splitlines()


def test_split_reproducible_and_sized(tmp_path):
    src = _write(tmp_path)
    a = split_labels(src, tmp_path / "a", val=0.1, seed=3)
    b = split_labels(src, tmp_path / "b", val=0.1, seed=3)
    c = split_labels(src, tmp_path / "c", val=0.1, seed=4)
    assert a["val_samples"] == 10 and a["train_samples"] == 90 and a["skipped_lines"] == 1
    assert _read(tmp_path / "a" / "val.txt") == _read(tmp_path / "b" / "val.txt")
    assert _read(tmp_path / "a" / "val.txt") != _read(tmp_path / "c" / "val.txt")
    assert set(_read(tmp_path / "a" / "val.txt")).isdisjoint(_read(tmp_path / "a" / "train.txt"))
    assert c["val_samples"] == 10 and b["val_samples"] == 10


def test_split_group_by_keeps_pages_together(tmp_path):
    src = _write(tmp_path)
    res = split_labels(src, tmp_path / "g", val=0.25, seed=1, group_by=r"^(page\d+)/")
    val_pages = {line.split("/")[0] for line in _read(tmp_path / "g" / "val.txt")}
    train_pages = {line.split("/")[0] for line in _read(tmp_path / "g" / "train.txt")}
    assert val_pages and train_pages and val_pages.isdisjoint(train_pages)
    assert res["groups"] == 20 and res["val_groups"] == len(val_pages) == 5
    assert res["val_samples"] == 25


def test_split_cli(tmp_path, capsys):
    src = _write(tmp_path)
    assert main(["data", "split", str(src), "-o", str(tmp_path / "o"), "--val", "0.2", "--seed", "9"]) == 0
    assert '"val_samples": 20' in capsys.readouterr().out
    with pytest.raises(SystemExit) as refused:  # out of --val's range: refused by the parser
        main(["data", "split", str(src), "-o", str(tmp_path / "o"), "--val", "2"])
    assert refused.value.code == 2
    assert main(["data", "split", str(src), "-o", str(tmp_path / "o"), "--group-by", "("]) == 2
