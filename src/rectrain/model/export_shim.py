"""Run an engine tool (``tools/export_model.py``) unmodified, after working around a Paddle 3.3
bug that makes every model with an LSTM (CRNN: ``SequenceEncoder`` with ``encoder_type: rnn``)
fail to export.

Usage (what :mod:`rectrain.model.export` runs)::

    python -u -m rectrain.model.export_shim <engine>/tools/export_model.py -c CFG -o k=v ...

The bug: ``paddle.jit.save`` turns each parameter and buffer into a static variable by reading
every public attribute of the tensor (``Tensor._to_static_var``). Paddle 3.3 added a ``device``
property, which raises ``ValueError: Unknown place type: Place(undefined:0)`` on a tensor with no
storage yet; ``nn.LSTM`` keeps exactly such a buffer (``_dropout_state``, unused at inference).
The workaround makes ``device`` answer ``None`` for a tensor without a place and changes
nothing else. It is applied only when the installed Paddle shows the bug, so a fixed Paddle
runs the exporter untouched. Recorded in docs/problem-log.md.
"""

from __future__ import annotations

import runpy
import sys


def paddle_has_device_bug() -> bool:
    import paddle

    probe = paddle.nn.LSTM(1, 1)
    state = getattr(probe, "_dropout_state", None)
    if state is None or not hasattr(type(state), "device"):
        return False
    try:
        _ = state.device
    except ValueError:
        return True
    return False


def patch_tensor_device() -> None:
    import paddle

    original = paddle.Tensor.device

    def device(self):  # noqa: ANN001, ANN202
        try:
            return original.fget(self)
        except ValueError:  # a tensor with no storage yet has no device
            return None

    paddle.Tensor.device = property(device, doc=original.__doc__)  # type: ignore[method-assign,assignment]


def main(argv: list) -> None:
    if not argv:
        raise SystemExit("usage: python -m rectrain.model.export_shim TOOL.py [args...]")
    if paddle_has_device_bug():
        patch_tensor_device()
        print("rectrain: applied the Paddle 3.3 LSTM export workaround "
              "(Tensor.device on an unallocated buffer)", file=sys.stderr, flush=True)
    script = argv[0]
    sys.argv = [script] + list(argv[1:])
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
