"""Issue 21, runs tell the truth: `--restart` starts a new metrics history (the old one kept
beside it, `monitor` shows only the new run); a refused `train` leaves nothing behind in a new
run dir; a checkpoint whose verified files changed is no longer listed or exported as
complete; a damaged run-state.json is refused by name; and disk full during training ends with
rectrain's message only (no third-party traceback) and a run state with which the rerun the
message suggests works (a real small tmpfs; skipped where mounting is not permitted)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hostile import world
from tests.hostile.harness import Case, Result, cli_env, run_case

USER = 2
TRAIN = ["train", "--config", "cfg/train.yml", "--device", "cpu", "--display", "plain", "--no-tensorboard"]


def _restart_setup(tmp: Path) -> None:
    world.place(tmp, "data", "cfg", "run")
    (tmp / "old-metrics.sha256").write_text(
        hashlib.sha256((tmp / "run" / "metrics.jsonl").read_bytes()).hexdigest(), encoding="utf-8")


def _restart_check(tmp: Path, result: Result) -> None:  # noqa: ARG001
    run = tmp / "run"
    steps = world.train_steps(run)
    assert steps == [1, 2], f"metrics.jsonl after --restart --max-steps 2 holds train steps {steps}"
    old = (tmp / "old-metrics.sha256").read_text(encoding="utf-8")
    kept = [p for p in run.rglob("*") if p.is_file() and hashlib.sha256(p.read_bytes()).hexdigest() == old]
    assert kept, "the old run's metrics history was not kept beside the new one"
    mon = world.rectrain("--log-format", "json", "monitor", "run", cwd=tmp)
    summary = json.loads(mon.stdout.strip().splitlines()[-1])
    assert summary.get("global_step") == 2, f"monitor shows {summary}"
    assert summary.get("segments") in (None, 1), f"monitor counts the old run's attempts: {summary}"


_world = world.setup


def _epoch_zero(tmp: Path) -> None:
    text = (tmp / "cfg" / "train.yml").read_text(encoding="utf-8")
    (tmp / "cfg" / "train.yml").write_text(text.replace("epoch_num: 2", "epoch_num: 0"), encoding="utf-8")


def _tamper(name: str):  # noqa: ANN202
    def go(tmp: Path) -> None:
        with open(world.snapshot_file(tmp / "run", name), "ab") as fh:
            fh.write(b"\0bit rot")
    return go


def _tampered_not_listed(tmp: Path, result: Result) -> None:
    folder = str(world.snapshot_file(tmp / "run", "latest").parent)
    for line in result.output.splitlines():
        if line.startswith("{"):
            rec = json.loads(line)
            assert rec.get("location") != folder, f"ckpt list calls the changed snapshot complete: {rec}"


def _state(text: str):  # noqa: ANN202
    def go(tmp: Path) -> None:
        (tmp / "run" / "run-state.json").write_text(text, encoding="utf-8")
    return go


def R(id: str, argv, setup, says, **kw) -> Case:  # noqa: A002, ANN001
    return Case(id, argv, setup, kw.pop("code", USER), tuple(says) + ("Fix:",), leaves_nothing=True, **kw)


CASES = [
    Case("restart-starts-a-new-history", TRAIN + ["--run-dir", "run", "--restart", "--max-steps", "2"],
         _restart_setup, 0, (), may_change=("run/",), check=_restart_check),
    # refused before training: the new run dir must not be left behind
    R("refused-resume-into-a-new-run-dir", TRAIN + ["--run-dir", "newrun", "--resume", "--max-steps", "2"],
      _world("data", "cfg"), ("--resume",)),
    R("refused-missing-engine-dir", TRAIN + ["--run-dir", "newrun", "--max-steps", "2", "--paddleocr-dir",
                                             "no-such-checkout"], _world("data",
                                                                         "cfg"), ("no-such-checkout",)),
    R("refused-malformed-checkpoint-s3", TRAIN + ["--run-dir", "newrun", "--max-steps", "2",
                                                  "--checkpoint-s3",
                                                  "s3:/bucket/runs"], _world("data",
                                                                             "cfg"), ("s3:/bucket/runs",)),
    R("refused-config-epoch-zero", TRAIN + ["--run-dir", "newrun", "--max-steps", "2"],
      _world("data", "cfg", then=_epoch_zero), ("epoch_num",)),
    # a verified snapshot whose file changed is not complete any more
    Case("ckpt-list-changed-snapshot", ["--log-format", "json", "ckpt", "list", "run"],
         _world("run", then=_tamper("latest")), (0, 1, USER), check=_tampered_not_listed),
    R("export-changed-snapshot", ["export", "--run-dir", "run", "--checkpoint", "latest", "-o", "m"],
      _world("data", "run", then=_tamper("latest")), ("latest",)),
    # run-state.json damaged (a copy cut short, an editor's mistake): refused by name
    R("resume-empty-run-state", TRAIN + ["--run-dir", "run", "--resume", "--max-steps", "6"],
      _world("data", "cfg", "run", then=_state("")), ("run-state.json",)),
    R("resume-run-state-not-an-object", TRAIN + ["--run-dir", "run", "--resume", "--max-steps", "6"],
      _world("data", "cfg", "run", then=_state("[1, 2, 3]\n")), ("run-state.json",)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_truth(case: Case, tmp_path: Path, hostile_world: Path) -> None:  # noqa: ARG001
    run_case(case, tmp_path)


# -- disk full during training ----------------------------------------------------------------

def _mount_tmpfs(where: Path, size: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True)
    return proc.returncode == 0


def _train(tmp: Path, *extra: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "rectrain", *TRAIN, "--run-dir", "disk/run", "--max-steps", "8", *extra]
    return subprocess.run(argv, cwd=str(tmp), env=cli_env(), capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL)


@pytest.mark.slow
def test_disk_full_during_training(tmp_path: Path, hostile_world: Path) -> None:  # noqa: ARG001
    world.place(tmp_path, "data", "cfg")
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "1200k"):
        pytest.skip("cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)")
    try:
        full = _train(tmp_path)
        out = full.stdout + full.stderr
        low = out.lower()
        problems = []
        if full.returncode in (0, 3):
            problems.append(f"exit {full.returncode} on a full disk")
        if "Traceback (most recent call last)" in out:
            problems.append("a traceback was printed")
        if not any(w in low for w in ("disk is full", "no space", "disk full", "enospc")):
            problems.append("the message does not say the disk is full")
        if "fix:" not in low:
            problems.append("no fix")
        state_path = disk / "run" / "run-state.json"
        if state_path.exists():
            status = json.loads(state_path.read_text(encoding="utf-8")).get("status")
            if status == "running":
                problems.append("run-state.json still says running")
        # room again: the rerun the message suggests must work
        subprocess.run(["mount", "-o", "remount,size=400m", str(disk)], check=True)
        rerun = _train(tmp_path, *(["--resume"] if "--resume" in out else []))
        if rerun.returncode != 0:
            problems.append(f"the suggested rerun failed (exit {rerun.returncode}): "
                            f"{(rerun.stdout + rerun.stderr).strip().splitlines()[-1:]}")
        assert not problems, "; ".join(problems) + f"\n--- first run ---\n{out[-3000:]}"
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)

