from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from rectrain.cli import data_pack
from rectrain.cli.main import main
from rectrain.errors import EXIT_FINDINGS, EXIT_OK, EXIT_USER_ERROR
from rectrain.storage.server import free_ports, port_is_free

from .helpers import make_tree, tree_digest


def test_push_ls_pull_json(s3_env, s3_bucket, tmp_path, capsys):
    src = tmp_path / "src"
    files = make_tree(src, files=5)
    uri = f"s3://{s3_bucket}/cli"
    assert main(["s3", "push", str(src), uri, "--json"]) == EXIT_OK
    out = json.loads(capsys.readouterr().out)
    assert out["transferred"] == len(files) and out["manifest"] == f"{uri}/manifest.jsonl"
    assert main(["s3", "push", str(src), uri]) == EXIT_OK
    assert f"uploaded 0 of {len(files)} files" in capsys.readouterr().out
    assert main(["s3", "ls", uri]) == EXIT_OK
    listing = capsys.readouterr().out
    assert f"{len(files) + 1} object(s)" in listing and "manifest.jsonl" in listing
    assert main(["s3", "pull", uri, str(tmp_path / "dst"), "--dry-run"]) == EXIT_OK
    assert "would download" in capsys.readouterr().out and not (tmp_path / "dst").exists()
    assert main(["s3", "pull", uri, str(tmp_path / "dst")]) == EXIT_OK
    assert (tmp_path / "dst" / "dict.txt").read_bytes() == files["dict.txt"]


def test_check_exit_codes(s3_server, s3_env, s3_bucket, capsys, monkeypatch):
    assert main(["s3", "check", f"s3://{s3_bucket}/train"]) == EXIT_OK
    assert "everything training needs is allowed" in capsys.readouterr().out
    for key, value in s3_server.read_only_env.items():
        monkeypatch.setenv(key, value)
    assert main(["s3", "check", f"s3://{s3_bucket}/train"]) == EXIT_FINDINGS
    text = capsys.readouterr().out
    assert "FAIL put" in text and "FAIL delete" in text and '"s3:PutObject"' in text


def test_push_denied_is_one_line_exit_2(s3_server, s3_env, s3_bucket, tmp_path, capsys, monkeypatch):
    src = tmp_path / "src"
    make_tree(src, files=2)
    for key, value in s3_server.read_only_env.items():
        monkeypatch.setenv(key, value)
    assert main(["s3", "push", str(src), f"s3://{s3_bucket}/x"]) == EXIT_USER_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "s3:PutObject" in err[0] and "Fix:" in err[0]


def test_bad_address_is_one_line(s3_env, tmp_path, capsys):
    assert main(["s3", "pull", "bucket/prefix", str(tmp_path)]) == EXIT_USER_ERROR
    assert "s3://bucket/prefix" in capsys.readouterr().err


def test_data_pack_and_unpack_commands(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    data_pack.register(parser.add_subparsers())
    src = tmp_path / "src"
    make_tree(src, files=10)
    args = parser.parse_args(["pack", str(src), "-o", str(tmp_path / "p"), "--shard-size", "4KB"])
    assert args.func(args) == EXIT_OK
    assert "shard(s)" in capsys.readouterr().out
    args = parser.parse_args(["unpack", str(tmp_path / "p"), "-o", str(tmp_path / "o"), "--json"])
    assert args.func(args) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["files"] == 10 + 2
    assert tree_digest(tmp_path / "o") == tree_digest(src)


def _serve(tmp_path, port, *extra):
    env = dict(os.environ)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rectrain",
            "s3",
            "serve",
            "--data-dir",
            str(tmp_path / "s"),
            "--port",
            str(port),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_serve_prints_env_and_stops_cleanly(tmp_path, sig):
    port = free_ports(1)[0]
    proc = _serve(tmp_path, port)
    try:
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl-C" in line:
                break
        text = "".join(lines)
        assert f"export AWS_ENDPOINT_URL=http://127.0.0.1:{port}" in text, text + proc.stderr.read()
        assert "export AWS_SECRET_ACCESS_KEY=" in text and "AWS_DEFAULT_REGION" in text
        assert not port_is_free(port)
        proc.send_signal(sig)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    weed_pids = subprocess.run(["pgrep", "-f", f"s3.port={port}"], capture_output=True, text=True).stdout
    assert not weed_pids.strip(), "a weed server outlived `rectrain s3 serve`"
    assert port_is_free(port)


def test_serve_on_a_busy_port_is_one_line(s3_server, tmp_path):
    proc = _serve(tmp_path, s3_server.port)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == EXIT_USER_ERROR
    lines = err.strip().splitlines()
    assert len(lines) == 1 and f"Port {s3_server.port}" in lines[0] and "--port" in lines[0]


def test_the_workers_help_names_the_librarys_default():
    """`s3 push|pull --workers` is not imported by the CLI (help stays fast): its text must follow."""
    from pathlib import Path

    import rectrain.cli.s3 as cli_s3
    from rectrain.storage.parallel import TRANSFER_WORKERS

    assert f"(default {TRANSFER_WORKERS})" in Path(cli_s3.__file__).read_text(encoding="utf-8")
