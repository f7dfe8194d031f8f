"""CLI wiring for ``rectrain sagemaker``: launch, status, logs, stop, download, image,
entrypoint (the container's command), run-local."""

from __future__ import annotations

import argparse
import json
import sys

from rectrain.cli import ranges
from rectrain.cli.edge import s3_service, settings
from rectrain.cli.sagemaker_common import aws_flags as _aws_flags
from rectrain.cli.sagemaker_common import clients as _clients
from rectrain.cli.sagemaker_common import job_flags as _job_flags
from rectrain.cli.sagemaker_common import job_from_args as _job
from rectrain.errors import EXIT_OK, UserError


def register(sub) -> None:  # noqa: ANN001
    p = sub.add_parser("sagemaker", help="train on Amazon SageMaker: launch, follow, the container",
                       description="Train on Amazon SageMaker (boto3 create_training_job). "
                       "See docs/sagemaker.md.")
    s = p.add_subparsers(dest="sagemaker_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    launch = s.add_parser("launch", help="start a training job (--dry-run: print the request only)")
    _job_flags(launch)
    launch.add_argument("--dry-run", action="store_true",
                        help="print the exact CreateTrainingJob request as JSON on stdout; send nothing")
    launch.add_argument("--no-preflight", action="store_true",
                        help="do not check that the S3 input prefixes hold data before launching")
    launch.set_defaults(func=_launch)

    policy = s.add_parser("policy", help="print the IAM permission policy of a role for this job "
                          "config's jobs only (its inputs read-only, its output and checkpoints)")
    _job_flags(policy)
    policy.add_argument("--job-name", default=None,
                        help="scope to this one training job (default: every job of the config)")
    policy.set_defaults(func=_policy)

    status = s.add_parser("status", help="job status, status history, metrics, cost estimate")
    status.add_argument("job")
    status.add_argument("--json", action="store_true", help="print JSON")
    _aws_flags(status)
    status.set_defaults(func=_status)

    logs = s.add_parser("logs", help="CloudWatch logs of every host of the job")
    logs.add_argument("job")
    logs.add_argument("--follow", "-f", action="store_true", help="stream until the job ends")
    logs.add_argument("--poll", type=ranges.positive(), default=10.0,
                      help="seconds between polls with --follow")
    _aws_flags(logs)
    logs.set_defaults(func=_logs)

    stop = s.add_parser("stop", help="stop a job (the container saves a checkpoint first)")
    stop.add_argument("job")
    _aws_flags(stop)
    stop.set_defaults(func=_stop)

    dl = s.add_parser("download", help="download model.tar.gz (unpacked) and, optionally, checkpoints")
    dl.add_argument("job")
    dl.add_argument("--out", "-o", default=None, help="folder (default: ./<job>)")
    dl.add_argument("--checkpoints", action="store_true", help="also download the checkpoint prefix")
    dl.add_argument("--no-extract", action="store_true", help="keep model.tar.gz packed")
    _aws_flags(dl)
    dl.set_defaults(func=_download)

    image = s.add_parser("image", help="print (or run) the ECR build and push commands")
    image.add_argument("--repository", default="rectrain")
    image.add_argument("--tag", default=None, help="image tag (default: the rectrain version)")
    image.add_argument("--account", default=None, help="AWS account id (default: from STS)")
    image.add_argument("--region", default=None)
    image.add_argument("--context", default=None, help="docker build context (the repository root)")
    image.add_argument("--instance-type", default=None,
                       help="the instance type the image is for: picks the CUDA build "
                       "(Hopper and newer: CUDA 12.9; else 11.8)")
    image.add_argument("--cuda", default=None, choices=["cu118", "cu129"], help="the CUDA build")
    image.add_argument("--build", action="store_true", help="run docker build")
    image.add_argument("--push", action="store_true", help="log in to ECR and push")
    image.set_defaults(func=_image)

    for name in ("entrypoint", "train"):
        ep = s.add_parser(name, help="the training container's command (SageMaker contract)"
                          if name == "entrypoint" else "same as entrypoint")
        ep.add_argument("mode", nargs="?", default="train", choices=["train"],
                        help="SageMaker passes 'train'")
        ep.add_argument("--ml-root", default=None,
                        help="the /opt/ml folder (default: $RECTRAIN_ML_ROOT or /opt/ml)")
        ep.add_argument("--paddleocr-dir", default=None)
        ep.add_argument("--max-steps", type=ranges.count(1), default=None, help=argparse.SUPPRESS)
        ep.set_defaults(func=_entrypoint)

    local = s.add_parser("run-local", help="run the job's container contract on this machine (CPU)")
    _job_flags(local)
    local.add_argument("--interrupt-after", action="append", default=None, metavar="SECONDS",
                       help="simulate a spot interruption SECONDS after a start: SIGTERM, then a "
                       "restart from the checkpoints in S3. Repeat it (or give 30,30) to interrupt "
                       "several starts")
    local.add_argument("--interrupt-after-checkpoint", action="store_true",
                       help="interrupt only once (algo-1's) checkpoint agent has uploaded a complete "
                       "checkpoint (its marker) and the run's state written in that start")
    local.add_argument("--agent-at-stop", choices=["stop", "grace"], default="stop",
                       help="at an interruption the emulated checkpoint agent stops at once (stop, "
                       "default) or keeps syncing until the job's processes end (grace)")
    local.add_argument("--work-dir", default=None, help="keep the emulated /opt/ml tree here")
    local.add_argument("--device", default="cpu", choices=["cpu", "gpu"])
    local.add_argument("--max-steps", type=ranges.count(1), default=None, help="stop each run after N steps")
    local.add_argument("--tuning-trial", type=ranges.count(1), default=None, metavar="N",
                       help="run the job as trial N of a tuning job named exactly --name, as SageMaker "
                       "starts it: _tuning_objective_metric, the shared checkpoint prefix (docs/tracking.md)")
    local.add_argument("--tuned", action="append", default=[], metavar="NAME=VALUE",
                       help="with --tuning-trial: a value the tuning job chose (repeat), e.g. lr=0.001")
    local.set_defaults(func=_run_local)

    from rectrain.cli.sagemaker_tune import register_tune

    register_tune(s)


def _launch(args: argparse.Namespace) -> int:
    from rectrain.sagemaker.launch import launch_training_job  # lazy: keeps `rectrain --help` fast
    from rectrain.sagemaker.request import request_json

    job = _job(args)
    result = launch_training_job(job, dry_run=args.dry_run, preflight=not args.no_preflight)
    if args.dry_run:
        sys.stdout.write(request_json(result.request) + "\n")
        return EXIT_OK
    print(f"started {result.job_name}")
    print(f"  arn: {result.arn}")
    print(f"  follow: rectrain sagemaker logs {result.job_name} --follow")
    return EXIT_OK


def _policy(args: argparse.Namespace) -> int:
    from rectrain.sagemaker.iam import role_policy  # lazy: keeps `rectrain --help` fast

    print(json.dumps(role_policy(_job(args), args.job_name), indent=2))
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    from rectrain.sagemaker.follow import describe_job, format_status  # lazy: keeps `rectrain --help` fast

    (sm,) = _clients(args, "sagemaker")
    status = describe_job(args.job, sm)
    if args.json:
        print(json.dumps(status.as_dict(), indent=2, default=str))
    else:
        print(format_status(status))
    return EXIT_OK


def _logs(args: argparse.Namespace) -> int:
    from rectrain.sagemaker.follow import follow_job  # lazy: keeps `rectrain --help` fast

    sm, logs = _clients(args, "sagemaker", "logs")
    status = follow_job(args.job, sagemaker_client=sm, logs_client=logs, follow=args.follow,
                        poll_seconds=args.poll)
    return status.exit_code if args.follow else EXIT_OK


def _stop(args: argparse.Namespace) -> int:
    from rectrain.sagemaker.follow import stop_job  # lazy: keeps `rectrain --help` fast

    (sm,) = _clients(args, "sagemaker")
    stop_job(args.job, sm)
    print(f"stopping {args.job}: the container gets SIGTERM and saves its checkpoint")
    return EXIT_OK


def _download(args: argparse.Namespace) -> int:
    from rectrain.sagemaker.follow import download_job  # lazy: keeps `rectrain --help` fast

    (sm,) = _clients(args, "sagemaker")
    written = download_job(args.job, args.out or args.job, sagemaker_client=sm, s3=s3_service(args),
                           checkpoints=args.checkpoints, extract=not args.no_extract)
    for name, where in written.items():
        print(f"{name}: {where}")
    return EXIT_OK


def _image(args: argparse.Namespace) -> int:
    from rectrain.sagemaker.image import build_and_push, plan_image  # lazy: keeps `rectrain --help` fast

    plan = plan_image(account=args.account, region=args.region, repository=args.repository,
                      tag=args.tag, context=args.context, instance_type=args.instance_type,
                      cuda=args.cuda)
    if args.build or args.push:
        uri = build_and_push(plan, build=args.build, push=args.push)
        print(uri)
        return EXIT_OK
    print("# build and push the training image to Amazon ECR (run from the repository root):")
    for line in plan.commands():
        print(line)
    print(f"# then: rectrain sagemaker launch --image {plan.uri} ...")
    return EXIT_OK


def _entrypoint(args: argparse.Namespace) -> int:
    from rectrain.container.entrypoint import run_entrypoint  # lazy: keeps `rectrain --help` fast

    return run_entrypoint(args.ml_root, paddleocr_dir=args.paddleocr_dir, max_steps=args.max_steps,
                          settings=settings(args))


def _run_local(args: argparse.Namespace) -> int:
    from rectrain.emulator.run_local import run_local  # lazy: keeps `rectrain --help` fast

    job = _job(args)
    interrupts = []
    for text in args.interrupt_after or []:
        for part in str(text).split(","):
            try:
                interrupts.append(float(ranges.positive()(part)))
            except argparse.ArgumentTypeError as exc:
                raise UserError(f"--interrupt-after {text!r}: {str(exc).split(' Fix:')[0]}",
                                "pass --interrupt-after 30 (repeat it for several interruptions).") from None
    request = None
    if args.tuning_trial is not None or args.tuned:
        from rectrain.emulator.run_local import local_trial_request

        tuned = dict(item.partition("=")[::2] for item in args.tuned)
        if args.tuning_trial is None or args.tuning_trial < 1 or not tuned or not all(tuned.values()):
            raise UserError("--tuning-trial N (1 or more) and --tuned NAME=VALUE go together.",
                            "pass e.g. --tuning-trial 1 --tuned lr=0.001.")
        request = local_trial_request(job, args.tuning_trial, tuned)
    result = run_local(job, interrupt_after=interrupts, work_dir=args.work_dir,
                       device=args.device, max_steps=args.max_steps,
                       interrupt_after_checkpoint=args.interrupt_after_checkpoint, request=request,
                       agent_at_stop=args.agent_at_stop)
    print(result.summary())
    return result.exit_code
