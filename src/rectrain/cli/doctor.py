"""CLI wiring for ``rectrain doctor``."""

from __future__ import annotations

import json

from rectrain.doctor import FAIL, OK, run_doctor
from rectrain.errors import EXIT_FINDINGS, EXIT_OK


def register(sub) -> None:  # noqa: ANN001
    p = sub.add_parser("doctor", help="check GPU, Paddle build, engine, fonts and S3 access")
    p.add_argument("--device", choices=["gpu", "cpu"], default="gpu",
                   help="what you plan to train on (default gpu: a missing GPU is a failure)")
    p.add_argument("--endpoint-url", help="S3 endpoint (default: standard AWS configuration)")
    p.add_argument("--paddleocr-dir", help="an official PaddleOCR checkout to use as the engine")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_doctor)


def _doctor(args) -> int:  # noqa: ANN001
    report = run_doctor(args.device, args.endpoint_url, args.paddleocr_dir)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        marks = {OK: "ok  ", "warn": "warn", FAIL: "FAIL"}
        for c in report.checks:
            line = f"[{marks[c.status]}] {c.name:<11} {c.detail}"
            if c.status != OK and c.fix:
                line += f"\n       {'':<11} Fix: {c.fix}"
            print(line)
        print("ready to train" + (" on the CPU" if args.device == "cpu" else "") if report.ok
              else "NOT ready to train: fix the FAIL lines above")
    return EXIT_OK if report.ok else EXIT_FINDINGS
