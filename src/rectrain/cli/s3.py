"""CLI wiring for ``rectrain s3 serve|push|pull|check|ls`` (library: rectrain.storage)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from typing import Any

from rectrain.cli import ranges
from rectrain.cli.edge import s3_service, s3_uri, settings
from rectrain.errors import EXIT_FINDINGS, EXIT_OK, StorageError

DEFAULT_SERVE_DIR = ".seaweedfs"
DEFAULT_SERVE_PORT = 8333


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "s3",
        help="move datasets and checkpoints to and from S3; run a local S3",
        description="Fast, resumable, verified S3 transfers, the permission preflight "
        "and the embedded S3 server (SeaweedFS on 127.0.0.1).",
    )
    s3sub = parser.add_subparsers(dest="s3_command", metavar="SUBCOMMAND")
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])

    serve = s3sub.add_parser(
        "serve",
        help="run the embedded S3 server (SeaweedFS) on 127.0.0.1",
        description="Run SeaweedFS on 127.0.0.1 until Ctrl-C. Prints the endpoint and "
        "the environment variables to export.",
    )
    serve.add_argument(
        "--data-dir",
        default=None,
        help=f"where the server keeps its data (default: ./{DEFAULT_SERVE_DIR}, or $RECTRAIN_S3_DIR)",
    )
    serve.add_argument(
        "--port",
        type=ranges.PORT,
        default=None,
        help=f"S3 port (default: the one used last time for this data dir, else {DEFAULT_SERVE_PORT} "
        "when free, else a free one)",
    )
    serve.add_argument(
        "--read-only-identity",
        action="store_true",
        help="also create a second identity with List/Get rights only",
    )
    serve.add_argument("--json", action="store_true", help="print the endpoint and credentials as JSON")
    serve.set_defaults(func=cmd_serve)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--endpoint-url",
            default=None,
            help="S3 endpoint (default: AWS_ENDPOINT_URL / your profile / AWS S3)",
        )
        p.add_argument("--profile", default=None, help="AWS profile")
        p.add_argument("--region", default=None, help="AWS region (default: from the AWS configuration)")
        p.add_argument("--json", action="store_true", help="print the result as JSON")

    def transfer(p: argparse.ArgumentParser) -> None:
        common(p)
        # default: the library's (rectrain.storage.parallel.TRANSFER_WORKERS), not imported here
        p.add_argument("--workers", type=ranges.WORKERS, default=None, help="parallel transfers (default 64)")
        p.add_argument(
            "--dry-run", action="store_true", help="show what would be transferred; change nothing"
        )
        p.add_argument(
            "--delete",
            action="store_true",
            help="also delete files at the destination that the source does not have",
        )
        p.add_argument("--no-progress", action="store_true", help="no progress bar")
        p.add_argument("--no-fastpath", action="store_true",
                       help="send every request through boto3 (no small-object fast path; "
                            "also RECTRAIN_NO_FASTPATH=1)")

    push = s3sub.add_parser("push", help="upload a folder (dataset or checkpoints) to s3://bucket/prefix")
    push.add_argument("src", help="local folder (or file)")
    push.add_argument("dst", help="s3://bucket/prefix")
    transfer(push)
    push.add_argument(
        "--no-manifest",
        action="store_true",
        help="do not write manifest.jsonl (default: written last, for datasets)",
    )
    push.set_defaults(func=cmd_push)

    pull = s3sub.add_parser("pull", help="download s3://bucket/prefix into a folder")
    pull.add_argument("src", help="s3://bucket/prefix")
    pull.add_argument("dst", help="local folder")
    transfer(pull)
    pull.add_argument(
        "--unpack",
        action="store_true",
        help="a packed dataset: stream and extract the shards into the original tree",
    )
    pull.add_argument(
        "--no-verify-manifest",
        action="store_true",
        help="ignore manifest.jsonl (each file is still checked against its own checksum)",
    )
    pull.set_defaults(func=cmd_pull)

    check = s3sub.add_parser(
        "check",
        help="check credentials and List/Get/Put/Delete on s3://bucket/prefix",
        description="Exit 0 when everything training needs is allowed, 1 otherwise. "
        "Writes and deletes one small probe object.",
    )
    check.add_argument("uri", help="s3://bucket/prefix")
    common(check)
    check.set_defaults(func=cmd_check)

    ls = s3sub.add_parser("ls", help="list objects under s3://bucket/prefix")
    ls.add_argument("uri", help="s3://bucket/prefix")
    common(ls)
    ls.set_defaults(func=cmd_ls)


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _progress(args: Any) -> bool:
    return not args.no_progress and not args.json and sys.stderr.isatty()


def _workers(args: Any) -> dict:
    """``--workers`` when given; else the library's default."""
    return {"workers": args.workers} if args.workers else {}


def cmd_push(args: Any) -> int:
    from rectrain.storage.push import push  # lazy: keeps `rectrain --help` fast

    result = push(
        s3_service(args, workers=args.workers),
        args.src,
        s3_uri(args.dst),
        **_workers(args),
        delete=args.delete,
        dry_run=args.dry_run,
        progress=_progress(args),
        manifest=not args.no_manifest,
    )
    _report(args, result)
    return EXIT_OK


def cmd_pull(args: Any) -> int:
    from rectrain.storage.pull import pull  # lazy: keeps `rectrain --help` fast

    result = pull(
        s3_service(args, workers=args.workers),
        s3_uri(args.src),
        args.dst,
        **_workers(args),
        delete=args.delete,
        dry_run=args.dry_run,
        progress=_progress(args),
        unpack=args.unpack,
        verify_manifest=not args.no_verify_manifest,
    )
    _report(args, result)
    return EXIT_OK


def _report(args: Any, result: Any) -> None:
    if args.json:
        _print_json(result.to_dict())
        return
    if result.dry_run:
        for item in result.planned[:50]:
            print(f"would {'upload' if result.direction == 'push' else 'download'} {item}")
        if result.planned_count > 50:
            print(f"... and {result.planned_count - 50} more")
        for item in result.deletions[:50]:
            print(f"would delete {item}")
    print(f"{result.direction} {result.source} -> {result.destination}: {result.summary()}")
    if result.manifest:
        print(f"manifest: {result.manifest}")


def cmd_check(args: Any) -> int:
    from rectrain.storage.check import check_s3_access  # lazy: keeps `rectrain --help` fast

    report = check_s3_access(s3_service(args), s3_uri(args.uri))
    if args.json:
        _print_json(report.to_dict())
    else:
        print(report.render())
    return EXIT_OK if report.ok else EXIT_FINDINGS


def cmd_ls(args: Any) -> int:
    from rectrain.storage.objects import list_objects  # lazy: keeps `rectrain --help` fast

    uri = s3_uri(args.uri)
    objects = list_objects(s3_service(args), uri)
    if args.json:
        _print_json(
            [
                {"key": o.key, "size": o.size, "etag": o.etag, "last_modified": o.last_modified}
                for o in objects
            ]
        )
        return EXIT_OK
    for obj in objects:
        stamp = obj.last_modified.strftime("%Y-%m-%d %H:%M:%S") if obj.last_modified else ""
        print(f"{stamp:19}  {obj.size:>12}  s3://{uri.bucket}/{obj.key}")
    print(f"{len(objects)} object(s), {sum(o.size for o in objects)} bytes")
    return EXIT_OK


def cmd_serve(args: Any) -> int:
    from rectrain.storage.server import SeaweedServer, port_is_free  # lazy: keeps `rectrain --help` fast

    data_dir = args.data_dir or settings(args).s3_dir or DEFAULT_SERVE_DIR
    server = SeaweedServer(data_dir, port=args.port, read_only_identity=args.read_only_identity,
                           weed=settings(args).weed)
    if args.port is None and not server.saved_ports and port_is_free(DEFAULT_SERVE_PORT):
        server.requested_port = DEFAULT_SERVE_PORT

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    # SIGINT too: a shell starts background jobs with SIGINT ignored, and Python then never
    # raises KeyboardInterrupt; SIGHUP when the terminal goes away
    handled = [signal.SIGTERM, signal.SIGINT] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {sig: signal.signal(sig, on_term) for sig in handled}
    try:
        server.start()
        env = server.env
        if args.json:
            data = {"endpoint_url": server.endpoint_url, "data_dir": str(server.data_dir), "env": env}
            if args.read_only_identity:
                data["read_only_env"] = server.read_only_env
            _print_json(data)
        else:
            print(f"SeaweedFS S3 on {server.endpoint_url} (data: {server.data_dir}, log: {server.log_path})")
            print("Use it from another shell with:")
            for key, value in env.items():
                print(f"  export {key}={value}")
            if args.read_only_identity:
                print(
                    f"Read-only identity: AWS_ACCESS_KEY_ID={server.read_only_access_key} "
                    f"AWS_SECRET_ACCESS_KEY={server.read_only_secret_key}"
                )
            print("Press Ctrl-C to stop.")
        sys.stdout.flush()
        while server.running:
            time.sleep(0.5)
        raise StorageError(
            f"The embedded S3 server stopped unexpectedly (exit code "
            f"{server.process.returncode if server.process else '?'}).",
            f"see {server.log_path}.",
        )
    except KeyboardInterrupt:
        print("stopping the S3 server ...", file=sys.stderr)
        server.stop()
        print("stopped.", file=sys.stderr)
        return EXIT_OK
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
