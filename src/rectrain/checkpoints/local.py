"""Checkpoints the engine writes, on local disk.

PaddleOCR 2.10 (ppocr/utils/save_load.py ``save_model``) writes, for a prefix such as
``latest``, ``best_accuracy`` or ``iter_epoch_N`` in ``Global.save_model_dir``:
``<prefix>.pdopt``, then ``<prefix>.pdparams``, then ``<prefix>.states`` (a pickle with
``epoch``, ``global_step`` and ``best_model_dict``), and only then logs ``save model in``.
A checkpoint is complete when the three files exist, ``.states`` is not older than the others
and nothing changed for a moment. ``latest`` and ``best_accuracy`` are overwritten in place,
so a checkpoint is copied to a snapshot folder (with a ``_COMPLETE.json`` marker, written last)
before it is uploaded.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

from rectrain.errors import IntegrityError
from rectrain.fsutil import sha256_file, write_json_atomic

SUFFIXES = (".pdparams", ".pdopt", ".states")
MARKER = "_COMPLETE.json"
PROTECTED = ("best_accuracy", "best_of_run", "latest")
NAME_RE = re.compile(r"^(latest|best_accuracy|best_of_run|iter_epoch_\d+)$")
ENGINE_NAME_RE = re.compile(r"^(latest|best_accuracy|iter_epoch_\d+)$")  # those the engine saves


@dataclass
class CheckpointInfo:
    name: str
    epoch: int  # the real epoch (engine epoch / sub_epochs, rounded up)
    global_step: int
    metric: Dict[str, Any] = field(default_factory=dict)
    size: int = 0
    time: float = 0.0
    location: str = ""
    engine_epoch: int = 0
    files: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    run_id: str = ""  # the run that wrote it (run-state.json): resume never mixes runs
    sub_epochs: int = 0  # the run's K (0: unknown); with run_id, a lost run-state.json is rebuilt

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> CheckpointInfo:
        """From a marker's JSON (keys it does not know, such as ``engine_prefix``, ignored)."""
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


class _SafeUnpickler(pickle.Unpickler):
    """The engine's .states holds plain dicts, ints, floats (and maybe numpy scalars)."""

    ALLOWED = {("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"), ("builtins", "float"), ("builtins", "int")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing {module}.{name} in a .states file")


def read_states(path: Union[str, Path]) -> Dict[str, Any]:
    """The engine's ``<prefix>.states`` pickle as a dict (epoch, global_step, best_model_dict)."""
    try:
        with open(path, "rb") as fh:
            data = _SafeUnpickler(fh, encoding="latin1").load()
    except (OSError, pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise IntegrityError(f"{path}: cannot read checkpoint state ({exc}).",
                             "the checkpoint is incomplete or damaged; use an older one "
                             "(`rectrain ckpt list`).") from exc
    if not isinstance(data, dict):
        raise IntegrityError(f"{path}: unexpected checkpoint state.", "use an older checkpoint.")
    best = data.get("best_model_dict") or {}
    data["best_model_dict"] = {k: (float(v) if hasattr(v, "item") else v) for k, v in best.items()}
    return data


def real_epoch(engine_epoch: int, sub_epochs: int) -> int:
    k = max(1, sub_epochs)
    return -(-int(engine_epoch) // k)


def is_complete(checkpoint_dir: Union[str, Path], name: str, settle_s: float = 2.0) -> bool:
    """All files present, ``.states`` written last, nothing modified for ``settle_s``."""
    base = Path(checkpoint_dir)
    paths = [base / f"{name}{s}" for s in SUFFIXES]
    try:
        stats = [p.stat() for p in paths]
    except OSError:
        return False
    states_mtime = stats[-1].st_mtime
    if any(s.st_mtime > states_mtime + 1e-6 for s in stats[:-1]):
        return False  # a newer .pdparams/.pdopt: a save is in progress
    return time.time() - max(s.st_mtime for s in stats) >= settle_s


def info_from_states(checkpoint_dir: Union[str, Path], name: str, sub_epochs: int = 1,
                     location: str = "") -> CheckpointInfo:
    base = Path(checkpoint_dir)
    states = read_states(base / f"{name}.states")
    files = {f"{name}{s}": {"size": (base / f"{name}{s}").stat().st_size} for s in SUFFIXES}
    engine_epoch = int(states.get("epoch", 0))
    return CheckpointInfo(
        name=name, epoch=real_epoch(engine_epoch, sub_epochs), engine_epoch=engine_epoch,
        global_step=int(states.get("global_step", 0)), metric=dict(states["best_model_dict"]),
        size=sum(f["size"] for f in files.values()),
        time=(base / f"{name}.states").stat().st_mtime, location=location or str(base / name),
        files=files)


def scan_local(checkpoint_dir: Union[str, Path], sub_epochs: int = 1,
               settle_s: float = 2.0) -> List[CheckpointInfo]:
    """Complete checkpoints in an engine save dir, newest step first."""
    base = Path(checkpoint_dir)
    if not base.is_dir():
        return []
    out: List[CheckpointInfo] = []
    for states in base.glob("*.states"):
        name = states.name[: -len(".states")]
        if not NAME_RE.match(name) or not is_complete(base, name, settle_s):
            continue
        try:
            out.append(info_from_states(base, name, sub_epochs))
        except (IntegrityError, OSError):
            continue
    # snapshots kept by rectrain (best_of_run/) live one level down
    out += [info for _, info in snapshot_markers(base) if info.name == "best_of_run"]
    out.sort(key=lambda i: (i.global_step, i.time), reverse=True)
    return out


def read_marker(path: Union[str, Path]) -> Optional[CheckpointInfo]:
    try:
        return CheckpointInfo.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def snapshot_markers(root: Union[str, Path]) -> Iterator[Tuple[Path, CheckpointInfo]]:
    """``(folder, marker)`` of each snapshot folder directly under ``root`` with a readable
    marker; staging and temporary folders (names starting with ".") are skipped."""
    for marker in Path(root).glob(f"*/{MARKER}"):
        if marker.parent.name.startswith("."):
            continue
        info = read_marker(marker)
        if info is not None:
            yield marker.parent, info


def snapshot(checkpoint_dir: Union[str, Path], name: str, dest_root: Union[str, Path], *,
             sub_epochs: int = 1, dest_name: Optional[str] = None,
             retries: int = 3, run_id: str = "") -> CheckpointInfo:
    """Copy checkpoint ``name`` into ``dest_root/<dest_name>/`` with its marker written last.

    The files keep their names (``latest.pdparams`` ...) so ``Global.checkpoints`` can point at
    ``dest_root/<dest_name>/<name>``. Retried when the engine rewrote a file during the copy.
    """
    src = Path(checkpoint_dir)
    dest = Path(dest_root) / (dest_name or name)
    last_error: Optional[Exception] = None
    for _ in range(max(1, retries)):
        before = [(src / f"{name}{s}").stat().st_mtime_ns for s in SUFFIXES]
        tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        files: Dict[str, Dict[str, Any]] = {}
        for suffix in SUFFIXES:
            target = tmp / f"{name}{suffix}"
            shutil.copy2(src / f"{name}{suffix}", target)
            files[target.name] = {"size": target.stat().st_size, "sha256": sha256_file(target)}
        after = [(src / f"{name}{s}").stat().st_mtime_ns for s in SUFFIXES]
        if before != after:
            last_error = IntegrityError(f"{src / name} changed while it was copied.", "retry.")
            shutil.rmtree(tmp, ignore_errors=True)
            time.sleep(0.5)
            continue
        states = read_states(tmp / f"{name}.states")
        engine_epoch = int(states.get("epoch", 0))
        info = CheckpointInfo(
            name=dest_name or name, epoch=real_epoch(engine_epoch, sub_epochs),
            engine_epoch=engine_epoch, global_step=int(states.get("global_step", 0)),
            metric=dict(states["best_model_dict"]), size=sum(f["size"] for f in files.values()),
            time=time.time(), location=str(dest), files=files, run_id=run_id,
            sub_epochs=max(1, sub_epochs))
        write_json_atomic(tmp / MARKER, dict(info.as_dict(), engine_prefix=name))
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        if dest.exists():
            dest.rename(old)
        tmp.rename(dest)
        shutil.rmtree(old, ignore_errors=True)
        return info
    raise last_error or IntegrityError(f"could not snapshot {src / name}.", "retry.")


def engine_prefix(snapshot_dir: Union[str, Path]) -> Path:
    """The ``Global.checkpoints`` prefix of a snapshot folder (``.../latest/latest``)."""
    d = Path(snapshot_dir)
    try:
        data = json.loads((d / MARKER).read_text(encoding="utf-8"))
        return d / data.get("engine_prefix", d.name)
    except (OSError, ValueError):
        states = sorted(d.glob("*.states"))
        if states:
            return d / states[0].name[: -len(".states")]
        return d / d.name


def verify_snapshot(snapshot_dir: Union[str, Path]) -> CheckpointInfo:
    """Check a snapshot folder's files against its marker; raise IntegrityError if not."""
    d = Path(snapshot_dir)
    info = read_marker(d / MARKER)
    if info is None:
        raise IntegrityError(f"{d}: no completion marker ({MARKER}).",
                             "the checkpoint is incomplete; use another one (`rectrain ckpt list`).")
    for fname, meta in info.files.items():
        path = d / fname
        if not path.is_file() or ("sha256" in meta and sha256_file(path) != meta["sha256"]):
            raise IntegrityError(f"{path}: missing or does not match its checksum.",
                                 "download the checkpoint again (`rectrain ckpt pull`).")
    return info
