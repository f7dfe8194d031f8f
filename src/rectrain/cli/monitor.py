"""CLI wiring for `rectrain monitor`."""

from __future__ import annotations

import json

from rectrain.cli import ranges
from rectrain.cli.edge import s3_service


def register(sub) -> None:  # noqa: ANN001
    p = sub.add_parser("monitor", help="follow a training run (folder or s3://) and draw its curves",
                       description="Show where a run is (step, epoch, loss, accuracy, best) from its "
                                   "metrics.jsonl, locally or in S3; --follow keeps the live panel "
                                   "until the run ends; --plot writes loss/accuracy/lr curves.")
    p.add_argument("source", help="the run folder, its metrics.jsonl, or the --checkpoint-s3 prefix")
    p.add_argument("--follow", "-f", action="store_true", help="keep showing new records")
    p.add_argument("--plot", metavar="OUT.png", help="write the curves to OUT.png")
    p.add_argument("--endpoint-url", help="S3 endpoint (SeaweedFS, MinIO); default: AWS config")
    p.add_argument("--interval", type=ranges.positive(), default=2.0, help="seconds between polls (--follow)")
    p.set_defaults(func=handle)


def handle(args) -> int:  # noqa: ANN001
    # lazy: keeps `rectrain --help` fast
    from rectrain.monitor.follow import monitor_recognition_training_progress, register_job_source
    from rectrain.sagemaker.follow import job_summary

    register_job_source(job_summary)  # `rectrain monitor JOBNAME` follows a SageMaker job
    as_json = getattr(args, "log_format", "human") == "json"
    summary = monitor_recognition_training_progress(
        args.source, follow=args.follow, plot=args.plot, s3=s3_service(args),
        display="json" if as_json else "rich", poll_s=args.interval)
    if as_json:
        print(json.dumps(summary, ensure_ascii=False))
        return 0
    from rich.console import Console  # lazy: keeps `rectrain --help` fast
    from rich.table import Table

    table = Table(title=f"run {summary['source']}", show_header=False)
    for key, value in summary.items():
        if key != "source" and value is not None:
            table.add_row(key, f"{value:.6g}" if isinstance(value, float) else str(value))
    Console().print(table)
    return 0
