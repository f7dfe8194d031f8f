"""Failure classification: on lines the engine really prints, and on induced real failures."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
import yaml

from rectrain.errors import ConfigError, EngineFailure
from rectrain.training.failures import FailureClassifier, TracebackHold
from rectrain.training.runner import start_recognition_training


def _classify(lines: list, rc: int = 1):
    c = FailureClassifier()
    for line in lines:
        c.feed(line)
    return c.classify(rc)


def test_known_failures_from_output() -> None:
    oom = ["[2026/11/25 20:00:00] ppocr INFO: epoch: [1/10], global_step: 3, loss: 5.0",
           "MemoryError: (ResourceExhausted) Out of memory error on GPU 0. Cannot allocate 2.0GB"]
    assert _classify(oom).kind == "out_of_gpu_memory"
    shm = ["SystemError: (Fatal) DataLoader reader thread raised an exception.",
           "ERROR: Unexpected BUS error encountered in DataLoader worker. This might be caused by "
           "insufficient shared memory (shm)"]
    assert _classify(shm).kind == "shared_memory"
    key = ["TypeError: MobileNetV3.__init__() got an unexpected keyword argument 'bogus'"]
    assert _classify(key).kind == "unknown_config_key"
    assert _classify(["all good"], rc=0) is None
    killed = _classify(["[2026/11/25 20:00:00] ppocr INFO: epoch: [1/1], global_step: 1"], rc=-9)
    assert killed.kind == "killed"


def _shown(lines: list) -> list:
    hold = TracebackHold()
    out = [s for line in lines for s in hold.feed(line + "\n")]
    return [s.rstrip("\n") for s in out + hold.end()]


def test_a_full_disks_traceback_stays_off_the_console_other_lines_pass() -> None:
    loss = "[2026/12/05 16:00:33] ppocr INFO: epoch: [1/2], global_step: 4, loss: 76.157822"
    enospc = ["Traceback (most recent call last):", '  File "x.py", line 1, in <module>',
              "    pickle.dump(saved_obj, f)", "OSError: [Errno 28] No space left on device"]
    assert _shown([loss] + enospc) == [loss]  # dropped even when the output ends in the block
    chained = enospc + ["", "During handling of the above exception, another exception occurred:",
                        ""] + enospc[:2] + ["ValueError: x"]
    assert _shown(chained + [loss]) == [loss]
    other = ["Traceback (most recent call last):", '  File "x.py", line 1, in <module>',
             "KeyError: 'Head'"]
    assert _shown(other + ["", loss]) == other + ["", loss]  # any other traceback is shown, in order
    assert _shown(other) == other


def test_nan_loss_stops_the_run() -> None:
    c = FailureClassifier(nan_patience=3)
    line = ("[2026/11/25 20:00:00] ppocr INFO: epoch: [1/10], global_step: {}, lr: 0.1, "
            "loss: nan, avg_reader_cost: 0.1 s")
    assert c.feed(line.format(1)) is None and c.feed(line.format(2)) is None
    failure = c.feed(line.format(3))
    assert failure is not None and failure.kind == "nan_loss" and "learning rate" in failure.fix


@pytest.mark.slow
def test_missing_label_file_is_refused_before_the_engine_starts(engine, make_config: Callable[..., Path],
                                                                  tmp_path: Path) -> None:
    """Like `rectrain config check` (exit 2), not an engine failure (exit 4) after it started."""
    cfg = make_config()
    data = yaml.safe_load(cfg.read_text(encoding="utf-8"))
    data["Train"]["dataset"]["label_file_list"] = [str(tmp_path / "nope.txt")]
    cfg.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    run = tmp_path / "run"
    with pytest.raises(ConfigError) as info:
        start_recognition_training(cfg, run, device="cpu", display="none")
    assert "Train.dataset.label_file_list" in str(info.value) and "nope.txt" in str(info.value)
    assert info.value.exit_code == 2 and not (run / "train.log").exists()


@pytest.mark.slow
def test_unknown_config_key_is_classified(engine, make_config: Callable[..., Path], tmp_path: Path) -> None:
    cfg = make_config()
    data = yaml.safe_load(cfg.read_text(encoding="utf-8"))
    # the engine ignores unknown keyword keys (**kwargs) but not an unknown class name
    data["Architecture"]["Backbone"]["name"] = "MobileNetV33"
    cfg.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(EngineFailure) as info:
        start_recognition_training(cfg, tmp_path / "run", device="cpu", display="none")
    assert info.value.kind == "unknown_config_key" and "backbone only support" in str(info.value)
    assert info.value.exit_code == 4
