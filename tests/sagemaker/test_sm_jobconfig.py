"""The job config: typed, YAML or flags, unknown keys refused with the closest key."""

from __future__ import annotations

import pytest
from sm_helpers import job_dict

from rectrain.errors import ConfigError
from rectrain.sagemaker.jobconfig import (
    JobConfig,
    job_config_from_dict,
    load_job_config,
    merge_overrides,
    parse_duration,
)


def test_yaml_round_trip(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text(
        "name: thai-rec\n"
        "instance-type: ml.g5.2xlarge\n"
        "spot: true\n"
        "max_run: 12h\n"
        "train: s3://b/train\n"
        "tags: {team: ocr}\n"
        "training:\n"
        "  preset: th-ppocrv5-mobile\n"
        "  image_shape: [3, 48, 320]\n"
        "  epochs: '30'\n", encoding="utf-8")
    job = load_job_config(str(path))
    assert job.instance_type == "ml.g5.2xlarge"
    assert job.spot is True and job.max_run_seconds == 43200 and job.max_wait_seconds == 86400
    assert job.training.image_shape == [3, 48, 320] and job.training.epochs == 30
    assert job.tags == {"team": "ocr"}


def test_unknown_key_names_the_closest(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'instance_typ'") as info:
        job_config_from_dict({"instance_typ": "ml.g5.xlarge"})
    assert "instance_type" in info.value.fix
    with pytest.raises(ConfigError, match="training.'epoch'") as info:
        job_config_from_dict({"training": {"epoch": 3}})
    assert "epochs" in info.value.fix


def test_bad_values_are_named(tmp_path):
    with pytest.raises(ConfigError, match="instance_count"):
        job_config_from_dict({"instance_count": "two"})
    with pytest.raises(ConfigError, match="max_run"):
        job_config_from_dict({"max_run": "forever"})
    with pytest.raises(ConfigError, match="not an s3:// URI"):
        job_config_from_dict({"train": "/data/train"})
    with pytest.raises(ConfigError, match="max_wait .* must be more than max_run"):
        job_config_from_dict({"spot": True, "max_run": "10h", "max_wait": "5h"})
    with pytest.raises(ConfigError, match="only used with spot"):
        job_config_from_dict({"max_wait": "5h"})
    with pytest.raises(ConfigError, match="subnets and security_groups"):
        job_config_from_dict({"subnets": ["subnet-1"]})
    with pytest.raises(ConfigError, match="not valid YAML"):
        bad = tmp_path / "bad.yaml"
        bad.write_text("name: [unclosed\n", encoding="utf-8")
        load_job_config(str(bad))
    with pytest.raises(ConfigError, match="does not exist"):
        load_job_config(str(tmp_path / "missing.yaml"))


def test_flags_override_yaml():
    job = job_config_from_dict(job_dict(spot=False))
    merged = merge_overrides(job, {"spot": True, "max_run": "2h", "training.epochs": 5,
                                   "instance_type": None, "training.preset": None})
    assert merged.spot is True and merged.max_run_seconds == 7200
    assert merged.training.epochs == 5 and merged.training.preset == "th-ppocrv5-mobile"
    assert merged.instance_type == JobConfig().instance_type


@pytest.mark.parametrize("text, seconds", [(3600, 3600), ("90m", 5400), ("12h", 43200), ("2d", 172800),
                                           ("1.5h", 5400), ("45s", 45)])
def test_durations(text, seconds):
    assert parse_duration(text, "max_run") == seconds
