"""Workers sized for the machine and the /dev/shm check, under real constraints: an affinity
mask, a cgroup CPU quota and a small tmpfs on /dev/shm (in a mount namespace), each set up
with the OS's own tools in a child process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Optional

import pytest

from rectrain.config.presets import PRESETS
from rectrain.errors import ConfigError
from rectrain.machine.probes import CpuProbe, ShmProbe, cgroup_cpu_quota, probe_cpus, probe_shm
from rectrain.training.workers import auto_workers, choose_loader, shm_needed

SRC = str(Path(__file__).resolve().parents[2] / "src")

CHILD = r"""
import json, os, sys
cpus = sys.argv[1]
if cpus != "-":
    os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})
from rectrain.config.presets import PRESETS
from rectrain.machine.probes import probe_cpus, probe_shm
from rectrain.training.workers import choose_loader
cfg = PRESETS[sys.argv[2]].load()
cfg["Train"]["loader"]["batch_size_per_card"] = int(sys.argv[3])
choice = choose_loader(cfg, "auto")
shm = probe_shm()
print(json.dumps({"cpus": probe_cpus().as_dict(), "shm": shm.as_dict() if shm else None,
                  "overrides": choice.overrides, "notes": choice.notes}))
"""


def _child(cpus: str = "-", preset: str = "crnn-mv3", batch: int = 256, wrap: Optional[list] = None,
           preexec: Any = None) -> Dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=SRC)
    argv = (wrap or []) + [sys.executable, "-c", CHILD, cpus, preset, str(batch)]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120,
                          preexec_fn=preexec)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_real_probes_match_the_os() -> None:
    cpus = probe_cpus()
    assert cpus.affinity == len(os.sched_getaffinity(0))
    assert 1 <= cpus.usable <= cpus.affinity
    shm = probe_shm()
    assert shm is not None and shm.total == shutil.disk_usage("/dev/shm").total
    assert probe_shm("/no/such/shm") is None


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 CPUs to take one away")
def test_affinity_mask_limits_the_workers() -> None:
    first = min(os.sched_getaffinity(0))
    out = _child(str(first))
    assert out["cpus"]["affinity"] == 1 and out["cpus"]["usable"] == 1
    assert out["overrides"]["Train.loader.num_workers"] == 1
    assert "1 CPU(s) in this process's affinity mask" in out["notes"][0]
    assert "(was 8)" in out["notes"][0]  # the preset's 8 workers on 1 CPU


def _cgroup_v1(tmp_name: str) -> Optional[Path]:
    base = Path("/sys/fs/cgroup/cpu")
    if not (base / "cpu.cfs_quota_us").exists() or not os.access(base, os.W_OK):
        return None
    node = base / tmp_name
    try:
        node.mkdir()
        (node / "cpu.cfs_period_us").write_text("100000")
        (node / "cpu.cfs_quota_us").write_text("50000")
    except OSError:
        if node.exists():
            node.rmdir()
        return None
    return node


def test_cgroup_quota_limits_the_workers() -> None:
    node = _cgroup_v1(f"rectrain-test-{os.getpid()}")
    if node is None:
        pytest.skip("cannot make a cgroup v1 cpu group here (needs root and cgroup v1)")
    try:
        def join() -> None:
            (node / "cgroup.procs").write_text(str(os.getpid()))

        out = _child(preexec=join)
    finally:
        for _ in range(50):  # the child has exited; its group empties at once
            try:
                node.rmdir()
                break
            except OSError:
                import time

                time.sleep(0.1)
    assert out["cpus"]["quota"] == 0.5 and out["cpus"]["usable"] == 1
    assert "cgroup CPU quota 0.5" in out["notes"][0]
    assert out["overrides"]["Train.loader.num_workers"] == 1


def test_cgroup_v2_files_are_read(tmp_path: Path) -> None:
    """cgroup v2 cannot be mounted beside v1 here: its files are given as the kernel writes
    them (the probed values; the decision logic is the real one)."""
    (tmp_path / "job" / "step").mkdir(parents=True)
    (tmp_path / "cpu.max").write_text("max 100000\n")
    (tmp_path / "job" / "cpu.max").write_text("300000 100000\n")
    (tmp_path / "job" / "step" / "cpu.max").write_text("max 100000\n")
    proc = tmp_path / "cgroup"
    proc.write_text("0::/job/step\n")
    assert cgroup_cpu_quota(tmp_path, proc) == 3.0  # the tightest ancestor wins
    (tmp_path / "job" / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_quota(tmp_path, proc) is None


def _unshare() -> Optional[list]:
    tool = shutil.which("unshare")
    if not tool or os.geteuid() != 0:
        return None
    probe = subprocess.run([tool, "--mount", "true"], capture_output=True)
    return [tool, "--mount", "--propagation", "private"] if probe.returncode == 0 else None


@pytest.mark.parametrize("size,batch,shared", [("1m", 256, False), ("64m", 4, True)])
def test_small_dev_shm_turns_shared_memory_off(size: str, batch: int, shared: bool) -> None:
    wrap = _unshare()
    if wrap is None:
        pytest.skip("needs root and unshare to mount a small /dev/shm in a mount namespace")
    script = (f"mount -t tmpfs -o size={size} tmpfs /dev/shm && "
              f'exec "$0" "$@"')
    out = _child(wrap=wrap + ["sh", "-c", script], batch=batch)
    assert out["shm"]["total"] <= 64 * 2**20
    key = "Train.loader.use_shared_memory"
    if shared:
        assert key not in out["overrides"]
    else:
        assert out["overrides"][key] is False
        note = [n for n in out["notes"] if n.startswith("Train.loader.use_shared_memory = false")]
        assert note and "/dev/shm is 1 MB free of 1 MB" in note[0] and "--shm-size" in note[0]
    assert shutil.disk_usage("/dev/shm").total > 64 * 2**20  # the host's /dev/shm untouched


def test_decisions_from_given_probes() -> None:
    cfg = PRESETS["ppocrv5-mobile"].load()
    four = CpuProbe(affinity=4, quota=None, host=4, usable=4, why="4 CPU(s)")
    big = ShmProbe("/dev/shm", 8 * 2**30, 8 * 2**30)
    small = ShmProbe("/dev/shm", 64 * 2**20, 64 * 2**20)  # Docker's default
    c = choose_loader(cfg, "auto", cpus=four, shm=big)
    assert c.overrides == {"Train.loader.num_workers": 3, "Eval.loader.num_workers": 3}
    c = choose_loader(cfg, "auto", cpus=four, shm=small)
    assert c.overrides["Train.loader.use_shared_memory"] is False
    assert shm_needed(cfg, 3) > small.free
    c = choose_loader(cfg, None, cpus=four, shm=big)  # the config's 8 workers on 4 CPUs
    assert "Train.loader.num_workers" not in c.overrides and "Fix: --workers auto" in c.notes[0]
    c = choose_loader(cfg, 0, cpus=four, shm=small)  # no workers: no shared memory used
    assert c.overrides["Train.loader.num_workers"] == 0
    assert "Train.loader.use_shared_memory" not in c.overrides
    assert auto_workers(4, 1) == 3 and auto_workers(48, 4) == 11 and auto_workers(1, 1) == 1
    assert auto_workers(96, 8) == 11 and auto_workers(64, 1) == 16
    with pytest.raises(ConfigError):
        choose_loader(cfg, "many")


def test_train_workers_auto_reaches_the_engine(engine, make_config, tmp_path: Path) -> None:  # noqa: ANN001
    """`train --workers auto`: the chosen count is passed to the engine as an override, and
    the engine trains with it (real CPU run, two steps)."""
    from rectrain.training.runner import start_recognition_training

    run = tmp_path / "run"
    result = start_recognition_training(make_config(epochs=50), run, device="cpu", display="none",
                                        max_steps=2, workers="auto")
    assert result.exit_code == 0
    command = [line for line in (run / "train.log").read_text(encoding="utf-8").splitlines()
               if line.startswith("# rectrain segment 0:")][0]
    expected = auto_workers(probe_cpus().usable, 1)
    assert f"Train.loader.num_workers={expected}" in command


def test_train_with_a_tiny_dev_shm_runs_without_shared_memory(make_config, tmp_path: Path) -> None:  # noqa: ANN001
    """A 256 KB /dev/shm (in a mount namespace): the run turns shared memory off, says so,
    and the engine trains with a worker (real CPU run, two steps)."""
    wrap = _unshare()
    if wrap is None:
        pytest.skip("needs root and unshare to mount a small /dev/shm in a mount namespace")
    import yaml

    config = make_config(epochs=50)
    cfg = yaml.safe_load(config.read_text(encoding="utf-8"))
    del cfg["Train"]["loader"]["use_shared_memory"]  # the engine's default: on
    config.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    run = tmp_path / "run"
    argv = [sys.executable, "-m", "rectrain", "train", "--config", str(config),
            "--run-dir", str(run), "--device", "cpu", "--max-steps", "2", "--workers", "1",
            "--display", "plain"]
    script = 'mount -t tmpfs -o size=256k tmpfs /dev/shm && exec "$0" "$@"'
    proc = subprocess.run(wrap + ["sh", "-c", script] + argv, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=SRC), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Train.loader.use_shared_memory = false: /dev/shm is 0 MB free of 0 MB" in proc.stderr
    command = [line for line in (run / "train.log").read_text(encoding="utf-8").splitlines()
               if line.startswith("# rectrain segment 0:")][0]
    assert "Train.loader.num_workers=1" in command and "Train.loader.use_shared_memory=false" in command
    # the constraint is real: the engine itself, shared memory on, dies of it
    from rectrain.engine import engine_command, find_engine

    bare, env = engine_command(find_engine(), "train", str(config),
                               {"Train.loader.num_workers": 1, "Train.loader.use_shared_memory": True,
                                "Global.save_model_dir": str(tmp_path / "bare"), "Global.epoch_num": 1})
    proc = subprocess.run(wrap + ["sh", "-c", script] + bare, capture_output=True, env=env, timeout=300)
    assert proc.returncode != 0
    assert b"BUS error" in proc.stdout + proc.stderr
