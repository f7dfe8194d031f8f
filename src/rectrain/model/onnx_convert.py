"""Convert an exported Paddle model to ONNX with paddle2onnx, then check the result with ONNX
Runtime against Paddle Inference. Run in its own process by :mod:`rectrain.model.onnx_export`::

    python -m rectrain.model.onnx_convert PROGRAM PARAMS OUT.onnx C H W FIXED

Prints one JSON line (opset, input, outputs, versions, largest output difference) last.

Nothing is installed at run time: paddle2onnx 2.1.0 would fold constants with Polygraphy,
after setting ``POLYGRAPHY_AUTOINSTALL_DEPS=1`` itself, and Polygraphy then pip-installs what it
lacks (``sympy`` for ONNX Runtime's symbolic shape inference; ``onnx_graphsurgeon`` and
``onnxruntime`` when missing). The folding is switched off (``optimize_tool="None"``:
ONNX Runtime folds constants itself when it loads the model) and Polygraphy's switch is read
as off before paddle2onnx can turn it on (the parent, :mod:`rectrain.model.onnx_export`, starts
this process with ``POLYGRAPHY_AUTOINSTALL_DEPS=0`` and ``PIP_NO_INDEX=1`` in its environment),
so a missing module fails instead of downloading.
"""

from __future__ import annotations

import json
import os
import sys
from typing import List

# Largest difference between ONNX Runtime's and Paddle's outputs (probabilities) accepted.
TOLERANCE = 1e-3


def _paddle_outputs(program: str, params: str, x) -> List:  # noqa: ANN001
    from paddle import inference

    config = inference.Config(program, params)
    config.disable_gpu()
    config.disable_mkldnn()  # the reference: plain CPU kernels (oneDNN cannot run every model)
    if program.endswith(".json"):
        config.enable_new_ir(True)
        config.enable_new_executor(True)
    config.disable_glog_info()
    predictor = inference.create_predictor(config)
    handle = predictor.get_input_handle(predictor.get_input_names()[0])
    handle.copy_from_cpu(x)
    predictor.run()
    return [predictor.get_output_handle(n).copy_to_cpu() for n in predictor.get_output_names()]


def main(argv: List[str]) -> int:
    program, params, out = argv[:3]
    c, h, w = (int(v) for v in argv[3:6])
    fixed = argv[6] == "1"
    try:
        import polygraphy.config  # noqa: F401 - reads AUTOINSTALL_DEPS=0 from our env (see above)
    except ImportError:
        pass
    import numpy as np
    import onnx
    import onnxruntime as ort
    import paddle2onnx

    paddle2onnx.export(program, params, out, optimize_tool="None", enable_onnx_checker=True)
    if not os.path.isfile(out):
        print("paddle2onnx wrote no model (see its messages above)", file=sys.stderr)
        return 3
    model = onnx.load(out)
    options = ort.SessionOptions()
    options.log_severity_level = 3  # not one warning per constant it folds away
    session = ort.InferenceSession(out, options, providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    # A deterministic input, wider than the input shape when the width is dynamic.
    width = w if fixed else 2 * w
    x = np.random.RandomState(0).uniform(-1.0, 1.0, (1, c, h, width)).astype("float32")
    got = session.run(None, {inp.name: x})
    want = _paddle_outputs(program, params, x)
    diff = max(float(np.abs(a - b).max()) for a, b in zip(got, want))
    result = {
        "opset": max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
        "input": {"name": inp.name, "shape": [d if isinstance(d, int) else -1 for d in inp.shape]},
        "outputs": [o.name for o in session.get_outputs()],
        "paddle2onnx": paddle2onnx.__version__, "onnx": onnx.__version__,
        "onnxruntime": ort.__version__,
        "check": {"input_shape": list(x.shape), "max_abs_diff": diff, "tolerance": TOLERANCE,
                  "reference": "Paddle Inference on the CPU"},
    }
    print(json.dumps(result))
    if not diff <= TOLERANCE:
        print(f"the ONNX model's outputs differ from Paddle's by {diff:g} (> {TOLERANCE:g})",
              file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
