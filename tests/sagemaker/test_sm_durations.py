"""SageMaker durations within the API's limits (MaxRuntimeInSeconds 1 s..28 days, a job 30 days
in all) and a warning for one that cannot be meant (30 seconds)."""

from __future__ import annotations

import logging

import pytest
from sm_helpers import job_dict

from rectrain.errors import ConfigError
from rectrain.sagemaker.jobconfig import MAX_RUNTIME_S, check_job_config, job_config_from_dict
from rectrain.sagemaker.request import build_training_job_request


def _job(**extra):
    return job_config_from_dict(job_dict(**extra))


@pytest.mark.parametrize("max_run", ["28d", MAX_RUNTIME_S, "12h", "90m"])
def test_durations_within_the_limits_pass(max_run):
    check_job_config(_job(max_run=max_run))


@pytest.mark.parametrize("max_run", ["60d", "29d", MAX_RUNTIME_S + 1])
def test_max_run_past_28_days_is_refused_before_sending(max_run):
    with pytest.raises(ConfigError, match="limit of 28 days"):
        check_job_config(_job(max_run=max_run))


def test_spot_max_wait_past_30_days_is_refused():
    with pytest.raises(ConfigError, match="30 days"):
        check_job_config(_job(max_run="20d", spot=True, max_wait="31d"))
    check_job_config(_job(max_run="28d", spot=True))  # the default max_wait stays within


def test_a_max_run_of_seconds_is_sent_but_warned_about(caplog):
    job = _job(max_run=30)
    with caplog.at_level(logging.WARNING):
        check_job_config(job)
    assert "30 s" in caplog.text and "30m" in caplog.text
    assert build_training_job_request(job)["StoppingCondition"]["MaxRuntimeInSeconds"] == 30
