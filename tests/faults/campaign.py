"""The fault campaign outside pytest: many seeds, one summary table (docs/checkpoints.md).

    PYTHONPATH=$PWD/src venv/bin/python -m tests.faults.campaign --seeds 200
    ... --light --first 1 --seeds 20   # the seeds CI runs (tests/faults/test_campaign.py)
    ... --only 17 --keep               # one seed again, its folders kept for a post-mortem

Starts its own SeaweedFS on loopback and a fault proxy in front of it; each seed is one
:class:`~tests.faults.trial.Trial`. ``--out FILE`` writes one JSON line per seed. Exits 1
when any invariant was violated. About 15-40 s per seed on 2 idle cores.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional

from tests.faults import mounts
from tests.faults.blackbox import tiny_configs
from tests.faults.proxy import FaultProxy
from tests.faults.trial import INVARIANTS, Trial, TrialEnv, TrialResult


def start_s3(data_dir: Path) -> Any:
    """The embedded SeaweedFS the tests use (tests/conftest.py starts it the same way)."""
    from rectrain.storage.server import SeaweedServer  # the server, never the oracle

    return SeaweedServer(data_dir, read_only_identity=False).start()


def summary(results: List[TrialResult]) -> str:
    done = [r for r in results if r.completed and not r.via_push]
    pushed = [r for r in results if r.via_push]
    lines = [f"{len(results)} seeds: {len(done)} completed with exit 0, {len(pushed)} only after "
             f"`ckpt push` (exit 5), {sum(not r.completed for r in results)} not completed; "
             f"{sum(len(r.attempts) for r in results)} attempts, "
             f"{sum(r.seconds for r in results) / max(1, len(results)):.0f} s per seed", "",
             f"{'invariant':<22} {'seeds':>5}  first seeds", "-" * 74]
    for name in INVARIANTS:
        seeds = sorted({r.seed for r in results for v in r.violations if v.invariant == name})
        lines.append(f"{name:<22} {len(seeds):>5}  {' '.join(map(str, seeds[:12]))}"
                     f"{' ...' if len(seeds) > 12 else ''}")
    faults: Dict[str, int] = {}
    for r in results:
        for a in r.attempts:
            for key, n in a.net.items():
                faults[key] = faults.get(key, 0) + n
            for kind in a.struck:
                faults[kind] = faults.get(kind, 0) + 1
    lines += ["", "faults injected: " + ", ".join(f"{k} {v}" for k, v in sorted(faults.items()))]
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.faults.campaign", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=200, help="how many seeds (default 200)")
    ap.add_argument("--first", type=int, default=1, help="the first seed (default 1)")
    ap.add_argument("--only", type=int, nargs="*", help="exactly these seeds")
    ap.add_argument("--out", type=Path, help="one JSON line per seed")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder (printed)")
    ap.add_argument("--no-enospc", action="store_true", help="no tmpfs (when mounting is not allowed)")
    ap.add_argument("--light", action="store_true", help="CI's plans (2-3 epochs, at most one strike)")
    args = ap.parse_args(argv)
    # SIGTERM ends the campaign through its `finally`: runs killed, mounts and server undone
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    seeds = args.only or list(range(args.first, args.first + args.seeds))
    work = Path(tempfile.mkdtemp(prefix="rectrain-faults-"))
    server = proxy = None
    results: List[TrialResult] = []
    try:
        config_for = tiny_configs(work)
        can_mount = not args.no_enospc
        if can_mount:
            try:
                with mounts.tmpfs(work / "probe", 1024 * 1024):
                    pass
            except mounts.MountUnavailable as exc:
                print(f"no ENOSPC faults: {exc}", file=sys.stderr)
                can_mount = False
        server = start_s3(work / "seaweed")
        client = server.client()
        bucket = f"faults-{uuid.uuid4().hex[:10]}"
        client.create_bucket(Bucket=bucket)
        proxy = FaultProxy(server.endpoint_url, seed=seeds[0]).start()
        env = TrialEnv(dict(server.env), client, proxy, bucket, work / "trials", config_for, can_mount)
        started = time.monotonic()
        for seed in seeds:
            result = Trial(env, seed, light=args.light).run()
            results.append(result)
            if args.out:
                with open(args.out, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(result.to_json()) + "\n")
            bad = sorted({v.invariant for v in result.violations})
            print(f"seed {seed}: {'ok' if not bad else 'VIOLATED ' + ', '.join(bad)} "
                  f"({len(result.attempts)} attempts, {result.seconds:.0f} s; "
                  f"{time.monotonic() - started:.0f} s so far)", flush=True)
            if bad:
                print(result.report(), flush=True)
    finally:
        if proxy is not None:
            proxy.stop()
        if server is not None:
            server.stop()
        left = mounts.mounts_under(work)
        for point in reversed(left):
            mounts.umount(Path(point))
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print(summary(results))
    return 1 if any(r.violations for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
