"""``rectrain demo``: the whole recognition-training loop, for real, on embedded defaults.

synthesize Thai words -> S3 (embedded SeaweedFS or the configured endpoint) -> download and
validate -> config from the ``crnn-mv3`` preset -> CPU training with checkpoints synced to S3
-> export with the engine's exporter -> evaluate the exported model on held-out words ->
``report.json`` and ``curves.png``.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from rectrain.config.build import create_recognition_training_config
from rectrain.data.dictionary import check_dictionary
from rectrain.data.fonts import packaged_font_files
from rectrain.data.synth import Effects, synthesize, thai_words
from rectrain.data.validate import validate_recognition_annotation_format
from rectrain.demo_steps import cut_short_line, estimate_line, step_schedule
from rectrain.engine import find_engine
from rectrain.errors import DataError, UserError
from rectrain.logs import get_logger
from rectrain.model.evaluate import evaluate_model
from rectrain.model.export import export_model
from rectrain.outputs import claim_output_dir, copy_file, remove_file, remove_tree, write_json, write_text
from rectrain.settings import Settings
from rectrain.storage.api import download_recognition_data_from_s3, upload_recognition_data_to_s3
from rectrain.storage.objects import delete_prefix, list_objects
from rectrain.storage.s3 import S3Uri
from rectrain.storage.server import start_embedded
from rectrain.storage.service import S3Service
from rectrain.training.request import Placement, StopRules, TrainRequest
from rectrain.training.runner import train

log = get_logger("demo")

DEMO_BUCKET = "rectrain-demo"
# Mild, realistic noise: the model must generalise past one rendering, yet learn in minutes.
DEMO_EFFECTS_SPEC: Dict[str, Any] = dict(blur=0.2, noise=0.2, rotation=1.0, perspective=0.0,
                                         jpeg=0.2, background=False, colors=False)
DEMO_PREFIX = "demo"
DATASET = S3Uri(DEMO_BUCKET, f"{DEMO_PREFIX}/dataset")
CHECKPOINTS = S3Uri(DEMO_BUCKET, f"{DEMO_PREFIX}/checkpoints")


@dataclass(frozen=True)
class DemoPlan:
    """Sizes chosen so that 2 CPU cores learn visibly within the budget."""

    vocabulary_size: int = 12  # the most frequent Thai characters among short corpus words
    min_len: int = 2
    max_len: int = 4
    val_words: int = 100
    train_images: int = 3000
    batch_size: int = 32
    lr: float = 0.005
    image_height: int = 32
    # A fixed number of steps (rounded up to whole epochs: 10 x 93 = 930), whatever the machine
    # load; 0.54 s/step measured on 2 idle cores (docs/problem-log.md). See demo_steps.py.
    train_steps: int = 900
    seconds_per_step: float = 0.54
    # The crnn-mv3 preset, made smaller for 2 CPU cores: MobileNetV3 small and a 48-unit BiLSTM.
    # Measured here: held-out word accuracy 0.69 after 400 steps (see docs/problem-log.md).
    overrides: Tuple[str, ...] = (
        "Architecture.Backbone.model_name=small",
        "Architecture.Backbone.small_stride=[1, 2, 2, 2]",
        "Architecture.Neck.hidden_size=48",
        "Optimizer.lr.warmup_epoch=0",
        "Optimizer.regularizer.factor=0.0",
    )


def demo_fonts() -> List[str]:
    """Upright regular and bold faces of both packaged Thai fonts (italic and light faces make
    the ten-minute demo needlessly hard)."""
    wanted = ("Sarabun-Regular", "Sarabun-Bold.", "NotoSansThai")
    fonts = [str(p) for p in packaged_font_files() if any(w in Path(p).name for w in wanted)]
    if not fonts:
        raise UserError("no Thai fonts found for the demo",
                        "pip install fontpkg-sarabun fontpkg-noto-sans-thai (or rerun ./setup.sh).")
    return fonts


def choose_words(plan: DemoPlan, seed: int) -> Tuple[List[str], List[str], List[str]]:
    """Train words, held-out words (disjoint) and the character set, from pythainlp's corpus."""
    words = [w for w in thai_words() if plan.min_len <= len(w) <= plan.max_len
             and all("\u0e01" <= c <= "\u0e5b" for c in w)]
    counts = Counter(c for w in words for c in w)
    charset = sorted(c for c, _ in counts.most_common(plan.vocabulary_size))
    allowed = set(charset)
    words = sorted({w for w in words if set(w) <= allowed})
    random.Random(seed).shuffle(words)
    if len(words) < plan.val_words * 3:
        raise DataError(f"the word corpus yields only {len(words)} usable words",
                        "reinstall pythainlp (pip install pythainlp) and rerun.")
    return words[plan.val_words:], words[:plan.val_words], charset


def _reset(path: Path) -> None:
    if path.exists():
        remove_tree(path)


# What the demo writes into its --workdir (a rerun replaces them; a folder with other files of
# these names is refused).
DEMO_WRITES = ("source/", "s3/", "data/", "run/", "model/", "config.yml", "config.base.yml",
               "config.diff.md", "curves.png", "report.json")


def run_demo(workdir: str = "rectrain-demo", minutes: Optional[float] = None, *, seed: int = 0,
             endpoint_url: Optional[str] = None, resume: bool = False,
             plan: Optional[DemoPlan] = None, display: str = "rich",
             settings: Optional[Settings] = None) -> Dict[str, object]:
    """Run the demo; returns the report (also written to ``workdir/report.json``).
    ``minutes`` is an optional cap on the whole demo; training is ``plan.train_steps`` steps."""
    plan = plan or DemoPlan()
    settings = settings or Settings.from_env()
    started = time.monotonic()
    work = claim_output_dir(workdir, command="demo", flag="--workdir", writes=list(DEMO_WRITES))
    engine = find_engine()
    sched = step_schedule(plan.train_images, plan.batch_size, plan.train_steps)
    log.info("      %s", estimate_line(sched, plan.seconds_per_step, minutes))

    with ExitStack() as stack:
        source = _synthetic_dataset(work, plan, seed)  # a. held-out words never seen in training
        s3, endpoint = _s3(stack, work, endpoint_url, settings)  # b.
        data = _through_s3(s3, source, work)  # c. up, down and validated, as a training job would
        built, run_dir = _config(s3, work, data, plan, sched, resume)  # d.
        # e./f. train on the CPU; checkpoints go to S3 as they appear
        log.info("[5/7] training on the CPU: %d steps", sched.steps)
        t0 = time.monotonic()
        cap_s = None if minutes is None else max(60.0, minutes * 60 - (time.monotonic() - started) - 90.0)
        request = TrainRequest(config=Path(built.path), run_dir=run_dir, placement=Placement(device="cpu"),
                               checkpoint_s3=CHECKPOINTS, mode="resume" if resume else "new",
                               display=display, stop=StopRules(max_seconds=cap_s, stop_at_step=sched.steps))
        result = train(request, s3, settings)
        train_seconds = time.monotonic() - t0
        cut_short = cut_short_line(result.global_step, sched, minutes)
        if cut_short:
            log.warning("%s", cut_short)
        evaluation = _export_and_evaluate(work, run_dir, data)  # g.
        keys = sorted(o.key for o in list_objects(s3, CHECKPOINTS))

    # h. the report
    curves = run_dir / "curves.png"
    if curves.is_file():
        copy_file(curves, work / "curves.png")
    report_data: Dict[str, object] = {
        "word_accuracy": evaluation.word_accuracy,
        "cer": evaluation.cer,
        "norm_edit_dis": evaluation.norm_edit_dis,
        "train_seconds": round(train_seconds, 1),
        "total_seconds": round(time.monotonic() - started, 1),
        "samples_train": plan.train_images,
        "samples_val": evaluation.total,
        "global_step": result.global_step,
        "planned_steps": sched.steps,
        "cut_short": bool(cut_short),
        "epochs": sched.schedule_epochs,
        "s3_endpoint": endpoint,
        "s3_checkpoint_keys": keys,
        "engine": {"kind": engine.kind, "version": engine.version},
        "model_dir": str(work / "model"),
        "curves_png": str(work / "curves.png"),
    }
    write_json(work / "report.json", report_data)
    log.info("[7/7] held-out word accuracy %.1f%%, CER %.3f (exported model, %d unseen words)",
             100 * evaluation.word_accuracy, evaluation.cer, evaluation.total)
    log.info("      report: %s", work / "report.json")
    log.info("      curves: %s", work / "curves.png")
    return report_data


def _synthetic_dataset(work: Path, plan: DemoPlan, seed: int) -> Path:
    """Train and held-out words rendered with the packaged Thai fonts, made once per workdir."""
    source = work / "source"
    dataset_stamp = source / "dataset.json"
    if dataset_stamp.is_file():
        log.info("[1/7] reusing the synthetic dataset in %s", source)
        return source
    _reset(source)
    train_words, val_words, charset = choose_words(plan, seed)
    log.info("[1/7] synthesizing %d training images of %d words and %d held-out words "
             "(%d characters)", plan.train_images, len(train_words), len(val_words), len(charset))
    fonts = demo_fonts()
    effects = Effects(**DEMO_EFFECTS_SPEC)
    synthesize(train_words, source / "train", plan.train_images, seed=seed, fonts=fonts,
               height=plan.image_height, effects=effects, prefix="train-")
    synthesize(val_words, source / "val", len(val_words), seed=seed + 1, fonts=fonts,
               height=plan.image_height, effects=effects, prefix="val-")
    write_text(source / "dict.txt", "\n".join(charset) + "\n")
    write_json(dataset_stamp, {"seed": seed, "train_words": len(train_words),
                                      "val_words": len(val_words), "charset": charset})
    return source


def _s3(stack: ExitStack, work: Path, endpoint_url: Optional[str],
        settings: Settings) -> Tuple[S3Service, str]:
    """The configured S3 endpoint, or an embedded SeaweedFS on loopback (stopped with
    ``stack``), as an :class:`S3Service` with the demo's bucket."""
    endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        s3 = S3Service(endpoint, fastpath=not settings.no_fastpath, retry_budget_s=settings.s3_retry_s)
        log.info("[2/7] using the configured S3 endpoint %s", endpoint)
    else:
        server = stack.enter_context(start_embedded(work / "s3", weed=settings.weed))
        endpoint = server.endpoint_url
        s3 = server.service(fastpath=not settings.no_fastpath)  # its own credentials
        log.info("[2/7] started the embedded S3 (SeaweedFS) at %s", endpoint)
    s3.ensure_bucket(DEMO_BUCKET)
    return s3, endpoint


def _through_s3(s3: S3Service, source: Path, work: Path) -> Path:
    """The dataset uploaded, downloaded and validated (dictionary and both splits)."""
    upload_recognition_data_to_s3(str(source), DATASET, s3=s3)
    log.info("      uploaded the dataset to %s", DATASET)
    data = work / "data"
    download_recognition_data_from_s3(DATASET, str(data), s3=s3)
    dict_path = data / "dict.txt"
    bad_dict = [f for f in check_dictionary(str(dict_path)) if f.severity == "error"]
    if bad_dict:
        raise DataError(bad_dict[0].message, bad_dict[0].fix, path=str(dict_path), line=bad_dict[0].line)
    for split in ("train", "val"):
        report = validate_recognition_annotation_format(
            [str(data / split / "labels.txt")], dict_path=str(dict_path), progress=False)
        if report.errors:
            raise DataError(f"{report.errors} error(s) in the downloaded {split} set",
                            f"run `rectrain data validate {data / split / 'labels.txt'} --dict "
                            f"{dict_path}` for details.")
        log.info("[3/7] validated %s: %d samples, %d images, 0 errors", split, report.samples,
                 report.images_checked)
    return data


def _config(s3: S3Service, work: Path, data: Path, plan: DemoPlan, sched: Any,
            resume: bool) -> Tuple[Any, Path]:
    """The training config from the CRNN preset with the dataset's own dictionary, and the run
    folder (emptied, with its checkpoints in S3, unless resuming)."""
    run_dir = work / "run"
    if not resume:
        _reset(run_dir)
        delete_prefix(s3, CHECKPOINTS)
    epochs = sched.schedule_epochs
    built = create_recognition_training_config(
        "crnn-mv3", [str(data / "train" / "labels.txt")], [str(data / "val" / "labels.txt")],
        str(data / "dict.txt"), str(work / "config.yml"), epochs=epochs, lr=plan.lr,
        batch_size=plan.batch_size, device="cpu", overrides=plan.overrides)
    log.info("[4/7] built %s from the crnn-mv3 preset (schedule of %d epochs; training stops "
             "after %d steps)", built.path, epochs, sched.steps)
    return built, run_dir


def _export_and_evaluate(work: Path, run_dir: Path, data: Path) -> Any:
    """Export with the engine's exporter; evaluate the exported model on the held-out words."""
    model_dir = work / "model"
    export_model(str(run_dir), out_dir=str(model_dir), overwrite=True)
    log.info("[6/7] exported the inference model to %s", model_dir)
    for previous in ("evaluation.json", "worst.png"):  # a rerun's: the demo owns its (claimed) workdir
        remove_file(work / previous)
    return evaluate_model(str(model_dir), str(data / "val" / "labels.txt"),
                          json_out=str(work / "evaluation.json"), grid_png=str(work / "worst.png"))
