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

Accuracy (``--accuracy`` or ``--only-accuracy``): short CPU trainings of the demo's small CRNN on
the original and on the shrunk crops (train and val), ``--acc-seeds N`` seeded pairs (both arms
of a pair share words, data seed and the engine's ``Global.seed``); each pair, mean +- sd per
arm and the paired difference; and, without training, the mean |original - shrunk| of the
engine's own eval input tensors. ``--acc-fast`` (no BiLSTM, the demo's words, ``--acc-steps``)
takes ~3 min per run on 2 CPU cores:

    venv/bin/python benchmarks/bench_loader.py --only-accuracy --acc-fast --acc-seeds 3 \
        --acc-images 1500 --acc-steps 400 --acc-vocab 20 --acc-max-len 5
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
from typing import Any, Dict, List, Tuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from rectrain.config.build import create_recognition_training_config  # noqa: E402
from rectrain.config.presets import PRESETS  # noqa: E402
from rectrain.data.shrink import default_max_height  # noqa: E402
from rectrain.data.synth import synthesize, thai_words  # noqa: E402
from rectrain.engine import find_engine  # noqa: E402
from rectrain.loaderbench.bench import run_probe  # noqa: E402
from rectrain.storage.pack import pack_dataset, pack_shrunk_dataset  # noqa: E402
from rectrain.storage.pull import unpack_dataset  # noqa: E402
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


ACC_FAST_OVERRIDES = ("Architecture.Neck.encoder_type=reshape",)  # no BiLSTM: leaves the plateau fast


def _acc_data(args: argparse.Namespace, work: Path, seed: int,
              crop_h: int) -> Tuple[Path, Path, int, int, int]:
    """Original crops (``train/``, ``val/``, ``dict.txt``) for one seed and their shrunk copy."""
    from rectrain.data.shrink import shrink_tree
    from rectrain.data.synth import Effects

    orig = work / f"acc-original-s{seed}"
    small = work / f"acc-shrunk-s{seed}"
    for path in (orig, small):
        shutil.rmtree(path, ignore_errors=True)
    if args.acc_fast:  # the demo's words: 12 characters, words of 2-4, held-out words in val
        from rectrain.demo import DEMO_EFFECTS_SPEC, DemoPlan, choose_words, demo_fonts

        plan = DemoPlan(vocabulary_size=args.acc_vocab, max_len=args.acc_max_len)
        train_words, val_words, charset = choose_words(plan, seed)
        fonts, effects = demo_fonts(), Effects(**DEMO_EFFECTS_SPEC)
        synthesize(train_words, orig / "train", args.acc_images, seed=seed, fonts=fonts,
                    height=crop_h, effects=effects, prefix="train-")
        synthesize(val_words, orig / "val", args.acc_val, seed=seed + 1000, fonts=fonts,
                   height=crop_h, effects=effects, prefix="val-")
        n_words = len(train_words) + len(val_words)
    else:  # the original measurement: 30 words, val a random share of the same words
        words = thai_words(limit=args.acc_words, max_len=6, seed=seed)
        n_val = max(args.acc_images // 5, 16)
        synthesize(words, orig / "all", args.acc_images + n_val, seed=seed + 1, height=crop_h)
        lines = (orig / "all" / "labels.txt").read_text(encoding="utf-8").splitlines(keepends=True)
        for split, part in (("train", lines[n_val:]), ("val", lines[:n_val])):
            (orig / split).mkdir()
            for line in part:
                rel = line.split("\t")[0]
                (orig / split / rel).parent.mkdir(exist_ok=True)
                os.replace(orig / "all" / rel, orig / split / rel)
            (orig / split / "labels.txt").write_text("".join(part), encoding="utf-8")
        shutil.rmtree(orig / "all")
        charset = sorted({c for line in lines for c in line.split("\t")[1].strip()})
        n_words = len(words)
    (orig / "dict.txt").write_text("".join(c + "\n" for c in charset), encoding="utf-8")
    shrink_tree(orig, small, default_max_height(32))
    n_train = len((orig / "train" / "labels.txt").read_text(encoding="utf-8").splitlines())
    n_val = len((orig / "val" / "labels.txt").read_text(encoding="utf-8").splitlines())
    return orig, small, n_train, n_val, n_words


_TENSOR_DIFF = r"""
import json, sys
import numpy as np, yaml
sys.path.insert(0, sys.argv[1])
from ppocr.data.imaug import create_operators, transform
cfg = yaml.safe_load(open(sys.argv[2], encoding="utf-8"))
ops = [op for op in cfg["Eval"]["dataset"]["transforms"] if "KeepKeys" not in op]
ops = create_operators(ops, cfg["Global"])
diffs, widths, n = [], 0, 0
for line in open(sys.argv[3], encoding="utf-8"):
    rel, label = line.rstrip("\n").split("\t")
    out = []
    for root in sys.argv[4:6]:
        with open(root + "/" + rel, "rb") as fh:
            out.append(transform({"image": fh.read(), "label": label}, ops))
    a, b = out
    if a is None or b is None:
        continue
    n += 1
    diffs.append(float(np.abs(a["image"] - b["image"]).mean()))
    widths += int(abs(a.get("valid_ratio", 0) - b.get("valid_ratio", 0)) > 1e-6)
    lo, hi = float(a["image"].min()), float(a["image"].max())
print(json.dumps({"crops": n, "mean_abs_diff": float(np.mean(diffs)), "max_crop_diff": float(np.max(diffs)),
                  "share_width_differs": widths / max(n, 1), "value_range": [-1.0, 1.0]}))
"""


def tensor_diff(engine: Any, config: Path, orig: Path, small: Path) -> Dict[str, Any]:
    """Mean |original - shrunk| of the engine's own eval input tensors (its Eval transforms:
    decode, label encoding, RecResizeImg to the preset's shape, normalised to [-1, 1]) over the
    val crops; and the share of crops whose resized width (valid_ratio) differs."""
    import subprocess

    proc = subprocess.run([engine.python, "-c", _TENSOR_DIFF, str(engine.root), str(config),
                           str(orig / "val" / "labels.txt"), str(orig / "val"), str(small / "val")],
                          capture_output=True, text=True, timeout=600, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def accuracy(args: argparse.Namespace, work: Path, engine: Any) -> Dict[str, Any]:
    """Train the crnn-mv3 preset, made small as the demo does, briefly (CPU), on original and
    on shrunk crops of the same words (a small vocabulary, so that a short run learns
    something); the engine's own evaluation on each one's validation split (shrunk the same
    way). ``--acc-seeds N``: N independent pairs (data seed and the engine's ``Global.seed``;
    both arms of a pair share them, only the pixels differ). ``--acc-fast``: the demo's words
    (12 characters, 2-4 per word, held-out words in val) and no BiLSTM, a fixed number of steps."""
    from rectrain.demo import DemoPlan
    from rectrain.runlog.records import read_metrics
    from rectrain.training.runner import start_recognition_training

    crop_h = int(32 * args.factor)
    mode = (f"fast, {args.acc_vocab} characters, words of 2-{args.acc_max_len}" if args.acc_fast
            else "original")
    out: Dict[str, Any] = {"mode": mode, "crop_height": crop_h,
                           "max_height": default_max_height(32), "pairs": []}
    overrides = list(DemoPlan().overrides) + (list(ACC_FAST_OVERRIDES) if args.acc_fast else [])
    for i in range(args.acc_seeds):
        seed = args.acc_seed0 + i
        orig, small, n_train, n_val, n_words = _acc_data(args, work, seed, crop_h)
        steps_per_epoch = n_train // 32  # the engine drops the last partial batch
        epochs = -(-args.acc_steps // steps_per_epoch) if args.acc_fast else args.acc_epochs
        run_overrides = overrides + [f"Global.seed={1024 + seed}"]
        if args.acc_fast:
            run_overrides.append(f"Global.eval_batch_step=[0, {args.acc_eval_every}]")
        pair: Dict[str, Any] = {"seed": seed, "train": n_train, "val": n_val, "words": n_words,
                                "epochs": epochs, "steps": epochs * steps_per_epoch}
        cfgs = {}
        for kind, data in (("original", orig), ("shrunk", small)):
            cfg = work / f"acc-{kind}-s{seed}.yml"
            create_recognition_training_config(
                "crnn-mv3", data / "train" / "labels.txt", data / "val" / "labels.txt",
                data / "dict.txt", cfg, device="cpu", batch_size=32, epochs=epochs, lr=0.005,
                overrides=run_overrides, check_data=False)
            cfgs[kind] = cfg
        if i == 0 or args.acc_tensor_every_seed:
            pair["tensor_diff"] = tensor_diff(engine, cfgs["original"], orig, small)
        for kind in ("original", "shrunk"):
            run = work / f"acc-run-{kind}-s{seed}"
            shutil.rmtree(run, ignore_errors=True)
            started = time.monotonic()
            start_recognition_training(cfgs[kind], run, device="cpu", display="none",
                                       workers="auto", checkpoint_every_min=0)
            evals = [r for r in read_metrics(run / "metrics.jsonl") if r.get("type") == "eval"]
            pair[kind] = {
                "best_acc": max((float(r.get("acc", 0)) for r in evals), default=None),
                "last_acc": float(evals[-1].get("acc", 0)) if evals else None,
                "last_norm_edit_dis": evals[-1].get("norm_edit_dis") if evals else None,
                "curve": [(r.get("global_step"), round(float(r.get("acc", 0)), 3)) for r in evals],
                "wall_s": round(time.monotonic() - started, 1)}
            print(f"seed {seed} {kind}: {pair[kind]}", file=sys.stderr, flush=True)
        out["pairs"].append(pair)
    out["summary"] = summarize(out["pairs"])
    return out


def _mean_sd(xs: List[float]) -> Tuple[float, float]:
    return (statistics.mean(xs), statistics.stdev(xs) if len(xs) > 1 else float("nan"))


def summarize(pairs: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Mean and sd per arm (last eval accuracy), and the paired difference shrunk - original."""
    done = [p for p in pairs if p["original"]["last_acc"] is not None and p["shrunk"]["last_acc"] is not None]
    if not done:
        return {}
    res: Dict[str, Any] = {"pairs": len(done)}
    for key in ("last_acc", "last_norm_edit_dis"):
        o = [float(p["original"][key]) for p in done]
        s = [float(p["shrunk"][key]) for p in done]
        d = [b - a for a, b in zip(o, s)]
        res[key] = {"original": _mean_sd(o), "shrunk": _mean_sd(s), "diff": _mean_sd(d)}
        if len(d) > 1:  # paired t statistic; |t| well below ~2-4 (df = n-1): within noise
            sd = statistics.stdev(d)
            m = statistics.mean(d)
            res[key]["paired_t"] = m / (sd / len(d) ** 0.5) if sd > 0 else (0.0 if m == 0 else float("inf"))
    return res


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


def show_accuracy(acc: Dict[str, Any]) -> None:
    p0 = acc["pairs"][0]
    print(f"\naccuracy ({acc['mode']}: crnn-mv3 made small as the demo; {p0['train']} train / "
          f"{p0['val']} val crops of {p0['words']} words, {acc['crop_height']} px -> "
          f"{acc['max_height']} px, {p0['epochs']} epochs = {p0['steps']} steps, CPU):")
    td = p0.get("tensor_diff")
    if td:
        print(f"  input tensors (engine's Eval transforms, range 2.0): mean |orig - shrunk| "
              f"{td['mean_abs_diff']:.4f}, resized width differs on {100 * td['share_width_differs']:.0f}% "
              f"of {td['crops']} crops")
    for p in acc["pairs"]:
        o, s = p["original"], p["shrunk"]
        print(f"  seed {p['seed']}: original acc {o['last_acc']:.3f} (best {o['best_acc']:.3f}, "
              f"{o['wall_s']} s)  shrunk acc {s['last_acc']:.3f} (best {s['best_acc']:.3f}, "
              f"{s['wall_s']} s)  diff {s['last_acc'] - o['last_acc']:+.3f}")
    for key, r in acc["summary"].items():
        if key == "pairs":
            continue
        print(f"  {key}: original {r['original'][0]:.3f} +- {r['original'][1]:.3f}, shrunk "
              f"{r['shrunk'][0]:.3f} +- {r['shrunk'][1]:.3f}, paired diff {r['diff'][0]:+.3f} +- "
              f"{r['diff'][1]:.3f}" + (f", paired t {r['paired_t']:.2f}" if "paired_t" in r else ""))


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
    ap.add_argument("--acc-epochs", type=int, default=25, help="epochs (without --acc-fast)")
    ap.add_argument("--acc-seeds", type=int, default=1,
                    help="independent pairs: data seed and the engine's Global.seed, shared by both arms")
    ap.add_argument("--acc-seed0", type=int, default=0, help="first seed")
    ap.add_argument("--acc-fast", action="store_true",
                    help="the demo's words (12 characters, 2-4 per word, held-out val words) and no "
                         "BiLSTM (Neck reshape): leaves the CTC plateau in a few hundred steps")
    ap.add_argument("--acc-vocab", type=int, default=12,
                    help="--acc-fast: the most frequent characters used (the demo: 12); more is harder")
    ap.add_argument("--acc-max-len", type=int, default=4, help="--acc-fast: longest word (the demo: 4)")
    ap.add_argument("--acc-steps", type=int, default=300, help="steps per run with --acc-fast")
    ap.add_argument("--acc-val", type=int, default=200, help="val crops with --acc-fast")
    ap.add_argument("--acc-eval-every", type=int, default=100, help="eval interval with --acc-fast")
    ap.add_argument("--acc-tensor-every-seed", action="store_true",
                    help="the input-tensor difference for every seed (default: the first)")
    ap.add_argument("--only-accuracy", action="store_true", help="skip the loader measurements")
    ap.add_argument("--work", help="work folder (kept; default: a temporary one, removed)")
    args = ap.parse_args()

    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bench-loader-"))
    work.mkdir(parents=True, exist_ok=True)
    engine = find_engine()
    try:
        results = [] if args.only_accuracy else [bench_preset(p, args, work, engine)
                                                   for p in args.presets]
        acc = accuracy(args, work, engine) if args.accuracy or args.only_accuracy else None
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
        show_accuracy(acc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
