"""The rules behind the black-box security tests, each judged in-process in milliseconds
(issue 25): the strict unpickler's exact allowlist, the marker parser, the engine override
writer (judged by PyYAML's full loader, which the engine uses), the redaction, the safe
extractor's modes, the SageMaker defaults and the printed IAM policy."""

from __future__ import annotations

import io
import json
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.security.gadgets import PWNED, ExecGadget, NumpyGadget, canary, canary_code, tagged_name


# ----------------------------------------------------------------------------- the unpickler
def test_the_unpickler_refuses_gadgets_and_names_them(tmp_path: Path) -> None:
    from rectrain.checkpoints import pickles
    from rectrain.errors import IntegrityError

    target = canary(tmp_path, "rules")
    for gadget, name in ((ExecGadget(canary_code(target)), "builtins.exec"),
                         (NumpyGadget(canary_code(target)), "runstring")):
        path = tmp_path / "w.pdparams"
        path.write_bytes(pickle.dumps({"w": np.zeros(2), "x": gadget}, protocol=4))
        with pytest.raises(IntegrityError) as info:
            pickles.load_file(path)
        assert name in info.value.message
    assert not target.exists()


def test_the_engine_gets_plain_data_only(tmp_path: Path) -> None:
    """engine_copy re-pickles what the allowlist read: the copy names only numpy's array
    globals (checked with pickletools, not with rectrain's own reader)."""
    import collections
    import pickletools

    from rectrain.checkpoints import pickles

    src = tmp_path / "in" / "latest"
    src.parent.mkdir()
    state = collections.OrderedDict(w=np.arange(6, dtype=np.float32).reshape(2, 3), n=np.int64(3))
    src.with_name("latest.pdparams").write_bytes(pickle.dumps(state, protocol=2))
    copy = pickles.engine_copy(src, tmp_path / "out", suffixes=(".pdparams",))
    data = copy.with_name("latest.pdparams").read_bytes()
    names = {arg for op, arg, _ in pickletools.genops(data) if op.name in ("GLOBAL", "SHORT_BINUNICODE")
             and isinstance(arg, str) and arg.startswith(("numpy", "builtins", "collections", "_codecs"))}
    assert names <= {"numpy", "numpy._core.multiarray", "numpy.core.multiarray", "collections"}
    loaded = pickle.loads(data)  # noqa: S301 - the copy just written
    assert np.array_equal(loaded["w"], state["w"]) and int(loaded["n"]) == 3


# ----------------------------------------------------------------------------- markers
GOOD = {"name": "latest", "epoch": 1, "global_step": 4, "run_id": "0123abcd",
        "engine_prefix": "latest", "files": {"latest.states": {"size": 1, "sha256": "a" * 64}}}


@pytest.mark.parametrize("change", [
    {"files": {"/tmp/x.pdparams": {"size": 1, "sha256": "a" * 64}}},
    {"files": {"../latest.pdparams": {"size": 1, "sha256": "a" * 64}}},
    {"files": {"latest.pdparams": {"size": 1}}},
    {"files": {"latest.pdparams": {"size": 1, "sha256": "A" * 63}}},
    {"engine_prefix": "latest: !!python/object/apply:exec ['x']"},
    {"folder": "../../elsewhere"},
    {"run_id": "a/b"},
], ids=["absolute", "dotdot", "no-sha", "bad-sha", "tagged-prefix", "folder-path", "run-id"])
def test_a_marker_names_names(change: dict) -> None:
    from rectrain.checkpoints.local import parse_marker

    assert parse_marker(GOOD).global_step == 4
    with pytest.raises(ValueError):
        parse_marker(dict(GOOD, **change))


# ----------------------------------------------------------------------------- overrides
@pytest.mark.parametrize("value", [tagged_name(Path("/tmp/x")), "a: b", "!!python/name:os.system",
                                   "สวัสดี", "[1, 2]", 3, 0.5, True, None, [0, 8], "~"])
def test_an_override_reads_back_as_the_same_value(tmp_path: Path, value: object) -> None:
    """As the engine reads it: ``k, v = s.split("=")`` then ``yaml.load(v, Loader=yaml.Loader)``."""
    from rectrain.engine.launch import format_override

    key, text = format_override("Global.checkpoints", value).split("=")
    assert key == "Global.checkpoints"
    assert yaml.load(text, Loader=yaml.Loader) == value  # noqa: S506 - the engine's own call


# ----------------------------------------------------------------------------- redaction
@pytest.mark.parametrize("text,secret", [
    ("http://alice:pw-123@127.0.0.1:5000/x", "pw-123"),
    ("https://mlflow.example.com/?token=tk-456&x=1", "tk-456"),
    ("could not log (password=pw-789)", "pw-789"),
    ("https://h/p?X-Amz-Signature=abc123def", "abc123def"),
])
def test_redaction_removes_the_secret(text: str, secret: str) -> None:
    from rectrain.redaction import has_credentials, real_uri, redact

    assert secret not in redact(text) and has_credentials(text)
    assert real_uri(redact(text), None, text) == text


def test_log_lines_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    from rectrain.logs import get_logger

    with caplog.at_level("INFO", logger="rectrain"):
        get_logger("tests.security").info("tracking at %s", "http://u:SECRET-1@h:1")
    assert "SECRET-1" not in caplog.text and "***@h:1" in caplog.text


# ----------------------------------------------------------------------------- archives
def test_extracted_files_get_no_mode_from_the_archive(tmp_path: Path) -> None:
    from rectrain.outputs.files import safe_extract

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, mode in (("run.sh", 0o4777), ("data.txt", 0o666)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(PWNED), mode
            tar.addfile(info, io.BytesIO(PWNED.encode()))
    archive = tmp_path / "a.tar"
    archive.write_bytes(buf.getvalue())
    safe_extract(archive, tmp_path / "out")
    assert (tmp_path / "out" / "run.sh").stat().st_mode & 0o7777 == 0o755
    assert (tmp_path / "out" / "data.txt").stat().st_mode & 0o7777 == 0o644


# ----------------------------------------------------------------------------- SageMaker
def _job(**extra: object) -> object:
    from rectrain.sagemaker.jobconfig import job_config_from_dict

    return job_config_from_dict(dict({
        "name": "thai-rec", "role": "arn:aws:iam::123456789012:role/R",
        "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/rectrain:0.1.0",
        "region": "us-east-1", "train": "s3://rec-bucket/datasets/train", "output": "s3://rec-bucket/jobs",
        "instance_type": "ml.g5.xlarge", "training": {"preset": "crnn-mv3"}}, **extra))


@pytest.mark.parametrize("count,setting,expected", [(1, None, None), (2, None, True), (2, False, None)])
def test_inter_container_encryption(count: int, setting: object, expected: object) -> None:
    """Validated against botocore's SageMaker model by the request builder itself."""
    from rectrain.sagemaker.request import build_training_job_request

    extra = {"instance_count": count}
    if setting is not None:
        extra["inter_container_encryption"] = setting
    request = build_training_job_request(_job(**extra))
    assert request.get("EnableInterContainerTrafficEncryption") is expected


def test_the_printed_policy_writes_only_this_jobs_prefixes() -> None:
    from rectrain.sagemaker.iam import role_policy

    policy = role_policy(_job(checkpoint_s3="s3://rec-bucket/ckpt/thai"), "thai-rec-2026-12-05-08-00-00-000")
    writes = [s for s in policy["Statement"] if "s3:PutObject" in s["Action"]]
    assert [r for s in writes for r in s["Resource"]] == [
        "arn:aws:s3:::rec-bucket/jobs/thai-rec-2026-12-05-08-00-00-000/*",
        "arn:aws:s3:::rec-bucket/ckpt/thai/*"]
    reads = [s for s in policy["Statement"] if s["Action"] == ["s3:GetObject"]]
    assert reads[0]["Resource"] == ["arn:aws:s3:::rec-bucket/datasets/train/*"]
    json.dumps(policy)


# ----------------------------------------------------------------------------- ckpt download
@pytest.mark.parametrize("url", ["http://example.com/w.pdparams", "file:///etc/passwd",
                                 "ftp://example.com/w.pdparams"])
def test_download_refuses_unverifiable_addresses(tmp_path: Path, url: str) -> None:
    """Refused before any connection: plain http without a pinned hash (anyone on the way can
    swap the weights), and schemes that are not a download."""
    from rectrain.checkpoints.download import download_model
    from rectrain.errors import UserError

    with pytest.raises(UserError, match="https://"):
        download_model("mine", tmp_path, url=url, trust_unpinned=True)
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------- eval()'d names
@pytest.mark.parametrize("where", ["backbone", "transform"])
def test_names_the_engine_evaluates_are_class_names(where: str) -> None:
    from rectrain.config.modules import refuse_code_in_names
    from rectrain.errors import ConfigError

    code = "__import__('os').system('id')"
    config = {"Architecture": {"Backbone": {"name": "MobileNetV3"}},
              "Train": {"dataset": {"name": "SimpleDataSet", "transforms": [{"DecodeImage": None}]}}}
    refuse_code_in_names(config, "cfg.yml")
    if where == "backbone":
        config["Architecture"]["Backbone"]["name"] = code
    else:
        config["Train"]["dataset"]["transforms"].append({code: None})
    with pytest.raises(ConfigError, match="not a class name"):
        refuse_code_in_names(config, "cfg.yml")
