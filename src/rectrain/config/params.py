"""The parameters the engine's classes really use, read from its source with ``ast``.

A class whose ``__init__`` takes ``**kwargs`` accepts any keyword, so a typo
(``Backbone.scael``) passes the engine without a word. What matters is what the class does
with ``kwargs``: most ignore them (``MobileNetV3``), some read a few keys
(``Adam``: ``kwargs.get("group_lr")``), a few pass them on (then anything may be used). Here
each ``__init__`` is read for that, following base classes in the same module, so that
:mod:`rectrain.config.modules` can refuse a key that no code reads, with the closest name.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

# nn.Layer.__init__(name_scope=None, dtype="float32"): what super().__init__(**kwargs) accepts
_LAYER_PARAMS = ["name_scope", "dtype"]
_LAYER_BASES = {"Layer", "nn.Layer", "paddle.nn.Layer", "object"}


def _base_names(cls: ast.ClassDef) -> List[str]:
    out = []
    for b in cls.bases:
        if isinstance(b, ast.Name):
            out.append(b.id)
        elif isinstance(b, ast.Attribute):
            parts = []
            node: ast.AST = b
            while isinstance(node, ast.Attribute):
                parts.append(node.attr)
                node = node.value
            if isinstance(node, ast.Name):
                parts.append(node.id)
            out.append(".".join(reversed(parts)))
    return out


def _is_super_init(call: ast.Call) -> bool:
    f = call.func
    return (isinstance(f, ast.Attribute) and f.attr == "__init__" and isinstance(f.value, ast.Call)
            and isinstance(f.value.func, ast.Name) and f.value.func.id == "super")


def kwargs_use(func: ast.FunctionDef, bases: Sequence[str] = ()) -> Tuple[bool, Set[str]]:
    """``(open, names)`` for the ``**kwargs`` of ``func``: the keys it reads by name, and
    whether it may use any other (passes ``kwargs`` on, stores it, iterates it)."""
    kw = func.args.kwarg.arg if func.args.kwarg else None
    if kw is None:
        return False, set()
    names: Set[str] = set()
    handled: Set[int] = set()  # ids of Name nodes whose use is understood
    for node in ast.walk(func):
        # kwargs.get("x") / kwargs.pop("x") / kwargs.setdefault("x", ...)
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == kw
                and node.func.attr in ("get", "pop", "setdefault") and node.args
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            names.add(node.args[0].value)
            handled.add(id(node.func.value))
        # kwargs["x"]
        elif (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name)
              and node.value.id == kw):
            sl = node.slice
            if isinstance(sl, ast.Index):  # Python 3.8 ast
                sl = sl.value  # type: ignore[attr-defined]
            if isinstance(sl, ast.Constant) and isinstance(sl.value, str):
                names.add(sl.value)
                handled.add(id(node.value))
        # "x" in kwargs
        elif (isinstance(node, ast.Compare) and len(node.comparators) == 1
              and isinstance(node.ops[0], (ast.In, ast.NotIn))
              and isinstance(node.comparators[0], ast.Name) and node.comparators[0].id == kw
              and isinstance(node.left, ast.Constant) and isinstance(node.left.value, str)):
            names.add(node.left.value)
            handled.add(id(node.comparators[0]))
        # super().__init__(**kwargs) on a paddle Layer / object: only the Layer's own params
        elif isinstance(node, ast.Call) and _is_super_init(node):
            for k in node.keywords:
                if (k.arg is None and isinstance(k.value, ast.Name) and k.value.id == kw
                        and bases and all(b in _LAYER_BASES for b in bases)):
                    names.update(_LAYER_PARAMS)
                    handled.add(id(k.value))
    for node in ast.walk(func):
        if isinstance(node, ast.Name) and node.id == kw and id(node) not in handled:
            return True, names  # passed on, stored or iterated: any key may be used
    return False, names


def _class_defs(path: Path, parse, module_file, seen: Optional[Set[Path]] = None  # noqa: ANN001
                ) -> Dict[str, Tuple[ast.ClassDef, ast.Module]]:
    """Classes a module defines or imports (explicit and star imports, relative)."""
    seen = seen if seen is not None else set()
    if path in seen:
        return {}
    seen.add(path)
    tree = parse(path)
    if tree is None:
        return {}
    out: Dict[str, Tuple[ast.ClassDef, ast.Module]] = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level:
            sub = module_file(path.parent, "." * node.level + node.module)
            if sub is None:
                continue
            defs = _class_defs(sub, parse, module_file, seen)
            for alias in node.names:
                if alias.name == "*":
                    out.update({n: d for n, d in defs.items() if not n.startswith("_")})
                elif alias.name in defs:
                    out[alias.asname or alias.name] = defs[alias.name]
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            out[node.name] = (node, tree)
    return out


def class_params(cls: ast.ClassDef, tree: ast.Module, depth: int = 0
                 ) -> Tuple[Optional[List[str]], bool]:
    """``(params, open)`` of a class's constructor: the keyword names it uses and whether it
    may take any other. An ``__init__`` inherited from a class of the same module is followed;
    one from elsewhere is unknown (``None, True``)."""
    for item in cls.body:
        if isinstance(item, ast.FunctionDef) and item.name == "__init__":
            a = item.args
            params = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs if x.arg != "self"]
            is_open, names = kwargs_use(item, _base_names(cls))
            return params + sorted(n for n in names if n not in params), is_open
    bases = _base_names(cls)
    if depth < 5 and len(bases) == 1:
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and node.name == bases[0]:
                return class_params(node, tree, depth + 1)
        if bases[0] == "object":
            return [], False
    return None, True


def classes_params(init_or_module: Path, names: Iterable[str], parse, module_file  # noqa: ANN001
                   ) -> Dict[str, Tuple[Optional[List[str]], bool]]:
    """``name -> (params, open)`` for the given class names as ``init_or_module`` sees them."""
    defs = _class_defs(init_or_module, parse, module_file)
    out: Dict[str, Tuple[Optional[List[str]], bool]] = {}
    for name in names:
        if name in defs:
            cls, tree = defs[name]
            out[name] = class_params(cls, tree)
    return out


def config_keys(root: Path, parse) -> Set[str]:  # noqa: ANN001
    """Every string the engine's code uses as a mapping key (``x["k"]``, ``x.get("k")``,
    ``"k" in x``, ``x.pop("k")``): the keys a config section may hold and be read."""
    keys: Set[str] = set()
    ppocr = root / "ppocr"
    # where config sections are read: the tools, the data loaders, the builders, the utils
    files = (list((root / "tools").glob("*.py")) + list((ppocr / "data").glob("*.py"))
             + list((ppocr / "utils").glob("*.py")) + list(ppocr.glob("*/__init__.py"))
             + list((ppocr / "modeling").glob("*/__init__.py"))
             + list((ppocr / "modeling" / "architectures").glob("*.py")))
    for file in files:
        tree = parse(file)
        if tree is None:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Subscript):
                sl = node.slice
                if isinstance(sl, ast.Index):  # Python 3.8 ast
                    sl = sl.value  # type: ignore[attr-defined]
                if isinstance(sl, ast.Constant) and isinstance(sl.value, str):
                    keys.add(sl.value)
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and node.func.attr in ("get", "pop", "setdefault") and node.args
                  and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                keys.add(node.args[0].value)
            elif (isinstance(node, ast.Compare) and isinstance(node.left, ast.Constant)
                  and isinstance(node.left.value, str)
                  and any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops)):
                keys.add(node.left.value)
    return keys
