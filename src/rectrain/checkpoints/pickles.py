"""The one safe unpickler for the engine's files: ``.pdparams`` / ``.pdopt`` (``paddle.save``:
a dict of numpy arrays) and ``.states`` (the engine's plain dict of epoch, step and metrics).

A pickle can run any code on load; rectrain reads these files without Paddle and without
running anything from them: :class:`SafeUnpickler` resolves only the exact ``(module, name)``
pairs of its allowlist and refuses every other global (``pickle.UnpicklingError`` naming it).
Nothing is allowed by prefix: ``numpy.testing`` has helpers that ``exec`` a string. Each file
kind has its list: :data:`TENSORS` (the numpy types and containers ``paddle.save`` writes) and
:data:`STATES` (the numbers ``tools/program.py`` keeps). Every reader of these files goes
through :func:`load`.

The engine itself loads with plain ``pickle`` (``paddle.load``), so a file that did not come
from this process never reaches it as is: :func:`engine_copy` writes a re-pickled copy of the
plain data it read (only allowlisted types can be in it) where the engine is pointed.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import IO, Any, Callable, Dict, FrozenSet, Optional, Tuple

from rectrain.errors import IntegrityError
from rectrain.outputs import remove_file, save_with

Allowed = Callable[[str, str], bool]

_NUMPY_ARRAYS: FrozenSet[Tuple[str, str]] = frozenset({
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
})
_PLAIN: FrozenSet[Tuple[str, str]] = frozenset({
    ("collections", "OrderedDict"), ("builtins", "dict"), ("builtins", "list"),
    ("builtins", "tuple"), ("builtins", "float"), ("builtins", "int"), ("builtins", "bool"),
    ("builtins", "str"), ("builtins", "bytes"), ("builtins", "complex"),
    ("_codecs", "encode"),  # how protocol 2 writes bytes (older paddle.save files)
})
_TENSOR_GLOBALS = _NUMPY_ARRAYS | _PLAIN
_STATE_GLOBALS = frozenset({("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
                            ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}) | _PLAIN


def _tensors(module: str, name: str) -> bool:
    return (module, name) in _TENSOR_GLOBALS


def _states(module: str, name: str) -> bool:
    return (module, name) in _STATE_GLOBALS


TENSORS: Allowed = _tensors  # .pdparams / .pdopt: numpy arrays in dicts and lists
STATES: Allowed = _states  # .states: plain dicts, ints, floats (maybe numpy scalars)
KINDS: Dict[str, Allowed] = {".pdparams": TENSORS, ".pdopt": TENSORS, ".states": STATES}


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals ``allowed(module, name)`` accepts."""

    def __init__(self, fh: IO[bytes], allowed: Allowed, what: str, **kwargs: Any) -> None:
        super().__init__(fh, **kwargs)
        self.allowed = allowed
        self.what = what

    def find_class(self, module: str, name: str) -> Any:
        if self.allowed(module, name):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refusing to load the global {module}.{name} from {self.what} (only numpy arrays "
            "and plain numbers, strings, lists and dicts are read; a pickle naming anything "
            "else can run code)")


def load(fh: IO[bytes], allowed: Allowed, what: str, **kwargs: Any) -> Any:
    """Unpickle ``fh`` with :class:`SafeUnpickler` (``kwargs``: ``encoding`` ...)."""
    return SafeUnpickler(fh, allowed, what, **kwargs).load()


def load_file(path: Path) -> Any:
    """The plain data of one engine file (kind from its suffix); :class:`IntegrityError` naming
    the file and the refused global when it holds anything else or cannot be read."""
    allowed = KINDS.get(path.suffix)
    if allowed is None:
        raise ValueError(f"not an engine file: {path}")
    try:
        with open(path, "rb") as fh:
            return load(fh, allowed, str(path), encoding="latin1")
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, MemoryError) as exc:
        raise IntegrityError(f"{path}: not read ({exc}).",
                             "use a checkpoint or weights file written by PaddleOCR (paddle.save) "
                             "that you trust; rectrain never hands the engine a file it cannot "
                             "read as plain data.") from exc


def engine_copy(prefix: Path, dest_dir: Path, *, states: Optional[Dict[str, Any]] = None,
                suffixes: Tuple[str, ...] = (".pdparams", ".pdopt", ".states")) -> Path:
    """Re-pickled copies of ``<prefix><suffix>`` (those that exist) in ``dest_dir``, as
    ``dest_dir/<prefix name><suffix>``: what the engine is pointed at (``Global.checkpoints``,
    ``Global.pretrained_model``) instead of a file from S3, a download or another machine.
    ``states`` replaces the ``.states`` data (already read safely by the caller). Returns the
    new prefix. Refused files raise :class:`IntegrityError` (nothing is half-written: each copy
    is atomic)."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / prefix.name
    for suffix in suffixes:
        src = prefix.with_name(prefix.name + suffix)
        dst = target.with_name(target.name + suffix)
        if suffix == ".states" and states is not None:
            data: Any = states
        elif src.is_file():
            data = load_file(src)
        else:
            continue
        if suffix != ".states" and not isinstance(data, dict):
            raise IntegrityError(f"{src}: not a state dict.",
                                 "use a checkpoint or weights file written by PaddleOCR.")
        if dst.exists() or dst.is_symlink():
            remove_file(dst)
        save_with(dst, _pickler(data, 2 if suffix == ".states" else 4))
    return target


def _pickler(data: Any, protocol: int) -> Callable[[IO[bytes]], None]:
    """What ``save_with`` runs on the open file: the plain data, pickled again."""
    def dump(fh: IO[bytes]) -> None:
        pickle.dump(data, fh, protocol=protocol)
    return dump
