"""The one safe unpickler for the engine's files: ``.pdparams`` / ``.pdopt`` (``paddle.save``:
a dict of numpy arrays) and ``.states`` (the engine's plain dict of epoch, step and metrics).

A pickle can run any code on load; rectrain reads these files without Paddle and without
running anything from them: :class:`SafeUnpickler` resolves only the classes its allowlist
names and refuses every other one (``pickle.UnpicklingError``). Each file kind has its list:
:data:`TENSORS` (numpy types, the containers ``paddle.save`` writes) and :data:`STATES` (the
numbers ``tools/program.py`` keeps). Every reader of these files goes through :func:`load`.
"""

from __future__ import annotations

import pickle
from typing import IO, Any, Callable, Tuple

Allowed = Callable[[str, str], bool]


def _tensors(module: str, name: str) -> bool:
    return module.split(".")[0] == "numpy" or (module, name) in (
        ("collections", "OrderedDict"), ("builtins", "dict"), ("builtins", "list"))


_STATES: Tuple[Tuple[str, str], ...] = (
    ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("builtins", "float"), ("builtins", "int"))


def _states(module: str, name: str) -> bool:
    return (module, name) in _STATES


TENSORS: Allowed = _tensors  # .pdparams / .pdopt: numpy arrays in dicts and lists
STATES: Allowed = _states  # .states: plain dicts, ints, floats (maybe numpy scalars)


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the classes ``allowed(module, name)`` accepts."""

    def __init__(self, fh: IO[bytes], allowed: Allowed, what: str, **kwargs: Any) -> None:
        super().__init__(fh, **kwargs)
        self.allowed = allowed
        self.what = what

    def find_class(self, module: str, name: str) -> Any:
        if self.allowed(module, name):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from {self.what}")


def load(fh: IO[bytes], allowed: Allowed, what: str, **kwargs: Any) -> Any:
    """Unpickle ``fh`` with :class:`SafeUnpickler` (``kwargs``: ``encoding`` ...)."""
    return SafeUnpickler(fh, allowed, what, **kwargs).load()
