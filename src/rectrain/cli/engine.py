"""CLI wiring for ``rectrain engine``."""

from __future__ import annotations

import json

from rectrain.engine import find_engine
from rectrain.machine.gpu import paddle_build


def register(sub) -> None:  # noqa: ANN001
    p = sub.add_parser("engine", help="the PaddleOCR training engine")
    esub = p.add_subparsers(dest="engine_command", metavar="ACTION")
    info = esub.add_parser("info", help="where the engine is, its version and which it is")
    info.add_argument("--paddleocr-dir", help="an official PaddleOCR checkout (else PADDLEOCR_HOME, "
                                              "else the installed unstructured-paddleocr)")
    info.add_argument("--json", action="store_true")
    info.set_defaults(func=_info)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _info(args) -> int:  # noqa: ANN001
    engine = find_engine(args.paddleocr_dir)
    build = paddle_build(engine.python)
    data = dict(engine.as_dict(), paddle=build.version, paddle_cuda_build=build.cuda_build)
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(f"engine:  {engine.kind} {engine.version}")
        print(f"root:    {engine.root}")
        print(f"train:   {engine.script('train')}")
        print(f"python:  {engine.python}")
        print(f"paddle:  {build.version or 'not installed'} "
              f"({'CUDA build' if build.cuda_build else 'CPU-only build'})")
    return 0
