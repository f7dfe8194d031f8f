"""CLI wiring for ``rectrain runs``: compare runs (folders, s3:// prefixes, SageMaker jobs)."""

from __future__ import annotations

import json
from typing import Any

from rectrain.cli.edge import s3_service
from rectrain.errors import EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser("runs", help="compare training runs: config differences, best metrics, "
                                    "time, cost, overlaid curves")
    s = p.add_subparsers(dest="runs_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    c = s.add_parser("compare", help="a table of two or more runs and one figure of their curves",
                     description="Compare runs: each RUN is a run folder, an s3:// checkpoint prefix "
                                 "or a SageMaker training job name. Prints a Markdown table; --out "
                                 "also writes compare.md, compare.json and compare.png.")
    c.add_argument("runs", nargs="+", metavar="RUN")
    c.add_argument("--out", "-o", metavar="DIR", help="write compare.md, compare.json, compare.png here")
    c.add_argument("--plot", metavar="PNG", help="write the overlay figure here")
    c.add_argument("--json", action="store_true", help="print JSON instead of the table")
    c.add_argument("--endpoint-url", help="S3 endpoint (SeaweedFS, MinIO)")
    c.add_argument("--region", default=None, help="AWS region (SageMaker job names)")
    c.add_argument("--profile", default=None)
    c.set_defaults(func=_compare)


def _compare(args: Any) -> int:
    from rectrain.runs.compare import (
        claim_compare_outputs,
        compare_runs,
        format_comparison,
        write_comparison,
        write_figure,
    )

    claim_compare_outputs(args.runs, out_dir=args.out, plot=args.plot)
    comparison = compare_runs(args.runs, s3=s3_service(args), region=args.region,
                              profile=args.profile)
    written = write_comparison(comparison, args.out) if args.out else {}
    if args.plot:
        written["figure"] = write_figure(comparison, args.plot)
    if args.json:
        data = {k: v for k, v in comparison.items() if not k.startswith("_")}
        print(json.dumps(dict(data, files={k: str(v) for k, v in written.items()}), indent=2,
                         ensure_ascii=False, default=str))
    else:
        print(format_comparison(comparison), end="")
        for name, path in written.items():
            print(f"{name}: {path}")
    return EXIT_OK
