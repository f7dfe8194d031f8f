from __future__ import annotations

import json

import pytest

from rectrain.errors import PermissionProblem
from rectrain.storage.check import check_s3_access
from rectrain.storage.objects import list_objects
from rectrain.storage.push import push
from rectrain.storage.s3 import S3Uri

from .helpers import make_tree


def test_full_rights_pass_and_probe_is_removed(s3, s3_server, s3_client, s3_bucket):
    report = check_s3_access(s3, S3Uri.parse(f"s3://{s3_bucket}/train"))
    assert report.ok, report.render()
    statuses = {line.name: line.status for line in report.lines}
    for name in ("credentials", "bucket", "list", "get", "put", "delete"):
        assert statuses[name] == "ok", report.render()
    assert statuses["identity"] in ("ok", "info")
    assert list_objects(s3, S3Uri.parse(f"s3://{s3_bucket}")) == []


def test_read_only_identity_names_missing_put_and_delete(s3_server, s3_client, s3_bucket):
    s3_client.put_object(Bucket=s3_bucket, Key="train/existing.txt", Body=b"data")
    report = check_s3_access(s3_server.service(read_only=True), S3Uri.parse(f"s3://{s3_bucket}/train"))
    assert not report.ok
    assert report.missing == ["put", "delete"], report.render()
    text = report.render()
    assert "s3:PutObject denied" in text and "s3:DeleteObject denied" in text
    put_line = next(line for line in report.lines if line.name == "put")
    assert put_line.policy == {
        "Effect": "Allow",
        "Action": ["s3:PutObject"],
        "Resource": [f"arn:aws:s3:::{s3_bucket}/train/*"],
    }
    assert json.loads(json.dumps(report.to_dict()))["ok"] is False


def test_missing_bucket_fails(s3, s3_client):
    report = check_s3_access(s3, S3Uri.parse("s3://bucket-that-is-not-there/x"))
    assert not report.ok and report.missing == ["bucket"]


def test_push_with_read_only_identity_fails_before_any_transfer(s3, s3_server, s3_client, s3_bucket,
                                                                 tmp_path):
    src = tmp_path / "src"
    make_tree(src, files=6)
    with pytest.raises(PermissionProblem) as info:
        push(s3_server.service(read_only=True), src, S3Uri.parse(f"s3://{s3_bucket}/ds"), progress=False)
    assert info.value.action == "s3:PutObject"
    assert "s3:PutObject" in str(info.value) and f"arn:aws:s3:::{s3_bucket}/ds/*" in str(info.value)
    assert list_objects(s3, S3Uri.parse(f"s3://{s3_bucket}")) == []  # the bucket stayed empty
