"""Small real inputs for the hostile cases: images, label files, dictionaries, runs."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

WORDS = ["สวัสดี", "ไทย", "abc", "ok", "บ้าน", "น้ำ", "12", "ข้าว"]


def images_and_labels(root: Path, name: str = "labels.txt", words=WORDS) -> Path:
    (root / "img").mkdir(parents=True, exist_ok=True)
    lines = []
    for i, w in enumerate(words):
        Image.new("RGB", (80, 32), "white").save(root / "img" / f"{i}.png")
        lines.append(f"img/{i}.png\t{w}\n")
    path = root / name
    path.write_text("".join(lines), encoding="utf-8")
    return path


def dictionary(root: Path, name: str = "dict.txt", words=WORDS) -> Path:
    path = root / name
    path.write_text("".join(c + "\n" for c in sorted(set("".join(words)))), encoding="utf-8")
    return path


def dataset(root: Path) -> None:
    images_and_labels(root)
    dictionary(root)


def fake_run(root: Path, name: str = "run") -> Path:
    """A run folder as `rectrain train` leaves it: config, checkpoint files, logs. The
    checkpoint bytes are not real weights: the cases here stop before the engine runs."""
    run = root / name
    ck = run / "checkpoints"
    ck.mkdir(parents=True)
    dictionary(run)
    cfg = {"Global": {"character_dict_path": str(run / "dict.txt"), "use_space_char": False,
                      "save_model_dir": str(ck)},
           "Architecture": {"model_type": "rec", "algorithm": "CRNN", "Backbone": {"name": "MobileNetV3"},
                            "Head": {"name": "CTCHead"}},
           "Eval": {"dataset": {"transforms": [{"RecResizeImg": {"image_shape": [3, 32, 100]}}]}}}
    (run / "config.yml").write_text(json.dumps(cfg), encoding="utf-8")
    for ext in ("pdparams", "pdopt", "states"):
        (ck / f"best_accuracy.{ext}").write_bytes(b"weights")
        (ck / f"latest.{ext}").write_bytes(b"weights")
    (run / "train.log").write_text("step 1\n", encoding="utf-8")
    (run / "metrics.jsonl").write_text("{}\n", encoding="utf-8")
    return run


def big_png(path: Path, width: int, height: int) -> Path:
    """A real, decodable 1-bit PNG of ``width`` x ``height`` (all black), written without
    holding the image in memory: a few KB on disk, gigabytes once decoded as RGB."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


def train_config(root: Path, name: str = "train.yml", *, labels: str = "labels.txt", val: str = "val.txt",
                 dict_name: str = "dict.txt", batch: int = 4, epochs: int = 2) -> Path:
    """A small CRNN training config over the files in ``root`` (written as paths relative to
    nothing: absolute), as `rectrain config build` leaves it."""
    from tests.training.tinydata import tiny_config

    data = {"root": root, "dict": root / dict_name, "train": root / labels, "val": root / val}
    return tiny_config(data, root / name, epochs=epochs, batch=batch)


def training_setup(root: Path) -> Path:
    images_and_labels(root)
    images_and_labels(root, "val.txt")
    dictionary(root)
    return train_config(root)


def interrupted_run(root: Path, *, step: int = 8, batch: int = 4) -> Path:
    """A run folder as an interrupted `rectrain train` leaves it: run-state.json (with the
    config's fingerprint), the config copy, and a `latest` checkpoint at ``step`` (the weights
    are placeholders: these cases stop before the engine starts)."""
    import os
    import pickle
    import time

    import yaml

    from rectrain.checkpoints.run_state import RunState
    from rectrain.training.resume_check import fingerprint

    config = training_setup(root)
    run = root / "run"
    ck = run / "checkpoints"
    ck.mkdir(parents=True)
    cfg = yaml.safe_load(config.read_text(encoding="utf-8"))
    cfg["Train"]["loader"]["batch_size_per_card"] = batch
    config.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    (run / "config.yml").write_text(config.read_text(encoding="utf-8"), encoding="utf-8")
    state = RunState(run_id="abc123", sub_epochs=1, epochs=2, engine_epochs=2, segments=1,
                     status="interrupted", global_step=step, engine_epoch=step // 2,
                     config_fingerprint=fingerprint(cfg))
    state.save(run / "run-state.json")
    # plain pickles as paddle.save writes them: a resume reads them (rectrain's strict
    # unpickler) to hand the engine a re-pickled copy, so bytes that are no pickle are refused
    (ck / "latest.pdparams").write_bytes(pickle.dumps({"w": [0.5, 1.5]}, protocol=4))
    (ck / "latest.pdopt").write_bytes(pickle.dumps({"lr": 0.001}, protocol=4))
    with open(ck / "latest.states", "wb") as fh:
        pickle.dump({"best_model_dict": {}, "epoch": step // 2, "global_step": step}, fh, protocol=2)
    old = time.time() - 600
    for p in ck.iterdir():
        os.utime(p, (old, old))
    from rectrain.checkpoints.local import snapshot

    # and, as `rectrain train` does at every save, the verified copy a resume continues from
    snapshot(ck, "latest", ck / "snapshots", sub_epochs=1, run_id="abc123")
    (run / "train.log").write_text("step 1\n", encoding="utf-8")
    (run / "metrics.jsonl").write_text("", encoding="utf-8")
    return run
