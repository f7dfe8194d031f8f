"""Models of every preset for the deployment tests, made for real with the engine on the CPU:

- ``held_out(root)``: labelled word images of many sizes (narrow, wide, very wide, tall), a
  grey PNG, a PNG with alpha and a JPEG: what a deployer's crops look like, and images whose
  network inputs differ in width (so batching could change a reading if it padded them);
- ``preset_run(root, preset, ...)``: a training config built from a preset by rectrain's own
  builder on the tiny data set, with either a few real training steps (``train_steps``) or
  the engine's randomly initialised weights (``random_weights``), which read every image
  differently enough to compare readings and scores image by image.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Dict, List

from .model_tinyrun import WORDS, _font_path

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "paddleocr-configs"
THAI_DICT = SHARED / "ppocrv5_th_dict.txt"

_SAVE_RANDOM = """
import sys, paddle
from tools.program import load_config
from ppocr.modeling.architectures import build_model
from ppocr.postprocess import build_post_process
paddle.seed(7)
config = load_config(sys.argv[1])
n = len(build_post_process(config["PostProcess"], config["Global"]).character)
head = config["Architecture"]["Head"]
if head["name"] == "MultiHead":
    head["out_channels_list"] = {"CTCLabelDecode": n, "SARLabelDecode": n + 2,
                                 "NRTRLabelDecode": n + 3}
else:
    head["out_channels"] = n
paddle.save(build_model(config["Architecture"]).state_dict(), sys.argv[2] + ".pdparams")
"""


def held_out(root: Path) -> Dict[str, Path]:
    """``{"labels", "images"}``: 24 labelled images of the tiny run's words, many sizes."""
    from PIL import Image, ImageDraw, ImageFont

    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    lines: List[str] = []
    # (font size, left/right padding, top/bottom padding): aspect ratios from ~1 to ~20
    layouts = [(14, 2, 2), (18, 4, 3), (22, 6, 2), (26, 10, 8), (30, 40, 4), (36, 3, 20),
               (20, 120, 2), (16, 200, 1)]
    for index in range(24):
        word = WORDS[index % len(WORDS)]
        size, pad_x, pad_y = layouts[index % len(layouts)]
        font = ImageFont.truetype(_font_path(), size)
        left, top, right, bottom = font.getbbox(word)
        width, height = right - left + 2 * pad_x, bottom - top + 2 * pad_y + 4
        img = Image.new("RGB", (width, height), (255, 255 - 7 * index, 230 + index))
        ImageDraw.Draw(img).text((pad_x - left, pad_y - top + 2), word, fill=(20, 10, 5 * index),
                                 font=font)
        if index == 5:
            name, img = f"h{index}.png", img.convert("L")  # grey, one channel
        elif index == 6:
            name, img = f"h{index}.png", img.convert("RGBA")  # with alpha
        elif index == 7:
            name = f"h{index}.jpg"
        else:
            name = f"h{index}.png"
        img.save(images / name)
        lines.append(f"images/{name}\t{word}")
    labels = root / "labels.txt"
    labels.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"labels": labels, "images": images}


def preset_run(root: Path, preset: str, data: Dict[str, Path], engine, *,  # noqa: ANN001
               train: bool = False) -> Path:
    """A run dir (config.yml + a checkpoint) for ``preset`` on the tiny data set ``data``
    (``labels``, ``dict``): trained for one epoch (checkpoint ``latest``; no eval, to keep it
    short), or random weights (checkpoint prefix ``random``)."""
    from rectrain.config.build import create_recognition_training_config
    from rectrain.engine import engine_command
    from rectrain.engine.launch import engine_env

    run = root / preset
    run.mkdir(parents=True)
    dictionary = THAI_DICT if preset.startswith("th-") else data["dict"]
    batch = 6
    create_recognition_training_config(
        preset, [str(data["labels"])], [str(data["labels"])], str(dictionary), run / "config.yml",
        device="cpu", epochs=1, batch_size=batch,
        overrides=["Train.loader.num_workers=0", "Eval.loader.num_workers=0",
                   "Global.max_text_length=10"])
    if train:
        argv, env = engine_command(engine, "train", str(run / "config.yml"),
                                   {"Global.eval_batch_step": "[0,100000]",
                                    "Global.save_model_dir": str(run / "checkpoints")})
        with open(run / "train.log", "w", encoding="utf-8") as log:
            proc = subprocess.run(argv, env=env, cwd=str(run), stdout=log, stderr=subprocess.STDOUT,
                                  timeout=1200)
        assert proc.returncode == 0, (run / "train.log").read_text(encoding="utf-8")[-3000:]
        assert (run / "checkpoints" / "latest.pdparams").is_file()
        return run
    out = subprocess.run([engine.python, "-c", _SAVE_RANDOM, str(run / "config.yml"),
                          str(run / "random")], env=engine_env(engine), cwd=str(run),
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return run
