"""Checks before a training run starts: the device asked for exists, the config is one the
engine can train with. Nothing is started here; every refusal names the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Union

from rectrain.checkpoints.run_state import STATE_FILE
from rectrain.data.configfiles import check_config_files
from rectrain.errors import EnvironmentProblem, UserError
from rectrain.machine.gpu import paddle_build, query_gpus
from rectrain.outputs import claim_output_dir, is_within, same_file, special_place
from rectrain.storage.s3 import S3Uri
from rectrain.storage.service import S3Service

# what a run writes into its folder (runner.py's module docstring)
RUN_FILES = ("train.log", "metrics.jsonl", "config.yml", "problem-log.md", "curves.png",
             "checkpoints/", "launch-logs/", "pretrained/", "given-checkpoint/")


def check_device(device: str, gpus: Optional[Sequence[int]], python: str) -> None:
    """Refuse to 'train on the GPU' without one (a CPU run would be silently 100x slower)."""
    if device not in ("gpu", "cpu"):
        raise UserError(f"--device {device!r} is not supported.", "use --device gpu or --device cpu.")
    if device == "cpu":
        return
    report = query_gpus()
    if not report.gpus:
        raise EnvironmentProblem(
            f"no NVIDIA GPU is visible ({report.error or 'NVML found none'}).",
            "run on a GPU machine (check `nvidia-smi` and `rectrain doctor`), or pass --device cpu "
            "to train on the CPU (slow: for smoke tests).")
    if gpus:
        missing = [g for g in gpus if g >= len(report.gpus)]
        if missing:
            raise UserError(f"--gpus names GPU(s) {missing} but only {len(report.gpus)} are visible.",
                            f"use indices 0..{len(report.gpus) - 1}.")
    build = paddle_build(python)
    if not build.installed:
        raise EnvironmentProblem(f"Paddle cannot be imported by {python} ({build.error}).",
                                 "run ./setup.sh or `rectrain doctor`.")
    if not build.cuda_build:
        raise EnvironmentProblem(
            f"Paddle {build.version} is a CPU build but a GPU is present.",
            "install the paddlepaddle-gpu build matching your CUDA driver (see `rectrain doctor`), "
            "or pass --device cpu.")


def check_checkpoint_prefix(s3: S3Service, checkpoint_s3: S3Uri) -> None:
    """Before the engine starts: this identity can list, write, read and delete under the
    checkpoint prefix (the ``rectrain s3 check`` preflight). Otherwise refuse, with the IAM
    statements that would fix it: a read-only identity would train to the end and keep
    nothing in S3."""
    import json

    from rectrain.errors import PermissionProblem
    from rectrain.storage.check import check_s3_access

    report = check_s3_access(s3, checkpoint_s3)
    if report.ok:
        return
    failed = [line for line in report.lines if line.status == "fail" and line.required]
    details = "; ".join(f"{line.name}: {line.detail}" for line in failed)
    policies = [line.policy for line in failed if line.policy]
    fix = ("add to the identity's IAM policy: " + json.dumps(policies) if policies else
           "; ".join(line.fix for line in failed if line.fix) or "run `rectrain s3 check "
           f"{checkpoint_s3}`.")
    raise PermissionProblem(
        f"--checkpoint-s3 {checkpoint_s3}: this identity cannot keep checkpoints there "
        f"({details}); nothing was trained.", fix + f" Check again with `rectrain s3 check {checkpoint_s3}`.",
        action=",".join(line.name for line in failed), resource=str(checkpoint_s3))


def check_train_inputs(cfg: Dict[str, Any]) -> None:
    """The files the config names (label files, dictionary, images root, weights) exist and
    are what they claim, before the engine starts: the same checks and exit code (2) as
    ``rectrain config check``, not an engine failure (exit 4) minutes later."""
    check_config_files(cfg)


def _dataset_inputs(cfg: Dict[str, Any]) -> list:
    """``(what, path)`` of the label files and the dictionary a config names."""
    ds_files = []
    for mode in ("Train", "Eval"):
        files = (((cfg.get(mode) or {}).get("dataset")) or {}).get("label_file_list") or []
        ds_files += [files] if isinstance(files, str) else list(files)
    return [("label file", str(f)) for f in ds_files] + [
        ("dictionary", str((cfg.get("Global") or {}).get("character_dict_path") or "") or None)]


def claim_run_dir(run: Path, config: Union[str, Path], cfg: Dict[str, Any]) -> None:
    """A run folder is new, empty, or one rectrain wrote (run-state.json or its marker); a
    folder holding other files of the names a run writes (a config.yml of the user's, a
    checkpoints/ folder) is refused, as is one where a run file would replace an input."""
    if (run / STATE_FILE).is_file():
        return
    writes = [n for n in RUN_FILES if not (n == "config.yml" and same_file(config, run / n))]
    inputs = [("config", str(config))] + _dataset_inputs(cfg)
    claim_output_dir(run, command="train", flag="--run-dir", writes=writes, inputs=inputs)


# what the engine writes into Global.save_model_dir (PaddleOCR's program.py and save_model)
ENGINE_CHECKPOINT_FILES = ("config.yml", "train.log", "latest.pdparams", "latest.pdopt", "latest.states",
                           "best_accuracy.pdparams", "best_accuracy.pdopt", "best_accuracy.states",
                           "best_model/", "snapshots/")


def claim_checkpoint_dir(ckdir: Path, run: Path, config: Union[str, Path], cfg: Dict[str, Any],
                         new_run: bool = True) -> None:
    """``--checkpoint-dir`` outside the run folder: never the current folder, its parents, home
    or root, never a folder holding the run's inputs (the dataset), never another run's
    checkpoints, never over files of the names the engine writes that rectrain did not write."""
    if ckdir == run / "checkpoints":
        return
    where = special_place(ckdir.resolve())
    if where:
        raise UserError(f"--checkpoint-dir {ckdir} is {where}: the engine writes and --restart "
                        "deletes checkpoints there.",
                        f"pass a new folder, e.g. --checkpoint-dir {run / 'checkpoints'} (the default).")
    inputs = [("config", str(config))] + _dataset_inputs(cfg)
    for what, path in inputs:
        if path and is_within(path, ckdir):
            raise UserError(f"--checkpoint-dir {ckdir} holds the {what} ({path}): the engine's "
                            "files would be written among them.",
                            f"pass a new folder, e.g. --checkpoint-dir {run / 'checkpoints'} (the default).")
    # checks only, no marker: SageMaker syncs this folder to S3 as it is. A folder that already
    # holds the engine's checkpoints is a run's (resume, restart: their own refusals apply).
    engine_files = not new_run or (ckdir.is_dir() and (any(ckdir.glob("*.states"))
                                                        or (ckdir / "snapshots").is_dir()))
    claim_output_dir(ckdir, command="train", flag="--checkpoint-dir",
                     writes=[] if engine_files else list(ENGINE_CHECKPOINT_FILES), inputs=inputs, own=[run],
                     create=False)
