"""Checkpoints the engine writes, on local disk.

PaddleOCR 2.10 (ppocr/utils/save_load.py ``save_model``) writes, for a prefix such as
``latest``, ``best_accuracy`` or ``iter_epoch_N`` in ``Global.save_model_dir``:
``<prefix>.pdopt``, then ``<prefix>.pdparams``, then ``<prefix>.states`` (a pickle with
``epoch``, ``global_step`` and ``best_model_dict``), and only then logs ``save model in``.
The engine's own files are overwritten in place (``latest``, ``best_accuracy``), so each save
is copied at once into a NEW snapshot folder ``snapshots/s<step>-<name>-<id>/`` whose
``_COMPLETE.json`` marker (written last) lists every file with its size and sha256; then
``snapshots/<name>.json`` (a pointer, also carrying the marker's data: run id, K, step) is
moved to it. Snapshot folders are never renamed or rewritten; an older one is deleted only
after a newer one of the same name is complete (see ``sync``). Completeness is decided by the
marker's checksums, never by modification times (a SageMaker restore gives every file a new
one). The engine's own files (``scan_local``, a resume) are judged by their content: all three
there, each a whole pickle, none newer than the ``.states`` (``engine_files_problem``).
"""

from __future__ import annotations

import json
import pickle
import re
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

from rectrain.checkpoints import pickles
from rectrain.errors import IntegrityError
from rectrain.fsutil import sha256_file
from rectrain.outputs import copy_file, remove_file, remove_tree, write_json

SUFFIXES = (".pdparams", ".pdopt", ".states")
MARKER = "_COMPLETE.json"
POINTER_SUFFIX = ".json"  # <snapshots>/<name>.json: the folder a name (latest, ...) is now
SNAP_RE = re.compile(r"^s(\d{8})-(latest|best_accuracy|best_of_run|iter_epoch_\d+)-([0-9a-f]{6})$")
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


def read_states(path: Union[str, Path]) -> Dict[str, Any]:
    """The engine's ``<prefix>.states`` pickle as a dict (epoch, global_step, best_model_dict)."""
    try:
        with open(path, "rb") as fh:
            data = pickles.load(fh, pickles.STATES, "a .states file", encoding="latin1")
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


def engine_files_problem(checkpoint_dir: Union[str, Path], name: str) -> str:
    """Why the engine's own checkpoint ``name`` cannot be resumed from ("" when it can).

    The engine writes ``.pdopt``, ``.pdparams``, then ``.states`` in place and logs the save
    after the last one: a complete save has all three, each a whole pickle (a pickle ends with
    its STOP opcode; a file cut short does not), and no ``.pdopt``/``.pdparams`` newer than the
    ``.states`` (that would be the next save, stopped half-way: weights of one step beside the
    state of another)."""
    base = Path(checkpoint_dir)
    paths = [base / f"{name}{s}" for s in SUFFIXES]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        return f"{', '.join(missing)} missing"
    for path in paths:
        with open(path, "rb") as fh:
            fh.seek(max(0, path.stat().st_size - 1))
            if fh.read(1) != b".":
                return f"{path.name} is cut short (a save was interrupted)"
    states_mtime = paths[-1].stat().st_mtime_ns
    newer = [p.name for p in paths[:-1] if p.stat().st_mtime_ns > states_mtime]
    if newer:
        return f"{', '.join(newer)} newer than {paths[-1].name} (a save was interrupted)"
    return ""


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


def scan_local(checkpoint_dir: Union[str, Path], sub_epochs: int = 1) -> List[CheckpointInfo]:
    """Complete checkpoints in an engine save dir, newest step first: judged by their content
    (:func:`engine_files_problem`), never by how long ago they were written (a push right after
    the run ended would otherwise leave out its newest save and report success)."""
    base = Path(checkpoint_dir)
    if not base.is_dir():
        return []
    out: List[CheckpointInfo] = []
    for states in base.glob("*.states"):
        name = states.name[: -len(".states")]
        if not NAME_RE.match(name):
            continue
        try:
            if not engine_files_problem(base, name):
                out.append(info_from_states(base, name, sub_epochs))
        except (IntegrityError, OSError):
            continue
    out.sort(key=lambda i: (i.global_step, i.time), reverse=True)
    return out


FILE_RE = re.compile(r"^(latest|best_accuracy|best_of_run|iter_epoch_\d+)\.(pdparams|pdopt|states)$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
RUN_ID_RE = re.compile(r"^[A-Za-z0-9_-]{0,64}$")


def parse_marker(data: Any) -> CheckpointInfo:
    """A marker's (or a pointer's) JSON as :class:`CheckpointInfo`, every name in it checked
    where it is parsed: markers come from S3 prefixes other people may write, and their names
    become paths and engine overrides. Files are plain basenames the engine writes
    (``latest.pdparams`` ...) with a 64-hex sha256 and a size; ``engine_prefix`` and ``name``
    are checkpoint names, ``folder`` a snapshot folder name, ``run_id`` a plain id.
    ``ValueError`` says what is wrong."""
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    files = data.get("files")
    if not isinstance(files, dict) or not files:
        raise ValueError("it lists no files")
    for fname, meta in files.items():
        if not isinstance(fname, str) or not FILE_RE.match(fname):
            raise ValueError(f"it lists {str(fname)[:80]!r}, which is not a checkpoint file name "
                             "(<name>.pdparams/.pdopt/.states)")
        if not isinstance(meta, dict) or not SHA256_RE.match(str(meta.get("sha256", ""))):
            raise ValueError(f"its entry for {fname} has no sha256 (64 hex digits)")
        if not isinstance(meta.get("size"), int) or meta["size"] < 0:
            raise ValueError(f"its entry for {fname} has no size")
    for key in ("engine_prefix", "name"):
        if key in data and not NAME_RE.match(str(data[key])):
            raise ValueError(f"its {key} {str(data[key])[:80]!r} is not a checkpoint name")
    if "folder" in data and not (SNAP_RE.match(str(data["folder"])) or NAME_RE.match(str(data["folder"]))):
        raise ValueError(f"its folder {str(data['folder'])[:80]!r} is not a snapshot folder name")
    if not RUN_ID_RE.match(str(data.get("run_id", ""))):
        raise ValueError(f"its run_id {str(data.get('run_id'))[:80]!r} is not a run id")
    return CheckpointInfo.from_dict(data)


def load_marker(path: Union[str, Path]) -> CheckpointInfo:
    """The marker at ``path``, checked (:func:`parse_marker`); :class:`IntegrityError` saying
    why when it cannot be used."""
    try:
        return parse_marker(json.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError) as exc:
        raise IntegrityError(f"{path} cannot be used ({exc}).",
                             "use another checkpoint (`rectrain ckpt list`), or push a good copy "
                             "again (`rectrain ckpt push`).") from exc


def read_marker(path: Union[str, Path]) -> Optional[CheckpointInfo]:
    """The marker at ``path``; ``None`` when it is missing, damaged or names anything that is
    not a checkpoint file (see :func:`parse_marker`)."""
    try:
        return load_marker(path)
    except IntegrityError:
        return None


def snapshot_markers(root: Union[str, Path]) -> Iterator[Tuple[Path, CheckpointInfo]]:
    """``(folder, marker)`` of each snapshot folder (``s<step>-<name>-<id>``) directly under
    ``root`` with a readable marker."""
    for marker in sorted(Path(root).glob(f"*/{MARKER}")):
        if folder_name_of(marker.parent) is None:
            continue
        info = read_marker(marker)
        if info is not None:
            yield marker.parent, info


def snapshot_folder_name(name: str, global_step: int) -> str:
    """``s<step, 8 digits>-<name>-<6 hex>``: unique, sortable by step, never reused."""
    return f"s{int(global_step):08d}-{name}-{secrets.token_hex(3)}"


def pointer_path(root: Union[str, Path], name: str) -> Path:
    return Path(root) / f"{name}{POINTER_SUFFIX}"


def write_pointer(root: Union[str, Path], name: str, folder: Union[str, Path],
                  info: CheckpointInfo) -> None:
    """``<root>/<name>.json``: which complete folder ``name`` (latest, best_accuracy,
    best_of_run, iter_epoch_N) is now; written atomically, after the folder's marker."""
    data = dict(info.as_dict(), name=name, folder=Path(folder).name)
    write_json(pointer_path(root, name), data)


def read_pointer(root: Union[str, Path], name: str) -> Optional[Tuple[Path, CheckpointInfo]]:
    """``(folder, info)`` that ``<root>/<name>.json`` points at; ``None`` without one."""
    info = read_marker(pointer_path(root, name))
    if info is None:
        return None
    try:
        folder = str(json.loads(pointer_path(root, name).read_text(encoding="utf-8"))["folder"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not (SNAP_RE.match(folder) or NAME_RE.match(folder)):
        return None  # parse_marker refused it already; a name, never a path
    return Path(root) / folder, info


def pointers(root: Union[str, Path]) -> Iterator[Tuple[str, Path, CheckpointInfo]]:
    """``(name, folder, info)`` for every pointer under ``root``."""
    for path in sorted(Path(root).glob(f"*{POINTER_SUFFIX}")):
        name = path.name[: -len(POINTER_SUFFIX)]
        if NAME_RE.match(name):
            got = read_pointer(root, name)
            if got is not None:
                yield name, got[0], got[1]


def refuse_unusable_pointers(root: Union[str, Path]) -> None:
    """Raise :class:`IntegrityError` for a pointer under ``root`` that :func:`pointers` would
    leave out (damaged, or naming files or folders that are not a checkpoint's): an upload
    never skips one silently."""
    for path in sorted(Path(root).glob(f"*{POINTER_SUFFIX}")):
        name = path.name[: -len(POINTER_SUFFIX)]
        if NAME_RE.match(name) and read_pointer(root, name) is None:
            load_marker(path)  # says why, when the JSON is the problem
            raise IntegrityError(f"{path} names no snapshot folder.",
                                 "remove that pointer, or snapshot the checkpoint again.")


def folder_name_of(folder: Union[str, Path]) -> Optional[Tuple[int, str]]:
    """``(step, name)`` of a snapshot folder's name, ``None`` for anything else."""
    m = SNAP_RE.match(Path(folder).name)
    return (int(m.group(1)), m.group(2)) if m else None


def seal(folder: Union[str, Path], info: CheckpointInfo, engine_name: str,
         root: Optional[Union[str, Path]] = None) -> None:
    """Write a copied folder's marker (it is complete from now on), then point
    ``root/<info.name>.json`` at it (``root``: the folder's parent)."""
    folder = Path(folder)
    write_json(folder / MARKER, dict(info.as_dict(), engine_prefix=engine_name))
    write_pointer(root or folder.parent, info.name, folder, info)


def snapshot(checkpoint_dir: Union[str, Path], name: str, dest_root: Union[str, Path], *,
             sub_epochs: int = 1, dest_name: Optional[str] = None,
             retries: int = 3, run_id: str = "", sealed: bool = True) -> CheckpointInfo:
    """Copy the engine's checkpoint ``name`` into a NEW folder ``dest_root/s<step>-<name>-<id>/``
    (the marker, listing every file with size and sha256, written last), then point
    ``dest_root/<dest_name>.json`` at it. Nothing is renamed or overwritten: a sync that
    copies the folder at any moment (SageMaker's) never holds a mix of two checkpoints.

    The files keep the engine's names (``latest.pdparams`` ...); the marker's
    ``engine_prefix`` is the ``Global.checkpoints`` prefix inside the folder. Retried when the
    engine rewrote a file during the copy (that copy's folder is removed: it has no marker).
    ``sealed=False`` copies without marker or pointer (:func:`seal` them later): for a folder
    that an outside sync uploads in any order, the marker must come when the files are
    surely up (see ``sync``).
    """
    src = Path(checkpoint_dir)
    root = Path(dest_root)
    label = dest_name or name
    last_error: Optional[Exception] = None
    for _ in range(max(1, retries)):
        before = [(src / f"{name}{s}").stat().st_mtime_ns for s in SUFFIXES]
        states = read_states(src / f"{name}.states")
        step = int(states.get("global_step", 0))
        dest = root / snapshot_folder_name(label, step)
        dest.mkdir(parents=True)
        files: Dict[str, Dict[str, Any]] = {}
        for suffix in SUFFIXES:
            target = dest / f"{name}{suffix}"
            copy_file(src / f"{name}{suffix}", target)
            files[target.name] = {"size": target.stat().st_size, "sha256": sha256_file(target)}
        after = [(src / f"{name}{s}").stat().st_mtime_ns for s in SUFFIXES]
        copied = read_states(dest / f"{name}.states")
        if before != after or int(copied.get("global_step", 0)) != step:
            last_error = IntegrityError(f"{src / name} changed while it was copied.", "retry.")
            remove_tree(dest, ignore_errors=True)
            time.sleep(0.5)
            continue
        engine_epoch = int(copied.get("epoch", 0))
        info = CheckpointInfo(
            name=label, epoch=real_epoch(engine_epoch, sub_epochs),
            engine_epoch=engine_epoch, global_step=step,
            metric=dict(copied["best_model_dict"]), size=sum(f["size"] for f in files.values()),
            time=time.time(), location=str(dest), files=files, run_id=run_id,
            sub_epochs=max(1, sub_epochs))
        if sealed:
            seal(dest, info, name, root)
        return info
    raise last_error or IntegrityError(f"could not snapshot {src / name}.", "retry.")


def copy_snapshot(src_folder: Union[str, Path], dest_root: Union[str, Path], name: str, *,
                  engine_name: Optional[str] = None, info: Optional[CheckpointInfo] = None,
                  sealed: bool = True) -> CheckpointInfo:
    """A snapshot folder copied as checkpoint ``name`` (files renamed ``<name>.pdparams`` ...)
    into a new folder under ``dest_root``, marker last, then pointed at by ``<name>.json``
    (best_accuracy kept as best_of_run). The source is verified against its marker, or,
    not sealed yet, against ``info`` (its files were copied as ``engine_name``)."""
    if info is None:
        info = verify_snapshot(src_folder)
        old_prefix = engine_prefix(src_folder).name
    else:
        info = CheckpointInfo.from_dict(info.as_dict())
        old_prefix = engine_name or info.name
        for fname, meta in info.files.items():
            if sha256_file(Path(src_folder) / fname) != meta.get("sha256"):
                raise IntegrityError(f"{Path(src_folder) / fname} changed after it was copied.",
                                     "the snapshot is damaged; the next save replaces it.")
    dest = Path(dest_root) / snapshot_folder_name(name, info.global_step)
    dest.mkdir(parents=True)
    files = {}
    for fname, meta in info.files.items():
        new = name + fname[len(old_prefix):] if fname.startswith(old_prefix) else fname
        copy_file(Path(src_folder) / fname, dest / new)
        files[new] = meta
    info.name, info.location, info.files, info.time = name, str(dest), files, time.time()
    if sealed:
        seal(dest, info, name, dest_root)
    return info


def remove_snapshot(folder: Union[str, Path]) -> None:
    """Delete a snapshot folder, its marker first: a sync that copies the deletion halfway
    leaves an incomplete folder, never a marker beside missing files."""
    remove_file(Path(folder) / MARKER)
    remove_tree(folder, ignore_errors=True)


def stale_folders(root: Union[str, Path], name: str, keep: Union[str, Path]) -> List[Path]:
    """Folders of checkpoint ``name`` under ``root`` older than ``keep`` (a complete folder
    of that name): complete ones of a lower step (at the same step, written before it; never
    by the clock alone), and marker-less ones (interrupted copies) at a lower step. Newer
    folders are never stale."""
    keep = Path(keep)
    ref = read_marker(keep / MARKER)
    if ref is None:
        return []
    out: List[Path] = []
    for folder in Path(root).iterdir():
        parsed = folder_name_of(folder)
        if folder == keep or parsed is None or parsed[1] != name:
            continue
        info = read_marker(folder / MARKER)
        if info is not None and (info.global_step, info.time) < (ref.global_step, ref.time) \
                or info is None and parsed[0] < ref.global_step:
            out.append(folder)
    return out


def engine_prefix(snapshot_dir: Union[str, Path]) -> Path:
    """The ``Global.checkpoints`` prefix of a snapshot folder (``.../latest/latest``)."""
    d = Path(snapshot_dir)
    try:
        data = json.loads((d / MARKER).read_text(encoding="utf-8"))
        prefix = str(data.get("engine_prefix", d.name))
        if not ENGINE_NAME_RE.match(prefix) and not NAME_RE.match(prefix):
            raise IntegrityError(f"{d / MARKER}: its engine_prefix {prefix[:80]!r} is not a "
                                 "checkpoint name.", "use another checkpoint (`rectrain ckpt list`).")
        return d / prefix
    except (OSError, ValueError):
        states = sorted(d.glob("*.states"))
        if states:
            return d / states[0].name[: -len(".states")]
        return d / d.name


def sizes_match(snapshot_dir: Union[str, Path], info: CheckpointInfo) -> bool:
    """The cheap half of :func:`verify_snapshot` (a stat per file, no hashing), for listings:
    every file the marker names is there with the size it was sealed with."""
    for fname, meta in info.files.items():
        try:
            if "size" in meta and (Path(snapshot_dir) / fname).stat().st_size != meta["size"]:
                return False
        except OSError:
            return False
    return True


def verify_snapshot(snapshot_dir: Union[str, Path]) -> CheckpointInfo:
    """Check a snapshot folder's files against its marker; raise IntegrityError if not."""
    d = Path(snapshot_dir)
    if not (d / MARKER).is_file():
        raise IntegrityError(f"{d}: no completion marker ({MARKER}).",
                             "the checkpoint is incomplete; use another one (`rectrain ckpt list`).")
    info = load_marker(d / MARKER)
    for fname, meta in info.files.items():
        path = d / fname  # a plain basename: parse_marker checked it
        if not path.is_file() or path.is_symlink() or sha256_file(path) != meta["sha256"]:
            raise IntegrityError(f"{path}: missing or does not match its checksum.",
                                 "download the checkpoint again (`rectrain ckpt pull`).")
    return info
