"""CLI wiring for ``rectrain data pack`` and ``rectrain data unpack`` (library:
rectrain.storage.pack). cli/data.py calls :func:`register` with its subparsers."""

from __future__ import annotations

import json
import sys
from typing import Any

from rectrain.cli import ranges
from rectrain.errors import EXIT_OK


def register(data_sub: Any) -> None:
    pack = data_sub.add_parser(
        "pack",
        help="pack a dataset folder into tar shards + manifest.jsonl",
        description="Pack every file of a dataset folder into tar shards "
        "(shard-00000.tar, ...) plus manifest.jsonl (path, size, sha256, shard). "
        "Push the result with `rectrain s3 push`; `rectrain s3 pull --unpack` "
        "restores the exact tree.",
    )
    pack.add_argument("dir", help="the dataset folder")
    pack.add_argument("-o", "--out", required=True, help="output folder for the shards and the manifest")
    pack.add_argument("--shard-size", default="128MB", help="target shard size (default 128MB)")
    pack.add_argument("--max-height", metavar="H|auto",
                      help="shrink images taller than H pixels first (aspect ratio kept, lossless "
                           "or JPEG q95; recorded in the manifest); auto: from --config")
    pack.add_argument("--config", help="training config for --max-height auto (its largest input height)")
    pack.add_argument("--no-progress", action="store_true", help="no progress bar")
    pack.add_argument("--json", action="store_true", help="print the result as JSON")
    pack.set_defaults(func=cmd_pack)

    unpack = data_sub.add_parser(
        "unpack",
        help="extract a packed dataset into its original tree",
        description="Extract the shards of a packed dataset, checking every file against manifest.jsonl.",
    )
    unpack.add_argument("dir", help="folder with the shards and manifest.jsonl")
    unpack.add_argument("-o", "--out", required=True, help="where to restore the dataset tree")
    unpack.add_argument("--workers", type=ranges.WORKERS, default=4,
                        help="extracting processes, at most the usable cores (default 4; 1: none)")
    unpack.add_argument("--delete", action="store_true", help="delete files in OUT that the dataset lacks")
    unpack.add_argument("--no-progress", action="store_true", help="no progress bar")
    unpack.add_argument("--json", action="store_true", help="print the result as JSON")
    unpack.set_defaults(func=cmd_unpack)


def cmd_pack(args: Any) -> int:
    from rectrain.storage.pack import pack_dataset  # lazy: keeps `rectrain --help` fast

    if args.max_height:  # issue 17: pre-shrunk images (rectrain.data.shrink)
        from rectrain.cli.bench import max_height_arg
        from rectrain.storage.pack import pack_shrunk_dataset

        result, _ = pack_shrunk_dataset(args.dir, args.out, max_height_arg(args.max_height, args.config),
                                        args.shard_size, progress=not args.no_progress and not args.json
                                        and sys.stderr.isatty())
    else:
        result = pack_dataset(
            args.dir,
            args.out,
            args.shard_size,
            progress=not args.no_progress and not args.json and sys.stderr.isatty(),
        )
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(
            f"packed {result.files} files ({result.bytes / 1e6:.1f} MB) into {len(result.shards)} shard(s) "
            f"in {result.out_dir} ({result.seconds:.1f} s); manifest: {result.manifest}"
        )
        if result.shrink:
            sh = result.shrink
            print(f"shrunk {sh['resized']} image(s) taller than {sh['max_height']} px "
                  f"({sh['bytes_before'] / 1e6:.1f} MB -> {sh['bytes_after'] / 1e6:.1f} MB)")
    return EXIT_OK


def cmd_unpack(args: Any) -> int:
    from rectrain.storage.pull import unpack_dataset  # lazy: keeps `rectrain --help` fast

    result = unpack_dataset(
        args.dir,
        args.out,
        workers=args.workers,
        delete=args.delete,
        progress=not args.no_progress and not args.json and sys.stderr.isatty(),
    )
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        done, shards = result["shards_extracted"], result["shards"]
        which = "" if done == shards else f"{done} extracted, the rest already there; "
        print(
            f"unpacked {result['files']} files ({result['bytes'] / 1e6:.1f} MB) from {shards} "
            f"shard(s) into {result['dst']} ({which}{result['seconds']:.1f} s); "
            "every file matches the manifest"
        )
    return EXIT_OK
