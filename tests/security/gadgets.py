"""What a writer of an S3 prefix (or of a job's hyperparameters) can send rectrain, built here
so that each security test plants it and then looks for its canary.

- Canaries: a file that only the attacker's code (or an escaping write) would create, unique to
  the test (under its ``tmp_path``), with its parent folder existing so that a gadget that runs
  never fails to leave its trace.
- Pickle gadgets: ``builtins.exec`` (what a plain ``pickle.load`` / ``paddle.load`` runs) and a
  ``numpy.*`` global that executes code (``numpy.testing.runstring``: accepted by an unpickler
  that allows "anything from numpy"). :func:`poisoned_pickle` adds one to a real state dict
  under an extra key, so the file still loads as the weights it was (the engine ignores keys
  the model does not have): the attack is silent, only the canary tells.
- Checkpoints in S3: the objects of a rectrain checkpoint prefix as a ``{key: bytes}`` dict,
  re-sealed after a change (marker and pointer checksums rewritten, as an attacker who can
  write the prefix does), or crafted from nothing.
- Archives: tar files with the members an archive from S3 can hold (``..`` names, sibling
  prefixes, links, device nodes, setuid bits).
- The ``rectrain`` command as a subprocess, and a search for a secret in files and objects.

Nothing here imports rectrain: the tests are black-box (the CLI, plain boto3, the disk).
"""

from __future__ import annotations

import builtins
import hashlib
import io
import json
import os
import pickle
import re
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parents[2]
GADGET_KEY = "zz_rectrain_security_gadget"
PWNED = "pwned by a planted file"

Objects = Dict[str, bytes]


# ----------------------------------------------------------------------------- canaries
def canary(tmp_path: Path, name: str) -> Path:
    """A canary path unique to this test; its folder exists, the file does not."""
    folder = tmp_path / "canaries"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.canary"
    assert not path.exists()
    return path


def slashless(path: Path) -> str:
    """A Python expression for ``path`` that contains no ``/`` (a file name cannot hold one)."""
    return f"chr(47).join({str(path).split('/')!r})"


def canary_code(path: Path) -> str:
    """Python source that creates the canary file; no ``/``, no ``=`` (so it fits in a file
    name and in an engine ``-o key=value`` override)."""
    return f"open({slashless(path)},'w').write({PWNED!r})"


class ExecGadget:
    """Unpickles as ``builtins.exec(code)``."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:
        return builtins.exec, (self.code,)


class NumpyGadget:
    """Unpickles as ``numpy.testing.runstring(code, {})`` (an ``exec`` in a numpy.* module)."""

    def __init__(self, code: str) -> None:
        import numpy.testing

        self.runstring = numpy.testing.runstring
        module = getattr(self.runstring, "__module__", "")
        assert module.split(".")[0] == "numpy", module  # the point of this gadget
        self.code = code

    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:
        return self.runstring, (self.code, {})


def gadget_global(gadget: Any) -> str:
    """``module.name`` of the callable the gadget's pickle names."""
    func = gadget.__reduce__()[0]
    return f"{func.__module__}.{func.__qualname__}"


def poisoned_pickle(original: bytes, gadget: Any) -> bytes:
    """``original`` (a pickled dict this test suite wrote itself, so loading it is safe) with
    ``gadget`` added under an extra key: it loads as the same dict plus one ``None``."""
    data = pickle.loads(original)  # noqa: S301 - our own session run's file
    assert isinstance(data, dict)
    data[GADGET_KEY] = gadget
    return pickle.dumps(data, protocol=4)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------------- the engine's -o values
def tagged_name(path: Path) -> str:
    """A checkpoint prefix name that YAML reads as ``{name: exec(...)}``: the engine parses
    ``-o Global.checkpoints=<folder>/<this>`` with PyYAML's full loader. The tag's ``/`` are
    written ``%2F`` (YAML tag URI escapes) so the whole thing is one file name."""
    return 'latest: !!python%2Fobject%2Fapply:exec ["' + canary_code(path) + '"]'


# ----------------------------------------------------------------------------- checkpoints in S3
MARKER = "_COMPLETE.json"


def pointer_key(prefix: str, name: str) -> str:
    return f"{prefix}/{name}.json"


def pointed_folder(objects: Mapping[str, bytes], prefix: str, name: str) -> str:
    """The folder (``s<step>-<name>-<id>``) that ``<prefix>/<name>.json`` points at."""
    return str(json.loads(objects[pointer_key(prefix, name)])["folder"])


def _files_entry(data: bytes) -> Dict[str, Any]:
    return {"size": len(data), "sha256": sha256(data)}


def reseal(objects: Objects, prefix: str, name: str, *, replace: Optional[Mapping[str, bytes]] = None,
           rename_prefix: Optional[str] = None, marker_files: Optional[Mapping[str, Any]] = None,
           run_id: Optional[str] = None) -> Objects:
    """A copy of ``objects`` where the checkpoint ``name`` (its folder and pointer) was changed
    the way a writer of the prefix changes it, marker and pointer made consistent again:

    - ``replace``: ``{file name in the folder: new bytes}``;
    - ``rename_prefix``: the folder's files renamed ``<rename_prefix><suffix>`` and the
      marker's ``engine_prefix`` set to it;
    - ``marker_files``: extra ``files`` entries written into the marker as given;
    - ``run_id``: the run id written into the marker and the pointer.
    """
    out = dict(objects)
    folder = pointed_folder(objects, prefix, name)
    base = f"{prefix}/{folder}/"
    marker_key = base + MARKER
    marker = json.loads(out[marker_key])
    old_prefix = str(marker.get("engine_prefix") or name)
    files: Dict[str, Any] = {}
    for fname in list(marker["files"]):
        data = (replace or {}).get(fname, out[base + fname])
        new_name = fname
        if rename_prefix is not None and fname.startswith(old_prefix):
            new_name = rename_prefix + fname[len(old_prefix):]
            del out[base + fname]
        out[base + new_name] = data
        files[new_name] = _files_entry(data)
    if rename_prefix is not None:
        marker["engine_prefix"] = rename_prefix
    files.update(marker_files or {})
    marker["files"] = files
    marker["size"] = sum(int(f.get("size", 0)) for f in files.values())
    marker["time"] = time.time()
    if run_id is not None:
        marker["run_id"] = run_id
    out[marker_key] = json.dumps(marker).encode()
    pointer = json.loads(out[pointer_key(prefix, name)])
    pointer.update({k: v for k, v in marker.items() if k != "engine_prefix"})
    pointer.update(name=name, folder=folder)
    out[pointer_key(prefix, name)] = json.dumps(pointer).encode()
    return out


def crafted_checkpoint(prefix: str, files: Mapping[str, bytes], *, name: str = "latest",
                       step: int = 9, run_id: str = "a77ac4e7a77a",
                       marker_files: Optional[Mapping[str, Any]] = None,
                       engine_prefix: Optional[str] = None) -> Objects:
    """The objects of one complete-looking checkpoint made from nothing: ``files`` in
    ``<prefix>/s<step>-<name>-a77ac4/``, a marker listing them (plus ``marker_files`` as
    given), and the pointer ``<prefix>/<name>.json``."""
    folder = f"s{step:08d}-{name}-a77ac4"
    out: Objects = {f"{prefix}/{folder}/{fname}": data for fname, data in files.items()}
    listed = {fname: _files_entry(data) for fname, data in files.items()}
    listed.update(marker_files or {})
    marker = {"name": name, "epoch": 1, "global_step": step, "metric": {"acc": 0.5},
              "size": sum(int(f.get("size", 0)) for f in listed.values()), "time": time.time(),
              "location": "", "engine_epoch": 1, "files": listed, "run_id": run_id,
              "sub_epochs": 1, "engine_prefix": engine_prefix or name}
    out[f"{prefix}/{folder}/{MARKER}"] = json.dumps(marker).encode()
    pointer = {k: v for k, v in marker.items() if k != "engine_prefix"}
    pointer.update(name=name, folder=folder)
    out[pointer_key(prefix, name)] = json.dumps(pointer).encode()
    return out


def states_bytes(step: int = 9, epoch: int = 1) -> bytes:
    """A ``.states`` file as the engine writes it (plain ints and floats)."""
    return pickle.dumps({"epoch": epoch, "global_step": step,
                         "best_model_dict": {"acc": 0.5, "norm_edit_dis": 0.5, "best_epoch": epoch}},
                        protocol=2)


def upload(client: Any, bucket: str, objects: Mapping[str, bytes]) -> None:
    """Put every object (markers and pointers last, as a careful writer would)."""
    def order(key: str) -> int:
        return 2 if key.endswith(".json") and not key.endswith(MARKER) else 1 if key.endswith(MARKER) else 0

    for key in sorted(objects, key=order):
        client.put_object(Bucket=bucket, Key=key, Body=objects[key])


def bucket_objects(client: Any, bucket: str) -> Objects:
    out: Objects = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []) or []:
            out[obj["Key"]] = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
    return out


# ----------------------------------------------------------------------------- the run the attacks start from
BASE_PREFIX = "runs/base"


@dataclass
class BaseRun:
    """The session's tiny run: its config, data, run folder and S3 objects (``{key: bytes}``
    under :data:`BASE_PREFIX`)."""

    config: Path
    data: Dict[str, Path]
    run_dir: Path
    objects: Objects
    run_id: str

    def file(self, name: str, suffix: str) -> bytes:
        """A file of the checkpoint ``name`` as uploaded (e.g. ``("latest", ".pdparams")``)."""
        folder = json.loads(self.objects[f"{BASE_PREFIX}/{name}.json"])["folder"]
        return self.objects[f"{BASE_PREFIX}/{folder}/{name}{suffix}"]


NAMED = re.compile(r"^(latest|best_accuracy|best_of_run|iter_epoch_\d+)$")


def named_checkpoints(objects: Objects) -> list:
    """The named checkpoints (pointers) of the base prefix."""
    out = []
    for key in objects:
        rest = key[len(BASE_PREFIX) + 1:]
        if key.startswith(BASE_PREFIX + "/") and "/" not in rest and rest.endswith(".json") \
                and NAMED.match(rest[:-5]):
            out.append(rest[:-5])
    return sorted(out)


def poison_every_checkpoint(base: BaseRun, suffix: str, gadget: Any,
                            objects: Optional[Objects] = None) -> Objects:
    """Every named checkpoint of the prefix with ``gadget`` in its ``<name><suffix>`` file,
    marker and pointer re-sealed: no clean checkpoint is left to fall back on."""
    out = dict(objects if objects is not None else base.objects)
    for name in named_checkpoints(out):
        out = reseal(out, BASE_PREFIX, name,
                     replace={f"{name}{suffix}": poisoned_pickle(base.file(name, suffix), gadget)})
    return out


def resume(base: BaseRun, prefix: str, run_dir: Path, env: Dict[str, str], *extra: str) -> Any:
    """``rectrain train --resume`` on a new machine (an empty run folder), from S3."""
    return rectrain(["train", "--config", base.config, "--run-dir", run_dir, "--device", "cpu",
                     "--checkpoint-s3", prefix, "--resume", "--display", "plain",
                     "--no-tensorboard", *extra], env)


def pull_and_export(base: BaseRun, prefix: str, tmp_path: Path, env: Dict[str, str]) -> Tuple[Any, Any]:
    """``rectrain ckpt pull PREFIX DIR --name latest``, then ``rectrain export`` of what it
    printed (the second is ``None`` when the pull failed)."""
    pull = rectrain(["ckpt", "pull", prefix, tmp_path / "pulled", "--name", "latest"], env)
    if pull.returncode != 0:
        return pull, None
    checkpoint = pull.stdout.strip().splitlines()[-1]
    export = rectrain(["export", "--config", base.config, "--checkpoint", checkpoint,
                       "-o", tmp_path / "model"], env)
    return pull, export


def assert_refused(canary_path: Path, *procs: Any) -> None:
    """The canary is absent and the command chain failed (a later step runs only after an
    earlier one succeeded, so the chain failed when its last command that ran did)."""
    ran = [p for p in procs if p is not None]
    story = "\n".join(shown(p) for p in ran)
    assert not canary_path.exists(), f"the planted code ran: {canary_path} exists\n{story}"
    assert ran[-1].returncode != 0, f"the planted file was accepted (exit 0)\n{story}"
    assert "Traceback (most recent call last)" not in story, story


# ----------------------------------------------------------------------------- archives
@dataclass(frozen=True)
class Member:
    """One tar member: ``kind`` file | dir | symlink | hardlink | chr | blk | fifo."""

    name: str
    kind: str = "file"
    data: bytes = b""
    mode: int = 0o644
    linkname: str = ""


_TYPES = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
          "hardlink": tarfile.LNKTYPE, "chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE,
          "fifo": tarfile.FIFOTYPE}


def tar_bytes(members: Sequence[Member], gz: bool = True) -> bytes:
    """A tar (gzip-compressed by default) holding exactly ``members``, as written by hand: no
    filter of Python's tarfile stands between the test and the archive."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w", format=tarfile.GNU_FORMAT) as tar:
        for m in members:
            info = tarfile.TarInfo(m.name)
            info.type = _TYPES[m.kind]
            info.mode = m.mode
            info.mtime = int(time.time())
            info.linkname = m.linkname
            if m.kind in ("chr", "blk"):
                info.devmajor, info.devminor = 1, 3  # /dev/null's numbers
            if m.kind == "file":
                info.size = len(m.data)
                tar.addfile(info, io.BytesIO(m.data))
            else:
                tar.addfile(info)
    return buf.getvalue()


def special_files(root: Path) -> List[str]:
    """Device nodes, FIFOs and sockets under ``root`` (what an extraction must never create)."""
    import stat

    found = []
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            mode = os.lstat(os.path.join(dirpath, name)).st_mode
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
                found.append(os.path.join(dirpath, name))
    return found


def risky_modes(root: Path) -> List[str]:
    """Files and folders under ``root`` with setuid/setgid/sticky or world-write bits."""
    found = []
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if st.st_mode & 0o7002:
                found.append(f"{path} ({oct(st.st_mode & 0o7777)})")
    return found


# ----------------------------------------------------------------------------- the container
def write_contract(ml: Path, hyperparameters: Mapping[str, str]) -> Path:
    """An /opt/ml tree's contract files (one CPU host, a train channel); returns the train
    channel's folder (created, empty)."""
    config = ml / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(dict(hyperparameters)), encoding="utf-8")
    (config / "resourceconfig.json").write_text(json.dumps({
        "current_host": "algo-1", "hosts": ["algo-1"], "current_instance_type": "ml.m5.xlarge"}),
        encoding="utf-8")
    (config / "inputdataconfig.json").write_text(json.dumps({"train": {"TrainingInputMode": "File"}}),
                                                 encoding="utf-8")
    channel = ml / "input" / "data" / "train"
    channel.mkdir(parents=True)
    return channel


# ----------------------------------------------------------------------------- the command
def cli_env(base: Optional[Mapping[str, str]] = None, **extra: str) -> Dict[str, str]:
    """The environment for ``rectrain`` subprocesses: this checkout's source first, no colour,
    no real AWS identity (``base`` adds an S3 server's variables)."""
    env = dict(os.environ)
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
                "MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
                "MLFLOW_TRACKING_TOKEN"):
        env.pop(key, None)
    env.update(base or {})
    env.update({"PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
                "NO_COLOR": "1", "COLUMNS": "200", "AWS_EC2_METADATA_DISABLED": "true"})
    env.update(extra)
    return env


def rectrain(args: Iterable[str], env: Mapping[str, str], *, cwd: Optional[Path] = None,
             timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m rectrain ARGS`` (text output captured, stdin closed)."""
    return subprocess.run([sys.executable, "-m", "rectrain", *[str(a) for a in args]],
                          env=dict(env), cwd=str(cwd) if cwd else None, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def shown(proc: subprocess.CompletedProcess, limit: int = 4000) -> str:
    """The end of a command's output, for assertion messages."""
    args = " ".join(str(a) for a in proc.args[2:]) if isinstance(proc.args, list) else str(proc.args)
    return f"`{args}` exit {proc.returncode}\n--- stdout ---\n{proc.stdout[-limit:]}\n" \
           f"--- stderr ---\n{proc.stderr[-limit:]}"


# ----------------------------------------------------------------------------- secrets
def files_containing(root: Path, secret: str) -> List[str]:
    """Every file under ``root`` whose bytes hold ``secret`` (as is or URL-quoted)."""
    from urllib.parse import quote

    needles = {secret.encode(), quote(secret, safe="").encode()}
    hits = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            if path.is_symlink() or not path.is_file():
                continue
            try:
                data = path.read_bytes()
            except OSError:
                continue
            if any(n in data for n in needles):
                hits.append(str(path))
    return hits


def objects_containing(objects: Mapping[str, bytes], secret: str) -> List[str]:
    return [key for key, data in objects.items() if secret.encode() in data or secret in key]
