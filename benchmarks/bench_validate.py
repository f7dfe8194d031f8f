"""Benchmark: images/s of `rectrain data validate` vs a plain Pillow loop and a decode-only pass.

    venv/bin/python benchmarks/bench_validate.py [--n 100000] [--workers N] [--work DIR]

Generates N small word images (synthetic Thai words, 32 px high, copied from a few hundred
rendered originals so generation stays quick), then measures in one run, page cache warm:

* plain:  a single-threaded loop opening and decoding every image with Pillow;
* floor:  a decode-only pass (open + decode, nothing else) on the same process pool size;
* validate: `validate_recognition_annotation_format` on the label file (all checks but the
  dictionary).

Targets (issue 3): validate >= 1.7x plain on 2 cores, and validate time <= 1.5x floor time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rectrain.data.images import decode_chunk, load_decoder  # noqa: E402
from rectrain.data.synth import synthesize, thai_words  # noqa: E402
from rectrain.data.validate import default_workers, validate_recognition_annotation_format  # noqa: E402


def generate(work: Path, n: int, originals: int = 300) -> Path:
    labels = work / "labels.txt"
    if labels.is_file() and len(labels.read_text(encoding="utf-8").splitlines()) == n:
        return labels
    if work.exists():
        shutil.rmtree(work)
    base = synthesize(thai_words(limit=originals, max_len=12), work / "base", min(originals, n), seed=0)
    src = (base / "labels.txt").read_text(encoding="utf-8").splitlines()
    (work / "images").mkdir(parents=True)
    lines = []
    for i in range(n):
        rel, label = src[i % len(src)].split("\t")
        name = f"images/{i // 1000:03d}/{i:07d}.png"
        if i % 1000 == 0:
            (work / "images" / f"{i // 1000:03d}").mkdir()
        shutil.copyfile(base / rel, work / name)
        lines.append(f"{name}\t{label}\n")
    labels.write_text("".join(lines), encoding="utf-8")
    return labels


def cpu_s() -> float:
    """CPU seconds used so far by this process and its reaped children (worker pools)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--work", default=str(Path(__file__).resolve().parent / "_work" / "validate"))
    ap.add_argument("--json", help="write the results here too")
    args = ap.parse_args()
    workers = args.workers or default_workers()
    work = Path(args.work)
    t = time.perf_counter()
    labels = generate(work, args.n)
    gen_s = time.perf_counter() - t
    paths = [str(work / line.split("\t", 1)[0]) for line in labels.read_text(encoding="utf-8").splitlines()]
    for p in paths:  # warm the page cache so every pass reads from memory
        with open(p, "rb") as fh:
            fh.read()

    t, c = time.perf_counter(), cpu_s()
    for p in paths:
        with Image.open(p) as im:
            im.load()
    plain_s, plain_cpu = time.perf_counter() - t, cpu_s() - c

    load_decoder()  # as validate does: forked workers share the imported decoder
    t, c = time.perf_counter(), cpu_s()
    chunk = max(1, math.ceil(len(paths) / (workers * 16)))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        done = sum(pool.map(decode_chunk, [paths[i:i + chunk] for i in range(0, len(paths), chunk)]))
    floor_s, floor_cpu = time.perf_counter() - t, cpu_s() - c
    assert done == len(paths)

    t, c = time.perf_counter(), cpu_s()
    rep = validate_recognition_annotation_format(labels, workers=workers, progress=False)
    validate_s, validate_cpu = time.perf_counter() - t, cpu_s() - c
    assert rep.images_checked == len(paths) and rep.errors == 0, rep.counts

    n = len(paths)
    res = {
        "images": n, "workers": workers, "cpu_count": os.cpu_count(), "generate_s": round(gen_s, 1),
        "plain_images_per_s": round(n / plain_s), "floor_images_per_s": round(n / floor_s),
        "validate_images_per_s": round(n / validate_s),
        "validate_vs_plain": round(plain_s / validate_s, 2),
        "validate_time_vs_floor": round(validate_s / floor_s, 2),
        "cpu_us_per_image": {"plain": round(plain_cpu / n * 1e6), "floor": round(floor_cpu / n * 1e6),
                             "validate": round(validate_cpu / n * 1e6)},
        "load_average_1min": round(os.getloadavg()[0], 2),
        "targets": {"validate_vs_plain >=": 1.7, "validate_time_vs_floor <=": 1.5},
    }
    print(json.dumps(res, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
