"""The server dies in the middle of a push; after a restart the rerun completes, every object
matches the manifest, and nothing was counted done that was not."""

from __future__ import annotations

import hashlib
import threading
import time

import pytest

from rectrain.errors import StorageError
from rectrain.storage.manifest import MANIFEST_NAME, Manifest
from rectrain.storage.objects import list_objects
from rectrain.storage.pull import pull
from rectrain.storage.push import push
from rectrain.storage.s3 import S3Uri
from rectrain.storage.server import SeaweedServer

from .helpers import make_tree, tree_digest


def _slow_service(server, delay: float, event: str = "provide-client-params.s3.PutObject"):
    """A real S3 service whose uploads are a little slow, so the crash lands in the middle.
    ``provide-client-params`` fires for a botocore call; the small-object fast path, which
    signs its own requests, is slowed by :func:`_slow_fastpath`. ``service.hook_calls`` counts
    the delays."""
    service = server.service(max_attempts=2, retry_mode="standard", connect_timeout=2, read_timeout=10,
                             retry_budget_s=2)  # a dead server: fail fast (the policy has its own test)
    service.hook_calls = 0
    service.delay = delay
    service.client.slowed_by = service

    def slow(**kw):
        service.hook_calls += 1
        time.sleep(delay)

    service.client.meta.events.register(event, slow)
    return service


def _slow_fastpath(monkeypatch):
    """Every fast-path request of a slowed service waits its ``delay`` first (counted in its
    ``hook_calls``), those of the request loop too."""
    from rectrain.storage.fastpath import FastPath

    real = FastPath._send

    def send(self, *args, **kwargs):
        owner = getattr(self.client, "slowed_by", None)
        if owner is not None:
            owner.hook_calls += 1
            time.sleep(owner.delay)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(FastPath, "_send", send)

    from rectrain.storage.fastloop import RequestLoop

    real_begin = RequestLoop._begin

    def begin(self, *args, **kwargs):  # the one-thread loop of small files: each request waits too
        owner = getattr(self.fast.client, "slowed_by", None)
        if owner is not None:
            owner.hook_calls += 1
            time.sleep(owner.delay)
        return real_begin(self, *args, **kwargs)

    monkeypatch.setattr(RequestLoop, "_begin", begin)


@pytest.mark.slow
def test_server_killed_mid_push_then_rerun_completes(seaweed_factory, tmp_path, monkeypatch):
    _slow_fastpath(monkeypatch)
    server = seaweed_factory(tmp_path / "srv")
    port = server.port
    server.client().create_bucket(Bucket="resume")
    src = tmp_path / "src"
    files = make_tree(src, files=120, size=3000)
    uri = "s3://resume/ds"

    errors = []
    client = _slow_service(server, 0.03)

    def run():
        try:
            push(client, src, S3Uri.parse(uri), workers=4, progress=False)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    watcher = server.service()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if len(list_objects(watcher, S3Uri.parse(uri))) >= 30:
            break
        time.sleep(0.05)
    server.kill()  # SIGKILL: a crash, in the middle of the push
    thread.join(40)  # the service's 2 s retry budget holds for push too (it once used a fixed 60 s)
    assert client.hook_calls >= 30  # the uploads really were slowed (the hook is on their path)
    assert not thread.is_alive()
    assert errors and isinstance(errors[0], StorageError), errors
    assert "rerun" in str(errors[0])

    again = SeaweedServer(tmp_path / "srv", port=port).start()
    try:
        check = again.client()
        present = {o.key: o for o in list_objects(again.service(), S3Uri.parse(uri))}
        assert f"ds/{MANIFEST_NAME}" not in present  # the partial upload does not look finished
        assert 0 < len(present) < len(files)
        for key in present:  # whatever is there is complete and correct
            body = check.get_object(Bucket="resume", Key=key)["Body"].read()
            assert body == files[key[len("ds/") :]], key

        rerun = push(again.service(), src, S3Uri.parse(uri), workers=4, progress=False)
        assert rerun.skipped == len(present)
        assert rerun.transferred == len(files) - len(present)  # nothing uploaded twice

        manifest = Manifest.parse(
            check.get_object(Bucket="resume", Key=f"ds/{MANIFEST_NAME}")["Body"].read().decode()
        )
        assert {e.path for e in manifest.entries} == set(files)
        for entry in manifest.entries:
            body = check.get_object(Bucket="resume", Key=f"ds/{entry.path}")["Body"].read()
            assert len(body) == entry.size and hashlib.sha256(body).hexdigest() == entry.sha256
    finally:
        again.stop()

    # now the server dies in the middle of a pull
    server = seaweed_factory(tmp_path / "srv", port=port)
    slow = _slow_service(server, 0.03, "provide-client-params.s3.GetObject")  # fires for every GET
    out = tmp_path / "out"
    errors.clear()

    def run_pull():
        try:
            pull(slow, S3Uri.parse(uri), out, workers=4, progress=False)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    thread = threading.Thread(target=run_pull)
    thread.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len([p for p in out.rglob("*") if p.is_file()]) < 30:
        time.sleep(0.05)
    server.kill()
    thread.join(40)  # likewise for pull
    assert slow.hook_calls >= 30
    assert errors and isinstance(errors[0], StorageError), errors
    assert not list(out.rglob("*.rectrain-part"))  # no half-written file under any name
    assert not (out / MANIFEST_NAME).exists()  # the partial download does not look finished
    got = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert 0 < len(got) < len(files)
    assert all(files[rel] == data for rel, data in got.items())  # whatever is there is complete

    server = seaweed_factory(tmp_path / "srv", port=port)
    rerun = pull(server.service(), S3Uri.parse(uri), out, workers=4, progress=False)
    assert rerun.skipped == len(got) and rerun.transferred == len(files) - len(got)
    pulled = tree_digest(out)
    pulled.pop(MANIFEST_NAME)
    assert pulled == {rel: hashlib.sha256(data).hexdigest() for rel, data in files.items()}
