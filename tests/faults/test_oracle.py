"""The oracle is not rectrain: it imports nothing of it (checked on its source, and by running
it where rectrain cannot be imported), and it judges checkpoint folders written here by hand
from docs/checkpoints.md: complete ones verify; a marker beside a missing, short or different
file, and a pointer to anything but a verified folder of its name and step, are anomalies."""

from __future__ import annotations

import ast
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict

from tests.faults import oracle
from tests.faults.oracle import check_dir, check_s3

ORACLE = Path(oracle.__file__)
REPO = Path(__file__).resolve().parents[2]
STDLIB_OK = {"__future__", "hashlib", "json", "re", "dataclasses", "pathlib", "typing"}


def test_the_oracle_imports_nothing_of_rectrain() -> None:
    tree = ast.parse(ORACLE.read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "no relative imports: they could reach the code under test"
            imported.add((node.module or "").split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in (
                "__import__", "import_module"):
            raise AssertionError(f"dynamic import at line {node.lineno}")
    assert "rectrain" not in imported
    assert imported <= STDLIB_OK, f"the oracle may use the standard library only: {imported - STDLIB_OK}"


def test_the_oracle_runs_where_rectrain_cannot_be_imported(tmp_path: Path) -> None:
    _write_folder(tmp_path, "s00000004-latest-abcdef", "latest", 4, {"latest.pdparams": b"p" * 10})
    code = ("import sys; sys.modules['rectrain'] = None\n"  # any import of rectrain now fails
            "from tests.faults.oracle import check_dir\n"
            f"r = check_dir({str(tmp_path)!r}); print(r.newest_resume_step(), r.anomalies)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "4 []"


def _marker(name: str, step: int, files: Dict[str, bytes]) -> Dict[str, Any]:
    return {"name": name, "epoch": 1, "global_step": step, "run_id": "r1", "sub_epochs": 2,
            "files": {f: {"size": len(b), "sha256": hashlib.sha256(b).hexdigest()} for f, b in files.items()}}


def _write_folder(root: Path, folder: str, name: str, step: int, files: Dict[str, bytes],
                  marker: bool = True) -> None:
    (root / folder).mkdir(parents=True)
    for fname, body in files.items():
        (root / folder / fname).write_bytes(body)
    if marker:
        (root / folder / "_COMPLETE.json").write_text(json.dumps(_marker(name, step, files)))


def _pointer(root: Path, name: str, folder: str, step: int) -> None:
    (root / f"{name}.json").write_text(json.dumps({"name": name, "global_step": step, "folder": folder}))


def _layout(root: Path) -> None:
    """Every state the contract names, by hand."""
    files = {"latest.pdparams": b"params" * 100, "latest.pdopt": b"opt" * 50, "latest.states": b"st"}
    _write_folder(root, "s00000008-latest-aaaaaa", "latest", 8, files)
    _write_folder(root, "s00000012-latest-bbbbbb", "latest", 12, files, marker=False)  # cut short
    _write_folder(root, "s00000004-iter_epoch_2-cccccc", "iter_epoch_2", 4,
                  {"iter_epoch_2.pdparams": b"x" * 7})
    _write_folder(root, "s00000016-best_accuracy-dddddd", "best_accuracy", 16,
                  {"best_accuracy.pdparams": b"b"})
    _pointer(root, "latest", "s00000008-latest-aaaaaa", 8)
    _pointer(root, "iter_epoch_2", "s00000004-iter_epoch_2-cccccc", 4)
    _pointer(root, "best_accuracy", "s00000016-best_accuracy-dddddd", 16)
    (root / "run-state.json").write_text(json.dumps({"run_id": "r1", "status": "running"}))
    (root / "metrics.jsonl").write_text("{}\n")


def test_a_sound_layout(tmp_path: Path) -> None:
    _layout(tmp_path)
    report = check_dir(tmp_path)
    assert report.anomalies == []
    assert [f.folder for f in report.verified()] == [
        "s00000016-best_accuracy-dddddd", "s00000008-latest-aaaaaa", "s00000004-iter_epoch_2-cccccc"]
    assert report.newest_resume_step() == 8  # best_accuracy is never resumed from
    assert report.folders["s00000012-latest-bbbbbb"].problems == ["no _COMPLETE.json"]
    assert {n: p.valid for n, p in report.pointers.items()} == {
        "latest": True, "iter_epoch_2": True, "best_accuracy": True}
    assert report.pointer_step("latest") == 8


def test_what_must_never_be_seen(tmp_path: Path) -> None:
    _layout(tmp_path)
    (tmp_path / "s00000008-latest-aaaaaa" / "latest.pdopt").write_bytes(b"opt" * 49 + b"OPT")  # same size
    (tmp_path / "s00000004-iter_epoch_2-cccccc" / "iter_epoch_2.pdparams").unlink()
    _write_folder(tmp_path, "s00000020-latest-eeeeee", "latest", 20, {"latest.pdparams": b"p" * 30})
    (tmp_path / "s00000020-latest-eeeeee" / "latest.pdparams").write_bytes(b"p" * 29)  # short
    _pointer(tmp_path, "best_accuracy", "s00000012-latest-bbbbbb", 12)  # an incomplete folder
    _pointer(tmp_path, "iter_epoch_4", "s00000040-iter_epoch_4-ffffff", 40)  # not there
    report = check_dir(tmp_path)
    text = "\n".join(report.anomalies)
    assert "s00000008-latest-aaaaaa: marker present but latest.pdopt sha256 differs" in text
    assert "s00000004-iter_epoch_2-cccccc: marker present but iter_epoch_2.pdparams missing" in text
    assert "s00000020-latest-eeeeee: marker present but latest.pdparams size 29" in text
    assert "latest.json: points at s00000008-latest-aaaaaa, not verified" in text
    assert "best_accuracy.json: points at s00000012-latest-bbbbbb, not verified (no _COMPLETE.json)" in text
    assert "iter_epoch_4.json: points at 's00000040-iter_epoch_4-ffffff', which is not there" in text
    assert len(report.anomalies) == 7  # and the iter_epoch_2 pointer to its damaged folder
    assert report.newest_resume_step() == 0 and report.pointer_step("latest") is None


def test_pointer_and_marker_must_agree_with_the_folder(tmp_path: Path) -> None:
    _write_folder(tmp_path, "s00000008-latest-aaaaaa", "latest", 8, {"latest.pdparams": b"p"})
    _write_folder(tmp_path, "s00000009-latest-abcabc", "latest", 10, {"latest.pdparams": b"p"})  # marker lies
    _pointer(tmp_path, "latest", "s00000008-latest-aaaaaa", 9)  # wrong step
    _pointer(tmp_path, "best_of_run", "s00000008-latest-aaaaaa", 8)  # another name's folder
    report = check_dir(tmp_path)
    assert "s00000009-latest-abcabc: marker present but marker says latest step 10" in report.anomalies
    assert "latest.json: says step 9, its folder is step 8" in report.anomalies
    assert "best_of_run.json: points at s00000008-latest-aaaaaa, a folder of latest" in report.anomalies


def test_the_same_verdicts_from_s3(tmp_path: Path, s3_client: Any, s3_bucket: str) -> None:
    _layout(tmp_path)
    (tmp_path / "s00000008-latest-aaaaaa" / "latest.states").write_bytes(b"ST")  # damaged
    for path in tmp_path.rglob("*"):
        if path.is_file():
            s3_client.put_object(Bucket=s3_bucket, Key=f"p/q/{path.relative_to(tmp_path).as_posix()}",
                                 Body=path.read_bytes())
    s3_client.put_object(Bucket=s3_bucket, Key="p/qq/s00000099-latest-999999/_COMPLETE.json", Body=b"{}")
    remote, local = check_s3(s3_client, f"s3://{s3_bucket}/p/q"), check_dir(tmp_path)
    assert remote.anomalies == local.anomalies != []  # a sibling prefix is not read
    assert {k: (f.verified, f.problems) for k, f in remote.folders.items()} == \
        {k: (f.verified, f.problems) for k, f in local.folders.items()}
    assert remote.newest_resume_step() == 4
