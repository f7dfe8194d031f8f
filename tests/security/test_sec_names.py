"""Names read from S3 or from a job's hyperparameters stay names (issue 25, items 2, 3 and 8).

- a marker (``_COMPLETE.json``) listing an absolute or ``../`` name: ``ckpt pull`` must not
  write outside its folder;
- a marker entry without ``sha256``: ``ckpt push`` must not upload whatever file it names;
- a marker's ``engine_prefix`` holding a YAML tag: it must never reach the engine's ``-o``
  override, whose values the engine parses with PyYAML's full loader;
- ``train_labels`` naming a file outside the train channel: the container must refuse it
  (and not copy the file's lines into the failure reason SageMaker shows);
- a checkpoint key with ``//`` restored by ``run-local``'s emulation of SageMaker's sync.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict

import pytest

from tests.security.gadgets import (
    BASE_PREFIX,
    PWNED,
    BaseRun,
    assert_refused,
    bucket_objects,
    canary,
    crafted_checkpoint,
    named_checkpoints,
    objects_containing,
    pull_and_export,
    rectrain,
    reseal,
    resume,
    sha256,
    shown,
    states_bytes,
    tagged_name,
    write_contract,
)
from tests.training.tinydata import make_dataset

FILES = {"latest.pdparams": b"weights", "latest.pdopt": b"optimizer", "latest.states": states_bytes()}


# ----------------------------------------------------------------------------- ckpt pull
@pytest.mark.parametrize("form", ["absolute", "dotdot"])
def test_pull_writes_nothing_outside_its_folder(s3_client: Any, s3_bucket: str, env: Dict[str, str],
                                                tmp_path: Path, form: str) -> None:
    """A marker listing ``/abs/path`` (S3 serves it from ``<folder>/abs/path``: rectrain joins
    keys without their slashes) or ``../../path`` beside the real files."""
    target = canary(tmp_path, f"pulled-{form}")
    dest = tmp_path / "pulled"
    name = str(target) if form == "absolute" else os.path.relpath(target, dest / "latest")
    marker_files = {name: {"size": len(PWNED), "sha256": sha256(PWNED.encode())}}
    objects = crafted_checkpoint(BASE_PREFIX, FILES, marker_files=marker_files)
    folder = json.loads(objects[f"{BASE_PREFIX}/latest.json"])["folder"]
    if form == "absolute":  # where the download asks for it (SeaweedFS refuses `..` keys)
        objects[f"{BASE_PREFIX}/{folder}/{str(target).lstrip('/')}"] = PWNED.encode()
    for key, data in objects.items():
        s3_client.put_object(Bucket=s3_bucket, Key=key, Body=data)
    proc = rectrain(["ckpt", "pull", f"s3://{s3_bucket}/{BASE_PREFIX}", dest, "--name", "latest"], env)
    assert_refused(target, proc)


# ----------------------------------------------------------------------------- ckpt push
def test_push_uploads_no_file_a_marker_names_without_checksum(s3_client: Any, s3_bucket: str,
                                                              env: Dict[str, str], tmp_path: Path) -> None:
    """A local checkpoint folder (e.g. one SageMaker restored from a prefix someone else can
    write) whose marker lists a file outside it with a size and no sha256."""
    secret = tmp_path / "home" / "credentials"
    secret.parent.mkdir()
    secret.write_text("aws_secret_access_key = SECRETKEY-push-4f1d\n", encoding="utf-8")
    snaps = tmp_path / "run" / "checkpoints" / "snapshots"
    folder = snaps / "s00000009-latest-a77ac4"
    folder.mkdir(parents=True)
    for fname, data in FILES.items():
        (folder / fname).write_bytes(data)
    objects = crafted_checkpoint("x", FILES, marker_files={str(secret): {"size": secret.stat().st_size}})
    (folder / "_COMPLETE.json").write_bytes(objects[f"x/{folder.name}/_COMPLETE.json"])
    (snaps / "latest.json").write_bytes(objects["x/latest.json"])
    proc = rectrain(["ckpt", "push", tmp_path / "run", f"s3://{s3_bucket}/pushed"], env)
    leaked = objects_containing(bucket_objects(s3_client, s3_bucket), "SECRETKEY-push-4f1d")
    assert not leaked, f"uploaded a file outside the checkpoint: {leaked}\n{shown(proc)}"
    assert proc.returncode != 0, shown(proc)


# ----------------------------------------------------------------------------- engine_prefix
def _tagged(base: BaseRun, target: Path) -> dict:
    """Every named checkpoint's files renamed to a tagged prefix, the marker's
    ``engine_prefix`` set to it (marker and pointer re-sealed)."""
    objects = dict(base.objects)
    for name in named_checkpoints(objects):
        objects = reseal(objects, BASE_PREFIX, name, rename_prefix=tagged_name(target))
    return objects


@pytest.mark.slow
def test_tagged_engine_prefix_never_reaches_the_engine_on_resume(base_run: BaseRun, prefix_of: Any,
                                                                 env: Dict[str, str],
                                                                 tmp_path: Path) -> None:
    target = canary(tmp_path, "tag-resume")
    proc = resume(base_run, prefix_of(_tagged(base_run, target)), tmp_path / "run", env)
    assert_refused(target, proc)


@pytest.mark.slow
def test_tagged_engine_prefix_never_reaches_the_exporter(base_run: BaseRun, prefix_of: Any,
                                                         env: Dict[str, str], tmp_path: Path) -> None:
    target = canary(tmp_path, "tag-export")
    pull, export = pull_and_export(base_run, prefix_of(_tagged(base_run, target)), tmp_path, env)
    assert_refused(target, pull, export)


# ----------------------------------------------------------------------------- hyperparameters
@pytest.mark.parametrize("form", ["absolute", "dotdot"])
def test_hyperparameter_names_no_file_outside_the_channel(env: Dict[str, str], tmp_path: Path,
                                                          form: str) -> None:
    """``train_labels`` pointing at a file elsewhere in the container: refused, naming the
    hyperparameter, and none of that file's lines in the failure reason or the log."""
    secret = tmp_path / "elsewhere" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("images/img_000.png\tSECRETLABEL\n", encoding="utf-8")
    ml = tmp_path / "ml"
    train = ml / "input" / "data" / "train"
    value = str(secret) if form == "absolute" else os.path.relpath(secret, train)
    make_dataset(write_contract(ml, {"preset": "crnn-mv3", "epochs": "1", "train_labels": value}))
    proc = rectrain(["sagemaker", "entrypoint", "train", "--ml-root", ml],
                    dict(env, RECTRAIN_DEVICE="cpu"))
    failure = (ml / "output" / "failure").read_text(encoding="utf-8") \
        if (ml / "output" / "failure").is_file() else ""
    assert proc.returncode != 0, shown(proc)
    assert "SECRETLABEL" not in failure + proc.stdout + proc.stderr, \
        f"a line of {secret} reached the output\n{failure}\n{shown(proc)}"
    assert "train_labels" in failure, f"the failure does not name train_labels:\n{failure}"


# ----------------------------------------------------------------------------- run-local's sync
def test_run_local_restore_writes_nothing_outside_the_checkpoint_folder(tmp_path: Path) -> None:
    """AWS S3 keeps ``ckpt//abs/path`` verbatim (SeaweedFS normalises it to ``ckpt/abs/path``,
    so this listing cannot be planted there): the emulation's restore is given, through a
    botocore Stubber validated against the S3 model, the listing AWS would return. Not
    black-box: the class is the one ``rectrain sagemaker run-local`` uses."""
    from botocore.response import StreamingBody
    from botocore.stub import Stubber

    from rectrain.emulator.checkpoint_agent import SageMakerCheckpointSync
    from rectrain.storage.s3 import S3Uri
    from rectrain.storage.service import S3Service

    target = canary(tmp_path, "restored")
    key = f"ckpt/{target}"  # "ckpt/" + "/tmp/...": the `//` key
    assert "//" in key
    service = S3Service(region="us-east-1", access_key="x", secret_key="x", fastpath=False)
    client = service.client  # the real boto3 client the agent's requests go through
    folder = tmp_path / "opt-ml-checkpoints"
    folder.mkdir()
    with Stubber(client) as stub:
        stub.add_response("list_objects_v2", {"Contents": [{"Key": key, "Size": len(PWNED)}],
                                              "IsTruncated": False, "KeyCount": 1},
                          {"Bucket": "bucket", "Prefix": "ckpt/"})
        body = StreamingBody(__import__("io").BytesIO(PWNED.encode()), len(PWNED))
        stub.add_response("get_object", {"Body": body, "ContentLength": len(PWNED)},
                          {"Bucket": "bucket", "Key": key})
        sync = SageMakerCheckpointSync(service, folder, S3Uri("bucket", "ckpt"))
        try:
            sync.restore()
        except Exception as exc:  # noqa: BLE001 - refusing the key is a fine answer
            print(f"restore refused: {exc}")
    assert not target.exists(), f"restore wrote {target}, outside {folder}"
