"""`rectrain sagemaker download` never unpacks over a folder of the user's: the destination's
model/ and checkpoints/ are replaced only when rectrain wrote them (the SageMaker control plane
is stubbed against botocore's model; nothing is downloaded before the refusal)."""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.stub import Stubber
from test_sm_follow import JOB, _describe, _sm

from rectrain.errors import UserError
from rectrain.outputs import OUTPUT_MARKER
from rectrain.sagemaker.follow import download_job


def test_download_refuses_a_folder_holding_the_users_model(tmp_path: Path) -> None:
    dest = tmp_path / "job"
    (dest / "model").mkdir(parents=True)
    (dest / "model" / "inference.pdiparams").write_bytes(b"last month's model")
    sm = _sm()
    with Stubber(sm) as stub:
        stub.add_response("describe_training_job", _describe(
            "Completed", "Completed", ModelArtifacts={"S3ModelArtifacts": "s3://b/out/model.tar.gz"}),
            {"TrainingJobName": JOB})
        with pytest.raises(UserError, match="model/.*rectrain did not write"):
            download_job(JOB, str(dest), sagemaker_client=sm, s3=None)
    assert (dest / "model" / "inference.pdiparams").read_bytes() == b"last month's model"
    assert not (dest / "model.tar.gz").exists() and not (dest / OUTPUT_MARKER).exists()
