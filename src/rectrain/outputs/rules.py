"""The rules of the write gateway: may a command write there at all.

Never over one of its own inputs, never over a file rectrain did not write (``--force`` only
over a file of the same kind, never over data), never a training run's records or a file
inside a verified checkpoint snapshot, never the current folder, its parents, home or root.
A command claims each output before it does any work: a file with :func:`claim_output_file`
(and :func:`record_output` once written), a folder with :func:`claim_output_dir`, a folder
it replaces whole with :func:`check_replaceable_dir`. Each raises
:class:`~rectrain.errors.UserError` (exit 2) naming the paths and the fix.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Optional, Sequence, Set, Tuple, Union

from rectrain.errors import UserError
from rectrain.fsutil import sha256_file
from rectrain.logs import get_logger
from rectrain.outputs.files import open_append, refuse_special, special_place, write_json, write_text

PathLike = Union[str, "os.PathLike[str]"]
log = get_logger(__name__)


def _resolve(path: PathLike) -> Path:
    return Path(os.path.abspath(os.path.expanduser(str(path)))).resolve()


def same_file(a: PathLike, b: PathLike) -> bool:
    """True when ``a`` and ``b`` name the same file (after links, ``..`` and hard links)."""
    pa, pb = _resolve(a), _resolve(b)
    if pa == pb:
        return True
    try:
        return os.path.samefile(pa, pb)
    except OSError:
        return False


def is_within(path: PathLike, folder: PathLike) -> bool:
    """True when ``path`` is ``folder`` or lies below it (after resolving links)."""
    p, f = _resolve(path), _resolve(folder)
    return p == f or f in p.parents


def refuse_output_over_inputs(output: Optional[PathLike], inputs: Iterable[Tuple[str, Optional[PathLike]]],
                              *, flag: str = "-o") -> None:
    """Refuse an output file that is one of the inputs (``(what, path)`` pairs, ``None`` skipped).

    Writing it would replace the input before (or while) it is read."""
    if output is None:
        return
    for what, path in inputs:
        if path is None:
            continue
        if same_file(output, path):
            raise UserError(
                f"{flag} {output} is the same file as the {what} ({path}): writing it would "
                "replace the input it is made from.",
                f"write to another path (e.g. {_suggest(output)}), check it, then replace the "
                "original yourself if you want to.")


def refuse_outputs_over_inputs(outputs: Sequence[PathLike], inputs: Iterable[Tuple[str, Optional[PathLike]]],
                               *, flag: str = "-o") -> None:
    items = list(inputs)
    for out in outputs:
        refuse_output_over_inputs(out, items, flag=flag)


def _suggest(path: PathLike) -> str:
    p = Path(str(path))
    return str(p.with_name(f"{p.stem}.new{p.suffix}"))


def check_replaceable_dir(out: PathLike, *, marker: str, allowed: Optional[Set[str]] = None,
                          inputs: Iterable[Tuple[str, Optional[PathLike]]] = (), flag: str = "-o",
                          what: str = "output folder") -> None:
    """Refuse to replace ``out`` unless rectrain wrote it: it holds ``marker`` and (when
    ``allowed`` is given) nothing but those names. Never the current folder, a parent of it,
    the file-system root or the home folder, nor a folder holding one of the ``inputs``."""
    target = _resolve(out)
    where = _special_place(target)
    if where:
        raise UserError(f"{flag} {out} is {where}: rectrain never replaces it.",
                        f"write the {what} into a new sub-folder, e.g. {flag} {Path(str(out)) / 'model'}.")
    for name, path in inputs:
        if path is not None and is_within(path, target):
            raise UserError(f"{flag} {out} holds the {name} ({path}): replacing it would delete "
                            "the input.", f"write the {what} somewhere else, e.g. {flag} "
                            f"{target.parent / (target.name + '-model')}.")
    if not target.exists():
        return
    if not target.is_dir():
        raise UserError(f"{flag} {out} is a file, not a folder.",
                        f"choose a folder path for the {what}.")
    names = {p.name for p in target.iterdir()}
    if not names:
        return
    if marker not in names:
        raise UserError(f"{flag} {out} is a folder with other content (no {marker}: rectrain did "
                        "not write it), so --force will not replace it.",
                        f"choose a new or empty folder for the {what}, or move that folder away yourself.")
    if allowed is not None:
        extra = sorted(names - allowed - {marker})
        if extra:
            shown = ", ".join(extra[:5]) + (" ..." if len(extra) > 5 else "")
            raise UserError(f"{flag} {out} holds files rectrain did not write there ({shown}), so "
                            "--force will not replace it.",
                            f"move those files away, or choose another folder for the {what}.")


OUTPUT_MARKER = ".rectrain-output"


def _special_place(target: Path) -> str:
    return special_place(target)


def refuse_delete_in(folder: PathLike, *, flag: str = "--delete") -> None:
    """``--delete`` (remove local files the source lacks) never in the current folder, a
    parent of it, the root or the home folder: everything unrelated there would go."""
    where = _special_place(_resolve(folder))
    if where:
        raise UserError(f"{flag} into {folder}: it is {where}, and {flag} would remove every "
                        "file there that the source does not have.",
                        f"download into a new sub-folder (e.g. {Path(str(folder)) / 'data'}), "
                        f"or drop {flag}.")


def _recorded(target: Path) -> Set[str]:
    """The names rectrain recorded as written in ``target`` (its :data:`OUTPUT_MARKER`)."""
    try:
        data = json.loads((target / OUTPUT_MARKER).read_text(encoding="utf-8"))
        return {str(n) for n in data.get("written", [])}
    except (OSError, ValueError, AttributeError):
        return set()


def claim_output_dir(out: PathLike, *, command: str, writes: Sequence[str],
                     inputs: Iterable[Tuple[str, Optional[PathLike]]] = (), flag: str = "-o",
                     create: bool = True, own: Iterable[PathLike] = ()) -> Path:
    """Prepare a folder that ``command`` writes the names ``writes`` into (files, or folders
    ending with "/"), refusing to replace what rectrain did not write there.

    A name may be replaced only when it does not exist yet (a folder: or is empty) or when
    rectrain recorded it as its own output in the folder's :data:`OUTPUT_MARKER` (JSON, the
    names every rectrain command wrote there). An input that one of the written names would
    replace is refused in every case. The marker is updated with ``writes``."""
    target = _resolve(out)
    refuse_special(out, what=f"{flag} folder")
    if target.exists() and not target.is_dir():
        raise UserError(f"{flag} {out} is a file, not a folder.",
                        f"pass a folder path for the output of {command} (it is created).")
    why = protected_reason(target, own=own)
    if why:
        raise UserError(f"{flag} {out} is {why}: {command} never writes there.",
                        f"write into a new folder, e.g. {flag} {target.parent / (target.name + '-out')}.")
    for what, path in inputs:
        if path is None:
            continue
        for name in writes:
            dest = target / name.rstrip("/")
            hit = is_within(path, dest) if name.endswith("/") else same_file(path, dest)
            if hit:
                raise UserError(
                    f"{flag} {out}: {command} writes {dest}, which is (or holds) the {what} "
                    f"({path}); it would be replaced.",
                    f"write into a new folder, e.g. {flag} "
                    f"{target.parent / (target.name + '-out')}.")
    ours = _recorded(target) if target.is_dir() else set()
    taken = []
    for name in writes:
        dest = target / name.rstrip("/")
        full_dir = name.endswith("/") and dest.is_dir() and any(dest.iterdir())
        exists = full_dir or (not name.endswith("/") and (dest.exists() or dest.is_symlink()))
        if exists and name not in ours:
            taken.append(name)
    if taken:
        raise UserError(
            f"{flag} {out} already holds {', '.join(taken)}, which rectrain did not write "
            f"there ({command} would replace {'them' if len(taken) > 1 else 'it'}).",
            "choose a new or empty folder, or move those files away yourself.")
    if create:
        record_names(target, writes, command=command)
    return target


def record_names(folder: PathLike, names: Iterable[str], *, command: str) -> None:
    """Create ``folder`` and note in its :data:`OUTPUT_MARKER` that ``command`` writes ``names``
    there (files, or folders ending with "/"): a later rectrain command may replace them."""
    target = _resolve(folder)
    target.mkdir(parents=True, exist_ok=True)
    ours = _recorded(target)
    record = sorted(ours | set(names))
    if record != sorted(ours):
        write_json(target / OUTPUT_MARKER, {"written": record, "last_command": command})


def refuse_replacing(folder: PathLike, foreign: Sequence[str], *, command: str, source: str) -> None:
    """``command`` would replace the files ``foreign`` (relative to ``folder``, each differing
    from what ``source`` holds and not written there by rectrain): refused, listed, with the fix."""
    if foreign:
        shown = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
        raise UserError(f"{folder} holds {len(foreign)} file(s) that differ from {source} and that rectrain "
                        f"did not write there ({shown}): {command} would replace them.",
                        "write into a new folder, or move those files away yourself.")


def refuse_replacing_foreign_file(path: Optional[PathLike], *, flag: str, kind: str) -> None:
    """An output file (``kind``: "png" or "json") may replace only a file of its own kind:
    ``--plot metrics.jsonl`` or ``--grid img/0.jpg`` would destroy data."""
    if path is None:
        return
    p = _resolve(path)
    if p.is_dir():
        raise UserError(f"{flag} {path} is a folder.",
                        f"pass a file path, e.g. {flag} {Path(str(path)) / ('out.' + kind)}.")
    if not p.exists():
        return
    try:
        with open(p, "rb") as fh:
            head = fh.read(1 << 16)
    except OSError:
        return
    ok = True
    if kind == "png":
        ok = head.startswith(b"\x89PNG\r\n\x1a\n")
    elif kind == "json":
        try:
            json.loads(p.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError, OSError):
            ok = False
    if not ok:
        raise UserError(f"{flag} {path} exists and is not a {kind.upper()} file written before: "
                        "writing it would replace that file.",
                        f"choose a new file name, e.g. {flag} "
                        f"{_suggest(Path(str(path)).with_suffix('.' + kind))}.")


_IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM", b"II*\x00", b"MM\x00*", b"RIFF")


def refuse_replacing_data(path: Optional[PathLike], *, flag: str = "-o", what: str = "file") -> None:
    """An output text file never replaces an existing label file (``image<TAB>label`` lines)
    or an image: ``data dict labels.txt -o val.txt`` would lose the validation set."""
    if path is None:
        return
    p = _resolve(path)
    if not p.is_file():
        return
    try:
        with open(p, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return
    if head.startswith(_IMAGE_MAGIC):
        kind = "an image"
    else:
        lines = [ln for ln in head.decode("utf-8", "replace").splitlines()[:20] if ln.strip()]
        tabbed = [ln for ln in lines if "\t" in ln and ln.split("\t", 1)[0].strip()]
        kind = "a label file (image<TAB>label lines)" if lines and len(tabbed) * 2 > len(lines) else ""
    if kind:
        raise UserError(f"{flag} {path} exists and is {kind}: writing the {what} there would "
                        "replace it.", f"choose a new file name, e.g. {flag} {_suggest(path)}.")


# What no command writes over, whatever its flags: a training run's records, and anything inside
# a verified checkpoint snapshot (its files are what `_COMPLETE.json` vouches for).
RUN_RECORDS = ("run-state.json", "metrics.jsonl", "train.log")
RUN_DIR_SIGN = "run-state.json"
SNAPSHOT_MARKER = "_COMPLETE.json"


def _run_dir_of(target: Path) -> Optional[Path]:
    """The training run folder ``target`` lies in (a folder holding run-state.json), if any."""
    for folder in [target, *target.parents]:
        if (folder / RUN_DIR_SIGN).is_file():
            return folder
    return None


def protected_reason(target: PathLike, *, own: Iterable[PathLike] = ()) -> str:
    """Why ``target`` (a file or folder to write) must not be written, or "": inside a
    verified checkpoint snapshot, a run's records (run-state.json, metrics.jsonl, train.log),
    or inside a training run's folder that is not one of the command's ``own`` runs."""
    p = _resolve(target)
    for folder in [p, *p.parents]:
        if (folder / SNAPSHOT_MARKER).is_file() or \
                (folder.parent.name == "snapshots" and folder.name.startswith("s")):
            return f"inside a verified checkpoint snapshot ({folder})"
    if p.name in RUN_RECORDS and p.parent.is_dir() and (p.parent / RUN_DIR_SIGN).exists():
        return f"the training run's record {p.name}"
    run = _run_dir_of(p)
    if run is not None and not any(same_file(run, o) or is_within(run, o) for o in own):
        return f"inside the training run {run} (another run's files)"
    return ""


def claim_output_file(path: PathLike, *, command: str, flag: str = "-o",
                      inputs: Iterable[Tuple[str, Optional[PathLike]]] = (), force: bool = False,
                      kind: Optional[str] = None, own: Iterable[PathLike] = ()) -> Path:
    """Check that ``command`` may write the file ``path`` (before any work): never a special
    file or a folder, never one of its ``inputs``, never a run's records or a snapshot's file
    (:func:`protected_reason`), and an existing file only when rectrain recorded it as its own
    output there (:func:`record_output`) or, with ``force``, when it is of the same ``kind``
    ("png", "json") and not data. Returns the resolved path."""
    p = _resolve(path)
    refuse_special(path, what=f"{flag} output")
    if p.is_dir():
        raise UserError(f"{flag} {path} is a folder.",
                        f"pass a file path, e.g. {flag} {Path(str(path)) / ('out.' + (kind or 'txt'))}.")
    refuse_output_over_inputs(path, inputs, flag=flag)
    why = protected_reason(p, own=own)
    if why:
        raise UserError(f"{flag} {path} is {why}: {command} never writes there.",
                        f"write to a new file outside it, e.g. {flag} {Path.cwd() / p.name}.")
    if not (p.exists() or p.is_symlink()):
        return p
    refuse_replacing_data(path, flag=flag)  # what it is, when it is data: named in the message
    if kind:
        refuse_replacing_foreign_file(path, flag=flag, kind=kind)
    if force or p.name in _recorded(p.parent) or written_by_rectrain(p):
        return p
    raise UserError(f"{flag} {path} exists and rectrain did not write it: {command} would "
                    "replace it.", f"choose a new file name (e.g. {flag} {_suggest(path)}), or move "
                    "that file away yourself.")


def _registry() -> Path:
    """Where rectrain notes the files it wrote (path, SHA-256): outside the user's folders, so
    an output leaves nothing else behind."""
    return Path.home() / ".cache" / "rectrain" / "written-files.jsonl"


REGISTRY_MAX = 4 << 20  # bytes; then the older half is dropped


def record_output(path: PathLike, *, command: str) -> None:
    """Note that ``command`` wrote ``path`` as it is now (its SHA-256): a later run may replace
    it, as long as nobody changed it since (then it is the user's)."""
    p = _resolve(path)
    line = json.dumps({"path": str(p), "sha256": sha256_file(p), "command": command}) + "\n"
    try:
        registry = _registry()
    except RuntimeError:  # no home folder: the output stays; a rerun then asks for --force
        return
    try:
        if registry.is_file() and registry.stat().st_size > REGISTRY_MAX:
            lines = registry.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
            write_text(registry, "".join(lines[len(lines) // 2:]))
        with open_append(registry) as fh:
            fh.write(line)
    except OSError as exc:  # a read-only home: the output stays; a rerun then asks for --force
        log.debug("could not note %s in %s: %s", p, registry, exc)


def written_by_rectrain(path: PathLike) -> bool:
    """Whether rectrain wrote ``path`` with exactly its present content (:func:`record_output`)."""
    p = _resolve(path)
    try:
        text = _registry().read_text(encoding="utf-8", errors="replace")
    except (OSError, RuntimeError):
        return False
    key = json.dumps(str(p))
    digests = set()
    for line in text.splitlines():
        if key in line:
            try:
                digests.add(json.loads(line).get("sha256"))
            except ValueError:
                continue
    return bool(digests) and p.is_file() and sha256_file(p) in digests
