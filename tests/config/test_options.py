"""The builder's options on their own (config.checks.check_options) and the --set fields that
act like them (config.overrides.take_options): no engine, no data."""

from __future__ import annotations

import pytest

from rectrain.config.checks import check_options
from rectrain.config.overrides import take_options
from rectrain.errors import ConfigError

OK = dict(device="gpu", amp=False, epochs=None, batch_size=None, max_text_length=None, lr=None)


@pytest.mark.parametrize("change, match", [
    ({"device": "tpu"}, "--device 'tpu'"),
    ({"device": "cpu", "amp": True}, "--amp with --device cpu"),
    ({"epochs": 0}, "--epochs 0: must be at least 1"),
    ({"batch_size": -1}, "--batch-size -1"),
    ({"max_text_length": 0}, "--max-text-length 0"),
    ({"lr": 0.0}, "--lr 0.0: must be positive"),
])
def test_check_options_refuses_with_the_flag(change, match):
    check_options(**OK)
    with pytest.raises(ConfigError, match=match):
        check_options(**{**OK, **change})


def test_take_options_fills_only_missing_options_and_keeps_the_rest():
    opts = {"epochs": None, "lr": None, "batch_size": 8, "max_text_length": None,
            "pretrained": None}
    sets = [(("Global", "epoch_num"), 3), (("Global", "epoch_num"), 4),
            (("Optimizer", "lr", "learning_rate"), 1), (("Train", "sampler", "first_bs"), 2),
            (("Global", "pretrained_model"), None), (("Global", "use_gpu"), False)]
    rest = take_options(sets, opts)
    assert opts == {"epochs": 3, "lr": 1.0, "batch_size": 8, "max_text_length": None,
                    "pretrained": None}
    assert isinstance(opts["epochs"], int) and isinstance(opts["lr"], float)
    # a second value, an option already given, an empty pretrained: applied as plain --set
    assert rest == [sets[1], sets[3], sets[4], sets[5]]


def test_take_options_refuses_a_non_number():
    with pytest.raises(ConfigError, match="Global.max_text_length=True: expected a number"):
        take_options([(("Global", "max_text_length"), True)], {"max_text_length": None})
