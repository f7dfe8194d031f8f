"""`rectrain monitor` dispatch: run folder, s3:// prefix, or a SageMaker job name (a job source
that the entry points plug into the monitor; the monitor itself does not import SageMaker)."""

from __future__ import annotations

import pytest

import rectrain
from rectrain.errors import UserError
from rectrain.monitor import follow as monitor_follow
from rectrain.monitor.follow import monitor_recognition_training_progress


def _no_aws(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # noqa: ANN001
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.chdir(tmp_path)


def test_a_bare_name_is_tried_as_a_sagemaker_job(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # noqa: ANN001
    _no_aws(monkeypatch, tmp_path)
    monkeypatch.setattr(monitor_follow, "_JOB_SOURCES", [])
    with pytest.raises(UserError) as info:
        rectrain.monitor_recognition_training_progress("thai-rec-20261125")  # the public API
    text = str(info.value)
    assert "not a run folder" in text and "SageMaker" in text and "Fix:" in text


def test_the_cli_follows_a_job_name(monkeypatch: pytest.MonkeyPatch, tmp_path, capsys) -> None:  # noqa: ANN001
    from rectrain.cli.main import main

    _no_aws(monkeypatch, tmp_path)
    monkeypatch.setattr(monitor_follow, "_JOB_SOURCES", [])
    assert main(["monitor", "thai-rec-20261125"]) == 2
    err = capsys.readouterr().err
    assert "not a run folder" in err and "SageMaker" in err


def test_the_monitor_alone_knows_folders_and_s3_only(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # noqa: ANN001
    monkeypatch.setattr(monitor_follow, "_JOB_SOURCES", [])
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="no such run folder"):
        monitor_recognition_training_progress("thai-rec-20261125")


def test_the_first_job_source_that_answers_wins(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # noqa: ANN001
    monkeypatch.setattr(monitor_follow, "_JOB_SOURCES", [])
    monkeypatch.chdir(tmp_path)
    asked = []

    def not_mine(source: str, *, follow: bool = False) -> None:
        asked.append(("not_mine", source, follow))

    def mine(source: str, *, follow: bool = False) -> dict:
        asked.append(("mine", source, follow))
        return {"source": source, "kind": "test-job"}

    for source in (not_mine, mine, mine):  # registering twice is harmless
        monitor_follow.register_job_source(source)
    assert monitor_recognition_training_progress("job-1", follow=True) == {"source": "job-1",
                                                                           "kind": "test-job"}
    assert asked == [("not_mine", "job-1", True), ("mine", "job-1", True)]
