"""`rectrain monitor` dispatch: run folder, s3:// prefix, or a SageMaker job name."""

from __future__ import annotations

import pytest

from rectrain.errors import UserError
from rectrain.monitor.follow import monitor_recognition_training_progress


def test_a_bare_name_is_tried_as_a_sagemaker_job(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # noqa: ANN001
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError) as info:
        monitor_recognition_training_progress("thai-rec-20261125")
    text = str(info.value)
    assert "not a run folder" in text and "SageMaker" in text and "Fix:" in text
