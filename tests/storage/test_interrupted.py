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
from rectrain.storage.server import SeaweedServer

from .helpers import make_tree, tree_digest


def _slow_client(server, delay: float, event: str = "provide-client-params.s3.PutObject"):
    """A real client whose uploads are a little slow, so the crash lands in the middle.
    ``provide-client-params`` fires for a botocore call; the small-object fast path, which
    signs its own requests, is slowed by :func:`_slow_fastpath`. ``client.hook_calls`` counts
    the delays."""
    from botocore.config import Config

    client = server.client(
        config=Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=2, read_timeout=10)
    )
    client.hook_calls = 0
    client.delay = delay

    def slow(**kw):
        client.hook_calls += 1
        time.sleep(delay)

    client.meta.events.register(event, slow)
    return client


def _slow_fastpath(monkeypatch):
    """Every fast-path request waits its client's ``delay`` first (counted in ``hook_calls``)."""
    from rectrain.storage.fastpath import FastPath

    real = FastPath._send

    def send(self, *args, **kwargs):
        if hasattr(self.client, "delay"):
            self.client.hook_calls += 1
            time.sleep(self.client.delay)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(FastPath, "_send", send)


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
    client = _slow_client(server, 0.03)

    def run():
        try:
            push(src, uri, client=client, workers=4, progress=False)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    watcher = server.client()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if len(list_objects(uri, client=watcher)) >= 30:
            break
        time.sleep(0.05)
    server.kill()  # SIGKILL: a crash, in the middle of the push
    thread.join(120)
    assert client.hook_calls >= 30  # the uploads really were slowed (the hook is on their path)
    assert not thread.is_alive()
    assert errors and isinstance(errors[0], StorageError), errors
    assert "rerun" in str(errors[0])

    again = SeaweedServer(tmp_path / "srv", port=port).start()
    try:
        check = again.client()
        present = {o.key: o for o in list_objects(uri, client=check)}
        assert f"ds/{MANIFEST_NAME}" not in present  # the partial upload does not look finished
        assert 0 < len(present) < len(files)
        for key in present:  # whatever is there is complete and correct
            body = check.get_object(Bucket="resume", Key=key)["Body"].read()
            assert body == files[key[len("ds/") :]], key

        rerun = push(src, uri, client=check, workers=4, progress=False)
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
    slow = _slow_client(server, 0.03, "provide-client-params.s3.GetObject")  # fires for every GET
    out = tmp_path / "out"
    errors.clear()

    def run_pull():
        try:
            pull(uri, out, client=slow, workers=4, progress=False)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    thread = threading.Thread(target=run_pull)
    thread.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len([p for p in out.rglob("*") if p.is_file()]) < 30:
        time.sleep(0.05)
    server.kill()
    thread.join(120)
    assert slow.hook_calls >= 30
    assert errors and isinstance(errors[0], StorageError), errors
    assert not list(out.rglob("*.rectrain-part"))  # no half-written file under any name
    assert not (out / MANIFEST_NAME).exists()  # the partial download does not look finished
    got = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert 0 < len(got) < len(files)
    assert all(files[rel] == data for rel, data in got.items())  # whatever is there is complete

    server = seaweed_factory(tmp_path / "srv", port=port)
    rerun = pull(uri, out, client=server.client(), workers=4, progress=False)
    assert rerun.skipped == len(got) and rerun.transferred == len(files) - len(got)
    pulled = tree_digest(out)
    pulled.pop(MANIFEST_NAME)
    assert pulled == {rel: hashlib.sha256(data).hexdigest() for rel, data in files.items()}
