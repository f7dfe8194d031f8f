"""CLI wiring for ``rectrain bench`` (library: rectrain.loaderbench.bench)."""

from __future__ import annotations

import json
from typing import Any

from rectrain.cli import ranges
from rectrain.errors import EXIT_OK


def register(sub: Any) -> None:
    parser = sub.add_parser("bench", help="measure the data pipeline (how many samples/s the CPUs feed)",
                            description="Benchmarks of the training side that a CPU can measure.")
    bsub = parser.add_subparsers(dest="bench_command", metavar="SUBCOMMAND")
    p = bsub.add_parser(
        "loader", help="samples/s of the engine's data loader for a config, per worker and per stage",
        description="Run the engine's own training data pipeline for CONFIG (its dataset class, "
                    "transforms and collation; no model) and report samples/s in total and per "
                    "worker, where a sample's time goes (read, decode, each transform, collation), "
                    "and what the common SageMaker GPU instances could feed at that rate.")
    p.add_argument("--config", required=True, help="a training config (rectrain config build)")
    p.add_argument("--workers", type=ranges.count(0, also=("auto", "config")), default="auto",
                   help="data-loader workers: auto (as train --workers auto; default), a number, "
                        "or 'config' for the config's num_workers")
    p.add_argument("--seconds", type=ranges.positive(), default=10.0,
                   help="how long to run the loader (default 10)")
    p.add_argument("--paddleocr-dir", help="an official PaddleOCR checkout to use as the engine")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    p.set_defaults(func=cmd_loader)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def cmd_loader(args: Any) -> int:
    from rectrain.loaderbench.bench import bench_loader, format_report

    workers = None if args.workers == "config" else args.workers
    result = bench_loader(args.config, workers, seconds=args.seconds, paddleocr_dir=args.paddleocr_dir)
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        print(format_report(result))
    return EXIT_OK


def max_height_arg(text: str, config: Any) -> int:
    """``data pack --max-height H|auto`` (auto: the config's largest input height, at least 48)."""
    from rectrain.data.shrink import default_max_height
    from rectrain.engine.config import load_engine_config
    from rectrain.errors import ConfigError
    from rectrain.training.workers import max_input_height

    if str(text).strip().lower() != "auto":
        try:
            height = int(text)
        except ValueError:
            raise ConfigError(f"--max-height {text!r} is not a number of pixels.",
                              "pass e.g. --max-height 48, or --max-height auto --config C.") from None
        if height < 1:
            raise ConfigError(f"--max-height {height}: a height must be at least 1 pixel.",
                              "pass e.g. --max-height 48, or --max-height auto --config C.")
        model = max_input_height(load_engine_config(config).data) if config else 0
        if height < model:
            raise ConfigError(f"--max-height {height} is below the model's input height ({model} px, "
                              f"from {config}): images would be shrunk past what the model reads.",
                              f"pass --max-height {model} or more, or --max-height auto.")
        return height
    if not config:
        raise ConfigError("--max-height auto needs the training config.",
                          "add --config CONFIG.yml, or give the height: --max-height 48.")
    return default_max_height(max_input_height(load_engine_config(config).data))
