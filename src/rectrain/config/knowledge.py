"""What the selected engine knows, read from its source with ``ast`` (no Paddle import).

The names a config may use are the ``support_dict`` lists of the engine's ``build_*``
functions, the algorithm list of ``tools/program.py``, the operators importable by
``ppocr/data/imaug``, and so on. Reading them from the engine itself means a config that
names a module this engine lacks is refused before a GPU is booked, and an engine with more
modules is accepted without a change here.
"""

from __future__ import annotations

import ast
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

from rectrain.config.params import class_params, classes_params, config_keys
from rectrain.engine import Engine


@dataclass
class ClassInfo:
    """The keyword parameters of a class's ``__init__`` (``None`` when unknown)."""

    module: str
    params: Optional[List[str]]
    var_kw: bool


@dataclass
class EngineKnowledge:
    engine_name: str
    algorithms: Set[str] = field(default_factory=set)
    backbones: Set[str] = field(default_factory=set)  # model_type rec/cls
    necks: Set[str] = field(default_factory=set)
    sequence_encoders: Set[str] = field(default_factory=set)  # SequenceEncoder encoder_type
    heads: Set[str] = field(default_factory=set)
    multi_head_parts: Set[str] = field(default_factory=set)  # MultiHead head_list names
    transforms: Set[str] = field(default_factory=set)  # Architecture.Transform
    losses: Set[str] = field(default_factory=set)
    loss_parts: Set[str] = field(default_factory=set)  # classes usable in loss_config_list
    data_ops: Set[str] = field(default_factory=set)  # Train/Eval dataset transforms
    datasets: Set[str] = field(default_factory=set)
    samplers: Set[str] = field(default_factory=set)
    postprocess: Set[str] = field(default_factory=set)
    metrics: Set[str] = field(default_factory=set)
    optimizers: Set[str] = field(default_factory=set)
    lr_schedulers: Set[str] = field(default_factory=set)
    regularizers: Set[str] = field(default_factory=set)
    # class name -> constructor facts, per kind ("backbone", "neck", "head", "transform", "loss",
    # "post-process", "metric", "optimizer", "learning-rate schedule", "regularizer",
    # "data operator")
    classes: Dict[Tuple[str, str], ClassInfo] = field(default_factory=dict)
    # every string the engine's code uses as a mapping key (Global, loader, dataset keys)
    keys: Set[str] = field(default_factory=set)


def _parse(path: Path) -> Optional[ast.Module]:
    try:
        with warnings.catch_warnings():  # engine sources have invalid escapes in docstrings
            warnings.simplefilter("ignore")
            return ast.parse(path.read_text(encoding="utf-8", errors="replace"),
                             filename=str(path))
    except (OSError, SyntaxError):
        return None


def _strings(node: ast.AST) -> List[str]:
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant)
            and isinstance(n.value, str)]


def _support_lists(nodes: List[ast.stmt], var: str = "support_dict") -> Set[str]:
    """Strings in ``var = [...]`` assignments and ``var.append("X")`` calls under ``nodes``."""
    found: Set[str] = set()
    for top in nodes:
        for node in ast.walk(top):
            if isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == var for t in node.targets):
                if isinstance(node.value, (ast.List, ast.Tuple, ast.Set)):
                    found.update(_strings(node.value))
                elif isinstance(node.value, ast.Dict):
                    found.update(k.value for k in node.value.keys
                                 if isinstance(k, ast.Constant) and isinstance(k.value, str))
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and node.func.attr == "append" and isinstance(node.func.value, ast.Name)
                  and node.func.value.id == var):
                found.update(_strings(node))
    return found


def _imports(nodes: List[ast.stmt]) -> Dict[str, Tuple[str, str]]:
    """``local name -> (relative module, original name)`` for ``from .m import A as B``."""
    out: Dict[str, Tuple[str, str]] = {}
    for top in nodes:
        for node in ast.walk(top):
            if isinstance(node, ast.ImportFrom) and node.module:
                mod = "." * node.level + node.module
                for alias in node.names:
                    out[alias.asname or alias.name] = (mod, alias.name)
    return out


def _module_file(package_dir: Path, relmod: str) -> Optional[Path]:
    """File of a module imported relative to ``package_dir`` (``.x``) or absolute (``ppocr.x``)."""
    if relmod.startswith("."):
        level = len(relmod) - len(relmod.lstrip("."))
        base = package_dir
        for _ in range(level - 1):
            base = base.parent
        parts = relmod.lstrip(".").split(".")
    else:
        # absolute: walk up to the engine root (the folder holding ``ppocr``)
        base = package_dir
        while base.name != "ppocr" and base.parent != base:
            base = base.parent
        base = base.parent
        parts = relmod.split(".")
    path = base.joinpath(*parts)
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return None


def _class_info(tree: ast.Module, name: str, module: str) -> Optional[ClassInfo]:
    """Constructor facts; ``var_kw`` is true only when ``**kwargs`` may really be used (passed
    on or stored), not when the class ignores them or reads a few known keys."""
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            params, is_open = class_params(node, tree)
            return ClassInfo(module, params, is_open)
    return None


def _public_names(path: Path, seen: Optional[Set[Path]] = None) -> Set[str]:
    """Names ``from path import *`` brings in (``__all__`` if set, else public top-level)."""
    seen = seen if seen is not None else set()
    if path in seen:
        return set()
    seen.add(path)
    tree = _parse(path)
    if tree is None:
        return set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return set(_strings(node.value))
    names: Set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level:
            for alias in node.names:
                if alias.name == "*":
                    sub = _module_file(path.parent, "." * node.level + node.module)
                    if sub is not None:
                        names |= _public_names(sub, seen)
                else:
                    names.add(alias.asname or alias.name)
    return {n for n in names if not n.startswith("_")}


def _imported_names(path: Path) -> Set[str]:
    """Every name a module's top level defines or imports (star imports expanded)."""
    tree = _parse(path)
    if tree is None:
        return set()
    names: Set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*" and node.module:
                    sub = _module_file(path.parent, "." * node.level + node.module)
                    if sub is not None:
                        names |= _public_names(sub)
                else:
                    names.add(alias.asname or alias.name)
    return names


def _classes_of(path: Path, kind: str, body: List[ast.stmt],
                known: Set[str]) -> Dict[Tuple[str, str], ClassInfo]:
    out: Dict[Tuple[str, str], ClassInfo] = {}
    for local, (relmod, orig) in _imports(body).items():
        if local not in known:
            continue
        file = _module_file(path.parent, relmod)
        tree = _parse(file) if file else None
        if tree is None:
            continue
        info = _class_info(tree, orig, relmod)
        if info is not None:
            out[(kind, local)] = info
    return out


def _function_body(tree: Optional[ast.Module], name: str) -> List[ast.stmt]:
    if tree is None:
        return []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return list(node.body)
    return []


def _rec_branch(body: List[ast.stmt]) -> List[ast.stmt]:
    """The statements of the ``if model_type == "rec" ...`` branch of ``build_backbone``."""
    for top in body:
        for node in ast.walk(top):
            if isinstance(node, ast.If) and "rec" in _strings(node.test):
                return list(node.body)
    return body


def _algorithms(program: Path) -> Set[str]:
    tree = _parse(program)
    if tree is None:
        return set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert) and isinstance(node.test, ast.Compare):
            left = node.test.left
            if (isinstance(left, ast.Name) and left.id == "alg"
                    and any(isinstance(op, ast.In) for op in node.test.ops)):
                return set(_strings(node.test.comparators[0]))
    return set()


def _class_names(path: Path) -> Set[str]:
    tree = _parse(path)
    if tree is None:
        return set()
    return {n.name for n in tree.body if isinstance(n, ast.ClassDef)}


_CACHE: Dict[str, EngineKnowledge] = {}


def engine_knowledge(engine: Engine) -> EngineKnowledge:
    """Read (once per engine root) the module names the engine accepts."""
    key = str(engine.root)
    if key in _CACHE:
        return _CACHE[key]
    root = engine.root
    ppocr = root / "ppocr"
    modeling = ppocr / "modeling"
    k = EngineKnowledge(engine_name=engine.name)
    k.algorithms = _algorithms(root / "tools" / "program.py")

    path = modeling / "backbones" / "__init__.py"
    body = _rec_branch(_function_body(_parse(path), "build_backbone"))
    k.backbones = _support_lists(body)
    k.classes.update(_classes_of(path, "backbone", body, k.backbones))

    for kind, sub, func, attr in (("neck", "necks", "build_neck", "necks"),
                                  ("head", "heads", "build_head", "heads"),
                                  ("transform", "transforms", "build_transform", "transforms")):
        path = modeling / sub / "__init__.py"
        body = _function_body(_parse(path), func)
        names = _support_lists(body)
        setattr(k, attr, names)
        k.classes.update(_classes_of(path, kind, body, names))

    rnn = _parse(modeling / "necks" / "rnn.py")
    if rnn is not None:
        k.sequence_encoders = _support_lists(list(rnn.body), "support_encoder_dict")
    multi = _parse(modeling / "heads" / "rec_multi_head.py")
    if multi is not None:
        k.multi_head_parts = {
            str(n.comparators[0].value) for n in ast.walk(multi)
            if isinstance(n, ast.Compare) and isinstance(n.left, ast.Name) and n.left.id == "name"
            and n.comparators and isinstance(n.comparators[0], ast.Constant)}

    path = ppocr / "losses" / "__init__.py"
    tree = _parse(path)
    body = _function_body(tree, "build_loss")
    k.losses = _support_lists(body)
    if tree is not None:
        k.classes.update(_classes_of(path, "loss", list(tree.body), k.losses))

    for loss_file in sorted((ppocr / "losses").glob("*.py")):
        k.loss_parts |= _class_names(loss_file)
    k.data_ops = _imported_names(ppocr / "data" / "imaug" / "__init__.py")
    data_init = ppocr / "data" / "__init__.py"
    k.datasets = _support_lists(_function_body(_parse(data_init), "build_dataloader"))
    k.samplers = {n for n in _imported_names(data_init) if n.endswith("Sampler")}
    k.postprocess = _support_lists(_function_body(_parse(ppocr / "postprocess" / "__init__.py"),
                                                  "build_post_process"))
    k.metrics = _support_lists(_function_body(_parse(ppocr / "metrics" / "__init__.py"),
                                              "build_metric"))
    k.optimizers = _class_names(ppocr / "optimizer" / "optimizer.py")
    k.lr_schedulers = _class_names(ppocr / "optimizer" / "learning_rate.py")
    k.regularizers = _class_names(ppocr / "optimizer" / "regularizer.py")
    for kind, path, names in (
            ("post-process", ppocr / "postprocess" / "__init__.py", k.postprocess),
            ("metric", ppocr / "metrics" / "__init__.py", k.metrics),
            ("optimizer", ppocr / "optimizer" / "optimizer.py", k.optimizers),
            ("learning-rate schedule", ppocr / "optimizer" / "learning_rate.py", k.lr_schedulers),
            ("regularizer", ppocr / "optimizer" / "regularizer.py", k.regularizers),
            ("data operator", ppocr / "data" / "imaug" / "__init__.py", k.data_ops)):
        for name, (params, is_open) in classes_params(path, names, _parse, _module_file).items():
            k.classes[(kind, name)] = ClassInfo(str(path.relative_to(root)), params, is_open)
    k.keys = config_keys(root, _parse)
    _CACHE[key] = k
    return k
