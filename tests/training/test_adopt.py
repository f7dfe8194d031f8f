"""--resume where run-state.json is lost never adopts a run from the checkpoints silently
(issue 25 / 22): the refusal names the runs found and the flag; --adopt-run ID continues that
run from its newest step; an id with no complete checkpoint is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from rectrain.checkpoints.local import CheckpointInfo
from rectrain.errors import UserError
from rectrain.training.prepare import _adopt
from rectrain.training.request import TrainRequest
from rectrain.training.resume import Found


def _found(run_id: str, step: int, name: str = "latest") -> Found:
    return Found(f"s3://b/p/s{step:08d}-{name}-abcdef", "s3", name,
                 CheckpointInfo(name, 1, step, run_id=run_id, time=1000.0 - step))


def test_a_run_is_never_adopted_silently(tmp_path: Path) -> None:
    request = TrainRequest(config=tmp_path / "c.yml", run_dir=tmp_path / "run", mode="resume")
    found = [_found("planted", 90), _found("mine", 40), _found("mine", 60, "iter_epoch_3")]
    with pytest.raises(UserError) as err:
        _adopt(request, found)
    text = str(err.value)
    assert "planted, mine" in text and "--adopt-run planted" in text and "never adopted" in text
    adopted = _adopt(request.replace(adopt_run="mine"), found)
    assert adopted is not None and (adopted.run_id, adopted.global_step) == ("mine", 60)  # by step
    with pytest.raises(UserError, match="no complete checkpoint of that run"):
        _adopt(request.replace(adopt_run="nosuch"), found)
    assert _adopt(request, []) is None  # nothing there: a first attempt
