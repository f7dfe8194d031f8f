"""CLI wiring for ``rectrain export``, ``rectrain evaluate`` and ``rectrain predict``."""

from __future__ import annotations

import json

from rectrain.cli import ranges
from rectrain.errors import EXIT_OK


def register(sub) -> None:  # noqa: ANN001
    p = sub.add_parser("export", help="export a checkpoint to an inference model folder "
                       "(the engine's exporter, plus dictionary, config and model.json) that loads "
                       "in PaddleOCR 3.x; --onnx adds an ONNX model")
    p.add_argument("--run-dir", help="training run folder (holds config.yml and checkpoints/)")
    p.add_argument("--checkpoint", default="best",
                   help="checkpoint name in the run (default best: best_of_run if the run kept "
                        "one across resumes, else best_accuracy; or best_accuracy, latest, best_of_run, "
                        "iter_epoch_N) or a path prefix of a .pdparams file")
    p.add_argument("--config", help="training config (default: RUN_DIR/config.yml)")
    p.add_argument("-o", "--out", required=True, metavar="MODEL_DIR", help="folder to create")
    p.add_argument("--force", action="store_true", help="replace MODEL_DIR if it exists")
    p.add_argument("--onnx", action="store_true", help="also write inference.onnx (paddle2onnx), "
                   "checked with ONNX Runtime against the Paddle model")
    p.add_argument("--paddleocr-dir", help="an official PaddleOCR checkout to use as the engine")
    p.set_defaults(func=_export)

    p = sub.add_parser("evaluate", help="evaluate an exported model on a labelled set: word "
                       "accuracy, CER, normalized edit distance, confusions, worst samples")
    p.add_argument("--model", required=True, metavar="MODEL_DIR", help="folder from `rectrain export`")
    p.add_argument("--labels", required=True, help="label file (IMAGE_PATH<TAB>LABEL per line)")
    p.add_argument("--images-root", help="folder the image paths are relative to "
                   "(default: the label file's folder)")
    p.add_argument("--json", dest="json_out", metavar="OUT", help="write the full report as JSON")
    p.add_argument("--grid", metavar="OUT.png", help="write a PNG grid of the worst samples")
    p.add_argument("--report", metavar="DIR", help="write an error report (index.md, index.html, "
                   "figures, evaluation.json): confusions, CER by length, errors by character class")
    p.add_argument("--run-dir", help="the training run: also log the report to its MLflow run")
    p.add_argument("--worst", type=ranges.count(0), default=24, help="samples in the grid (default 24)")
    p.add_argument("--top", type=ranges.count(0), default=10, help="confused pairs to print (default 10)")
    p.add_argument("--keep-spaces", action="store_true",
                   help="compare spaces too (the engine's metric ignores them by default)")
    _add_runtime_args(p)
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("predict", help="read the text in images with an exported model")
    p.add_argument("--model", required=True, metavar="MODEL_DIR", help="folder from `rectrain export`")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders of images")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    _add_runtime_args(p)
    p.set_defaults(func=_predict)


def _add_runtime_args(p) -> None:  # noqa: ANN001
    """How `evaluate` and `predict` run the model."""
    p.add_argument("--batch-size", type=ranges.count(1), default=1,
                   help="images per inference batch (default 1, one at a time as PaddleOCR 3.x "
                        "reads; more is faster and batches only images of the same input width, "
                        "so the readings stay the same)")
    p.add_argument("--backend", choices=["paddle", "onnx"], default="paddle",
                   help="paddle: Paddle Inference (default); onnx: ONNX Runtime on inference.onnx "
                        "(rectrain export --onnx)")
    p.add_argument("--device", choices=["auto", "gpu", "cpu"], default="auto")
    p.add_argument("--paddleocr-dir", help="an official PaddleOCR checkout to use as the engine")


def _use_gpu(device: str):  # noqa: ANN202
    return None if device == "auto" else device == "gpu"


def _export(args) -> int:  # noqa: ANN001
    from rectrain.model.deploy import load_lines
    from rectrain.model.export import export_model  # lazy: keeps `rectrain --help` fast
    from rectrain.model.info import read_model_info
    from rectrain.model.predict import model_summary

    out = export_model(args.run_dir, checkpoint=args.checkpoint, config=args.config,
                       out_dir=args.out, paddleocr_dir=args.paddleocr_dir, overwrite=args.force,
                       onnx=args.onnx)
    info = read_model_info(out)
    ckpt = info["checkpoint"]
    metrics = info.get("metrics") or {}
    print(f"exported {ckpt['path']} (epoch {ckpt.get('epoch')}, step {ckpt.get('global_step')}"
          + (f", eval acc {metrics['acc']:.4f}" if "acc" in metrics else "") + f") to {out}")
    print(model_summary(info))
    print("\n".join(load_lines(out, info)))
    if args.run_dir:  # the exported model to the run's MLflow run, when it is tracked
        from rectrain.tracking import attach_to_run

        attach_to_run(args.run_dir, [out], subdir="model")
    return EXIT_OK


def _evaluate(args) -> int:  # noqa: ANN001
    from rectrain.model.evaluate import evaluate_model  # lazy: keeps `rectrain --help` fast

    report = evaluate_model(args.model, args.labels, args.images_root, json_out=args.json_out,
                            grid_png=args.grid, paddleocr_dir=args.paddleocr_dir,
                            batch_size=args.batch_size, ignore_space=not args.keep_spaces,
                            worst=args.worst, use_gpu=_use_gpu(args.device), backend=args.backend,
                            report_dir=args.report)
    print(report.summary(top=args.top))
    if args.report:
        from rectrain.model.error_report import write_error_report

        files = write_error_report(report, args.report, worst=args.worst)
        print(f"error report: {files['markdown']} (and {files['html'].name}, figures, evaluation.json)")
        if args.run_dir:
            from rectrain.tracking import attach_to_run

            attach_to_run(args.run_dir, [args.report], subdir="evaluation",
                          metrics={"test/word_accuracy": report.word_accuracy, "test/cer": report.cer})
    return EXIT_OK


def _predict(args) -> int:  # noqa: ANN001
    from rectrain.model.predict import predict  # lazy: keeps `rectrain --help` fast

    predictions = predict(args.model, args.images, paddleocr_dir=args.paddleocr_dir,
                          batch_size=args.batch_size, use_gpu=_use_gpu(args.device),
                          backend=args.backend)
    for p in predictions:
        if args.json:
            print(json.dumps(p.as_dict(), ensure_ascii=False))
        else:
            print(f"{p.path}\t{p.text}\t{p.score:.4f}")
    return EXIT_OK
