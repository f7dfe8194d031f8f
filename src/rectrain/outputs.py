"""Guards for what a command writes: never over one of its own inputs, and ``--force`` only
ever over what rectrain itself wrote before.

Every command that takes an output path calls :func:`refuse_output_over_inputs` before it
reads anything; commands that replace a whole folder call :func:`check_replaceable_dir`.
Both raise :class:`~rectrain.errors.UserError` (exit 2) naming the paths and the fix.
"""

from __future__ import annotations

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
    cwd = _resolve(os.getcwd())
    special = {Path(target.anchor), _resolve(Path.home())}
    if target == cwd:
        where = "the current folder"
    elif target in cwd.parents:
        where = "a parent of the current folder"
    elif target in special:
        where = "the root or home folder"
    else:
        where = ""
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
