"""CLI wiring for `rectrain ckpt list|pull|push|prune` (extend-dict, download: ckpt_weights.py)."""

from __future__ import annotations

import json
import time

from rectrain.cli import ranges
from rectrain.cli.edge import s3_service, s3_uri
from rectrain.fsutil import format_size


def register(sub) -> None:  # noqa: ANN001
    p = sub.add_parser("ckpt", help="list, pull, push and prune training checkpoints (local or S3)")
    ck = p.add_subparsers(dest="ckpt_command", metavar="ACTION")

    ls = ck.add_parser("list", help="complete checkpoints: name, epoch, step, metric, size, time")
    ls.add_argument("source", help="run folder, checkpoint folder or s3://prefix")
    ls.add_argument("--endpoint-url")
    ls.set_defaults(func=handle_list)

    pull = ck.add_parser("pull", help="download a complete checkpoint (verified)")
    pull.add_argument("source", help="s3://prefix (the --checkpoint-s3 of the run)")
    pull.add_argument("dest", help="local folder")
    pull.add_argument("--name", help="checkpoint name (default: the newest epoch-end one)")
    pull.add_argument("--endpoint-url")
    pull.set_defaults(func=handle_pull)

    push = ck.add_parser("push", help="upload the complete checkpoints of a run (marker last)")
    push.add_argument("source", help="run folder or checkpoint folder")
    push.add_argument("dest", help="s3://prefix")
    push.add_argument("--endpoint-url")
    push.add_argument("--run-id", default="",
                      help="the run these checkpoints belong to, when the folder has no run-state.json")
    push.set_defaults(func=handle_push)

    prune = ck.add_parser("prune", help="delete old iter_epoch_N checkpoints (never best/latest)")
    prune.add_argument("source", help="run folder, checkpoint folder or s3://prefix")
    prune.add_argument("--keep-last", type=ranges.count(0), required=True, metavar="N")
    prune.add_argument("--dry-run", action="store_true")
    prune.add_argument("--endpoint-url")
    prune.set_defaults(func=handle_prune)
    from rectrain.cli import ckpt_weights

    ckpt_weights.register(ck)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def handle_list(args) -> int:  # noqa: ANN001
    from rectrain.checkpoints.api import list_checkpoints  # lazy: keeps `rectrain --help` fast

    infos = list_checkpoints(args.source, s3=s3_service(args))
    if getattr(args, "log_format", "human") == "json":
        for info in infos:
            print(json.dumps(info.as_dict(), ensure_ascii=False))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"checkpoints in {args.source}")
    for col in ("name", "epoch", "step", "metric", "size", "time", "run"):
        table.add_column(col, justify="right" if col in ("epoch", "step", "size") else "left")
    for info in infos:
        short = {"acc": "acc", "norm_edit_dis": "ned"}
        metric = " ".join(f"{short[k]}={v:.4f}" for k, v in info.metric.items()
                          if k in short and isinstance(v, (int, float)) and not isinstance(v, bool))
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(info.time)) if info.time else "-"
        table.add_row(info.name, str(info.epoch), str(info.global_step), metric, format_size(info.size),
                      stamp, info.run_id or "-")
    Console().print(table)
    if not infos:
        print("no complete checkpoint")
    return 0


def handle_pull(args) -> int:  # noqa: ANN001
    # lazy: keeps `rectrain --help` fast
    from rectrain.checkpoints.api import download_recognition_checkpoints_from_s3

    prefix = download_recognition_checkpoints_from_s3(s3_uri(args.source), args.dest, name=args.name,
                                                      s3=s3_service(args))
    print(prefix)
    return 0


def handle_push(args) -> int:  # noqa: ANN001
    # lazy: keeps `rectrain --help` fast
    from rectrain.checkpoints.api import sync_recognition_checkpoints_to_s3

    keys = sync_recognition_checkpoints_to_s3(args.source, s3_uri(args.dest), s3=s3_service(args),
                                              run_id=args.run_id)
    print(f"uploaded {len(keys)} object(s)")
    return 0


def handle_prune(args) -> int:  # noqa: ANN001
    from rectrain.checkpoints.api import prune_checkpoints  # lazy: keeps `rectrain --help` fast

    removed = prune_checkpoints(args.source, args.keep_last, s3=s3_service(args), dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    print(f"{verb} {len(removed)}: {', '.join(removed) if removed else '-'}")
    return 0
