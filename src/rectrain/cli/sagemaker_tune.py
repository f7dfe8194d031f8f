"""CLI wiring for ``rectrain sagemaker tune`` (a SageMaker hyperparameter tuning job from the
same job config as ``launch``), ``tune status NAME`` and ``tune best NAME``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rectrain.cli import ranges
from rectrain.cli.sagemaker_common import aws_flags, clients, job_flags, job_from_args
from rectrain.errors import EXIT_OK


def register_tune(s: Any) -> None:
    tune = s.add_parser("tune", help="hyperparameter tuning job (--dry-run: print the request); "
                                     "tune status NAME, tune best NAME",
                        description="Start a SageMaker hyperparameter tuning job over the job config's "
                                    "training job (docs/tracking.md), or show one.")
    job_flags(tune)
    tune.add_argument("--objective", default=None,
                      help="metric to optimise (a metric definition name; default eval:best_acc, the "
                           "accuracy of the best checkpoint: the one each trial ships)")
    tune.add_argument("--objective-type", choices=["maximize", "minimize"], default=None,
                      help="default: minimize for losses and costs, else maximize")
    tune.add_argument("--param", action="append", default=[], metavar="NAME=KIND:ARGS",
                      help="a range to search: lr=log:1e-4:1e-2, epochs=int:20:60, "
                           "batch_size=choice:64,128 (repeat)")
    tune.add_argument("--max-jobs", type=ranges.count(1), default=10,
                      help="training jobs in all (default 10)")
    tune.add_argument("--max-parallel", type=ranges.count(1), default=2, help="at once (default 2)")
    tune.add_argument("--early-stopping", choices=["auto", "off"], default="off",
                      help="let SageMaker stop trials that lag (Auto)")
    tune.add_argument("--strategy", default="Bayesian", help="Bayesian (default), Random, Hyperband, Grid")
    tune.add_argument("--dry-run", action="store_true",
                      help="print the CreateHyperParameterTuningJob request as JSON; send nothing")
    tune.set_defaults(func=_tune)
    ts = tune.add_subparsers(dest="tune_command", metavar="[status|best]")
    status = ts.add_parser("status", help="the trials sorted by objective, with their hyperparameters")
    status.add_argument("tuning_job")
    status.add_argument("--json", action="store_true")
    aws_flags(status)
    status.set_defaults(func=_tune_status)
    best = ts.add_parser("best", help="the best trial: objective, hyperparameters, model, config")
    best.add_argument("tuning_job")
    best.add_argument("--json", action="store_true")
    aws_flags(best)
    best.set_defaults(func=_tune_best)


def _tune(args: argparse.Namespace) -> int:
    from rectrain.sagemaker.request import request_json
    from rectrain.sagemaker.tune import DEFAULT_OBJECTIVE, build_tuning_request, parse_param

    job = job_from_args(args)
    request = build_tuning_request(job, [parse_param(p) for p in args.param],
                                   objective=args.objective or DEFAULT_OBJECTIVE,
                                   objective_kind=args.objective_type, max_jobs=args.max_jobs,
                                   max_parallel=args.max_parallel, early_stopping=args.early_stopping,
                                   strategy=args.strategy)
    if args.dry_run:
        sys.stdout.write(request_json(request) + "\n")
        return EXIT_OK
    from rectrain.sagemaker.aws import aws_error

    (sm,) = clients(args, "sagemaker")
    name = request["HyperParameterTuningJobName"]
    try:
        response = sm.create_hyper_parameter_tuning_job(**request)
    except Exception as exc:  # noqa: BLE001 - translated at the boundary
        raise aws_error(exc, "sagemaker:CreateHyperParameterTuningJob", name) from exc
    print(f"started tuning job {name}")
    print(f"  arn: {response.get('HyperParameterTuningJobArn')}")
    print(f"  follow: rectrain sagemaker tune status {name}")
    return EXIT_OK


def _tune_status(args: argparse.Namespace) -> int:
    from rectrain.sagemaker.tune import format_tuning_status, tuning_status

    (sm,) = clients(args, "sagemaker")
    status = tuning_status(args.tuning_job, sm)
    if args.json:
        status = dict(status, trials=[t.__dict__ for t in status["trials"]])
        print(json.dumps(status, indent=2, default=str))
    else:
        print(format_tuning_status(status))
    return EXIT_OK


def _tune_best(args: argparse.Namespace) -> int:
    import yaml

    from rectrain.sagemaker.tune import best_training_job

    (sm,) = clients(args, "sagemaker")
    best = best_training_job(args.tuning_job, sm)
    if args.json:
        print(json.dumps(best, indent=2, default=str))
        return EXIT_OK
    print(f"best training job: {best['training_job']}  ({best['objective']} = {best['value']})")
    print("tuned: " + ", ".join(f"{k}={v}" for k, v in sorted(best["tuned"].items())))
    if best["model"]:
        print(f"model: {best['model']}  (its best checkpoint, exported)")
    if best["checkpoints"]:
        print(f"checkpoints: {best['checkpoints']}")
    print("# the job config's training section to train it again:")
    sys.stdout.write(yaml.safe_dump({"training": best["training_config"]}, allow_unicode=True,
                                    sort_keys=True))
    return EXIT_OK
