"""On several hosts only the first mirrors the run history into the checkpoint folder
(every host's /opt/ml/checkpoints syncs to the same S3 prefix)."""

from __future__ import annotations

from pathlib import Path

from rectrain.training.resume import MIRRORED, mirror_run_files


def _run_with_history(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    for name in MIRRORED:
        (run / name).write_text(f"{name}\n", encoding="utf-8")
    return run


def test_first_host_mirrors_the_history(tmp_path: Path) -> None:
    run, ckdir = _run_with_history(tmp_path), tmp_path / "checkpoints"
    mirror_run_files(run, ckdir, node_rank=0)
    assert sorted(p.name for p in (ckdir / "run").iterdir()) == sorted(MIRRORED)


def test_other_hosts_do_not(tmp_path: Path) -> None:
    run, ckdir = _run_with_history(tmp_path), tmp_path / "checkpoints"
    mirror_run_files(run, ckdir, node_rank=1)
    assert not (ckdir / "run").exists()
