"""Runs INSIDE the PaddleOCR 3.x environment (tests/paddleocr3_env.py), never with rectrain on
the path: loads exported models as a user would and reads images.

    python paddleocr3_read.py SPEC.json OUT.json

SPEC: ``{"images": [paths], "models": [{"id", "call", "extra"}], "pipelines": [{"id", "call"}]}``
where ``call`` is a line rectrain printed (``model = TextRecognition(...)`` or
``ocr = PaddleOCR(...)``), taken apart with ``ast`` (literal arguments only) and called with
``extra`` keyword arguments added (``engine``). Pipelines are only checked against
``PaddleOCR.__init__``'s parameters and its own check of the rest (``parse_common_args``):
building one downloads a detection model.
OUT: ``{"versions": {...}, "models": {id: [{"path", "text", "score"}] | {"error": str}},
"pipelines": {id: "ok" | error}}``.
"""

from __future__ import annotations

import ast
import inspect
import json
import sys
import traceback


def call_parts(line: str):  # noqa: ANN201
    """(callee name, kwargs) of ``name = Callee(k=literal, ...)``."""
    node = ast.parse(line.strip()).body[0]
    call = node.value if isinstance(node, (ast.Assign, ast.Expr)) else None
    if not isinstance(call, ast.Call) or call.args:
        raise ValueError(f"not a keyword-only call: {line!r}")
    return call.func.id, {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}


def main(spec_path: str, out_path: str) -> None:
    import importlib.metadata as md

    import paddleocr
    from paddleocr._common_args import parse_common_args

    with open(spec_path, encoding="utf-8") as fh:
        spec = json.load(fh)
    out = {"versions": {n: md.version(n) for n in ("paddleocr", "paddlex", "paddlepaddle",
                                                   "onnxruntime", "opencv-contrib-python")},
           "models": {}, "pipelines": {}}
    for model in spec.get("models", []):
        try:
            name, kwargs = call_parts(model["call"])
            assert name == "TextRecognition", name
            predictor = paddleocr.TextRecognition(**kwargs, **model.get("extra", {}))
            out["models"][model["id"]] = [
                {"path": r["input_path"], "text": r["rec_text"], "score": float(r["rec_score"])}
                for r in predictor.predict(spec["images"])]
        except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on it
            out["models"][model["id"]] = {"error": f"{type(exc).__name__}: {exc}",
                                          "traceback": traceback.format_exc()[-3000:]}
    for pipe in spec.get("pipelines", []):
        try:
            name, kwargs = call_parts(pipe["call"])
            assert name == "PaddleOCR", name
            params = inspect.signature(paddleocr.PaddleOCR.__init__).parameters
            named = {k for k, p in params.items() if p.kind is not p.VAR_KEYWORD} - {"self"}
            # What PaddleOCR passes on to its base class, validated the way it does.
            parse_common_args({k: v for k, v in kwargs.items() if k not in named},
                              default_enable_hpi=False)
            out["pipelines"][pipe["id"]] = "ok"
        except Exception as exc:  # noqa: BLE001
            out["pipelines"][pipe["id"]] = f"{type(exc).__name__}: {exc}"
    with open(out_path, "w", encoding="utf-8") as fh:
        json.dump(out, fh, ensure_ascii=False)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
