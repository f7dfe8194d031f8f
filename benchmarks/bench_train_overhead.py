"""Overhead of `rectrain train` over a bare `python tools/train.py`, on the CPU.

The same config (a small PIL-drawn dataset, the tiny CRNN of tests/training/tinydata.py) is
trained once by each, alternately (``--repeats`` pairs). Reported:

- samples/s: mean of the engine's own ``ips`` over the train lines after the first epoch
  (both print the same engine lines); ratio rectrain / bare (target >= 0.98);
- start-up: seconds from process start to the first train line; extra = rectrain - bare;
- wall: seconds to the end of the process.

    venv/bin/python benchmarks/bench_train_overhead.py [--images 128] [--epochs 8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from training.tinydata import make_dataset, tiny_config  # noqa: E402

from rectrain.engine import engine_command, find_engine  # noqa: E402
from rectrain.runlog.records import parse_line  # noqa: E402


def _run(argv: List[str], env: Dict[str, str]) -> Dict[str, float]:
    start = time.monotonic()
    first = None
    ips: List[float] = []
    epochs_seen = set()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    for raw in iter(proc.stdout.readline, b""):
        record = parse_line(raw.decode("utf-8", errors="replace"))
        if record and record["type"] == "train":
            if first is None:
                first = time.monotonic() - start
            epochs_seen.add(record["engine_epoch"])
            if record["engine_epoch"] > 1 and isinstance(record.get("ips"), float):
                ips.append(record["ips"])
    rc = proc.wait()
    if rc != 0:
        raise SystemExit(f"{argv[:4]}... failed with {rc}")
    return {"startup_s": first or float("nan"), "wall_s": time.monotonic() - start,
            "ips": statistics.mean(ips) if ips else float("nan"), "lines": len(ips)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)  # one short pair is too noisy
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-train-"))
    data = make_dataset(work / "data", n_train=args.images, n_val=8)
    config = tiny_config(data, work / "cfg.yml", epochs=args.epochs, batch=args.batch,
                         eval_step=10**9)
    engine = find_engine()
    env = dict(os.environ)
    results: Dict[str, List[Dict[str, float]]] = {"bare": [], "rectrain": []}
    for i in range(args.repeats):
        argv, eng_env = engine_command(engine, "train", str(config),
                                       {"Global.save_model_dir": str(work / f"bare{i}"),
                                        "Global.use_gpu": False})
        results["bare"].append(_run(argv, dict(eng_env, CUDA_VISIBLE_DEVICES="")))
        argv = [sys.executable, "-m", "rectrain", "train", "--config", str(config),
                "--run-dir", str(work / f"rt{i}"), "--device", "cpu", "--display", "plain",
                "--checkpoint-every", "0"]
        results["rectrain"].append(_run(argv, env))

    def mean(kind: str, key: str) -> float:
        return statistics.mean(r[key] for r in results[kind])

    summary = {
        "runs": results,
        "ips_bare": mean("bare", "ips"), "ips_rectrain": mean("rectrain", "ips"),
        "ips_ratio": mean("rectrain", "ips") / mean("bare", "ips"),
        "startup_bare_s": mean("bare", "startup_s"), "startup_rectrain_s": mean("rectrain", "startup_s"),
        "extra_startup_s": mean("rectrain", "startup_s") - mean("bare", "startup_s"),
        "extra_wall_s": mean("rectrain", "wall_s") - mean("bare", "wall_s"),
        "config": {"images": args.images, "epochs": args.epochs, "batch": args.batch,
                   "repeats": args.repeats, "cpus": os.cpu_count()},
    }
    print(json.dumps(summary, indent=2))
    print(f"samples/s ratio rectrain/bare: {summary['ips_ratio']:.3f} (target >= 0.98); "
          f"extra start-up: {summary['extra_startup_s']:+.2f} s; "
          f"extra wall: {summary['extra_wall_s']:+.2f} s")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
