"""Issue 21, what the first campaign left failing, against a real S3 (SeaweedFS on loopback):
`..` segments in an S3 prefix never reach the server (refused before any request, not
rejected by it), a pull of a prefix whose upload was interrupted (no manifest) fails loudly,
and `--on-demand` over a job config with `spot: true` and `max_wait` drops max_wait."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Dict

import pytest

from tests.hostile import world
from tests.hostile.harness import Case, Result, run_case

USER = 2
FAKE = world.FAKE_CREDS
_spot_job = world.job(world.JOB_HEAD + "spot: true\nmax_run: 2h\nmax_wait: 6h\n"
                      "training:\n  preset: th-ppocrv5-mobile\n  dict: dict.txt\n")


def _no_spot_request(tmp: Path, result: Result) -> None:  # noqa: ARG001
    start = result.output.index("{")
    request = json.loads(result.output[start:result.output.rindex("}") + 1])
    job = request.get("TrainingJobDefinition", request)
    assert not job.get("EnableManagedSpotTraining"), "still a spot job"
    assert "MaxWaitTimeInSeconds" not in job.get("StoppingCondition", {}), job.get("StoppingCondition")
    assert job["StoppingCondition"].get("MaxRuntimeInSeconds") == 7200


def _never_reached_the_server(tmp: Path, result: Result) -> None:  # noqa: ARG001
    assert "InvalidRequest" not in result.output and "Invalid Request" not in result.output, \
        "the `..` key was sent: the server refused it, rectrain did not"


SPOT_CASES = [
    Case("on-demand-drops-max-wait", ["sagemaker", "launch", "--job-config", "job.yaml", "--on-demand",
                                      "--dry-run"],
         _spot_job, 0, (), env=FAKE, check=_no_spot_request),
    Case("tune-on-demand-drops-max-wait", ["sagemaker", "tune", "--job-config", "job.yaml", "--on-demand",
                                           "--param", "lr=log:1e-4:1e-2", "--dry-run"], _spot_job, 0, (),
         env=FAKE,
         check=_no_spot_request),
]


@pytest.mark.parametrize("case", SPOT_CASES, ids=[c.id for c in SPOT_CASES])
def test_on_demand_over_a_spot_job_config(case: Case, tmp_path: Path) -> None:
    run_case(case, tmp_path)


def _s3_cases(bucket: str, endpoint: str) -> list:
    def world_parts(*parts: str):  # noqa: ANN202
        def setup(tmp: Path) -> None:
            world.place(tmp, *parts)
        return setup

    def interrupted_upload(tmp: Path) -> None:
        """A dataset pushed, then its manifest and one file gone: what an upload stopped
        before its end leaves (the manifest is written last)."""
        world.place(tmp, "data")
        world.rectrain("s3", "push", "data", f"s3://{bucket}/ds", "--endpoint-url", endpoint, cwd=tmp,
                       env=ENV)
        client = CLIENT["admin"]
        keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="ds/").get("Contents", [])]
        assert "ds/manifest.jsonl" in keys, keys
        client.delete_object(Bucket=bucket, Key="ds/manifest.jsonl")
        client.delete_object(Bucket=bucket, Key="ds/val.txt")

    dots = ("..", "Fix:")
    return [
        Case("s3-push-dotdot-prefix", ["s3", "push", "data", f"s3://{bucket}/a/../b"], world_parts("data"),
             USER,
             dots, check=_never_reached_the_server, leaves_nothing=True),
        Case("ckpt-push-dotdot-prefix", ["ckpt", "push", "run", f"s3://{bucket}/x/../y"], world_parts("run"),
             USER,
             dots, check=_never_reached_the_server, leaves_nothing=True),
        Case("s3-pull-dotdot-prefix", ["s3", "pull", f"s3://{bucket}/a/../data", "dest"], lambda t: None,
             USER,
             dots, check=_never_reached_the_server, leaves_nothing=True),
        Case("train-checkpoint-s3-dotdot", ["train", "--config", "cfg/train.yml", "--run-dir", "newrun",
                                            "--device",
                                            "cpu", "--display", "plain", "--max-steps", "2",
                                            "--no-tensorboard",
                                            "--checkpoint-s3", f"s3://{bucket}/runs/../x"],
             world_parts("data", "cfg"), USER, dots, check=_never_reached_the_server, leaves_nothing=True),
        Case("s3-pull-interrupted-upload-no-manifest", ["s3", "pull", f"s3://{bucket}/ds", "dest"],
             interrupted_upload, (1, USER), ("manifest", "Fix:"), leaves_nothing=True),
    ]


ENV: Dict[str, str] = {}
CLIENT: Dict[str, Any] = {}
S3_IDS = [c.id for c in _s3_cases("bucket", "http://127.0.0.1:1")]


@pytest.mark.parametrize("case_id", S3_IDS)
def test_s3_leftovers(case_id: str, tmp_path: Path, s3_server: Any, s3_bucket: str, s3_env: dict,
                      s3_client: Any, hostile_world: Path) -> None:  # noqa: ARG001
    ENV.clear()
    ENV.update(s3_env)
    CLIENT["admin"] = s3_client
    case = next(c for c in _s3_cases(s3_bucket, s3_server.endpoint_url) if c.id == case_id)
    run_case(dataclasses.replace(case, env=dict(s3_env)), tmp_path)
