"""What the ``rectrain sagemaker`` commands share: the job flags (the job config's fields), the
AWS flags, the job config they make, and the service clients."""

from __future__ import annotations

import argparse
from typing import Any, Dict

from rectrain.cli import ranges


def aws_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--region", default=None)
    p.add_argument("--profile", default=None)


def job_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--job-config", default=None, help="job.yaml with every option (flags win)")
    p.add_argument("--name", default=None, help="job name prefix (a timestamp is appended)")
    p.add_argument("--role", default=None, help="IAM role ARN for the job")
    p.add_argument("--image", default=None, help="ECR image URI")
    p.add_argument("--image-cuda", default=None, metavar="11.8|12.9",
                   help="the image's CUDA build, when its tag does not say (rectrain:dev, an @sha256: "
                   "digest); required for Hopper and Blackwell instance types (p5, p6-b200, g7e ...)")
    p.add_argument("--keep-alive", default=None, metavar="DURATION",
                   help="keep the instances as a warm pool for DURATION after the job (e.g. 30m; up to "
                        "6h, your account's quota permitting; on-demand only): a later job with the same "
                        "instance, volume and network settings starts on them (docs/sagemaker.md)")
    p.add_argument("--instance-type", default=None)
    p.add_argument("--instance-count", type=ranges.count(1), default=None)
    p.add_argument("--volume-gb", type=ranges.count(1), default=None)
    p.add_argument("--train", default=None, help="s3:// prefix of the training set")
    p.add_argument("--val", default=None, help="s3:// prefix of the validation set")
    p.add_argument("--checkpoint-s3", default=None, help="s3:// prefix for checkpoints (spot resume)")
    p.add_argument("--output", default=None, help="s3:// prefix for model.tar.gz")
    p.add_argument("--spot", dest="spot", action="store_true", default=None, help="managed spot training")
    p.add_argument("--on-demand", dest="spot", action="store_false", help="no spot (overrides spot: true)")
    p.add_argument("--max-run", default=None, help="max training time: 12h, 90m, seconds")
    p.add_argument("--max-wait", default=None, help="spot: max total time incl. waiting (> --max-run)")
    p.add_argument("--preset", default=None, help="training preset (rectrain config presets)")
    p.add_argument("--base-config", default=None, help="or a base config file in the config channel")
    p.add_argument("--dict", default=None, help="dictionary file name in the train channel")
    p.add_argument("--epochs", type=ranges.count(1), default=None)
    p.add_argument("--lr", type=ranges.positive(), default=None)
    p.add_argument("--batch-size", type=ranges.count(1), default=None)
    p.add_argument("--pretrained", default=None, help="s3:// prefix of .pdparams weights")
    p.add_argument("--region", default=None)
    p.add_argument("--profile", default=None)
    p.add_argument("--endpoint-url", default=None, help="S3 endpoint (a local S3 server)")


def job_from_args(args: argparse.Namespace) -> Any:
    # lazy: keeps `rectrain --help` fast
    from rectrain.sagemaker.jobconfig import JobConfig, load_job_config, merge_overrides

    job = load_job_config(args.job_config) if args.job_config else JobConfig()
    overrides: Dict[str, Any] = {
        "name": args.name, "role": args.role, "image": args.image,
        "instance_type": args.instance_type, "instance_count": args.instance_count,
        "volume_gb": args.volume_gb, "train": args.train, "val": args.val,
        "image_cuda": args.image_cuda, "keep_alive": args.keep_alive, "checkpoint_s3": args.checkpoint_s3,
        "output": args.output, "spot": args.spot,
        "max_run": args.max_run, "max_wait": args.max_wait, "region": args.region,
        "profile": args.profile, "endpoint_url": args.endpoint_url,
        "training.preset": args.preset, "training.base_config": args.base_config,
        "training.dict": args.dict, "training.epochs": args.epochs, "training.lr": args.lr,
        "training.batch_size": args.batch_size, "training.pretrained": args.pretrained,
    }
    return merge_overrides(job, overrides)


def clients(args: argparse.Namespace, *services: str) -> Any:
    from rectrain.sagemaker import aws  # lazy: keeps `rectrain --help` fast

    return [aws.client(s, args.region, args.profile) for s in services]
