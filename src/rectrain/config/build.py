"""``create_recognition_training_config``: a training config from an official PaddleOCR YAML or
a preset, with data paths, dictionary, epochs, learning rate, batch size, image shape and
``max_text_length`` changed consistently everywhere, checked against the selected engine and
the data, and written with a copy of the base and a readable diff."""

from __future__ import annotations

import copy
import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

from rectrain.config import datacheck, derive
from rectrain.config.edit import Change, Editor, get_path, walk
from rectrain.config.grow import maybe_grow
from rectrain.config.knowledge import engine_knowledge
from rectrain.config.mix import check_ratio, per_epoch
from rectrain.config.modules import check_modules, refuse_v1, require_sections
from rectrain.config.overrides import parse_overrides
from rectrain.config.presets import base_text, resolve_base
from rectrain.config.pretrained import check_head, resolve_pretrained
from rectrain.config.report import write_diff
from rectrain.config.yamlio import write_yaml
from rectrain.data.dictionary import read_dictionary
from rectrain.data.official_dicts import check_official
from rectrain.engine import find_engine
from rectrain.engine.datasets import LABEL_DATASETS
from rectrain.errors import ConfigError
from rectrain.fsutil import write_text_atomic
from rectrain.logs import get_logger

log = get_logger("config")

PathLike = Union[str, Path]


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


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"--set {key}={value!r}: expected a number.",
                          f"write e.g. --set {key}=10.")
    return float(value)


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


def create_recognition_training_config(
        base: str, train_labels: Union[PathLike, Sequence[PathLike]],
        val_labels: Union[PathLike, Sequence[PathLike]], dict_path: PathLike, out: PathLike, *,
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
    refuse_v1(base_cfg, source)
    require_sections(base_cfg, source)
    if device not in ("gpu", "cpu"):
        raise ConfigError(f"--device {device!r}: expected gpu or cpu.", "pass --device gpu or cpu.")
    if amp and device == "cpu":
        raise ConfigError("--amp with --device cpu: mixed precision (float16) needs a GPU.",
                          "drop --amp for CPU training, or use --device gpu.")
    for name, value in (("--epochs", epochs), ("--batch-size", batch_size),
                        ("--max-text-length", max_text_length)):
        if value is not None and int(value) < 1:
            raise ConfigError(f"{name} {value}: must be at least 1.", f"pass a positive {name}.")
    if lr is not None and not float(lr) > 0:
        raise ConfigError(f"--lr {lr}: must be positive.", "pass e.g. --lr 0.0005.")

    cfg = copy.deepcopy(base_cfg)
    ed = Editor(cfg)
    warnings: List[str] = []
    g = cfg["Global"]

    # --set values for fields that other fields derive from act like the matching option
    sets = parse_overrides(overrides, cfg)
    rest = []
    for path, value in sets:
        key = ".".join(str(p) for p in path)
        if key == "Global.max_text_length" and max_text_length is None:
            max_text_length = int(_number(key, value))
        elif key == "Global.epoch_num" and epochs is None:
            epochs = int(_number(key, value))
        elif key in ("Train.loader.batch_size_per_card", "Train.sampler.first_bs") \
                and batch_size is None:
            batch_size = int(_number(key, value))
        elif key == "Optimizer.lr.learning_rate" and lr is None:
            lr = _number(key, value)
        elif key == "Global.pretrained_model" and pretrained is None and value:
            pretrained = str(value)
        else:
            rest.append((path, value))
    # applied first so that derivations and checks see them (use_space_char, delimiter,
    # sampler settings...), and again last so that derived values never override them
    for path, value in rest:
        ed.set(path, value, "--set")

    engine = find_engine(str(paddleocr_dir) if paddleocr_dir else None)
    knowledge = engine_knowledge(engine)
    # modules first (before reading any data); datasets are checked once switched
    check_modules(cfg, knowledge, datasets=False)

    # --- device, precision, schedule -------------------------------------------------------
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
    if epochs is not None:
        ed.set(("Global", "epoch_num"), int(epochs), "--epochs")
    epoch_num = int(g.get("epoch_num") or 1)
    opt_lr = get_path(cfg, ("Optimizer", "lr"))
    if lr is not None:
        if isinstance(opt_lr, dict):
            old = opt_lr.get("learning_rate")
            values = opt_lr.get("values")
            if old is not None or not isinstance(values, list):
                ed.set(("Optimizer", "lr", "learning_rate"), float(lr), "--lr")
            ref = old if isinstance(old, (int, float)) and old else (
                values[0] if isinstance(values, list) and values else None)
            if isinstance(values, list) and values and ref:
                ed.set(("Optimizer", "lr", "values"), [v * float(lr) / ref for v in values],
                       "--lr: piecewise values scaled by the same factor")
        else:
            ed.set(("Optimizer", "lr"), {"name": "Const", "learning_rate": float(lr)}, "--lr")
    if isinstance(opt_lr, dict):
        _piecewise(ed, opt_lr, int(base_cfg["Global"].get("epoch_num") or epoch_num), epoch_num)
    if isinstance(opt_lr, dict) and isinstance(opt_lr.get("warmup_epoch"), (int, float)):
        warm = opt_lr["warmup_epoch"]
        if warm and warm >= epoch_num:
            new = round(epoch_num * 0.1, 2)
            ed.set(("Optimizer", "lr", "warmup_epoch"), new,
                   f"a {warm}-epoch warm-up is not shorter than the whole run ({epoch_num} "
                   f"epoch{'s' if epoch_num != 1 else ''}): the learning rate would never "
                   "reach its target; 10% of the run")

    # --- dictionary and text length -----------------------------------------------------------
    dpath = Path(dict_path).expanduser()
    use_space = bool(g.get("use_space_char", False))
    dictionary = read_dictionary(dpath, use_space_char=use_space)
    for f in dictionary.findings:
        warnings.append(f"dictionary {f.where()}: {f.message} Fix: {f.fix}")
    official, notes = check_official(dpath, pretrained=bool(pretrained))
    warnings += notes
    dict_abs = str(dpath.resolve())
    ed.set(("Global", "character_dict_path"), dict_abs, "--dict")
    derive.set_everywhere(ed, "character_dict_path", dict_abs,
                          "--dict (operators read the dictionary too)",
                          sections=("Architecture", "Loss", "PostProcess", "Train", "Eval"))
    mtl_given = max_text_length is not None
    mtl = int(max_text_length) if max_text_length is not None else int(
        g.get("max_text_length") or 25)
    ed.set(("Global", "max_text_length"), mtl, "--max-text-length" if mtl_given else
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
        _head_length_defaults(ed, knowledge, mtl)

    _fix_ignore_index(ed, len(dictionary.chars))

    # --- datasets -----------------------------------------------------------------------------
    stats: Dict[str, Any] = {}
    scans = []
    roots = {"Train": images_root, "Eval": val_images_root or images_root}
    for mode, labels, flag in (("Train", train_labels, "--train-labels"),
                               ("Eval", val_labels, "--val-labels")):
        files, data_dir, is_lmdb = datacheck.resolve_inputs(
            _as_list(labels), str(roots[mode]) if roots[mode] else None, flag)
        ds = cfg[mode]["dataset"]
        name = ds.get("name")
        if is_lmdb:
            if "LMDBDataSet" not in knowledge.datasets:
                raise ConfigError(
                    f"{flag} {files[0]}: an LMDB folder, but the selected engine "
                    f"({engine.name}) has no LMDBDataSet (it knows: "
                    f"{', '.join(sorted(knowledge.datasets))}).",
                    "export the LMDB to images + a label file, or select an engine with "
                    "LMDBDataSet (--paddleocr-dir pointing at a PaddleOCR checkout).")
            if name != "LMDBDataSet":
                ed.set((mode, "dataset", "name"), "LMDBDataSet",
                       f"{flag} is an LMDB folder: the LMDB reader")
            ed.set((mode, "dataset", "data_dir"), data_dir, flag)
            if "label_file_list" in ds:
                del ds["label_file_list"]
                ed.changes.append(Change(f"{mode}.dataset.label_file_list", "(list)", None,
                                         "LMDBDataSet reads labels from the LMDB"))
            continue
        if name not in LABEL_DATASETS:
            ed.set((mode, "dataset", "name"), "SimpleDataSet",
                   f"{flag} gives label files: the engine's label-file reader replaces "
                   f"{name} (which reads {'LMDB folders' if name == 'LMDBDataSet' else 'another format'})")
        ed.set((mode, "dataset", "data_dir"), data_dir,
               "image paths in the label files are relative to "
               + ("--images-root" if roots[mode] else "the label file's folder"))
        ed.set((mode, "dataset", "label_file_list"), files, flag)
        ratio_cfg = ds.get("ratio_list")
        if mode == "Train" and ratio:
            ed.set((mode, "dataset", "ratio_list"), check_ratio(ratio, files), "--ratio")
        elif isinstance(ratio_cfg, list) and len(ratio_cfg) != len(files):
            ed.set((mode, "dataset", "ratio_list"), 1.0,
                   f"ratio_list had {len(ratio_cfg)} entries for {len(files)} label file(s)")
        if ds.get("ds_width") and not datacheck.has_size_fields(files, ds.get("delimiter", "\t")):
            ed.set((mode, "dataset", "ds_width"), False,
                   "ds_width batches by aspect ratio read from `path<TAB>label<TAB>w<TAB>h` "
                   "lines; these label files have no sizes")
        if check_data:
            scan = datacheck.scan_labels(
                mode, files, data_dir, dictionary.encodable, ds.get("delimiter", "\t"),
                need_size_fields=bool(ds.get("ds_width")))
            scans.append(scan)
            stats[f"{mode.lower()}_samples"] = scan.samples
            if mode == "Train" and ratio:
                stats["train_samples_per_epoch"] = per_epoch(ratio, files)
        else:
            stats[f"{mode.lower()}_samples"] = sum(_count_lines(f) for f in files)
    if scans:
        reserve, encoder = 0, "CTCLabelEncode"
        for mode in ("Train", "Eval"):
            r = datacheck.label_reserve(derive.transforms(cfg, mode))
            if r[0] > reserve:
                reserve, encoder = r
        warnings += datacheck.raise_for(scans, dict_abs, mtl, reserve, encoder, mtl_given)
        stats["longest_label"] = max(s.longest for s in scans)

    # --- shapes, batch size, intervals, workers ----------------------------------------------
    if image_shape is not None:
        derive.apply_image_shape(ed, derive.parse_shape(image_shape), "--image-shape")
    if batch_size is not None:
        derive.set_batch_size(ed, int(batch_size), "--batch-size")
    else:
        # anchored copies of the batch size must agree
        bs0 = derive.train_batch_size(cfg)
        if get_path(cfg, ("Train", "loader", "batch_size_per_card")) != bs0:
            ed.set(("Train", "loader", "batch_size_per_card"), bs0,
                   "must equal Train.sampler.first_bs (a YAML anchor in the official configs)")
    n_train = int(stats.get("train_samples_per_epoch") or stats.get("train_samples") or 0)
    bs = derive.train_batch_size(cfg)
    sampler = get_path(cfg, ("Train", "sampler"))
    if n_train and get_path(cfg, ("Train", "loader", "drop_last")) and not sampler \
            and n_train < bs:
        raise ConfigError(
            f"Train.loader.batch_size_per_card: {bs} is larger than the {n_train} training "
            "samples and drop_last is true: the engine would run zero steps.",
            f"pass --batch-size {max(1, min(n_train, 2 ** (n_train.bit_length() - 1)))} or "
            "more data.")
    steps = derive.steps_per_epoch(cfg, n_train) if n_train else 0
    stats["steps_per_epoch_1card"] = steps
    if steps:
        _set_intervals(ed, steps, epoch_num)
    cpus = derive.cpu_count()
    for mode in ("Train", "Eval"):
        nw = get_path(cfg, (mode, "loader", "num_workers"))
        if isinstance(nw, int) and nw > cpus:
            ed.set((mode, "loader", "num_workers"), cpus,
                   f"at most one loader process per CPU ({cpus} here)")

    cols = derive.ctc_columns(cfg)
    if cols is not None:
        longest = int(stats.get("longest_label") or 0)
        if max(longest, mtl) > cols[0]:
            warnings.append(
                f"CTC output length: about {cols[0]} columns ({cols[1]}), but max_text_length is "
                f"{mtl}" + (f" and the longest label has {longest} characters" if longest else "")
                + "; CTC needs a column per character (two for a repeated one), so longer "
                "labels give an infinite loss. Fix: a wider --image-shape, or a smaller "
                "--max-text-length.")

    # --- output and weight paths ---------------------------------------------------------------
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
    for prefix, model in derive.model_parts(cfg["Architecture"]):
        cur = model.get("pretrained")
        if prefix != ("Architecture",) and cur and not Path(str(cur)).exists() \
                and not Path(str(cur) + ".pdparams").exists():
            ed.set(prefix + ("pretrained",), None, "pointed into a PaddleOCR checkout")
    if pretrained:
        weights_value, weights = resolve_pretrained(str(pretrained))
        if weights is not None:
            weights, notes = maybe_grow(weights, dictionary, dict_abs, out_path, base_dict,
                                        allow_new_head)
            weights_value = str(weights)
            warnings += notes
        ed.set(("Global", "pretrained_model"), weights_value, "--pretrained")
        if weights is not None:
            warnings += check_head(cfg, weights, len(dictionary.chars), dict_abs, allow_new_head)
        else:
            warnings.append(f"--pretrained {weights_value}: a URL; the engine downloads it at start "
                            "(SageMaker jobs without internet access cannot).")

    # --- the user's last word, then the checks on the final config -----------------------------
    for path, value in rest:
        ed.set(path, value, "--set")
    check_modules(cfg, knowledge)
    _check_shapes(cfg)
    _check_files(cfg)

    stats.update({"engine": engine.name, "num_classes": len(dictionary.chars),
                  "dictionary": dict_abs, "cpus": cpus,
                  "official_dictionary": official.describe() if official else None})
    header = (f"# Built by `rectrain config build` on "
              f"{datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} "
              f"from {source}\n# for engine {engine.name}; what changed and why: "
              f"{_sidecar(out_path, '.diff.md').name}\n")
    base_path = _sidecar(out_path, ".base.yml")
    diff_path = _sidecar(out_path, ".diff.md")
    write_text_atomic(base_path, base_text(str(base)))
    write_yaml(out_path, cfg, header)
    write_diff(diff_path, source, out_path, ed.changes, warnings, stats)
    for w in warnings:
        log.warning("warning: %s", w)
    return BuildResult(path=out_path, config=cfg, changes=ed.changes, warnings=warnings,
                       base_path=base_path, diff_path=diff_path, source=source, stats=stats)


def _piecewise(ed: Editor, lr: Dict[str, Any], base_epochs: int, epochs: int) -> None:
    """Piecewise decay: one more value than decay epochs (Paddle refuses otherwise, at start),
    and decay epochs inside the run when --epochs shortens it."""
    if lr.get("name") != "Piecewise":
        return
    decay, values = lr.get("decay_epochs"), lr.get("values")
    if not isinstance(decay, list) or not isinstance(values, list):
        raise ConfigError("Optimizer.lr: Piecewise needs decay_epochs and values lists.",
                          "set e.g. decay_epochs: [6, 8] and values: [0.001, 0.0001, 0.00001].")
    if len(values) != len(decay) + 1:
        example = list(values[: len(decay) + 1])
        while len(example) < len(decay) + 1:
            example.append((example[-1] if example else 0.001) * 0.1)
        shown = ", ".join(f"{v:g}" for v in example)
        raise ConfigError(
            f"Optimizer.lr.values has {len(values)} value(s) for {len(decay)} decay epoch(s) "
            f"{decay}; Paddle's PiecewiseDecay needs one value per interval, i.e. "
            f"{len(decay) + 1}, and stops at start otherwise.",
            f"--set 'Optimizer.lr.values=[{shown}]' (or drop a decay epoch).")
    if epochs != base_epochs and decay and max(decay) <= base_epochs:
        new: List[int] = []
        for e in decay:
            v = max(1, int(round(e * epochs / base_epochs)))
            new.append(max(v, new[-1] + 1) if new else v)
        if new != decay:
            ed.set(("Optimizer", "lr", "decay_epochs"), new,
                   f"decays at the same fraction of the run ({base_epochs} -> {epochs} epochs)")


def _head_length_defaults(ed: Editor, knowledge: Any, mtl: int) -> None:
    """A head that decodes up to a maximum length it takes as a parameter (NRTR's Transformer
    ``max_len``, ABINet/VisionLAN ``max_length``) but that the config leaves at its default:
    set it, or inference stops at the default length."""
    for prefix, model in derive.model_parts(ed.config["Architecture"]):
        head = model.get("Head")
        if not isinstance(head, dict) or head.get("name") in (None, "MultiHead"):
            continue
        info = knowledge.classes.get(("head", head["name"]))
        if info is None or not info.params:
            continue
        for alias in ("max_text_length", "max_length", "max_len"):
            if alias in info.params and alias not in head:
                ed.set(prefix + ("Head", alias), mtl,
                       f"{head['name']} decodes at most {alias} tokens (its default is shorter "
                       "than the new max_text_length)")
                break


def _fix_ignore_index(ed: Editor, n_classes: int) -> None:
    """CE-style losses take a fixed ``ignore_index`` (ABINet: 100, 'must be greater than the
    number of character classes'); a larger dictionary turns a real class into padding."""
    cfg = ed.config
    # only where ignore_index is a padding id above the classes; elsewhere 0 (NRTR) or the
    # engine's own value (SAR, SATRN) is meant
    if (cfg.get("PostProcess") or {}).get("name") not in ("ABINetLabelDecode",
                                                           "CPPDLabelDecode"):
        return
    need = n_classes + 4  # classes + blank/sos/eos/unk at most
    hits = [(path, value) for section in ("Loss", "Train", "Eval")
            for path, key, value in walk(cfg.get(section), (section,))
            if key == "ignore_index" and isinstance(value, int) and 1 <= value < need]
    if not hits:
        return
    new = ((need // 100) + 1) * 100
    for path, value in hits:
        ed.set(path, new, f"ignore_index {value} would be a real class with {n_classes} "
                          "dictionary classes; it must be greater than the number of classes")


def check_training_config(config: Dict[str, Any], *, source: str = "config",
                          paddleocr_dir: Optional[PathLike] = None) -> None:
    """The structural checks of the builder on an existing config dict (e.g. before a
    training job): PaddleOCR 1.x, sections, modules the engine knows, shapes, files."""
    refuse_v1(config, source)
    require_sections(config, source)
    engine = find_engine(str(paddleocr_dir) if paddleocr_dir else None)
    check_modules(config, engine_knowledge(engine))
    _check_shapes(config)
    _check_files(config)


def _set_intervals(ed: Editor, steps: int, epochs: int) -> None:
    g = ed.config["Global"]
    total = steps * epochs
    if g.get("eval_batch_epoch") is None:
        cur = g.get("eval_batch_step")
        if isinstance(cur, list) and len(cur) >= 2:
            start, every = int(cur[0]), int(cur[1])
        else:
            start, every = 0, int(cur or 2000)
        new_every = max(1, min(every, steps))
        new_start = start if start < total else 0
        if [new_start, new_every] != cur:
            ed.set(("Global", "eval_batch_step"), [new_start, new_every],
                   f"{steps} steps per epoch on 1 card ({total} in all): evaluate at least once "
                   "per epoch so that best_accuracy is saved")
        if new_every < every:
            ed.set(("Global", "eval_batch_epoch"), 1,
                   "the engine then derives the interval from the real steps per epoch, which "
                   "shrink with the number of cards")
    pbs = g.get("print_batch_step")
    if isinstance(pbs, int) and pbs > max(1, steps // 2):
        ed.set(("Global", "print_batch_step"), max(1, steps // 2),
               f"log at least twice per epoch ({steps} steps per epoch)")


def _check_shapes(cfg: Dict[str, Any]) -> None:
    """Shape rules that the engine would only report with a stack trace."""
    shape = derive.primary_shape(cfg)
    for prefix, model in derive.model_parts(cfg["Architecture"]):
        where = ".".join(prefix)
        backbone = model.get("Backbone")
        transform = model.get("Transform")
        if not isinstance(backbone, dict) or not isinstance(backbone.get("img_size"), list):
            continue
        size = list(backbone["img_size"])
        if isinstance(transform, dict) and isinstance(transform.get("tps_outputsize"), list):
            if list(transform["tps_outputsize"]) != size:
                raise ConfigError(
                    f"{where}.Backbone.img_size {size} differs from {where}.Transform."
                    f"tps_outputsize {transform['tps_outputsize']}: the backbone receives the "
                    "rectified image.", "set both to the same [H, W] (e.g. with --set).")
        elif shape and len(size) == 2 and size != [shape[1], shape[2]]:
            raise ConfigError(
                f"{where}.Backbone.img_size {size} differs from the input image size "
                f"{[shape[1], shape[2]]} of the resize operators.",
                "pass --image-shape C,H,W so that both follow, or fix img_size with --set.")


def _count_lines(path: str) -> int:
    with open(path, "rb") as fh:
        return sum(1 for _ in fh)


def _check_files(cfg: Dict[str, Any]) -> None:
    for path, key, value in walk(cfg):
        if key == "character_dict_path" and value and not Path(str(value)).is_file():
            raise ConfigError(f"{'.'.join(str(p) for p in path)}: {value} does not exist.",
                              "pass --dict FILE, or fix the path with --set.")
    for mode in ("Train", "Eval"):
        ds = cfg[mode]["dataset"]
        if ds.get("data_dir") and not Path(str(ds["data_dir"])).is_dir():
            raise ConfigError(f"{mode}.dataset.data_dir: {ds['data_dir']} does not exist.",
                              "pass --images-root DIR or fix it with --set.")
        for f in ds.get("label_file_list") or []:
            if not Path(str(f)).is_file():
                raise ConfigError(f"{mode}.dataset.label_file_list: {f} does not exist.",
                                  "pass existing label files.")
    g = cfg["Global"]
    for key in ("pretrained_model", "checkpoints"):
        cur = g.get(key)
        if cur and not str(cur).startswith(("http://", "https://")):
            p = str(cur)
            if not (Path(p).is_file() or Path(p + ".pdparams").is_file()):
                raise ConfigError(f"Global.{key}: {cur} (.pdparams) does not exist.",
                                  "pass an existing weights file with --pretrained.")
