"""The training container's entrypoint (``<image> train`` on SageMaker).

The SageMaker contract, through :class:`rectrain.paths.MLPaths`:

1. read ``hyperparameters.json`` (all strings), ``resourceconfig.json``, ``inputdataconfig.json``;
2. unpack packed channels to local disk;
3. on a GPU instance, assert a CUDA build of Paddle and a visible GPU (fail in seconds);
4. build the training config (``create_recognition_training_config``);
5. resume from ``/opt/ml/checkpoints`` when it holds a checkpoint (spot restart);
6. train on every GPU (several hosts: ``paddle.distributed.launch``, first sorted host = master);
7. write ``/opt/ml/model`` (inference model, dictionary, config, metrics, ``model.json``);
8. on failure write a useful first 1024 characters to ``/opt/ml/output/failure`` and exit
   non-zero; on SIGTERM stop within the 120 s grace, leaving the last checkpoint in
   ``/opt/ml/checkpoints``.

``RECTRAIN_DEVICE=cpu`` forces CPU training whatever the instance type (``run-local`` sets
it); ``RECTRAIN_ML_ROOT`` or ``--ml-root`` moves the ``/opt/ml`` tree. The ``RECTRAIN_*``
settings are read once, by :func:`run_entrypoint` (unless the CLI passes them).
"""

from __future__ import annotations

import signal
import time
import traceback
from pathlib import Path
from typing import Any, Dict, List, Optional

from rectrain.container.contract import (
    DistributedPlan,
    ResourceConfig,
    checkpoint_dir,
    read_contract,
    tuning_trial,
)
from rectrain.container.startup import check_gpu, gpu_operation_check, launch_plan, scratch_dir
from rectrain.errors import (
    EXIT_INTERNAL_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    ConfigError,
    DataError,
    Interrupted,
    RectrainError,
    UserError,
)
from rectrain.logs import get_logger
from rectrain.outputs import copy_file, move, remove_tree, write_json, write_text
from rectrain.outputs.files import safe_extract
from rectrain.paths import MLPaths
from rectrain.sagemaker.jobconfig import TrainingOptions
from rectrain.settings import Settings
from rectrain.tracking import TrackingOptions, attach_to_run
from rectrain.training.request import ADOPT_NEWEST, Placement, StopRules, TrainRequest
from rectrain.training.runner import train

__all__ = ["check_gpu", "gpu_operation_check", "launch_plan", "run_entrypoint", "scratch_dir"]

log = get_logger("sagemaker.entrypoint")
FAILURE_LIMIT = 1024
LABEL_CANDIDATES = {
    "train": ("train.txt", "rec_gt_train.txt", "train_list.txt", "labels.txt", "label.txt", "gt.txt"),
    "val": ("val.txt", "rec_gt_val.txt", "val_list.txt", "test.txt", "labels.txt", "label.txt", "gt.txt"),
}
DICT_CANDIDATES = ("dict.txt", "dictionary.txt", "keys.txt")
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.zst")


# ------------------------------------------------------------------ failure file
def failure_text(exc: BaseException, log_tail: str = "") -> str:
    """The first 1024 characters SageMaker shows as ``FailureReason``: the class and the
    message with its fix first, then the end of the training log."""
    if isinstance(exc, RectrainError):
        head = f"{type(exc).__name__}: {exc}"
    else:
        where = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
        at = f" at {Path(where[0].filename).name}:{where[0].lineno}" if where else ""
        head = (f"InternalError: {type(exc).__name__}: {exc}{at}. Fix: report this with the job "
                "name and its CloudWatch log.")
    text = head
    if log_tail:
        text += "\n--- end of train.log ---\n" + log_tail
    if len(text) > FAILURE_LIMIT:
        if len(head) >= FAILURE_LIMIT:
            text = head[:FAILURE_LIMIT]
        else:  # keep the head whole and the most recent log lines
            room = FAILURE_LIMIT - len(head) - len("\n--- end of train.log ---\n")
            text = head + "\n--- end of train.log ---\n" + (log_tail[-room:] if room > 0 else "")
            text = text[:FAILURE_LIMIT]
    return text


def write_failure(paths: MLPaths, exc: BaseException, log_file: Optional[Path] = None) -> str:
    tail = ""
    if log_file is not None and log_file.is_file():
        text = log_file.read_text(encoding="utf-8", errors="replace").replace("\r", "\n")
        lines = [line for line in text.splitlines() if line.strip() and "it/s]" not in line
                 and "s/it]" not in line]
        tail = "\n".join(lines[-15:])
    text = failure_text(exc, tail)
    write_text(paths.failure, text)
    return text


# ------------------------------------------------------------------ channels


def _packed_manifest(channel_dir: Path) -> bool:
    from rectrain.storage.manifest import MANIFEST_NAME, read_header

    path = channel_dir / MANIFEST_NAME
    return path.is_file() and read_header(path).kind == "packed"


def prepare_channel(channel_dir: Path, work_dir: Path) -> Path:
    """A channel as a folder of files. A packed dataset (``rectrain data pack``: tar shards and
    ``manifest.jsonl``) is unpacked to local disk under ``work_dir`` and verified file by file;
    other tar archives are extracted safely; a plain channel is used as it is. Returns the
    folder to read."""
    if not channel_dir.is_dir():
        raise DataError("the channel folder does not exist.", "check InputDataConfig / the S3 prefix.",
                        path=str(channel_dir))
    started = time.monotonic()
    if _packed_manifest(channel_dir):
        from rectrain.storage.pull import unpack_dataset

        info = unpack_dataset(channel_dir, work_dir, progress=False)
        log.info("unpacked %s: %s files from %s shard(s) in %.1f s", channel_dir.name, info["files"],
                 info["shards"], time.monotonic() - started)
        return work_dir
    archives = sorted(p for p in channel_dir.rglob("*") if p.is_file() and p.name.endswith(ARCHIVE_SUFFIXES))
    if not archives:
        return channel_dir
    work_dir.mkdir(parents=True, exist_ok=True)
    for archive in archives:
        safe_extract(archive, work_dir)  # the one safe extractor (archives.py)
    # loose files beside the archives (labels, dictionary) come along
    for item in channel_dir.iterdir():
        loose = item.is_file() and not item.name.endswith(ARCHIVE_SUFFIXES)
        if loose and not (work_dir / item.name).exists():
            copy_file(item, work_dir / item.name, metadata=True)
    log.info("unpacked %d archive(s) of %s in %.1f s", len(archives), channel_dir.name,
             time.monotonic() - started)
    return work_dir


def in_channel(folder: Path, given: str, setting: str) -> Path:
    """``folder / given`` when that names a file inside ``folder`` (hyperparameters are set by
    whoever launches the job: a name, never a way to read another file of the container)."""
    path = (folder / given).resolve()
    if Path(given).is_absolute() or ".." in Path(given).parts or folder.resolve() not in path.parents:
        raise DataError(f"{setting} {given!r} is not a file name inside the channel {folder}.",
                        f"set {setting} to a name relative to the top of its channel.")
    return path


def find_label_file(folder: Path, channel: str, given: Optional[str]) -> Path:
    if given:
        path = in_channel(folder, given, f"training.{channel}_labels")
        if not path.is_file():
            names = ", ".join(sorted(p.name for p in folder.glob("*.txt"))) or "(no .txt files)"
            raise DataError(f"label file {given!r} is not in the {channel} channel.",
                            f"set training.{channel}_labels to one of: {names}.", path=str(path))
        return path
    for name in LABEL_CANDIDATES[channel]:
        if (folder / name).is_file():
            return folder / name
    texts = [p for p in sorted(folder.glob("*.txt")) if p.name not in DICT_CANDIDATES]
    if len(texts) == 1:
        return texts[0]
    raise DataError(f"cannot tell which file of the {channel} channel holds the labels "
                    f"(found {', '.join(p.name for p in texts) or 'no .txt file'}).",
                    f"set training.{channel}_labels in the job config.", path=str(folder))


def find_dictionary(folders: List[Path], given: Optional[str]) -> Optional[Path]:
    names = [given] if given else list(DICT_CANDIDATES)
    for folder in folders:
        for name in names:
            if name and in_channel(folder, name, "training.dict").is_file():
                return folder / name
    if given:
        raise DataError(f"dictionary {given!r} is in none of the channels "
                        f"({', '.join(str(f) for f in folders)}).",
                        "put it at the top of the train channel, or set training.dict to its name there.")
    return None


def find_pretrained(value: Optional[str], paths: MLPaths) -> Optional[str]:
    """``channel:<name>`` -> the prefix of the first ``.pdparams`` in that channel."""
    if not value or not value.startswith("channel:"):
        return value
    try:
        channel = paths.channel(value.split(":", 1)[1])
    except ValueError as exc:
        raise DataError(f"training.pretrained {value!r}: {exc}.",
                        "write channel:<name> with the name of an input channel.") from None
    params = sorted(channel.rglob("*.pdparams"))
    if not params:
        raise DataError("no .pdparams file in the pretrained channel.",
                        "point training.pretrained at the s3:// prefix of a .pdparams file.",
                        path=str(channel))
    return str(params[0])[: -len(".pdparams")]


# ------------------------------------------------------------------ model
def model_checkpoints(result: Any, checkpoint_dir: Path) -> List[str]:
    """Checkpoint prefixes to export, best first: the runner's best and latest, then the
    engine's own names in the checkpoint dir."""
    found: List[str] = []
    for prefix in (getattr(result, "best_checkpoint", None), checkpoint_dir / "best_accuracy",
                   getattr(result, "latest_checkpoint", None), checkpoint_dir / "latest"):
        if prefix is not None and Path(f"{prefix}.pdparams").is_file() and str(prefix) not in found:
            found.append(str(prefix))
    return found


def write_model_dir(paths: MLPaths, run_dir: Path, checkpoints: List[str],
                    paddleocr_dir: Optional[str] = None, scratch: Optional[str] = None) -> Path:
    """Export the first exportable checkpoint into ``/opt/ml/model`` with the run's metrics,
    so ``model.tar.gz`` is ready to use."""
    from rectrain.model.export import export_model

    if not checkpoints:
        raise UserError(f"training ended without a checkpoint in {paths.checkpoints}.",
                        "train for at least one epoch (or one evaluation) before the job ends.")
    staging = scratch_dir(paths, scratch) / ".model-export"
    if staging.exists():
        remove_tree(staging)
    last_error: Optional[Exception] = None
    for checkpoint in checkpoints:
        try:
            export_model(str(run_dir), checkpoint=checkpoint, out_dir=str(staging),
                         paddleocr_dir=paddleocr_dir)
            break
        except UserError as exc:
            last_error = exc
    else:
        assert last_error is not None
        raise last_error
    paths.model.mkdir(parents=True, exist_ok=True)
    for item in staging.iterdir():
        target = paths.model / item.name
        if target.is_dir():
            remove_tree(target)
        move(item, target)
    remove_tree(staging, ignore_errors=True)
    for name in ("metrics.jsonl", "curves.png", "problem-log.md"):
        if (run_dir / name).is_file():
            copy_file(run_dir / name, paths.model / name, metadata=True)
    return paths.model


def report_shipped_metrics(model_dir: Path) -> Optional[str]:
    """Log the metrics of the checkpoint ``model.tar.gz`` holds (``model.json``), as the job's
    last "best metric" line: SageMaker's ``eval:best_acc`` regex reads it, and a tuning job's
    objective is the *last* value a trial writes, so it is the accuracy of the model the trial
    ships, also when that is the run's ``best_of_run`` and the engine's own best restarted after
    a spot restart. Returns the line (None when the checkpoint has no evaluation)."""
    import json

    try:
        info = json.loads((model_dir / "model.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        info = {}
    metrics = info.get("metrics") or {}
    numbers = [(k, v) for k, v in metrics.items() if isinstance(v, (int, float))
               and not isinstance(v, bool) and k not in ("best_epoch", "fps")]
    if not numbers:
        log.warning("warning: the shipped checkpoint has no evaluation metrics: a tuning job records "
                    "this trial's last evaluation instead. Fix: evaluate at least once (val channel).")
        return None
    checkpoint = info.get("checkpoint") or {}
    line = (f"model.tar.gz holds checkpoint {Path(str(checkpoint.get('name') or '?')).name} (step "
            f"{checkpoint.get('global_step')}): best metric, " + ", ".join(f"{k}: {v}" for k, v in numbers))
    log.info("%s", line)
    return line


# ------------------------------------------------------------------ main
def _build_config(options: TrainingOptions, train_dir: Path, val_dir: Optional[Path], out: Path,
                  device: str, paths: MLPaths, paddleocr_dir: Optional[str]) -> Path:
    from rectrain.config.build import create_recognition_training_config

    train_labels = find_label_file(train_dir, "train", options.train_labels)
    val_labels = find_label_file(val_dir, "val", options.val_labels) if val_dir else train_labels
    folders = [train_dir] + ([paths.channel("dict")] if paths.channel("dict").is_dir() else [])
    dict_path = find_dictionary(folders, options.dict)
    if dict_path is None:
        raise DataError(f"no dictionary in the train channel (looked for {', '.join(DICT_CANDIDATES)}).",
                        "put dict.txt (one character per line) at the top of the train prefix, or set "
                        "training.dict to its file name.", path=str(train_dir))
    base = options.preset or options.base_config
    if not base:
        raise ConfigError("hyperparameters.json has no preset or base_config.",
                          "launch with --preset (rectrain sagemaker launch) or set training.preset.")
    if options.base_config and not Path(options.base_config).is_absolute():
        for folder in (paths.channel("config"), train_dir):
            if (folder / options.base_config).is_file():
                base = str(folder / options.base_config)
                break
    result = create_recognition_training_config(
        base, str(train_labels), str(val_labels), str(dict_path), str(out),
        images_root=str(train_dir), val_images_root=str(val_dir or train_dir),
        epochs=options.epochs, lr=options.lr, batch_size=options.batch_size,
        max_text_length=options.max_text_length,
        image_shape=tuple(options.image_shape) if options.image_shape else None,
        pretrained=find_pretrained(options.pretrained, paths), amp=options.amp and device == "gpu",
        device=device,
        overrides=tuple(options.overrides), check_data=True, paddleocr_dir=paddleocr_dir)
    if options.amp and device != "gpu":
        log.warning("warning: amp (float16) is off: this run has no GPU (run-local emulates on the CPU)")
    if val_dir is None:
        log.warning("warning: no val channel: evaluating on the training labels (accuracy will look "
                    "better than it is). Fix: pass --val s3://... with held-out images.")
    for change in getattr(result, "changes", []) or []:
        fieldname, old, new, why = (getattr(change, k, "") for k in ("field", "old", "new", "why"))
        log.info("config: %s: %s -> %s (%s)", fieldname, old, new, why)
    return Path(result.path)


class _Sigterm:
    """SIGTERM (spot interruption, StopTrainingJob) -> :class:`Interrupted` in the main thread,
    unless the training runner has installed its own handler (it stops the engine and keeps
    the last checkpoint)."""

    def __init__(self) -> None:
        self.received = False
        self.previous: Any = None

    def __enter__(self) -> _Sigterm:
        self.previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:  # noqa: ARG002
        self.received = True
        log.warning("SIGTERM received: stopping; the last checkpoint stays in the checkpoint dir")
        raise Interrupted("the job received SIGTERM (spot interruption or stop).",
                          "nothing to do: SageMaker restarts a spot job from its checkpoints.")

    def __exit__(self, *exc: Any) -> None:
        signal.signal(signal.SIGTERM, self.previous or signal.SIG_DFL)


def run_entrypoint(ml_root: Optional[str] = None, *, paddleocr_dir: Optional[str] = None,
                   max_steps: Optional[int] = None, display: str = "plain",
                   settings: Optional[Settings] = None) -> int:
    """Run the whole contract; returns the process exit code (0 done, 75 interrupted after
    saving, other: failed, with ``/opt/ml/output/failure`` written)."""
    settings = settings or Settings.from_env()
    paths = MLPaths.resolve(ml_root or settings.ml_root)
    try:
        resource = read_contract(paths)[1]
    except RectrainError:
        resource = ResourceConfig()
    run_dir = run_dir_for(paths, resource)
    log_file = run_dir / "train.log"
    with _Sigterm() as sigterm:
        try:
            return _run(paths, run_dir, paddleocr_dir, max_steps, display, settings)
        except Interrupted as exc:
            log.warning("%s", exc)
            return EXIT_INTERRUPTED
        except RectrainError as exc:
            text = write_failure(paths, exc, log_file)
            log.error("failed: %s", text.splitlines()[0])
            return exc.exit_code
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
        except Exception as exc:  # noqa: BLE001 - the container must always leave a failure file
            text = write_failure(paths, exc, log_file)
            log.error("failed: %s\n%s", text.splitlines()[0], traceback.format_exc())
            return EXIT_INTERNAL_ERROR
        finally:
            if sigterm.received:
                log.warning("stopped after SIGTERM")


def run_dir_for(paths: MLPaths, resource: ResourceConfig) -> Path:
    """The run dir (train.log, metrics.jsonl, run state) is in ``/opt/ml/output/data``
    (SageMaker uploads it as ``output.tar.gz``). The training runner mirrors the run's history
    into ``<checkpoints>/run`` and restores it from there, so a spot restart continues the
    same run history. It must not be inside the checkpoint dir itself."""
    if resource.is_master:
        return paths.output_data / "run"
    return paths.output_data / f"run-{resource.current_host}"


def _run(paths: MLPaths, run_dir: Path, paddleocr_dir: Optional[str], max_steps: Optional[int],
         display: str, settings: Settings) -> int:
    started = time.monotonic()
    options, resource = read_contract(paths)
    checkpoints = checkpoint_dir(paths, tuning_trial(paths.read_json(paths.hyperparameters)))
    if checkpoints != paths.checkpoints:
        log.info("tuning trial: this job's checkpoints are in %s (the other trials' beside it are "
                 "never read)", checkpoints)
    channels: Dict[str, Any] = paths.read_json(paths.input_data_config)
    log.info("host %s of %s, instance %s, channels: %s", resource.current_host,
             ",".join(resource.sorted_hosts), resource.instance_type or "unknown",
             ", ".join(sorted(channels)) or "(none listed)")
    if not (options.preset or options.base_config):
        raise ConfigError("hyperparameters.json has no preset or base_config.",
                          "launch with --preset (rectrain sagemaker launch) or set training.preset.")
    gpu_count = check_gpu(resource.instance_type, device=settings.device, image_cuda=settings.image_cuda)
    device = "gpu" if gpu_count > 0 else "cpu"
    plan, extra_env = launch_plan(resource, gpu_count, resolve_timeout=settings.host_resolve_timeout_s)
    if plan.nnodes > 1:
        log.info("host %s: rank %d of %d, master %s (%s)", resource.current_host, plan.node_rank,
                 plan.nnodes, plan.master, resource.sorted_hosts[0])
    for key, value in sorted(extra_env.items()):
        log.info("environment: %s=%s", key, value)  # for the engine (and paddle.distributed.launch)

    work = scratch_dir(paths, settings.scratch)
    train_dir = prepare_channel(paths.channel("train"), work / "train")
    val_dir = prepare_channel(paths.channel("val"), work / "val") if paths.channel("val").is_dir() else None
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = _build_config(options, train_dir, val_dir, work / "config.yml", device, paths,
                                paddleocr_dir)
    resume = checkpoints.is_dir() and any(p.is_file() for p in checkpoints.rglob("*"))
    if resume:
        log.info("resuming from the checkpoints in %s", checkpoints)
    request = train_request(config_path, run_dir, device, plan, extra_env, paths, resume, options,
                            paddleocr_dir, max_steps, display, checkpoints)
    result = train(request, None, settings)
    status = getattr(result, "status", "completed")
    if status == "interrupted":  # ("stopped": --max-steps reached, a normal end)
        raise Interrupted(f"training stopped ({status}) at step {getattr(result, 'global_step', '?')}.",
                          "SageMaker restarts spot jobs from /opt/ml/checkpoints.")
    code = int(getattr(result, "exit_code", 0) or 0)
    if code != 0:
        from rectrain.errors import EngineFailure

        raise EngineFailure(f"training failed ({status}, exit code {code}).",
                            f"read {run_dir / 'train.log'} and {run_dir / 'problem-log.md'}.")
    if resource.is_master:
        write_model_dir(paths, run_dir, model_checkpoints(result, checkpoints), paddleocr_dir,
                        settings.scratch)
        report_shipped_metrics(paths.model)  # the tuning objective's last value
        attach_to_run(run_dir, [paths.model], subdir="model")  # MLflow, when the run is tracked
        write_json(paths.output_data / "job.json", {
            "host": resource.current_host, "hosts": resource.sorted_hosts, "device": device,
            "gpus": gpu_count, "resumed": resume, "seconds": round(time.monotonic() - started, 1),
            "global_step": getattr(result, "global_step", None), "epoch": getattr(result, "epoch", None)})
    log.info("done in %.0f s", time.monotonic() - started)
    return EXIT_OK


def train_request(config_path: Path, run_dir: Path, device: str, plan: DistributedPlan,
                  env: Dict[str, str], paths: MLPaths, resume: bool, options: TrainingOptions,
                  paddleocr_dir: Optional[str], max_steps: Optional[int], display: str,
                  checkpoints: Optional[Path] = None) -> TrainRequest:
    """The job's training run as a request: this host's place in the job (``env``: its NCCL and
    launcher variables for the engine), the checkpoints in ``checkpoints`` (default
    ``/opt/ml/checkpoints``; a tuning trial's folder in it; SageMaker syncs them), TensorBoard
    events where SageMaker uploads them, loader workers for the instance's CPUs."""
    every = options.checkpoint_every_min
    return TrainRequest(
        config=config_path, run_dir=run_dir,
        placement=Placement(device=device, gpus=tuple(plan.gpus or ()), nnodes=plan.nnodes,
                            node_rank=plan.node_rank, master=plan.master, env=dict(env)),
        checkpoint_dir=checkpoints or paths.checkpoints, mode="resume" if resume else "new",
        adopt_run=ADOPT_NEWEST,  # the job's (or trial's) own folder, which SageMaker restored
        checkpoint_every_min=30.0 if every is None else every, stop=StopRules(max_steps=max_steps),
        workers="auto", tracking=TrackingOptions(tensorboard_dir=str(paths.output / "tensorboard")),
        display=display, paddleocr_dir=paddleocr_dir)

