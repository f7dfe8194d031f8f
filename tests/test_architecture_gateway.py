"""One write gateway and one YAML reader, guarded: every file or folder rectrain creates,
replaces or deletes goes through ``rectrain.outputs`` (the rules of what may be written, and the
only code that writes), and YAML is parsed by ``rectrain.yamlfile`` alone (duplicate keys,
aliases, tabs). An AST scan of ``src/`` fails on any file-writing call or YAML parse elsewhere,
and the scan is real: a call planted in a copy of a command module is caught."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path
from typing import List

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "rectrain"

# The gateway: the only modules that may write. fsutil.py holds the atomic-write primitive
# (atomic_open: a temporary file renamed over the target) that the gateway calls.
GATEWAY = ("outputs/", "fsutil.py")

# What writes a file or folder, by the name of the call.
SHUTIL_WRITERS = {"copy", "copy2", "copyfile", "copytree", "move", "rmtree"}
OS_WRITERS = {"replace", "remove", "unlink", "rename", "renames", "rmdir", "removedirs", "link", "symlink",
              "truncate", "mkfifo"}
CREATE_FLAGS = {"O_CREAT", "O_TRUNC", "O_APPEND"}
METHOD_WRITERS = {"write_text", "write_bytes", "savefig", "unlink", "rmdir", "rename", "touch",
                  "symlink_to", "hardlink_to", "extractall", "extract"}
MODULE_SAVES = {("paddle", "save"), ("np", "save"), ("numpy", "save"), ("np", "savez"), ("cv2", "imwrite")}
WRITE_MODES = set("wax+")


def _mode(call: ast.Call, position: int) -> str:
    """The literal mode of an open()-like call ("" when absent or not a literal)."""
    node = call.args[position] if len(call.args) > position else next(
        (k.value for k in call.keywords if k.arg == "mode"), None)
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else ""


def _writes(call: ast.Call) -> bool:
    """Whether ``call`` creates, replaces or deletes a file or folder (see the sets above)."""
    func = call.func
    if isinstance(func, ast.Name):
        return func.id == "open" and bool(set(_mode(call, 1)) & WRITE_MODES)
    if not isinstance(func, ast.Attribute):
        return False
    owner = func.value.id if isinstance(func.value, ast.Name) else ""
    name = func.attr
    if owner == "shutil":
        return name in SHUTIL_WRITERS
    if owner == "os":
        flags = {n.attr for n in ast.walk(call) if isinstance(n, ast.Attribute)}
        return name in OS_WRITERS or (name == "open" and bool(CREATE_FLAGS & flags))
    if (owner, name) in MODULE_SAVES or name in METHOD_WRITERS:
        return True
    if name == "open":  # Path.open("w"), tarfile.open(p, "w:gz"), gzip.open(p, "wb")
        return bool(set(_mode(call, 0) + _mode(call, 1)) & WRITE_MODES)
    # Path.replace(target); str.replace takes two arguments
    return name == "replace" and len(call.args) == 1 and not call.keywords and \
        not isinstance(call.args[0], ast.Constant)


def file_writes(source: str) -> List[int]:
    """Lines that write a file or folder. A dump to a path (``json.dump(x, open(p, "w"))``) is
    caught by its ``open``; a dump into a handle the gateway opened is not a write of its own."""
    return sorted(node.lineno for node in ast.walk(ast.parse(source))
                  if isinstance(node, ast.Call) and _writes(node))


YAML_PARSERS = {"load", "safe_load", "load_all", "safe_load_all", "full_load", "unsafe_load", "compose",
                "compose_all", "parse"}


def yaml_parses(source: str) -> List[int]:
    """Lines that parse YAML: yaml.load / safe_load / load_all / full_load / unsafe_load / compose."""
    return sorted(node.lineno for node in ast.walk(ast.parse(source))
                  if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                  and node.value.id == "yaml" and node.attr in YAML_PARSERS)


def _rel(path: Path, root: Path = PACKAGE) -> str:
    return path.relative_to(root).as_posix()


def offenders(root: Path, check, allowed) -> dict:  # noqa: ANN001
    out = {}
    for path in sorted(root.rglob("*.py")):
        rel = _rel(path, root)
        if "__pycache__" in path.parts or any(rel == a or (a.endswith("/") and rel.startswith(a))
                                              for a in allowed):
            continue
        lines = check(path.read_text(encoding="utf-8"))
        if lines:
            out[rel] = lines
    return out


def test_the_write_check_catches_what_it_is_for() -> None:
    assert file_writes('open(p, "w")\nopen(p)\nopen(p, "rb")\nopen(p, mode="ab")\n') == [1, 4]
    assert file_writes('Path(p).write_text("x")\np.write_bytes(b"")\nfig.savefig(out)\n') == [1, 2, 3]
    assert file_writes("shutil.rmtree(d)\nshutil.copyfile(a, b)\nshutil.copyfileobj(a, b)\n") == [1, 2]
    assert file_writes("os.replace(a, b)\nos.unlink(p)\np.unlink()\nos.remove(p)\nos.rename(a, b)\n") == \
        [1, 2, 3, 4, 5]
    assert file_writes('tar.extractall(d)\npaddle.save(s, p)\ntarfile.open(p, "w:gz")\n'
                       'tarfile.open(p)\n') == [1, 2, 3]
    assert file_writes('p.open("a")\np.open()\nx = s.replace("a", "b")\np.replace(target)\n') == [1, 4]
    assert file_writes('json.dump(d, open(p, "w"))\njson.dump(d, fh)\n') == [1]
    assert file_writes("os.open(p, os.O_WRONLY | os.O_CREAT)\nos.open(os.devnull, os.O_WRONLY)\n") == [1]
    assert yaml_parses("yaml.safe_load(text)\nyaml.load(t, Loader=L)\nyaml.safe_dump(d)\n") == [1, 2]


def test_every_write_goes_through_the_gateway() -> None:
    """No module outside ``rectrain.outputs`` (and fsutil's atomic primitive) writes a file."""
    assert offenders(PACKAGE, file_writes, GATEWAY) == {}


# Where YAML may be parsed: the strict reader, and one justified exception.
YAML_READERS = (
    "yamlfile.py",  # the one strict reader (duplicate keys, aliases, tabs, bombs)
    "loaderbench/probe.py",  # a script run by the engine's own Python (rectrain is not importable
    # there); it parses the scalar values of `-o key=value`, never a file
)


FSUTIL_WRITERS = {"atomic_open", "write_text_atomic", "write_json_atomic", "remove_quietly"}


def primitive_imports(source: str) -> List[int]:
    """Lines importing fsutil's writing primitives (everyone else calls rectrain.outputs)."""
    return sorted(node.lineno for node in ast.walk(ast.parse(source))
                  if isinstance(node, ast.ImportFrom) and node.module == "rectrain.fsutil"
                  and any(a.name in FSUTIL_WRITERS for a in node.names))


def test_only_the_gateway_calls_the_atomic_primitives() -> None:
    assert primitive_imports("from rectrain.fsutil import sha256_file, atomic_open\n") == [1]
    assert primitive_imports("from rectrain.fsutil import sha256_file\n") == []
    assert offenders(PACKAGE, primitive_imports, ("outputs/",)) == {}


def test_yaml_is_parsed_by_the_one_strict_reader() -> None:
    """Configs, job configs and --set values are parsed by ``rectrain.yamlfile`` alone."""
    assert offenders(PACKAGE, yaml_parses, YAML_READERS) == {}


@pytest.mark.parametrize(("module", "planted"), [
    ("cli/runs.py", 'Path("compare.png").write_bytes(b"")'),
    ("runs/compare.py", 'open("compare.md", "w").write("x")'),
    ("data/split.py", 'shutil.rmtree("out")'),
    ("checkpoints/extend_dict.py", 'os.replace("a.part", "a.pdparams")'),
    ("model/error_report.py", 'fig.savefig("worst.png")'),
])
def test_a_planted_write_in_a_command_module_is_caught(tmp_path: Path, module: str, planted: str) -> None:
    copy = tmp_path / "rectrain"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / module
    text = target.read_text(encoding="utf-8")
    target.write_text(text + f"\n\ndef _planted(fig=None):  # noqa\n    {planted}\n", encoding="utf-8")
    found = offenders(copy, file_writes, GATEWAY)
    assert len(text.splitlines()) + 4 in found.get(module, []), found


def test_a_planted_yaml_parse_is_caught(tmp_path: Path) -> None:
    copy = tmp_path / "rectrain"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / "sagemaker" / "jobconfig.py"
    target.write_text(target.read_text(encoding="utf-8") + "\nx = yaml.safe_load('a: 1')\n", encoding="utf-8")
    assert "sagemaker/jobconfig.py" in offenders(copy, yaml_parses, YAML_READERS)
