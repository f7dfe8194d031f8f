"""A tiny recognition dataset and CRNN config for real engine runs in tests and benchmarks.

16 PIL-drawn Thai/Latin word images of 3x32x100, a dictionary with every character used, and a
small MobileNetV3 + CTC config (batch 4, CPU). A few engine steps take seconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import yaml
from PIL import Image, ImageDraw, ImageFont

WORDS = ["สวัสดี", "ไทย", "abc", "ok", "น้ำ", "ที่", "42", "xyz",
         "ก่อน", "hi", "ปี", "go", "ดี", "sun", "ข้าว", "7"]


def _font(size: int = 22) -> ImageFont.ImageFont:
    try:
        import fontpkg_sarabun

        return ImageFont.truetype(str(fontpkg_sarabun.ROOT / "files" / "Sarabun-Regular.ttf"), size)
    except (ImportError, OSError):
        return ImageFont.load_default()


def make_dataset(root: Path, n_train: int = 16, n_val: int = 8) -> dict:
    """Write images, train.txt, val.txt and dict.txt under ``root``; return their paths."""
    root.mkdir(parents=True, exist_ok=True)
    img_dir = root / "images"
    img_dir.mkdir(exist_ok=True)
    font = _font()
    chars: List[str] = []
    lines: List[str] = []
    for i in range(max(n_train, n_val)):
        word = WORDS[i % len(WORDS)]
        for ch in word:
            if ch not in chars:
                chars.append(ch)
        img = Image.new("RGB", (100, 32), "white")
        ImageDraw.Draw(img).text((4, 2), word, fill="black", font=font)
        name = f"img_{i:03d}.png"
        img.save(img_dir / name)
        lines.append(f"images/{name}\t{word}")
    (root / "train.txt").write_text("\n".join(lines[:n_train]) + "\n", encoding="utf-8")
    (root / "val.txt").write_text("\n".join(lines[:n_val]) + "\n", encoding="utf-8")
    (root / "dict.txt").write_text("\n".join(chars) + "\n", encoding="utf-8")
    return {"root": root, "train": root / "train.txt", "val": root / "val.txt",
            "dict": root / "dict.txt"}


def tiny_config(data: dict, out: Path, *, epochs: int = 2, batch: int = 4,
                eval_step: Optional[int] = None, lr: float = 0.001,
                scheduler: str = "Cosine", warmup_epoch: float = 0, save_epoch_step: int = 1) -> Path:
    """A small CRNN (MobileNetV3 small x0.35 + CTC) config for the CPU."""
    root = str(data["root"])
    lr_cfg = {"name": scheduler, "learning_rate": lr}
    if warmup_epoch:
        lr_cfg["warmup_epoch"] = warmup_epoch
    steps = 16 // batch
    config = {
        "Global": {
            "use_gpu": False, "epoch_num": epochs, "log_smooth_window": 1, "print_batch_step": 1,
            "save_model_dir": str(out.parent / "engine_out"), "save_epoch_step": save_epoch_step,
            "eval_batch_step": [0, eval_step or steps], "cal_metric_during_train": True,
            "pretrained_model": None, "checkpoints": None, "use_visualdl": False,
            "infer_img": None, "character_dict_path": str(data["dict"]),
            "max_text_length": 10, "use_space_char": False, "seed": 7, "distributed": False,
            "print_mem_info": False,
        },
        "Optimizer": {"name": "Adam", "beta1": 0.9, "beta2": 0.999, "lr": lr_cfg,
                      "regularizer": {"name": "L2", "factor": 0.00001}},
        "Architecture": {
            "model_type": "rec", "algorithm": "CRNN", "Transform": None,
            "Backbone": {"name": "MobileNetV3", "scale": 0.35, "model_name": "small"},
            "Neck": {"name": "SequenceEncoder", "encoder_type": "reshape"},
            "Head": {"name": "CTCHead", "fc_decay": 0.00001},
        },
        "Loss": {"name": "CTCLoss"},
        "PostProcess": {"name": "CTCLabelDecode"},
        "Metric": {"name": "RecMetric", "main_indicator": "acc"},
        "Train": {
            "dataset": {"name": "SimpleDataSet", "data_dir": root,
                        "label_file_list": [str(data["train"])],
                        "transforms": [
                            {"DecodeImage": {"img_mode": "BGR", "channel_first": False}},
                            {"CTCLabelEncode": None},
                            {"RecResizeImg": {"image_shape": [3, 32, 100]}},
                            {"KeepKeys": {"keep_keys": ["image", "label", "length"]}}]},
            "loader": {"shuffle": True, "batch_size_per_card": batch, "drop_last": True,
                       "num_workers": 0, "use_shared_memory": False},
        },
        "Eval": {
            "dataset": {"name": "SimpleDataSet", "data_dir": root,
                        "label_file_list": [str(data["val"])],
                        "transforms": [
                            {"DecodeImage": {"img_mode": "BGR", "channel_first": False}},
                            {"CTCLabelEncode": None},
                            {"RecResizeImg": {"image_shape": [3, 32, 100]}},
                            {"KeepKeys": {"keep_keys": ["image", "label", "length"]}}]},
            "loader": {"shuffle": False, "batch_size_per_card": batch, "drop_last": False,
                       "num_workers": 0, "use_shared_memory": False},
        },
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return out
