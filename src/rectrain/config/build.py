"""``create_recognition_training_config``: a training config from an official PaddleOCR YAML or
a preset, with data paths, dictionary, epochs, learning rate, batch size, image shape and
``max_text_length`` changed consistently everywhere, checked against the selected engine and
the data, and written with a copy of the base and a readable diff.

One function per part of the config, called in the order in which each needs the last; the
rules they apply are in ``derive``, the checks in ``checks``."""

from __future__ import annotations

import copy
import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from rectrain.config import datacheck, derive
from rectrain.config.checks import (
    check_batch_fits,
    check_files,
    check_options,
    check_shapes,
    check_values,
    count_lines,
    ctc_length_warning,
)
from rectrain.config.datacheck import LabelScan
from rectrain.config.diff import write_diff
from rectrain.config.edit import Change, Editor, get_path, walk
from rectrain.config.grow import maybe_grow
from rectrain.config.knowledge import EngineKnowledge, engine_knowledge
from rectrain.config.mix import check_ratio, per_epoch
from rectrain.config.modules import check_modules, refuse_v1, require_sections
from rectrain.config.overrides import Override, parse_overrides, take_options
from rectrain.config.presets import base_text, resolve_base
from rectrain.config.pretrained import check_head, resolve_pretrained
from rectrain.config.yamlio import write_yaml
from rectrain.data.dictionary import Dictionary, read_dictionary
from rectrain.data.official_dicts import check_official
from rectrain.data.sniff import refuse_bom
from rectrain.engine import Engine, find_engine
from rectrain.engine.datasets import LABEL_DATASETS
from rectrain.errors import ConfigError
from rectrain.logs import get_logger
from rectrain.outputs import claim_output_file, record_output, same_file, write_text

log = get_logger("config")

PathLike = Union[str, Path]
Labels = Union[PathLike, Sequence[PathLike]]


@dataclass
class BuildResult:
    path: Path  # the config written
    config: Dict[str, Any]
    changes: List[Change]  # (field, old, new, why)
    warnings: List[str] = field(default_factory=list)
    base_path: Optional[Path] = None  # <out>.base.yml
    diff_path: Optional[Path] = None  # <out>.diff.md
    source: str = ""
    stats: Dict[str, Any] = field(default_factory=dict)


def create_recognition_training_config(
        base: str, train_labels: Labels, val_labels: Labels, dict_path: PathLike,
        out: PathLike, *,
        images_root: Optional[PathLike] = None, epochs: Optional[int] = None,
        lr: Optional[float] = None, batch_size: Optional[int] = None,
        max_text_length: Optional[int] = None, image_shape: Any = None,
        pretrained: Optional[PathLike] = None, amp: bool = False, device: str = "gpu",
        overrides: Sequence[str] = (), check_data: bool = True,
        paddleocr_dir: Optional[PathLike] = None, allow_new_head: bool = False,
        val_images_root: Optional[PathLike] = None, base_dict: Optional[PathLike] = None,
        ratio: Union[None, str, Sequence[float]] = None) -> BuildResult:
    """Build a training config from ``base`` (preset name or YAML path) and write it to ``out``
    with ``<out>.base.yml`` and ``<out>.diff.md`` beside it.

    Raises ConfigError/DataError (exit 2) naming the field and the fix.
    """
    out_path = Path(out).expanduser().resolve()
    base_cfg, source = resolve_base(str(base))
    if source == str(out_path):
        raise ConfigError(f"-o {out_path} is the base config itself.",
                          "write the built config to another file; the base stays as it was.")
    inputs = ([("base config", source if Path(source).is_file() else None), ("dictionary", dict_path),
               ("pretrained weights", pretrained), ("base dictionary", base_dict)]
              + [("train label file", p) for p in _as_list(train_labels)]
              + [("val label file", p) for p in _as_list(val_labels)])
    for path in _outputs(out_path):
        claim_output_file(path, command="config build", inputs=inputs)
    refuse_v1(base_cfg, source)
    require_sections(base_cfg, source)
    check_options(device=device, amp=amp, epochs=epochs, batch_size=batch_size,
                  max_text_length=max_text_length, lr=lr)
    cfg = copy.deepcopy(base_cfg)
    ed = Editor(cfg)
    opts: Dict[str, Any] = {"epochs": epochs, "lr": lr, "batch_size": batch_size,
                            "max_text_length": max_text_length,
                            "pretrained": pretrained}
    from_set: Dict[str, str] = {}
    rest = take_options(parse_overrides(overrides, cfg), opts, from_set)
    # values given by --set get the checks of the flags they stand for
    check_options(device=device, amp=amp, epochs=opts["epochs"], batch_size=opts["batch_size"],
                  max_text_length=opts["max_text_length"], lr=opts["lr"], flags=from_set)
    # applied first so that derivations and checks see them (use_space_char, delimiter,
    # sampler settings...), and again last so that derived values never override them
    _apply(ed, rest)
    engine = find_engine(str(paddleocr_dir) if paddleocr_dir else None)
    knowledge = engine_knowledge(engine)
    # modules first (before reading any data); datasets are checked once switched
    check_modules(cfg, knowledge, datasets=False)

    warnings: List[str] = []
    stats: Dict[str, Any] = {}
    _device(ed, device, amp)
    epoch_num = _schedule(ed, base_cfg, opts["epochs"], opts["lr"])
    dictionary, dict_abs = _dictionary(ed, Path(dict_path).expanduser(), warnings)
    official, notes = check_official(Path(dict_path).expanduser(), pretrained=bool(opts["pretrained"]))
    warnings += notes
    mtl = _text_length(ed, base_cfg, knowledge, opts["max_text_length"])
    derive.fix_ignore_index(ed, len(dictionary.chars))
    scans = _datasets(ed, engine, knowledge, dictionary, check_data, stats, ratio, [
        ("Train", train_labels, images_root, "--train-labels"),
        ("Eval", val_labels, val_images_root or images_root, "--val-labels")])
    warnings += _label_warnings(cfg, scans, dict_abs, mtl, opts["max_text_length"] is not None,
                                stats)
    shared = [str(v) for v in _as_list(val_labels) if any(same_file(v, t) for t in _as_list(train_labels))]
    if shared:
        warnings.append(f"{', '.join(shared)} is both a --train-labels and a --val-labels file: the "
                        "eval accuracy then measures memorised samples, not the model. Fix: split "
                        "the data (`rectrain data split LABELS -o split/`) and pass train.txt and "
                        "val.txt.")
    if image_shape is not None:
        derive.apply_image_shape(ed, derive.parse_shape(image_shape), "--image-shape")
    cpus = _loaders(ed, opts["batch_size"], epoch_num, stats)
    ctc = ctc_length_warning(cfg, mtl, int(stats.get("longest_label") or 0))
    warnings += [ctc] if ctc else []
    _output_paths(ed, out_path, opts["pretrained"])
    if opts["pretrained"]:
        warnings += _pretrained(ed, str(opts["pretrained"]), dictionary, dict_abs, out_path,
                                base_dict, allow_new_head)

    # the user's last word, then the checks on the final config
    _apply(ed, rest)
    check_values(cfg)
    check_modules(cfg, knowledge)
    check_shapes(cfg)
    check_files(cfg)

    stats.update({"engine": engine.name, "num_classes": len(dictionary.chars),
                  "dictionary": dict_abs, "cpus": cpus,
                  "official_dictionary": official.describe() if official else None})
    base_path, diff_path = _write(ed, out_path, str(base), source, engine.name, warnings, stats)
    for w in warnings:
        log.warning("warning: %s", w)
    return BuildResult(path=out_path, config=cfg, changes=ed.changes, warnings=warnings,
                       base_path=base_path, diff_path=diff_path, source=source, stats=stats)


def _apply(ed: Editor, sets: List[Override]) -> None:
    for path, value in sets:
        ed.set(path, value, "--set")


def _device(ed: Editor, device: str, amp: bool) -> None:
    """Global: the device and float16 mixed precision."""
    g = ed.config["Global"]
    ed.set(("Global", "use_gpu"), device == "gpu", f"--device {device}")
    if amp:
        ed.set(("Global", "use_amp"), True, "--amp: float16 mixed precision")
        if "amp_level" not in g:
            ed.set(("Global", "amp_level"), "O1",
                   "--amp: O1 casts op by op (O2, the engine default, casts the whole model and "
                   "is less stable with CTC)")
        if "scale_loss" not in g:
            ed.set(("Global", "scale_loss"), 1024.0, "--amp: initial loss scale")
        if "use_dynamic_loss_scaling" not in g:
            ed.set(("Global", "use_dynamic_loss_scaling"), True,
                   "--amp: loss scale adapts to overflow")
    elif g.get("use_amp") and device == "cpu":
        ed.set(("Global", "use_amp"), False, "float16 mixed precision needs a GPU (--device cpu)")


def _schedule(ed: Editor, base_cfg: Dict[str, Any], epochs: Optional[int],
              lr: Optional[float]) -> int:
    """Global.epoch_num and Optimizer.lr (rate, decay epochs, warm-up); the epochs of the run."""
    if epochs is not None:
        ed.set(("Global", "epoch_num"), int(epochs), "--epochs")
    epoch_num = int(ed.config["Global"].get("epoch_num") or 1)
    opt_lr = get_path(ed.config, ("Optimizer", "lr"))
    if lr is not None:
        derive.set_learning_rate(ed, float(lr))
    if isinstance(opt_lr, dict):
        base_epochs = int(base_cfg["Global"].get("epoch_num") or epoch_num)
        derive.scale_piecewise(ed, opt_lr, base_epochs, epoch_num)
        derive.shorten_warmup(ed, opt_lr, epoch_num)
    return epoch_num


def _dictionary(ed: Editor, dpath: Path, warnings: List[str]) -> Tuple[Dictionary, str]:
    """Global.character_dict_path and each operator's copy; the dictionary's quirks warned."""
    use_space = bool(ed.config["Global"].get("use_space_char", False))
    dictionary = read_dictionary(dpath, use_space_char=use_space)
    refuse_bom(dpath, what="dictionary")
    for f in dictionary.findings:
        warnings.append(f"dictionary {f.where()}: {f.message} Fix: {f.fix}")
    dict_abs = str(dpath.resolve())
    ed.set(("Global", "character_dict_path"), dict_abs, "--dict")
    derive.set_everywhere(ed, "character_dict_path", dict_abs,
                          "--dict (operators read the dictionary too)",
                          sections=("Architecture", "Loss", "PostProcess", "Train", "Eval"))
    return dictionary, dict_abs


def _text_length(ed: Editor, base_cfg: Dict[str, Any], knowledge: EngineKnowledge,
                 given: Optional[int]) -> int:
    """Global.max_text_length, its copies and the heads' own maximum lengths."""
    cfg = ed.config
    mtl = int(given) if given is not None else int(cfg["Global"].get("max_text_length") or 25)
    ed.set(("Global", "max_text_length"), mtl, "--max-text-length" if given is not None else
           "every max_text_length must agree")
    base_mtl = base_cfg["Global"].get("max_text_length")
    derive.set_everywhere(ed, "max_text_length", mtl,
                          "must equal Global.max_text_length (a YAML anchor in the official "
                          "configs; PyYAML expands it, so each copy is set)")
    for alias in ("max_length", "max_label_length", "max_len"):
        for path, key, value in list(walk(cfg["Architecture"], ("Architecture",))):
            if key == alias and value == base_mtl and value != mtl:
                ed.set(path, mtl, f"the head's {alias} equalled Global.max_text_length in the base")
    if mtl != base_mtl:
        derive.set_head_lengths(ed, knowledge.classes, mtl)
    return mtl


def _datasets(ed: Editor, engine: Engine, knowledge: EngineKnowledge, dictionary: Dictionary,
              check_data: bool, stats: Dict[str, Any], ratio: Union[None, str, Sequence[float]],
              inputs: List[Tuple[str, Labels, Optional[PathLike], str]]) -> List[LabelScan]:
    """Train/Eval.dataset: the reader, folder and label files of each mode's data; the label
    files scanned with the engine's rules (or only counted without ``check_data``)."""
    scans = []
    for mode, labels, root, flag in inputs:
        files, data_dir, is_lmdb = datacheck.resolve_inputs(
            _as_list(labels), str(root) if root else None, flag)
        if is_lmdb:
            _lmdb_dataset(ed, engine, knowledge, mode, files[0], data_dir, flag)
            continue
        _label_dataset(ed, mode, files, data_dir, flag, bool(root), ratio if mode == "Train" else None)
        ds = ed.config[mode]["dataset"]
        if check_data:
            scan = datacheck.scan_labels(
                mode, files, data_dir, dictionary.encodable, ds.get("delimiter", "\t"),
                need_size_fields=bool(ds.get("ds_width")))
            scans.append(scan)
            stats[f"{mode.lower()}_samples"] = scan.samples
            if mode == "Train" and ratio:
                stats["train_samples_per_epoch"] = per_epoch(ratio, files)
        else:
            stats[f"{mode.lower()}_samples"] = sum(count_lines(f) for f in files)
    return scans


def _lmdb_dataset(ed: Editor, engine: Engine, knowledge: EngineKnowledge, mode: str,
                  folder: str, data_dir: str, flag: str) -> None:
    ds = ed.config[mode]["dataset"]
    if "LMDBDataSet" not in knowledge.datasets:
        raise ConfigError(
            f"{flag} {folder}: an LMDB folder, but the selected engine "
            f"({engine.name}) has no LMDBDataSet (it knows: "
            f"{', '.join(sorted(knowledge.datasets))}).",
            "export the LMDB to images + a label file, or select an engine with "
            "LMDBDataSet (--paddleocr-dir pointing at a PaddleOCR checkout).")
    if ds.get("name") != "LMDBDataSet":
        ed.set((mode, "dataset", "name"), "LMDBDataSet",
               f"{flag} is an LMDB folder: the LMDB reader")
    ed.set((mode, "dataset", "data_dir"), data_dir, flag)
    if "label_file_list" in ds:
        del ds["label_file_list"]
        ed.changes.append(Change(f"{mode}.dataset.label_file_list", "(list)", None,
                                 "LMDBDataSet reads labels from the LMDB"))


def _label_dataset(ed: Editor, mode: str, files: List[str], data_dir: str, flag: str,
                   root_given: bool, ratio: Union[None, str, Sequence[float]] = None) -> None:
    ds = ed.config[mode]["dataset"]
    name = ds.get("name")
    if name not in LABEL_DATASETS:
        ed.set((mode, "dataset", "name"), "SimpleDataSet",
               f"{flag} gives label files: the engine's label-file reader replaces "
               f"{name} (which reads {'LMDB folders' if name == 'LMDBDataSet' else 'another format'})")
    ed.set((mode, "dataset", "data_dir"), data_dir,
           "image paths in the label files are relative to "
           + ("--images-root" if root_given else "the label file's folder"))
    ed.set((mode, "dataset", "label_file_list"), files, flag)
    ratio_cfg = ds.get("ratio_list")
    if ratio:
        ed.set((mode, "dataset", "ratio_list"), check_ratio(ratio, files), "--ratio")
    elif isinstance(ratio_cfg, list) and len(ratio_cfg) != len(files):
        ed.set((mode, "dataset", "ratio_list"), 1.0,
               f"ratio_list had {len(ratio_cfg)} entries for {len(files)} label file(s)")
    if ds.get("ds_width") and not datacheck.has_size_fields(files, ds.get("delimiter", "\t")):
        ed.set((mode, "dataset", "ds_width"), False,
               "ds_width batches by aspect ratio read from `path<TAB>label<TAB>w<TAB>h` "
               "lines; these label files have no sizes")


def _label_warnings(cfg: Dict[str, Any], scans: List[LabelScan], dict_abs: str, mtl: int,
                    mtl_given: bool, stats: Dict[str, Any]) -> List[str]:
    """Raise for labels the engine would drop or choke on (with the strictest label encoder of
    Train/Eval); warnings for the rest."""
    if not scans:
        return []
    reserve, encoder = 0, "CTCLabelEncode"
    for mode in ("Train", "Eval"):
        r = datacheck.label_reserve(derive.transforms(cfg, mode))
        if r[0] > reserve:
            reserve, encoder = r
    warnings = datacheck.raise_for(scans, dict_abs, mtl, reserve, encoder, mtl_given)
    stats["longest_label"] = max(s.longest for s in scans)
    return warnings


def _loaders(ed: Editor, batch_size: Optional[int], epoch_num: int,
             stats: Dict[str, Any]) -> int:
    """Train/Eval.loader (and sampler): batch size, loader processes; Global's evaluation and
    log intervals from the steps per epoch. Returns the CPUs counted."""
    cfg = ed.config
    if batch_size is not None:
        derive.set_batch_size(ed, int(batch_size), "--batch-size")
    else:
        # anchored copies of the batch size must agree
        bs0 = derive.train_batch_size(cfg)
        if get_path(cfg, ("Train", "loader", "batch_size_per_card")) != bs0:
            ed.set(("Train", "loader", "batch_size_per_card"), bs0,
                   "must equal Train.sampler.first_bs (a YAML anchor in the official configs)")
    n_train = int(stats.get("train_samples_per_epoch") or stats.get("train_samples") or 0)
    check_batch_fits(cfg, n_train)
    steps = derive.steps_per_epoch(cfg, n_train) if n_train else 0
    stats["steps_per_epoch_1card"] = steps
    if steps:
        derive.set_intervals(ed, steps, epoch_num)
    cpus = derive.cpu_count()
    for mode in ("Train", "Eval"):
        nw = get_path(cfg, (mode, "loader", "num_workers"))
        if isinstance(nw, int) and nw > cpus:
            ed.set((mode, "loader", "num_workers"), cpus,
                   f"at most one loader process per CPU ({cpus} here)")
    for key, why in (("shuffle", "evaluation reads every sample in order"),
                     ("drop_last", "evaluation scores every validation sample, the last batch too")):
        if get_path(cfg, ("Eval", "loader", key)) is True:
            ed.set(("Eval", "loader", key), False, why)
    return cpus


def _output_paths(ed: Editor, out_path: Path, pretrained: Optional[PathLike]) -> None:
    """Global's output paths next to the config; paths into a PaddleOCR checkout dropped."""
    g = ed.config["Global"]
    run_out = out_path.parent / "output" / _sidecar(out_path, "").name
    ed.set(("Global", "save_model_dir"), str(run_out),
           "checkpoints next to the config (the training runner points it at its run dir)")
    ed.set(("Global", "save_res_path"), str(run_out / "predicts.txt"),
           "inference results next to the checkpoints")
    infer_img = g.get("infer_img")
    if infer_img and not Path(str(infer_img)).exists():
        ed.set(("Global", "infer_img"), None, "pointed into a PaddleOCR checkout")
    if g.get("save_inference_dir") and not Path(str(g["save_inference_dir"])).is_absolute():
        ed.set(("Global", "save_inference_dir"), None, "relative path into a PaddleOCR checkout")
    for key in ("pretrained_model", "checkpoints"):
        cur = g.get(key)
        if cur and not (key == "pretrained_model" and pretrained) and not str(cur).startswith(
                ("http://", "https://")) and not Path(str(cur)).expanduser().exists() \
                and not Path(str(cur) + ".pdparams").exists():
            ed.set(("Global", key), None,
                   "pointed into a PaddleOCR checkout (pass --pretrained to start from weights)")
    for prefix, model in derive.model_parts(ed.config["Architecture"]):
        cur = model.get("pretrained")
        if prefix != ("Architecture",) and cur and not Path(str(cur)).exists() \
                and not Path(str(cur) + ".pdparams").exists():
            ed.set(prefix + ("pretrained",), None, "pointed into a PaddleOCR checkout")


def _pretrained(ed: Editor, pretrained: str, dictionary: Dictionary, dict_abs: str, out_path: Path,
                base_dict: Optional[PathLike], allow_new_head: bool) -> List[str]:
    """Global.pretrained_model from --pretrained; a dictionary that grew the base's gets weights
    with a grown head (config/grow.py); the head checked against the dictionary."""
    weights_value, weights = resolve_pretrained(pretrained)
    notes: List[str] = []
    if weights is not None:
        weights, notes = maybe_grow(weights, dictionary, dict_abs, out_path, base_dict, allow_new_head)
        weights_value = str(weights)
    ed.set(("Global", "pretrained_model"), weights_value, "--pretrained")
    if weights is not None:
        return notes + check_head(ed.config, weights, len(dictionary.chars), dict_abs, allow_new_head)
    return [f"--pretrained {weights_value}: a URL; the engine downloads it at start "
            "(SageMaker jobs without internet access cannot)."]


def _write(ed: Editor, out_path: Path, base: str, source: str, engine_name: str,
           warnings: List[str], stats: Dict[str, Any]) -> Tuple[Path, Path]:
    """``<out>``, ``<out>.base.yml`` (the base as written) and ``<out>.diff.md``."""
    base_path = _sidecar(out_path, ".base.yml")
    diff_path = _sidecar(out_path, ".diff.md")
    header = (f"# Built by `rectrain config build` on "
              f"{datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} "
              f"from {source}\n# for engine {engine_name}; what changed and why: "
              f"{diff_path.name}\n")
    write_text(base_path, base_text(base))
    write_yaml(out_path, ed.config, header)
    write_diff(diff_path, source, out_path, ed.changes, warnings, stats)
    for path in _outputs(out_path):
        record_output(path, command="config build")
    return base_path, diff_path


def _outputs(out_path: Path) -> List[Path]:
    return [out_path, _sidecar(out_path, ".base.yml"), _sidecar(out_path, ".diff.md")]


def _sidecar(out: Path, suffix: str) -> Path:
    stem = out.name
    for ext in (".yml", ".yaml"):
        if stem.endswith(ext):
            stem = stem[: -len(ext)]
    return out.with_name(stem + suffix)


def _as_list(value: Union[None, PathLike, Sequence[PathLike]]) -> List[str]:
    if value is None:
        return []
    if isinstance(value, (str, Path)):
        return [str(value)]
    return [str(v) for v in value]
