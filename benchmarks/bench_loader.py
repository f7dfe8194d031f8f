"""The engine's data loader on original crops vs pre-shrunk crops (`data pack --max-height`).

For each preset, word crops are rendered ``--factor`` times taller than the preset's input
height (crops cut from detection data look like this), then measured in one run, alternately
(``--repeats`` pairs), with the engine's own loader (`rectrain bench loader`'s probe: the
engine's dataset class, transforms and collation, ``--workers`` workers):

* original: the crops as rendered;
* shrunk:   the same crops after ``data pack --max-height auto`` (the preset's largest input
  height, at least 48), unpacked;
* floor:    a decode-only pass (read + ``cv2.imdecode``, what the engine's ``DecodeImage`` does)
  over the original crops, one process: the cost no pipeline can avoid for those files.

Reported: samples/s of each, the ratio shrunk / original (target >= 1.5 on crops >= 2x taller
than the input), the share of decode and of each transform (one process, stage by stage), and
the bytes that would go to S3 (pack sizes) before and after.

    venv/bin/python benchmarks/bench_loader.py [--images 1000] [--factor 3] [--workers 1]
        [--seconds 8] [--repeats 2] [--presets crnn-mv3 ppocrv5-mobile]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from rectrain.config.build import create_recognition_training_config  # noqa: E402
from rectrain.config.presets import PRESETS  # noqa: E402
from rectrain.data.shrink import default_max_height  # noqa: E402
from rectrain.data.synth import synthesize, thai_words  # noqa: E402
from rectrain.engine import find_engine  # noqa: E402
from rectrain.storage.pack import (  # noqa: E402
    pack_dataset,
    pack_shrunk_dataset,  # noqa: E402
    unpack_dataset,
)
from rectrain.training.loader_bench import run_probe  # noqa: E402
from rectrain.training.workers import max_input_height  # noqa: E402


def make_crops(work: Path, n: int, height: int, originals: int = 200) -> Path:
    """``n`` word crops ``height`` px high (copies of ``originals`` rendered ones)."""
    root = work / f"crops-{height}"
    if (root / "labels.txt").is_file():
        return root
    base = synthesize(thai_words(limit=originals, max_len=10), work / f"base-{height}",
                      min(originals, n), seed=0, height=height)
    src = (base / "labels.txt").read_text(encoding="utf-8").splitlines()
    (root / "images").mkdir(parents=True)
    lines = []
    for i in range(n):
        rel, label = src[i % len(src)].split("\t")
        name = f"images/{i:06d}{Path(rel).suffix}"
        shutil.copyfile(base / rel, root / name)
        lines.append(f"{name}\t{label}\n")
    (root / "labels.txt").write_text("".join(lines), encoding="utf-8")
    chars = sorted({c for line in lines for c in line.split("\t")[1].strip()})
    (root / "dict.txt").write_text("".join(c + "\n" for c in chars), encoding="utf-8")
    shutil.rmtree(base)
    return root


def floor(root: Path, seconds: float) -> float:
    """Decode-only samples/s over the crops in ``root`` (one process)."""
    import cv2
    import numpy as np

    files = sorted((root / "images").iterdir())
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for path in files:
            cv2.imdecode(np.frombuffer(path.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
            n += 1
    return n / (time.perf_counter() - start)


def build(preset: str, data: Path, out: Path, batch: int) -> Path:
    labels = data / "labels.txt"
    create_recognition_training_config(preset, labels, labels, data / "dict.txt", out,
                                       images_root=data, device="cpu", batch_size=batch,
                                       check_data=False)
    return out


def tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def bench_preset(preset: str, args: argparse.Namespace, work: Path, engine: Any) -> Dict[str, Any]:
    cfg = PRESETS[preset].load()
    in_h = max_input_height(cfg)
    crop_h = int(round(in_h * args.factor))
    limit = default_max_height(in_h)
    orig = make_crops(work, args.images, crop_h)
    packed_orig = work / f"packed-{preset}-orig"
    packed_small = work / f"packed-{preset}-small"
    small = work / f"small-{preset}"
    for path in (packed_orig, packed_small, small):
        shutil.rmtree(path, ignore_errors=True)
    pack_dataset(orig, packed_orig, progress=False)
    _, shrink = pack_shrunk_dataset(orig, packed_small, limit, progress=False)
    unpack_dataset(packed_small, small, progress=False)
    cfg_orig = build(preset, orig, work / f"{preset}-orig.yml", args.batch)
    cfg_small = build(preset, small, work / f"{preset}-small.yml", args.batch)

    runs: Dict[str, List[Dict[str, Any]]] = {"original": [], "shrunk": []}
    for _ in range(args.repeats):
        for kind, config in (("original", cfg_orig), ("shrunk", cfg_small)):
            runs[kind].append(run_probe(engine, config, args.workers, seconds=args.seconds,
                                        profile_seconds=args.seconds / 2))

    def med(kind: str, part: str) -> float:
        return statistics.median(r[part]["samples_per_s"] for r in runs[kind])

    floor_orig = floor(orig, args.seconds / 2)
    floor_small = floor(small, args.seconds / 2)
    result = {
        "preset": preset, "input_height": in_h, "crop_height": crop_h, "max_height": limit,
        "workers": args.workers,
        "loader_original": med("original", "loader"), "loader_shrunk": med("shrunk", "loader"),
        "one_process_original": med("original", "profile"),
        "one_process_shrunk": med("shrunk", "profile"),
        "floor_decode_original": round(floor_orig, 1), "floor_decode_shrunk": round(floor_small, 1),
        "stages_original": runs["original"][-1]["profile"]["stages"],
        "stages_shrunk": runs["shrunk"][-1]["profile"]["stages"],
        "bytes_original": tree_bytes(packed_orig), "bytes_shrunk": tree_bytes(packed_small),
        "images_resized": shrink.resized, "runs": runs,
    }
    result["ratio_loader"] = round(result["loader_shrunk"] / result["loader_original"], 3)
    result["ratio_one_process"] = round(result["one_process_shrunk"] / result["one_process_original"], 3)
    result["ratio_bytes"] = round(result["bytes_shrunk"] / result["bytes_original"], 3)
    result["one_process_vs_floor"] = round(result["one_process_original"] / floor_orig, 3)
    return result


def accuracy(args: argparse.Namespace, work: Path) -> Dict[str, Any]:
    """Train the crnn-mv3 preset, made small as the demo does, briefly (CPU), on original and
    on shrunk crops of the same words (a small vocabulary, so that a short run learns
    something); the engine's own evaluation on each one's validation split (shrunk the same
    way)."""
    from rectrain.data.shrink import shrink_tree
    from rectrain.demo import DemoPlan
    from rectrain.training.metrics import read_metrics
    from rectrain.training.runner import start_recognition_training

    words = thai_words(limit=args.acc_words, max_len=6)
    n_val = max(args.acc_images // 5, 16)
    orig = work / "acc-original"
    if orig.exists():
        shutil.rmtree(orig)
    synthesize(words, orig, args.acc_images + n_val, seed=1, height=int(32 * args.factor))
    lines = (orig / "labels.txt").read_text(encoding="utf-8").splitlines(keepends=True)
    (orig / "train.txt").write_text("".join(lines[n_val:]), encoding="utf-8")
    (orig / "val.txt").write_text("".join(lines[:n_val]), encoding="utf-8")
    chars = sorted({c for line in lines for c in line.split("\t")[1].strip()})
    (orig / "dict.txt").write_text("".join(c + "\n" for c in chars), encoding="utf-8")
    small = work / "acc-shrunk"
    shutil.rmtree(small, ignore_errors=True)
    shrink_tree(orig, small, default_max_height(32))
    out: Dict[str, Any] = {"train": len(lines) - n_val, "val": n_val, "words": len(words),
                           "epochs": args.acc_epochs, "crop_height": int(32 * args.factor)}
    for kind, data in (("original", orig), ("shrunk", small)):
        cfg = work / f"acc-{kind}.yml"
        create_recognition_training_config("crnn-mv3", data / "train.txt", data / "val.txt",
                                           data / "dict.txt", cfg, images_root=data, device="cpu",
                                           batch_size=32, epochs=args.acc_epochs, lr=0.005,
                                           overrides=DemoPlan().overrides)  # the demo's small CRNN
        run = work / f"acc-run-{kind}"
        shutil.rmtree(run, ignore_errors=True)
        started = time.monotonic()
        start_recognition_training(cfg, run, device="cpu", display="none", workers="auto",
                                   checkpoint_every_min=0)
        evals = [r for r in read_metrics(run / "metrics.jsonl") if r.get("type") == "eval"]
        out[kind] = {"best_acc": max((float(r.get("acc", 0)) for r in evals), default=None),
                     "last_acc": float(evals[-1].get("acc", 0)) if evals else None,
                     "last_norm_edit_dis": evals[-1].get("norm_edit_dis") if evals else None,
                     "evals": len(evals), "wall_s": round(time.monotonic() - started, 1)}
    return out


def show(r: Dict[str, Any]) -> None:
    print(f"\n{r['preset']}: crops {r['crop_height']} px for a {r['input_height']} px input "
          f"({r['crop_height'] / r['input_height']:.1f}x), shrunk to {r['max_height']} px; "
          f"{r['workers']} worker(s)")
    print(f"  loader      original {r['loader_original']:8.1f} /s   shrunk {r['loader_shrunk']:8.1f} /s"
          f"   ratio {r['ratio_loader']:.2f}x (target >= 1.5)")
    print(f"  one process original {r['one_process_original']:8.1f} /s   shrunk "
          f"{r['one_process_shrunk']:8.1f} /s   ratio {r['ratio_one_process']:.2f}x")
    print(f"  decode-only floor    {r['floor_decode_original']:8.1f} /s (original), "
          f"{r['floor_decode_shrunk']:.1f} /s (shrunk); one process / floor "
          f"{r['one_process_vs_floor']:.2f}")
    print(f"  S3 bytes (packed)    {r['bytes_original'] / 1e6:.2f} MB -> {r['bytes_shrunk'] / 1e6:.2f} MB "
          f"({r['ratio_bytes']:.2f}x)")
    for kind in ("original", "shrunk"):
        shares = ", ".join(f"{s['stage'].split(' ')[0]} {100 * s['share']:.0f}%" for s in r[f"stages_{kind}"])
        print(f"  shares ({kind}): {shares}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--factor", type=float, default=3.0, help="crop height / input height")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--presets", nargs="+", default=["crnn-mv3", "ppocrv5-mobile"])
    ap.add_argument("--accuracy", action="store_true",
                    help="also train crnn-mv3 briefly on original and on shrunk crops (CPU, minutes)")
    ap.add_argument("--acc-images", type=int, default=600)
    ap.add_argument("--acc-words", type=int, default=30)
    ap.add_argument("--acc-epochs", type=int, default=25)
    ap.add_argument("--only-accuracy", action="store_true", help="skip the loader measurements")
    ap.add_argument("--work", help="work folder (kept; default: a temporary one, removed)")
    args = ap.parse_args()

    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bench-loader-"))
    work.mkdir(parents=True, exist_ok=True)
    engine = find_engine()
    try:
        results = [] if args.only_accuracy else [bench_preset(p, args, work, engine)
                                                   for p in args.presets]
        acc = accuracy(args, work) if args.accuracy or args.only_accuracy else None
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    summary = {"results": results, "accuracy": acc,
               "config": {"images": args.images, "factor": args.factor, "workers": args.workers,
                          "batch": args.batch, "seconds": args.seconds, "repeats": args.repeats,
                          "cpus": len(os.sched_getaffinity(0)), "load": os.getloadavg()[0]}}
    print(json.dumps(summary, indent=1, ensure_ascii=False))
    for r in results:
        show(r)
    if acc:
        print(f"\naccuracy (crnn-mv3, {acc['train']} train / {acc['val']} val crops of {acc['words']} "
              f"words, {acc['crop_height']} px, {acc['epochs']} epochs, CPU):")
        for kind in ("original", "shrunk"):
            a = acc[kind]
            print(f"  {kind:<9} best acc {a['best_acc']}  last acc {a['last_acc']}  "
                  f"last norm_edit_dis {a['last_norm_edit_dis']}  ({a['wall_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
