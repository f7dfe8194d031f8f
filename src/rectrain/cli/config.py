"""CLI wiring for `rectrain config` (presets, build)."""

from __future__ import annotations

import argparse
import json
import sys

from rectrain.cli import ranges
from rectrain.errors import EXIT_OK


def register(sub) -> None:  # noqa: ANN001
    parser = sub.add_parser("config", help="training configs: presets and the config builder",
                            description="Training configs from the official PaddleOCR YAML.")
    csub = parser.add_subparsers(dest="config_command", metavar="SUBCOMMAND")

    p = csub.add_parser("presets", help="list the presets (and whether the engine can run them)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--paddleocr-dir", default=None,
                   help="engine to check against (default: installed unstructured-paddleocr)")
    p.set_defaults(func=cmd_presets)

    b = csub.add_parser(
        "build", help="build a training config from a preset or an official YAML",
        description="Write OUT.yml from --base with data, dictionary and training settings "
                    "changed consistently, plus OUT.base.yml (the base as it was) and "
                    "OUT.diff.md (field, old, new, why).")
    b.add_argument("--base", required=True, help="preset name (rectrain config presets) or YAML")
    b.add_argument("--train-labels", nargs="+", action="extend", required=True, metavar="FILE",
                   help="one or more label files (repeat the option or list them)")
    b.add_argument("--ratio", default=None, metavar="R1,R2,...",
                   help="share of each --train-labels file drawn per epoch, in (0,1] (the "
                        "engine's ratio_list), e.g. 1,0.3")
    b.add_argument("--val-labels", nargs="+", required=True, metavar="FILE")
    b.add_argument("--dict", dest="dict_path", required=True, metavar="FILE",
                   help="character dictionary (one class per line)")
    b.add_argument("-o", "--out", required=True, metavar="OUT.yml")
    b.add_argument("--images-root", default=None, metavar="DIR",
                   help="folder the image paths in the label files are relative to "
                        "(default: the label file's folder)")
    b.add_argument("--val-images-root", default=None, metavar="DIR",
                   help="folder for the validation image paths (default: --images-root)")
    b.add_argument("--epochs", type=ranges.count(1), default=None)
    b.add_argument("--lr", type=ranges.positive(), default=None, help="learning rate")
    b.add_argument("--batch-size", type=ranges.count(1), default=None, help="per card")
    b.add_argument("--max-text-length", type=ranges.count(1), default=None)
    b.add_argument("--image-shape", default=None, metavar="C,H,W")
    b.add_argument("--pretrained", default=None, metavar="PATH",
                   help="weights (.pdparams) to start from")
    b.add_argument("--base-dict", default=None, metavar="FILE",
                   help="the dictionary the --pretrained weights were trained with, when --dict "
                        "appends characters to it: the head is grown (old classes kept)")
    b.add_argument("--allow-new-head", action="store_true",
                   help="accept pretrained weights whose head does not fit the dictionary "
                        "(the head is re-initialized)")
    b.add_argument("--amp", action="store_true", help="mixed precision (GPU)")
    b.add_argument("--device", choices=["gpu", "cpu"], default="gpu")
    b.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="Section.key=value", help="any other field (value parsed as YAML)")
    b.add_argument("--no-check-data", dest="check_data", action="store_false",
                   help="skip reading the label files (images, characters, lengths)")
    b.add_argument("--paddleocr-dir", default=None, help="engine (default: installed package)")
    b.add_argument("--json", action="store_true", help="print the result as JSON")
    b.set_defaults(func=cmd_build)
    c = csub.add_parser("check", help="check an existing training config against the engine",
                        description="PaddleOCR 1.x configs, unknown modules or parameters, "
                                    "inconsistent shapes and missing files, without building.")
    c.add_argument("config", metavar="CONFIG.yml")
    c.add_argument("--paddleocr-dir", default=None, help="engine (default: installed package)")
    c.set_defaults(func=cmd_check)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def cmd_presets(args: argparse.Namespace) -> int:
    from rectrain.config.presets import PRESETS, preset_support  # lazy: keeps `rectrain --help` fast

    rows = []
    for preset in PRESETS.values():
        ok, why = preset_support(preset, args.paddleocr_dir)
        row = preset.as_dict()
        row["engine_ok"] = ok
        row["engine_note"] = why
        rows.append(row)
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return EXIT_OK
    for r in rows:
        shape = ",".join(str(x) for x in r["input_shape"])
        print(f"{r['name']:<18} input {shape:<9} {r['algorithm']}: {r['backbone']} + {r['neck']} "
              f"+ {r['head']}")
        print(f"{'':<18} good for: {r['summary']}")
        print(f"{'':<18} dictionary: {r['dictionary']}")
        note = "ok" if r["engine_ok"] else "refused: " + r["engine_note"].split("; this config")[0]
        print(f"{'':<18} engine: {note}")
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rectrain.config.checks import check_training_config  # lazy: keeps `rectrain --help` fast
    from rectrain.engine.config import load_engine_config

    path = Path(args.config)
    check_training_config(load_engine_config(path).data, source=str(path), paddleocr_dir=args.paddleocr_dir)
    print(f"{path}: ok for the selected engine (modules, parameters, shapes, files)")
    return EXIT_OK


def cmd_build(args: argparse.Namespace) -> int:
    from rectrain.config.build import create_recognition_training_config  # lazy: keeps `rectrain --help` fast

    result = create_recognition_training_config(
        args.base, args.train_labels, args.val_labels, args.dict_path, args.out,
        images_root=args.images_root, epochs=args.epochs, lr=args.lr,
        batch_size=args.batch_size, max_text_length=args.max_text_length,
        image_shape=args.image_shape, pretrained=args.pretrained, amp=args.amp,
        device=args.device, overrides=args.overrides, check_data=args.check_data,
        paddleocr_dir=args.paddleocr_dir, allow_new_head=args.allow_new_head,
        val_images_root=args.val_images_root, base_dict=args.base_dict, ratio=args.ratio)
    if args.json:
        print(json.dumps({"path": str(result.path), "base": str(result.base_path),
                          "diff": str(result.diff_path), "source": result.source,
                          "stats": result.stats, "warnings": result.warnings,
                          "changes": [c._asdict() for c in result.changes]},
                         ensure_ascii=False, indent=2, default=str))
        return EXIT_OK
    out = sys.stdout
    out.write(f"wrote {result.path}\n      {result.base_path} (the base as it was)\n"
              f"      {result.diff_path} ({len(result.changes)} changes, field/old/new/why)\n")
    st = result.stats
    out.write(f"data: {st.get('train_samples')} train / {st.get('eval_samples')} eval samples, "
              f"{st.get('num_classes')} classes, {st.get('steps_per_epoch_1card')} steps per "
              f"epoch on 1 card; engine {st.get('engine')}\n")
    if st.get("official_dictionary"):
        out.write(f"dictionary: {st['official_dictionary']}\n")
    if result.warnings:
        out.write(f"{len(result.warnings)} warning(s) (also in the diff file)\n")
    return EXIT_OK

