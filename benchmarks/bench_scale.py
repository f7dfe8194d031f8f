"""Scale benchmark (not a test): peak memory and files/s of each dataset command at several sizes.

Makes N tiny word-crop PNGs (default 1,000,000; ``--scales 5000,100000`` runs several sizes in
one go) with a label file, then runs each command as its own process and reads its peak
resident memory from the kernel (``wait4``'s ``ru_maxrss``: the largest of the process and
the worker processes it waited for; a bare launcher forks it, so this benchmark's own size
does not count):

- ``rectrain data validate`` (labels and every image), ``data pack``, ``data unpack``;
- the anchor for unpack: a plain ``tar -x`` of the same shards, one after the other, into an
  empty folder (the ratio is rectrain's files/s over tar's, measured in the same run);
- ``rectrain s3 push`` and ``s3 pull`` of the folder, per file, to an embedded SeaweedFS.

Prints, per scale, seconds, files/s and peak MB of each, then the memory growth from the
smallest to the largest scale (flat memory: the ratio stays near 1) and unpack against tar.

    venv/bin/python benchmarks/bench_scale.py --scales 5000,100000
    venv/bin/python benchmarks/bench_scale.py                      # 1,000,000 files (~6 GB of disk)
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
sys.path.insert(0, str(SRC))

from rectrain.storage.server import SeaweedServer  # noqa: E402


def tiny_pngs(variants: int = 16) -> List[bytes]:
    """A few different small grey word crops (~100-200 bytes each)."""
    from PIL import Image

    out = []
    for v in range(variants):
        img = Image.new("L", (24 + v, 8), 255)
        for x in range(2 + v % 5, img.width - 2, 3):
            img.putpixel((x, 4), 0)
        buf = io.BytesIO()
        img.save(buf, "PNG")
        out.append(buf.getvalue())
    return out


def make_dataset(root: Path, count: int) -> None:
    """``count`` crops in folders of 1,000, and ``labels.txt`` (image_path<TAB>label)."""
    pngs = tiny_pngs()
    root.mkdir(parents=True)
    with open(root / "labels.txt", "w", encoding="utf-8") as labels:
        for i in range(count):
            folder = f"images/{i // 1000:04d}"
            if i % 1000 == 0:
                (root / folder).mkdir(parents=True)
            rel = f"{folder}/crop_{i:07d}.png"
            (root / rel).write_bytes(pngs[i % len(pngs)])
            labels.write(f"{rel}\tสวัสดี{i % 97}\n")


# A child's peak memory (ru_maxrss) starts from the memory of the process that forked it: forked
# from this benchmark (or pytest) it would read at least their size. So each command is started
# by a small launcher (a bare interpreter, ~10 MB) that forks it and reports what wait4 says.
LAUNCHER = """import os, sys
pid = os.fork()
if pid == 0:
    os.execvpe(sys.argv[1], sys.argv[1:], os.environ)
_, status, usage = os.wait4(pid, 0)
sys.stderr.write("\\nPEAK_KB=%d\\n" % usage.ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def peak_run(argv: List[str], env: Dict[str, str]) -> Tuple[float, float, str]:
    """(seconds, peak resident MB, stderr) of one command, its peak read from the kernel."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-S", "-c", LAUNCHER] + argv, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    head, _, tail = proc.stderr.rpartition("PEAK_KB=")
    if proc.returncode != 0 or not tail.strip().isdigit():
        raise RuntimeError(f"{' '.join(argv[:6])} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return seconds, int(tail) / 1024, head


def run(argv: List[str], env: Dict[str, str]) -> Tuple[float, float]:
    seconds, peak, _ = peak_run(argv, env)
    return seconds, peak


def measure_scale(work: Path, count: int, server: Optional[SeaweedServer],
                  env: Dict[str, str]) -> Dict[str, tuple]:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    data = work / "data"
    print(f"\n{count} files: making them ...", flush=True)
    make_dataset(data, count)
    files = count + 1  # the crops and labels.txt
    rk = [sys.executable, "-m", "rectrain"]
    steps: List[Tuple[str, List[str]]] = [
        ("data validate", rk + ["data", "validate", str(data / "labels.txt")]),
        ("data pack", rk + ["data", "pack", str(data), "-o", str(work / "packed"), "--no-progress"]),
        ("data unpack", rk + ["data", "unpack", str(work / "packed"), "-o", str(work / "unpacked"),
                              "--no-progress"]),
    ]
    if server is not None:
        uri = f"s3://bench/scale-{count}"
        steps += [
            ("s3 push", rk + ["s3", "push", str(data), uri, "--no-progress"]),
            ("s3 pull", rk + ["s3", "pull", uri, str(work / "pulled"), "--no-progress"]),
        ]
    out: Dict[str, tuple] = {}
    for name, argv in steps:
        seconds, peak = run(argv, env)
        out[name] = (seconds, peak)
        print(f"  {name:<14} {seconds:8.2f} s {files / seconds:9.0f} files/s   peak {peak:7.1f} MB",
              flush=True)
        if name == "data unpack":
            target = work / "tar-x"
            target.mkdir()
            shards = sorted((work / "packed").glob("shard-*.tar"))
            started = time.perf_counter()
            for shard in shards:
                subprocess.run(["tar", "-xf", str(shard), "-C", str(target)], check=True)
            tar_s = time.perf_counter() - started
            out["tar -x"] = (tar_s, 0.0)
            print(f"  {'tar -x':<14} {tar_s:8.2f} s {count / tar_s:9.0f} files/s   "
                  f"({len(shards)} shard(s), one after the other)", flush=True)
    shutil.rmtree(work, ignore_errors=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", default="1000000",
                        help="comma-separated file counts (default 1000000)")
    parser.add_argument("--work-dir", default=str(HERE / "_work_scale"), help="scratch folder (deleted)")
    parser.add_argument("--no-s3", action="store_true", help="skip s3 push/pull")
    args = parser.parse_args()
    scales = [int(s) for s in args.scales.split(",") if s.strip()]
    work = Path(args.work_dir)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC)] + [p for p in [env.get("PYTHONPATH")] if p])
    server = None
    if not args.no_s3:
        server = SeaweedServer(work.parent / (work.name + "-seaweed")).start()
        env.update(server.env)
        env.pop("AWS_PROFILE", None)
        server.client().create_bucket(Bucket="bench")
    results: Dict[int, Dict[str, tuple]] = {}
    try:
        for count in scales:
            results[count] = measure_scale(work, count, server, env)
    finally:
        if server is not None:
            server.stop()
            shutil.rmtree(server.data_dir, ignore_errors=True)
    print(f"\nload average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPU(s)")
    header = f"{'command':<14}" + "".join(f"{f'{c} files/s':>16}{'peak MB':>9}" for c in scales)
    print(header)
    for name in results[scales[0]]:
        row = f"{name:<14}"
        for c in scales:
            seconds, peak = results[c][name]
            row += f"{c / seconds:16.0f}{peak:9.1f}"
        print(row)
    if len(scales) > 1:
        lo, hi = scales[0], scales[-1]
        print(f"\npeak memory at {hi} files / at {lo} files (flat memory: target <= 1.2):")
        for name in results[lo]:
            if name != "tar -x":
                print(f"  {name:<14} {results[hi][name][1] / results[lo][name][1]:.2f}x")
    for c in scales:
        ratio = results[c]["tar -x"][0] / results[c]["data unpack"][0]
        verdict = "MET" if ratio >= 1 else "NOT MET"
        print(f"unpack vs tar -x at {c} files: {ratio:.2f}x ({verdict}: target >= 1.0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
