"""The Paddle 3.3 LSTM export workaround changes only what it must."""

from __future__ import annotations

import pytest

paddle = pytest.importorskip("paddle")

from rectrain.model.export_shim import paddle_has_device_bug, patch_tensor_device  # noqa: E402


@pytest.mark.slow
def test_patch_makes_unallocated_buffers_answer_none_and_keeps_real_devices():
    lstm = paddle.nn.LSTM(2, 2)
    real = paddle.to_tensor([1.0])
    before = real.device
    buggy = paddle_has_device_bug()
    if buggy:
        with pytest.raises(ValueError):
            _ = lstm._dropout_state.device
    original = paddle.Tensor.device
    try:
        patch_tensor_device()
        assert lstm._dropout_state.device is None or not buggy
        assert real.device == before
        assert not paddle_has_device_bug()
    finally:
        paddle.Tensor.device = original
