"""Guards for what a command writes: never over one of its own inputs, and ``--force`` only
ever over what rectrain itself wrote before.

Every command that takes an output path calls :func:`refuse_output_over_inputs` before it
reads anything; commands that replace a whole folder call :func:`check_replaceable_dir`.
Both raise :class:`~rectrain.errors.UserError` (exit 2) naming the paths and the fix.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Optional, Sequence, Set, Tuple, Union

from rectrain.errors import UserError

PathLike = Union[str, "os.PathLike[str]"]


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
    cwd = _resolve(os.getcwd())
    if target == cwd:
        return "the current folder"
    if target in cwd.parents:
        return "a parent of the current folder"
    if target in {Path(target.anchor), _resolve(Path.home())}:
        return "the root or home folder"
    return ""


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
                     create: bool = True) -> Path:
    """Prepare a folder that ``command`` writes the names ``writes`` into (files, or folders
    ending with "/"), refusing to replace what rectrain did not write there.

    A name may be replaced only when it does not exist yet (a folder: or is empty) or when
    rectrain recorded it as its own output in the folder's :data:`OUTPUT_MARKER` (JSON, the
    names every rectrain command wrote there). An input that one of the written names would
    replace is refused in every case. The marker is updated with ``writes``."""
    target = _resolve(out)
    if target.exists() and not target.is_dir():
        raise UserError(f"{flag} {out} is a file, not a folder.",
                        f"pass a folder path for the output of {command} (it is created).")
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
        target.mkdir(parents=True, exist_ok=True)
        record = sorted(ours | set(writes))
        if record != sorted(ours):
            tmp = target / f"{OUTPUT_MARKER}.part"
            tmp.write_text(json.dumps({"written": record, "last_command": command}) + "\n",
                           encoding="utf-8")
            os.replace(tmp, target / OUTPUT_MARKER)
    return target


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
