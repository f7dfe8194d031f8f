"""CLI wiring for ``rectrain data``: validate, dict, split, convert, synth, report."""

from __future__ import annotations

import argparse
import json
import sys

from rectrain.cli import data_pack, ranges
from rectrain.errors import EXIT_FINDINGS, EXIT_OK, UserError


def register(sub) -> None:  # noqa: ANN001
    data = sub.add_parser("data", help="dataset toolkit: validate, dict, split, convert, synth, report")
    data_sub = data.add_subparsers(dest="data_command", metavar="DATA_COMMAND")
    data.set_defaults(func=lambda args: (data.print_help(), 2)[1])

    p = data_sub.add_parser("validate", help="check label files, images and dictionary before training")
    p.add_argument("labels", nargs="+", metavar="LABELS", help="label files (image_path<TAB>label)")
    p.add_argument("--images-root", help="folder the image paths are relative to (default: each "
                   "label file's folder)")
    p.add_argument("--dict", dest="dict_path", help="character dictionary (one character per line)")
    p.add_argument("--max-text-length", type=ranges.count(1),
                   help="Global.max_text_length of the training config")
    p.add_argument("--use-space-char", action="store_true", help="Global.use_space_char is True")
    p.add_argument("--multihead", action="store_true", help="the model head is MultiHead (PP-OCRv4/v5): "
                   "its NRTR/SAR branch drops labels of max_text_length - 1 characters or more")
    p.add_argument("--json", dest="json_out", metavar="OUT", help="write the full report as JSON")
    p.add_argument("--write-clean", metavar="OUT", help="write a label file without the error lines, "
                   "NFC-normalized, without BOM/CR")
    p.add_argument("--workers", type=ranges.WORKERS, help="image-check processes (default: all cores)")
    p.add_argument("--no-images", action="store_true", help="check the label files only")
    p.add_argument("--examples", type=ranges.count(0), default=3, help="examples shown per code (default 3)")
    p.set_defaults(func=cmd_validate)

    p = data_sub.add_parser("dict", help="build a dictionary (one code point per line) from labels")
    p.add_argument("labels", nargs="+", metavar="LABELS")
    p.add_argument("-o", "--out", required=True, help="dictionary file to write")
    p.add_argument("--base", help="keep this dictionary's lines and order, append only new characters")
    p.set_defaults(func=cmd_dict)

    p = data_sub.add_parser("split", help="split a label file into train/val, reproducibly")
    p.add_argument("labels", metavar="LABELS")
    p.add_argument("-o", "--out", required=True, help="folder for train.txt and val.txt")
    p.add_argument("--val", type=ranges.FRACTION, default=0.1, help="validation fraction (default 0.1)")
    p.add_argument("--seed", type=ranges.SEED, default=0)
    p.add_argument("--group-by", metavar="REGEX", help="regex on the image path; samples whose "
                   "match (group 1 if any) is equal stay on one side")
    p.set_defaults(func=cmd_split)

    p = data_sub.add_parser("convert", help="detection annotations -> recognition crops + labels")
    p.add_argument("src", metavar="SRC", help="PPOCRLabel Label.txt, or an ICDAR 2015 gt folder/file")
    p.add_argument("--from", dest="fmt", required=True, choices=["ppocrlabel", "icdar2015"])
    p.add_argument("-o", "--out", required=True)
    p.add_argument("--images-root", help="folder the annotation image paths are relative to")
    p.set_defaults(func=cmd_convert)

    p = data_sub.add_parser("synth", help="render synthetic word images (correct Thai shaping)")
    p.add_argument("--words", required=True, help="a text file with one word/line per line, or `thai`")
    p.add_argument("--fonts", default="default", help="a folder of .ttf/.otf fonts, or `default`")
    p.add_argument("-n", type=ranges.count(1), required=True, help="number of images")
    p.add_argument("-o", "--out", required=True)
    p.add_argument("--seed", type=ranges.SEED, default=0)
    p.add_argument("--height", type=ranges.count(8), default=32)
    p.add_argument("--effects", default="default", help="`default`, `none`, or a comma list of: "
                   "blur,noise,rotation,perspective,jpeg,background,colors")
    p.add_argument("--workers", type=ranges.WORKERS)
    p.add_argument("--max-len", type=ranges.count(1), help="with --words thai: longest word in characters")
    p.add_argument("--lines", type=ranges.SHARE, default=0.0, metavar="FRAC",
                   help="share of images showing a "
                   "short line of 2-3 words joined by spaces (train with use_space_char); default 0")
    p.add_argument("--prefix", default="", help="image file name prefix (to merge several runs)")
    p.set_defaults(func=cmd_synth)

    p = data_sub.add_parser("report", help="charts of label lengths, characters, image sizes, samples")
    p.add_argument("labels", nargs="+", metavar="LABELS")
    p.add_argument("--images-root")
    p.add_argument("-o", "--out", required=True)
    p.add_argument("--samples", type=ranges.count(0), default=24, help="images in the sample grid")
    p.add_argument("--seed", type=ranges.SEED, default=0)
    p.set_defaults(func=cmd_report)

    data_pack.register(data_sub)


def cmd_validate(args: argparse.Namespace) -> int:
    # lazy: keeps `rectrain --help` fast
    from rectrain.data.validate import validate_recognition_annotation_format

    report = validate_recognition_annotation_format(
        args.labels, images_root=args.images_root, dict_path=args.dict_path,
        max_text_length=args.max_text_length, use_space_char=args.use_space_char,
        multihead=args.multihead, json_out=args.json_out, write_clean=args.write_clean, workers=args.workers,
        progress=True, check_images=not args.no_images)
    print(report.summary(examples=args.examples))
    if args.json_out:
        print(f"JSON report: {args.json_out}")
    return EXIT_OK if report.ok else EXIT_FINDINGS


def cmd_dict(args: argparse.Namespace) -> int:
    from rectrain.data.dictionary import build_dictionary  # lazy: keeps `rectrain --help` fast

    res = build_dictionary(args.labels, base=args.base, out=args.out)
    if args.base:
        print(f"{args.out}: {res.base_count} entries kept from {args.base}, {len(res.added)} new "
              f"character(s) appended: {''.join(res.added)[:80]}")
        from rectrain.data.official_dicts import grow_hint

        print(grow_hint(args.base, args.out, bool(res.added)))
    else:
        print(f"{args.out}: {len(res.chars)} characters, one code point per line.")
    if res.has_space:
        print("labels contain spaces: set use_space_char: True (the space is not written to the file).")
    return EXIT_OK


def cmd_split(args: argparse.Namespace) -> int:
    from rectrain.data.split import split_labels  # lazy: keeps `rectrain --help` fast

    res = split_labels(args.labels, args.out, val=args.val, seed=args.seed, group_by=args.group_by)
    print(json.dumps(res, ensure_ascii=False))
    return EXIT_OK


def cmd_convert(args: argparse.Namespace) -> int:
    # lazy: keeps `rectrain --help` fast
    from rectrain.data.convert import convert_detection_to_recognition_format

    res = convert_detection_to_recognition_format(args.src, args.out, fmt=args.fmt,
                                                  images_root=args.images_root)
    print(json.dumps(res, ensure_ascii=False, indent=2))
    return EXIT_OK


def cmd_synth(args: argparse.Namespace) -> int:
    # lazy: keeps `rectrain --help` fast
    from rectrain.data.synth import parse_effects, synthesize, thai_words

    if args.n < 1:
        raise UserError(f"-n must be at least 1, got {args.n}.", "pass the number of images to render.")
    if args.words == "thai":
        words = thai_words(max_len=args.max_len, seed=args.seed)
    else:
        from rectrain.data.synth import read_words  # lazy: keeps `rectrain --help` fast

        words = read_words(args.words)
    fonts = None if args.fonts == "default" else args.fonts
    out = synthesize(words, args.out, args.n, fonts=fonts, seed=args.seed, height=args.height,
                     effects=parse_effects(args.effects), workers=args.workers, prefix=args.prefix,
                     line_prob=args.lines)
    print(f"{args.n} images in {out / 'images'}, labels in {out / 'labels.txt'}", file=sys.stdout)
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from rectrain.data.charts import dataset_report  # lazy: keeps `rectrain --help` fast

    pngs = dataset_report(args.labels, args.out, images_root=args.images_root, samples=args.samples,
                          seed=args.seed)
    for p in pngs:
        print(p)
    return EXIT_OK
