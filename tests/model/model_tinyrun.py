"""A tiny, real recognition training run for the model tests: a few rendered words, a small
CRNN (MobileNetV3 small x0.5 + BiLSTM 48 + CTC) trained on the CPU by the engine's own
tools/train.py for a few seconds. Used by conftest.py; runnable alone for debugging:
``venv/bin/python tests/model/model_tinyrun.py /tmp/tiny``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

import yaml

WORDS = ["สวัสดี", "ไทย", "กา", "abc", "12", "ok"]
IMAGE_SHAPE = [3, 32, 100]
# The tests train two epochs (6 steps): enough for readings that are not empty (a constant
# guess that shares characters with some labels, so the normalized edit distance is not zero).
# A CRNN from scratch needs several hundred steps before it reads words: too slow for the suite.
TEST_EPOCHS = 2


def _font_path() -> str:
    import fontpkg_sarabun

    root = Path(fontpkg_sarabun.__file__).resolve().parent / "files"
    return str(root / "Sarabun-Regular.ttf")


def make_dataset(root: Path, copies: int = 3, shift: int = 4) -> Dict[str, Path]:
    """Render each word ``copies`` times (small shifts) as 100x32 images. Returns paths of
    the images folder, the label file (same set for train and eval) and the dictionary."""
    from PIL import Image, ImageDraw, ImageFont

    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    font = ImageFont.truetype(_font_path(), 22)
    lines: List[str] = []
    for w_index, word in enumerate(WORDS):
        for c in range(copies):
            img = Image.new("RGB", (100, 32), (255, 255, 255))
            draw = ImageDraw.Draw(img)
            draw.text((6 + shift * c, 2 + (c % 2 if shift else 0)), word, fill=(0, 0, 0), font=font)
            name = f"w{w_index}_{c}.png"
            img.save(images / name)
            lines.append(f"images/{name}\t{word}")
    labels = root / "labels.txt"
    labels.write_text("\n".join(lines) + "\n", encoding="utf-8")
    chars = sorted({ch for word in WORDS for ch in word})
    dict_path = root / "dict.txt"
    dict_path.write_text("\n".join(chars) + "\n", encoding="utf-8")
    return {"root": root, "labels": labels, "dict": dict_path}


def write_config(root: Path, data: Dict[str, Path], epochs: int = 40, batch_size: int = 8,
                 lr: float = 0.001) -> Path:
    transforms_train = [
        {"DecodeImage": {"img_mode": "BGR", "channel_first": False}},
        {"CTCLabelEncode": None},
        {"RecResizeImg": {"image_shape": IMAGE_SHAPE}},
        {"KeepKeys": {"keep_keys": ["image", "label", "length"]}},
    ]
    loader = {"shuffle": False, "batch_size_per_card": batch_size, "drop_last": False, "num_workers": 0}
    dataset = {"name": "SimpleDataSet", "data_dir": str(data["root"]),
               "label_file_list": [str(data["labels"])], "transforms": transforms_train}
    config = {
        "Global": {
            "use_gpu": False, "epoch_num": epochs, "log_smooth_window": 1, "print_batch_step": 1,
            "save_model_dir": str(root / "run" / "checkpoints"), "save_epoch_step": 1000,
            "eval_batch_step": [0, 1000000], "cal_metric_during_train": True,
            "pretrained_model": None, "checkpoints": None, "save_inference_dir": None,
            "use_visualdl": False, "infer_img": None,
            "character_dict_path": str(data["dict"]), "max_text_length": 10,
            "infer_mode": False, "use_space_char": False, "save_res_path": None,
            "seed": 7,
        },
        "Optimizer": {"name": "Adam", "beta1": 0.9, "beta2": 0.999,
                      "lr": {"learning_rate": lr},
                      "regularizer": {"name": "L2", "factor": 0.0}},
        "Architecture": {
            "model_type": "rec", "algorithm": "CRNN", "Transform": None,
            "Backbone": {"name": "MobileNetV3", "scale": 0.5, "model_name": "small",
                         "small_stride": [1, 2, 2, 2]},
            "Neck": {"name": "SequenceEncoder", "encoder_type": "rnn", "hidden_size": 48},
            "Head": {"name": "CTCHead", "fc_decay": 0.0},
        },
        "Loss": {"name": "CTCLoss"},
        "PostProcess": {"name": "CTCLabelDecode"},
        "Metric": {"name": "RecMetric", "main_indicator": "acc"},
        "Train": {"dataset": dataset, "loader": dict(loader, shuffle=True)},
        "Eval": {"dataset": dict(dataset), "loader": dict(loader)},
    }
    path = root / "run" / "config.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def train(root: Path, epochs: int = 40, paddleocr_dir: Optional[str] = None, batch_size: int = 8,
          lr: float = 0.001, shift: int = 4) -> Path:
    """Train for real; returns the run dir (config.yml, checkpoints/, train.log)."""
    from rectrain.engine import engine_command, find_engine

    data = make_dataset(root, shift=shift)
    config = write_config(root, data, epochs=epochs, batch_size=batch_size, lr=lr)
    run_dir = config.parent
    engine = find_engine(paddleocr_dir)
    # Eval once, at the last step.
    steps = epochs * -(-len(WORDS) * 3 // batch_size)
    argv, env = engine_command(engine, "train", str(config),
                               {"Global.eval_batch_step": [0, steps]})
    with open(run_dir / "train.log", "w", encoding="utf-8") as log:
        proc = subprocess.run(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(run_dir))
    if proc.returncode != 0:
        tail = (run_dir / "train.log").read_text(encoding="utf-8", errors="replace")[-3000:]
        raise RuntimeError(f"tiny training failed ({proc.returncode}):\n{tail}")
    return run_dir


if __name__ == "__main__":
    args = sys.argv[1:] + [None] * 5
    print(train(Path(args[0]), epochs=int(args[1] or 40), batch_size=int(args[2] or 8),
                lr=float(args[3] or 0.001), shift=int(args[4] or 4)))
