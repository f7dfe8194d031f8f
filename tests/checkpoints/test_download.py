"""`rectrain ckpt download`: a real HTTP server on 127.0.0.1 serving files the test makes."""

from __future__ import annotations

import hashlib
import http.server
import threading

import pytest

from rectrain.checkpoints.download import KNOWN, KnownModel, download_model
from rectrain.cli.main import main
from rectrain.errors import EXIT_USER_ERROR, IntegrityError, StorageError

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        if self.path.endswith("/good_pretrained.pdparams"):
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD)
        elif self.path.endswith("/short_pretrained.pdparams"):  # the connection drops midway
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 3])
            self.close_connection = True
        else:
            self.send_error(404)

    def log_message(self, *args) -> None:  # noqa: ANN002
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/models"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _table(sha):
    return {n: KnownModel(n, f"{n}_pretrained.pdparams", sha, "d.txt", "c.yml")
            for n in ("good", "short", "gone")}


def test_known_model_is_verified_and_kept(server, tmp_path):
    path = download_model("good", tmp_path, models=_table(SHA), mirror=server)
    assert path == tmp_path / "good_pretrained.pdparams" and path.read_bytes() == PAYLOAD
    # already there and verified: not downloaded again (the server could be gone)
    assert download_model("good", tmp_path, models=_table(SHA), mirror="http://127.0.0.1:9/none") == path


def test_wrong_hash_or_short_body_keeps_nothing(server, tmp_path):
    with pytest.raises(IntegrityError, match="is not the pinned"):
        download_model("good", tmp_path / "w.pdparams", models=_table("0" * 64), mirror=server)
    with pytest.raises(StorageError, match="bytes"):
        download_model("short", tmp_path / "w.pdparams", models=_table(SHA), mirror=server)
    with pytest.raises(StorageError, match="HTTP 404"):
        download_model("gone", tmp_path / "w.pdparams", models=_table(SHA), mirror=server)
    assert list(tmp_path.iterdir()) == []  # no file, no .part


def test_unpinned_model_needs_a_hash_or_consent(server, tmp_path):
    with pytest.raises(IntegrityError, match="no SHA-256 is pinned"):
        download_model("good", tmp_path, models=_table(None), mirror=server)
    path = download_model("good", tmp_path, models=_table(None), trust_unpinned=True, mirror=server)
    assert (tmp_path / "good_pretrained.pdparams.sha256").read_text().split()[0] == SHA
    assert path.read_bytes() == PAYLOAD
    assert KNOWN["th_PP-OCRv5_mobile_rec"].url(base="https://x/").endswith(
        "/th_PP-OCRv5_mobile_rec_pretrained.pdparams")


def test_cli(server, tmp_path, capsys):
    url = f"{server}/good_pretrained.pdparams"
    assert main(["ckpt", "download", "mine", "--url", url, "--sha256", SHA,
                 "-o", str(tmp_path / "m.pdparams")]) == 0
    assert SHA in capsys.readouterr().out
    assert main(["ckpt", "download", "nope", "-o", str(tmp_path)]) == EXIT_USER_ERROR
    assert "th_PP-OCRv5_mobile_rec" in capsys.readouterr().err
    assert main(["ckpt", "download", "mine", "--url", url, "--sha256", "f" * 64,
                 "-o", str(tmp_path / "x.pdparams")]) == EXIT_USER_ERROR
    assert not (tmp_path / "x.pdparams").exists()
