from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from rectrain.errors import IntegrityError, PermissionProblem, StorageError
from rectrain.storage.aws_errors import iam_statement, translate_error
from rectrain.storage.s3 import S3Uri
from rectrain.storage.service import S3Service


def test_s3uri_parse_join_and_prefix():
    uri = S3Uri.parse("s3://my-bucket/datasets/thai/")
    assert (uri.bucket, uri.key, uri.prefix) == ("my-bucket", "datasets/thai/", "datasets/thai/")
    assert str(uri.join("train", "/a.png")) == "s3://my-bucket/datasets/thai/train/a.png"
    root = S3Uri.parse("s3://my-bucket")
    assert root.key == "" and root.prefix == "" and str(root.join("x")) == "s3://my-bucket/x"
    assert S3Uri.parse("s3://b-1/k").name == "k"
    for bad in ("my-bucket/x", "s3:///x", "s3://a/x", "https://b/x"):
        with pytest.raises(StorageError):
            S3Uri.parse(bad)


def test_translate_error_names_action_resource_and_keeps_cause():
    denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "PutObject")
    err = translate_error(denied, "s3:PutObject", "s3://bkt/data")
    assert isinstance(err, PermissionProblem)
    assert err.action == "s3:PutObject" and err.resource == "s3://bkt/data"
    assert "arn:aws:s3:::bkt/data/*" in str(err)
    codes = {
        "NoSuchBucket": "does not exist",
        "InvalidAccessKeyId": "access key",
        "SignatureDoesNotMatch": "secret key",
        "ExpiredToken": "expired",
        "SlowDown": "SlowDown",
    }
    for code, words in codes.items():
        err = translate_error(ClientError({"Error": {"Code": code}}, "GetObject"), "s3:GetObject", "s3://b/k")
        assert isinstance(err, StorageError) and words in str(err), (code, str(err))
    bad = translate_error(
        ClientError({"Error": {"Code": "BadDigest"}}, "PutObject"), "s3:PutObject", "s3://b/k"
    )
    assert isinstance(bad, IntegrityError)
    with pytest.raises(StorageError) as info:
        try:
            raise denied
        except ClientError as exc:
            raise translate_error(exc, "s3:PutObject", "s3://b/k") from exc
    assert info.value.__cause__ is denied


def test_iam_statements():
    assert iam_statement("s3:ListBucket", "s3://bkt/ds") == {
        "Effect": "Allow",
        "Action": ["s3:ListBucket"],
        "Resource": ["arn:aws:s3:::bkt"],
        "Condition": {"StringLike": {"s3:prefix": ["ds/*"]}},
    }
    assert iam_statement("s3:GetObject", "s3://bkt")["Resource"] == ["arn:aws:s3:::bkt/*"]


def test_endpoint_comes_from_standard_aws_configuration(monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9999")
    assert S3Service().client.meta.endpoint_url == "http://127.0.0.1:9999"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9998")  # the service-specific one wins
    assert S3Service().client.meta.endpoint_url == "http://127.0.0.1:9998"
    assert S3Service("http://127.0.0.1:9997").client.meta.endpoint_url == "http://127.0.0.1:9997"
    assert S3Service("http://127.0.0.1:9997").resolved_endpoint == "http://127.0.0.1:9997"


def test_unknown_profile_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    with pytest.raises(StorageError) as info:
        assert S3Service(profile="no-such-profile").client is None  # raises first
    assert "no-such-profile" in str(info.value)


def test_only_boto_and_os_errors_are_translated_for_users() -> None:
    """A bug (here a TypeError, as in a progress callback) stays internal: exit 3, not 2."""
    from botocore.exceptions import ClientError

    from rectrain.errors import EXIT_INTERNAL_ERROR, EXIT_USER_ERROR, InternalError, PermissionProblem
    from rectrain.storage.aws_errors import translate_error

    bug = translate_error(TypeError("unsupported operand"), "s3:PutObject", "s3://b/k")
    assert isinstance(bug, InternalError) and bug.exit_code == EXIT_INTERNAL_ERROR
    denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "PutObject")
    assert isinstance(translate_error(denied, "s3:PutObject", "s3://b/k"), PermissionProblem)
    disk = translate_error(OSError(28, "No space left on device"), "s3:GetObject", "s3://b/k")
    assert disk.exit_code == EXIT_USER_ERROR
