"""A real "grow the head" experiment on the CPU, used by test_extend_dict_real.py and runnable
alone to print the measured table: ``venv/bin/python tests/checkpoints/extend_run.py /tmp/x``.

1. A small CTC model (MobileNetV3 small x0.5 + CTC head, no BiLSTM: it leaves the CTC plateau in
   ~200 CPU steps where the CRNN needs ~450, docs/problem-log.md) learns words over an OLD alphabet.
2. ``extend_dictionary`` grows its head for NEW characters (ฃ ๏ ๛, missing from many dictionaries).
3. Both are exported; on held-out images of old words the two exported models must agree:
   the same texts, and the old classes' scores equal up to the softmax normaliser.
4. A short fine-tune from the grown weights on a mix (new-character words + old words, the
   engine's ratio_list) must read new-character words while the old held-out accuracy holds.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import yaml

OLD = "กขคงจตนมรส"
NEW = "ฃ๏๛"
IMAGE_SHAPE = [3, 32, 96]
MAX_LEN = 4


def _font(size: int):  # noqa: ANN202
    import fontpkg_sarabun
    from PIL import ImageFont

    return ImageFont.truetype(str(Path(fontpkg_sarabun.__file__).resolve().parent / "files"
                                  / "Sarabun-Regular.ttf"), size)


def words(alphabet: str, n: int, seed: int, must: str = "") -> List[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        w = [rng.choice(alphabet) for _ in range(rng.randint(2, MAX_LEN))]
        if must:
            w[rng.randrange(len(w))] = rng.choice(must)
        out.append("".join(w))
    return out


def render(root: Path, name: str, texts: Sequence[str], seed: int) -> Path:
    """Images under root/img, label file root/<name>.txt (paths relative to root)."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    (root / "img").mkdir(parents=True, exist_ok=True)
    lines = []
    for i, text in enumerate(texts):
        font = _font(rng.randint(20, 24))
        img = Image.new("RGB", (IMAGE_SHAPE[2], IMAGE_SHAPE[1]), (255, 255, 255))
        ImageDraw.Draw(img).text((rng.randint(2, 12), rng.randint(-2, 3)), text,
                                 fill=(0, 0, 0), font=font)
        rel = f"img/{name}_{i}.png"
        img.save(root / rel)
        lines.append(f"{rel}\t{text}\n")
    path = root / f"{name}.txt"
    path.write_text("".join(lines), encoding="utf-8")
    return path


def write_config(run: Path, data_root: Path, train: List[Path], val: Path, dict_path: Path,
                 epochs: int, batch_size: int = 16, lr: float = 0.005,
                 pretrained: Optional[Path] = None, ratio: Optional[List[float]] = None,
                 eval_every: int = 1000000) -> Path:
    ops = [{"DecodeImage": {"img_mode": "BGR", "channel_first": False}}, {"CTCLabelEncode": None},
           {"RecResizeImg": {"image_shape": IMAGE_SHAPE}},
           {"KeepKeys": {"keep_keys": ["image", "label", "length"]}}]
    loader = {"batch_size_per_card": batch_size, "drop_last": False, "num_workers": 0}
    train_ds = {"name": "SimpleDataSet", "data_dir": str(data_root),
                "label_file_list": [str(p) for p in train], "transforms": ops}
    if ratio:
        train_ds["ratio_list"] = ratio
    cfg = {
        "Global": {"use_gpu": False, "epoch_num": epochs, "log_smooth_window": 5,
                   "print_batch_step": 10, "save_model_dir": str(run / "checkpoints"),
                   "save_epoch_step": 100000, "eval_batch_step": [0, eval_every],
                   "cal_metric_during_train": False, "checkpoints": None,
                   "pretrained_model": str(pretrained) if pretrained else None,
                   "save_inference_dir": None, "use_visualdl": False, "infer_img": None,
                   "character_dict_path": str(dict_path), "max_text_length": MAX_LEN + 2,
                   "infer_mode": False, "use_space_char": False, "save_res_path": None, "seed": 7},
        "Optimizer": {"name": "Adam", "beta1": 0.9, "beta2": 0.999, "lr": {"learning_rate": lr},
                      "regularizer": {"name": "L2", "factor": 0.0}},
        "Architecture": {"model_type": "rec", "algorithm": "CRNN", "Transform": None,
                         "Backbone": {"name": "MobileNetV3", "scale": 0.5, "model_name": "small",
                                      "small_stride": [1, 2, 2, 2]},
                         "Neck": {"name": "SequenceEncoder", "encoder_type": "reshape"},
                         "Head": {"name": "CTCHead", "fc_decay": 0.0}},
        "Loss": {"name": "CTCLoss"}, "PostProcess": {"name": "CTCLabelDecode"},
        "Metric": {"name": "RecMetric", "main_indicator": "acc"},
        "Train": {"dataset": train_ds, "loader": dict(loader, shuffle=True)},
        "Eval": {"dataset": dict(train_ds, label_file_list=[str(val)], ratio_list=1.0),
                 "loader": dict(loader, shuffle=False)},
    }
    run.mkdir(parents=True, exist_ok=True)
    path = run / "config.yml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def train(config: Path, steps_total: int) -> float:
    from rectrain.engine import engine_command, find_engine

    argv, env = engine_command(find_engine(), "train", str(config),
                               {"Global.eval_batch_step": [0, steps_total]})
    t0 = time.monotonic()
    with open(config.parent / "train.log", "w", encoding="utf-8") as log:
        proc = subprocess.run(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                              cwd=str(config.parent))
    if proc.returncode != 0:
        tail = (config.parent / "train.log").read_text(encoding="utf-8", errors="replace")
        raise RuntimeError(f"training failed ({proc.returncode}):\n{tail[-3000:]}")
    return time.monotonic() - t0


def raw_outputs(model_dir: Path, images: Sequence[Path]):  # noqa: ANN201
    """The exported model's output tensor (N, T, classes) for images resized as the engine does."""
    import numpy as np
    from paddle import inference
    from PIL import Image

    stem = next(p for p in model_dir.iterdir() if p.name.startswith("inference.")
                and p.suffix in (".json", ".pdmodel"))
    cfg = inference.Config(str(stem), str(model_dir / "inference.pdiparams"))
    cfg.disable_gpu()
    cfg.switch_ir_optim(False)
    cfg.disable_glog_info()
    pred = inference.create_predictor(cfg)
    batch = []
    for p in images:
        a = np.asarray(Image.open(p).convert("RGB"), dtype="float32")[:, :, ::-1] / 255.0
        batch.append(((a - 0.5) / 0.5).transpose(2, 0, 1))
    x = np.ascontiguousarray(np.stack(batch).astype("float32"))
    h = pred.get_input_handle(pred.get_input_names()[0])
    h.reshape(x.shape)
    h.copy_from_cpu(x)
    pred.run()
    return pred.get_output_handle(pred.get_output_names()[0]).copy_to_cpu()


def accuracy(model_dir: Path, labels: Path) -> float:
    from rectrain.model.evaluate import evaluate_model

    rep = evaluate_model(str(model_dir), str(labels))
    return float(rep.word_accuracy)


def experiment(root: Path, base_epochs: int = 15, ft_epochs: int = 6,
               extras: bool = False) -> Dict[str, object]:
    import numpy as np

    from rectrain.checkpoints.extend_dict import extend_dictionary
    from rectrain.model.export import export_model

    data = root / "data"
    base_train = render(data, "old_train", words(OLD, 240, 1), 11)
    old_val = render(data, "old_val", words(OLD, 40, 2), 12)
    new_train = render(data, "new_train", words(OLD, 120, 3, must=NEW), 13)
    new_val = render(data, "new_val", words(OLD, 30, 4, must=NEW), 14)
    old_dict = data / "old_dict.txt"
    old_dict.write_text("".join(c + "\n" for c in OLD), encoding="utf-8")
    new_dict = data / "new_dict.txt"
    new_dict.write_text("".join(c + "\n" for c in OLD + NEW), encoding="utf-8")
    out: Dict[str, object] = {}

    bs = 16
    base_cfg = write_config(root / "base", data, [base_train], old_val, old_dict, base_epochs, bs)
    out["base_train_s"] = round(train(base_cfg, base_epochs * -(-240 // bs)), 1)
    base_model = export_model(str(root / "base"), out_dir=str(root / "base_model"))

    ext = root / "extended.pdparams"
    report = extend_dictionary(root / "base" / "checkpoints" / "best_accuracy.pdparams",
                               old_dict, new_dict, ext)
    out["extend"] = report.summary()
    ext_cfg = write_config(root / "ext", data, [base_train], old_val, new_dict, 1, bs)
    ext_model = export_model(None, config=str(ext_cfg), checkpoint=str(ext.with_suffix("")),
                             out_dir=str(root / "ext_model"))

    images = [data / line.split("\t")[0] for line in old_val.read_text("utf-8").splitlines()]
    a, b = raw_outputs(base_model, images), raw_outputs(ext_model, images)
    n_old = a.shape[-1]
    la, lb = np.log(np.maximum(a, 1e-30)), np.log(np.maximum(b[..., :n_old], 1e-30))
    d = (lb - la)
    live = a > 1e-6  # log of smaller probabilities is float32 rounding noise
    offset = np.where(live, d, 0).sum(-1, keepdims=True) / np.maximum(live.sum(-1, keepdims=True), 1)
    out["old_logit_max_diff"] = float(np.abs(np.where(live, d - offset, 0)).max())
    out["argmax_equal"] = bool((a.argmax(-1) == b.argmax(-1)).all())
    out["new_class_max_prob"] = float(b[..., n_old:].max())
    out["base_old_acc"] = accuracy(base_model, old_val)
    out["ext_old_acc"] = accuracy(ext_model, old_val)
    out["ext_new_acc"] = accuracy(ext_model, new_val)

    ft_cfg = write_config(root / "ft", data, [new_train, base_train], old_val, new_dict,
                          ft_epochs, bs, lr=0.001, pretrained=ext.with_suffix(""),
                          ratio=[1.0, 0.5])
    ft_steps = ft_epochs * -(-(120 + 120) // bs)
    out["ft_train_s"] = round(train(ft_cfg, ft_steps), 1)
    ft_model = export_model(str(root / "ft"), out_dir=str(root / "ft_model"))
    out["ft_old_acc"] = accuracy(ft_model, old_val)
    out["ft_new_acc"] = accuracy(ft_model, new_val)
    if extras:  # for the table in docs/fine-tuning.md, not for the test
        # the engine's default: the original weights with the new dictionary (head skipped)
        cfg = write_config(root / "reinit", data, [new_train, base_train], old_val, new_dict,
                           ft_epochs, bs, lr=0.001,
                           pretrained=root / "base" / "checkpoints" / "best_accuracy",
                           ratio=[1.0, 0.5])
        train(cfg, ft_steps)
        model = export_model(str(root / "reinit"), out_dir=str(root / "reinit_model"))
        out["reinit_old_acc"], out["reinit_new_acc"] = accuracy(model, old_val), accuracy(model, new_val)
        # grown head, new-character words only (no old words mixed in)
        cfg = write_config(root / "nomix", data, [new_train], old_val, new_dict, 2 * ft_epochs,
                           bs, lr=0.001, pretrained=ext.with_suffix(""))
        train(cfg, ft_steps)
        model = export_model(str(root / "nomix"), out_dir=str(root / "nomix_model"))
        out["nomix_old_acc"], out["nomix_new_acc"] = accuracy(model, old_val), accuracy(model, new_val)
    return out


if __name__ == "__main__":
    args = sys.argv[1:] + [None, None, None]
    res = experiment(Path(args[0]), int(args[1] or 15), int(args[2] or 6), extras=bool(args[3]))
    print(json.dumps(res, ensure_ascii=False, indent=1))
