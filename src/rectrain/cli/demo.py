"""CLI wiring for ``rectrain demo``."""

from __future__ import annotations

from rectrain.cli import ranges
from rectrain.cli.edge import settings


def register(sub) -> None:  # noqa: ANN001
    p = sub.add_parser("demo", help="run the whole loop on the CPU against an embedded S3 (~10 min)")
    p.add_argument("--workdir", default="rectrain-demo",
                   help="where everything goes (default ./rectrain-demo)")
    p.add_argument("--minutes", type=ranges.positive(), default=None,
                   help="optional cap on the whole demo in minutes; training is a fixed number "
                        "of steps, and the demo says when the cap cut it short")
    p.add_argument("--steps", type=ranges.count(1), default=None,
                   help="training steps (default 900, rounded up to whole epochs)")
    p.add_argument("--seed", type=ranges.SEED, default=0)
    p.add_argument("--endpoint-url", help="use this S3 endpoint instead of the embedded one")
    p.add_argument("--resume", action="store_true",
                   help="continue the previous demo training instead of starting clean")
    p.set_defaults(func=_demo)


def _demo(args) -> int:  # noqa: ANN001
    from rectrain.demo import DemoPlan, run_demo  # lazy: keeps `rectrain --help` fast

    display = "json" if args.log_format == "json" else "rich"
    plan = DemoPlan(train_steps=args.steps) if args.steps else None
    run_demo(args.workdir, args.minutes, seed=args.seed, endpoint_url=args.endpoint_url,
             resume=args.resume, display=display, plan=plan, settings=settings(args))
    return 0
