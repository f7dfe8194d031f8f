"""The RECTRAIN_* settings: read once into one typed object; a malformed value is refused with
its name and the fix (exit 2, before anything runs); an unknown name is warned about with the
closest valid one."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from rectrain.errors import EXIT_USER_ERROR, ConfigError
from rectrain.settings import VARIABLES, Settings, unknown_names


def test_defaults_and_typed_values() -> None:
    assert Settings.from_env({}) == Settings()
    got = Settings.from_env({"RECTRAIN_SEAL_AFTER_S": "0.3", "RECTRAIN_NO_FASTPATH": "yes",
                             "RECTRAIN_DEVICE": "CPU", "RECTRAIN_ML_ROOT": "/tmp/ml",
                             "RECTRAIN_INTERRUPT_UPLOAD_S": "30", "TRAINING_JOB_NAME": "job-1",
                             "RECTRAIN_HOST_RESOLVE_TIMEOUT": "1"})
    assert got.seal_after_s == 0.3 and got.no_fastpath is True and got.device == "cpu"
    assert got.ml_root == "/tmp/ml" and got.interrupt_upload_s == 30.0
    assert got.sagemaker_job == "job-1" and got.host_resolve_timeout_s == 1.0
    assert Settings.from_env({"RECTRAIN_NO_FASTPATH": "0"}).no_fastpath is False
    assert Settings.from_env({"RECTRAIN_WEED": "  "}).weed is None  # blank: unset


@pytest.mark.parametrize(("name", "value", "words"), [
    ("RECTRAIN_SEAL_AFTER_S", "soon", "number of seconds"),
    ("RECTRAIN_INTERRUPT_UPLOAD_S", "-5", "number of seconds"),
    ("RECTRAIN_NO_FASTPATH", "maybe", "neither on nor off"),
    ("RECTRAIN_DEVICE", "tpu", "not a device"),
])
def test_a_malformed_value_is_refused_with_the_fix(name: str, value: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({name: value})
    assert name in str(info.value) and words in str(info.value) and info.value.fix


def test_an_unknown_name_is_warned_about_with_the_closest(caplog: pytest.LogCaptureFixture) -> None:
    assert unknown_names({"RECTRAIN_SEAL_AFTER_S": "1"}) == []
    # the test suite's own variables (README: RECTRAIN_TEST_CACHE) are not rectrain's to judge
    assert unknown_names({"RECTRAIN_TEST_CACHE": "/c", "RECTRAIN_TEST_SEED": "3"}) == []
    [line] = unknown_names({"RECTRAIN_SEAL_AFTER": "1"})
    assert "RECTRAIN_SEAL_AFTER is not a rectrain setting" in line and "RECTRAIN_SEAL_AFTER_S?" in line
    [line] = unknown_names({"RECTRAIN_ZZZZZZZZ": "1"})
    assert "known:" in line and "RECTRAIN_WEED" in line
    with caplog.at_level(logging.WARNING, logger="rectrain"):
        Settings.from_env({"RECTRAIN_NOFASTPATH": "1"})
    assert "did you mean RECTRAIN_NO_FASTPATH?" in caplog.text


def test_every_variable_has_a_field() -> None:
    fields = set(Settings.__dataclass_fields__)
    assert set(VARIABLES) <= fields
    assert all(name.startswith("RECTRAIN_") for name, _, _ in VARIABLES.values())


def test_the_cli_refuses_a_malformed_setting_before_running() -> None:
    env = dict(os.environ, RECTRAIN_SEAL_AFTER_S="soon", RECTRAIN_TYPO_SETTING="1")
    proc = subprocess.run([sys.executable, "-m", "rectrain", "config", "presets", "--json"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == EXIT_USER_ERROR
    assert "RECTRAIN_SEAL_AFTER_S='soon'" in proc.stderr and "Fix:" in proc.stderr
    assert "RECTRAIN_TYPO_SETTING is not a rectrain setting" in proc.stderr
    assert "Traceback" not in proc.stderr
