"""The package's layers (pyproject.toml ``[tool.importlinter]``, docs/architecture.md) are kept:
no upward imports (the in-job program, ``rectrain.container``, is an entry point: no library
module imports it), no cycles between siblings at any depth. And the check is real: an upward
import, a cycle between two packages of one layer, a cycle inside a package, or an import of
the in-job program planted in a copy of the package breaks it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("importlinter", reason="import-linter (dev extra) needs Python >= 3.10")

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "rectrain"
LINT = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def lint(src: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` with the project's contracts on the ``rectrain`` package under ``src``."""
    env = dict(os.environ, PYTHONPATH=str(src), COLUMNS="200", NO_COLOR="1")
    argv = [sys.executable, "-c", LINT, "--no-cache", "--no-logo", str(ROOT / "pyproject.toml")]
    return subprocess.run(argv, cwd=src, env=env, capture_output=True, text=True, timeout=300)


def test_the_package_keeps_its_layers() -> None:
    result = lint(PACKAGE.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout and "KEPT" in result.stdout


@pytest.mark.parametrize(("module", "planted", "expected"), [
    # the bottom layer imports the top one
    ("errors.py", "import rectrain.cli", "rectrain.errors -> rectrain.cli"),
    # a foundation imports a feature
    ("storage/s3.py", "import rectrain.training.runner", "rectrain.storage.s3 -> rectrain.training.runner"),
    # two packages of one layer import each other (runs imports monitor): a cycle
    ("monitor/follow.py", "import rectrain.runs.compare",
     "No cycles are allowed in rectrain.\n"),
    # a library module imports the in-job program (the container's entry point)
    ("emulator/run_local.py", "import rectrain.container.entrypoint",
     "rectrain.emulator.run_local -> rectrain.container.entrypoint"),
    # a cycle inside a package
    ("data/labels.py", "import rectrain.data.validate", ".labels -> .validate"),
])
def test_a_planted_violation_breaks_the_contract(tmp_path: Path, module: str, planted: str,
                                                 expected: str) -> None:
    copy = tmp_path / "src" / "rectrain"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / module
    text = target.read_text(encoding="utf-8")
    head, sep, rest = text.partition("from __future__ import annotations\n")
    assert sep, f"{module}: no `from __future__` line to plant after"
    target.write_text(f"{head}{sep}{planted}  # planted\n{rest}", encoding="utf-8")
    result = lint(copy.parent)
    assert result.returncode != 0 and "BROKEN" in result.stdout, result.stdout + result.stderr
    assert expected in result.stdout, result.stdout


# ------------------------------------------------------------------ one door each (AST checks)
import ast  # noqa: E402

SRC_FILES = sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _rel(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def _is_env(node: ast.AST) -> bool:
    """``os.environ`` or a bare ``environ``."""
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or \
        (isinstance(node, ast.Name) and node.id == "environ")


def s3_client_builders(source: str) -> list:
    """Lines that build a boto3 S3 client or reach into the S3 service's client: ``*.client("s3")``,
    ``*.resource("s3")``, ``make_client``, ``<s3 service>.client``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, (ast.Attribute, ast.Name)):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
            first = node.args[0] if node.args else next(
                (k.value for k in node.keywords if k.arg == "service_name"), None)
            if name in ("client", "resource") and isinstance(first, ast.Constant) and first.value == "s3":
                found.append(node.lineno)
        if isinstance(node, (ast.Name, ast.Attribute)) and \
                (getattr(node, "id", None) or getattr(node, "attr", None)) == "make_client":
            found.append(node.lineno)
        if isinstance(node, ast.ImportFrom) and any(a.name == "make_client" for a in node.names):
            found.append(node.lineno)
        if isinstance(node, ast.Attribute) and node.attr == "client":
            owner = node.value
            owner_name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", "")
            if owner_name in ("s3", "service", "s3_service"):
                found.append(node.lineno)
    return sorted(set(found))


def rectrain_env_reads(source: str) -> list:
    """Lines that read a ``RECTRAIN_*`` variable from the environment."""
    found = []
    for node in ast.walk(ast.parse(source)):
        key = None
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            reads = isinstance(func, ast.Attribute) and (
                (func.attr in ("get", "pop") and _is_env(func.value)) or func.attr == "getenv")
            if reads:
                key = node.args[0]
        elif isinstance(node, ast.Subscript) and _is_env(node.value):
            key = node.slice
        if isinstance(key, ast.Constant) and str(key.value).startswith("RECTRAIN_"):
            found.append(node.lineno)
    return found


def env_writes(source: str) -> list:
    """Lines that change this process's environment."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
            if any(isinstance(t, ast.Subscript) and _is_env(t.value) for t in targets):
                found.append(node.lineno)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            func = node.func
            if func.attr in ("update", "setdefault", "pop", "clear", "popitem") and _is_env(func.value):
                found.append(node.lineno)
            if func.attr in ("putenv", "unsetenv"):
                found.append(node.lineno)
    return found


def test_the_checks_catch_what_they_are_for() -> None:
    assert s3_client_builders('import boto3\nc = boto3.client("s3")\n') == [2]
    assert s3_client_builders('c = session.client(service_name="s3", region_name="x")\n') == [1]
    assert s3_client_builders("from rectrain.storage.service import make_client\n") == [1]
    assert s3_client_builders("x = self.s3.client.get_object(Bucket='b', Key='k')\n") == [1]
    assert s3_client_builders('sm = session.client("sagemaker")\n') == []
    assert rectrain_env_reads('import os\nx = os.environ.get("RECTRAIN_SEAL_AFTER_S", "60")\n') == [2]
    assert rectrain_env_reads('x = os.environ["RECTRAIN_WEED"]\ny = os.getenv("RECTRAIN_X")\n') == [1, 2]
    assert rectrain_env_reads('x = os.environ.get("PADDLEOCR_HOME")\n') == []
    assert env_writes('os.environ["RECTRAIN_NO_FASTPATH"] = "1"\n') == [1]
    assert env_writes("os.environ.update(extra)\n") == [1]
    assert env_writes("env = dict(os.environ)\nenv.update(extra)\n") == []


def test_only_storage_builds_s3_clients() -> None:
    """S3 goes through ``rectrain.storage.service.S3Service`` (endpoint, TLS, timeouts, retries in
    one place): no module outside ``rectrain.storage`` builds an S3 client or uses the
    service's client directly."""
    offenders = {_rel(p): s3_client_builders(p.read_text(encoding="utf-8")) for p in SRC_FILES
                 if not _rel(p).startswith("storage/")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_rectrain_settings_are_read_in_one_module() -> None:
    """``RECTRAIN_*`` variables are read by ``rectrain.settings`` alone (once, at an entry point)."""
    offenders = {_rel(p): rectrain_env_reads(p.read_text(encoding="utf-8")) for p in SRC_FILES
                 if _rel(p) != "settings.py"}
    assert {k: v for k, v in offenders.items() if v} == {}


# The one place that sets variables in this process, and why: MLflow's client reads its HTTP
# timeouts and retries only from the environment (setdefault: the user's own values win).
ENV_WRITERS = {"tracking/mlflow_sink.py"}


def test_nothing_writes_environment_variables_as_a_side_channel() -> None:
    """The CLI (and everything else) passes values down; it never sets variables for the library
    or for a child process to find (a child gets its own ``env``)."""
    offenders = {_rel(p): env_writes(p.read_text(encoding="utf-8")) for p in SRC_FILES
                 if _rel(p) not in ENV_WRITERS}
    assert {k: v for k, v in offenders.items() if v} == {}


# Where text becomes an S3Uri: the edges (what a user typed, what a job config or an AWS API
# answer carries as text). Anywhere else an address travels as an S3Uri already.
PARSE_EDGES = {
    "cli/edge.py",  # command-line arguments
    "storage/api.py", "checkpoints/api.py",  # the Python API (notebooks pass text)
    "storage/aws_errors.py",  # an error's resource text, for the IAM statement in its fix
    "monitor/follow.py",  # a run source: a folder or s3:// text
    "training/request.py",  # TrainRequest.from_options: start_recognition_training(checkpoint_s3=...)
    "sagemaker/launch.py", "sagemaker/request.py", "sagemaker/follow.py",  # request / API text
    "sagemaker/iam.py",  # the job config's prefixes, for the printed policy
    "emulator/run_local.py", "emulator/cluster.py",  # the request as SageMaker reads it
}


def test_s3_addresses_are_parsed_at_the_edges_only() -> None:
    offenders = []
    for path in SRC_FILES:
        if _rel(path) in PARSE_EDGES or _rel(path) == "storage/s3.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "parse" and \
                    isinstance(node.value, ast.Name) and node.value.id == "S3Uri":
                offenders.append(f"{_rel(path)}:{node.lineno}")
    assert offenders == []


def unpickling(source: str) -> list:
    """Lines that unpickle: ``pickle.load(s)``, ``pickle.Unpickler`` (called or subclassed)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and \
                node.value.id == "pickle" and node.attr in ("load", "loads", "Unpickler"):
            found.append(node.lineno)
    return found


def override_writers(source: str) -> list:
    """Lines that put ``-o`` overrides on a command line other than as
    ``["-o"] + [format_override(k, v) ...]`` (the one writer, which formats the values)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.BinOp) and isinstance(node.left, ast.List) and \
                any(isinstance(e, ast.Constant) and e.value == "-o" for e in node.left.elts):
            right = node.right
            ok = isinstance(right, ast.ListComp) and isinstance(right.elt, ast.Call) and \
                getattr(right.elt.func, "id", "") == "format_override"
            if not ok:
                found.append(node.lineno)
    return found


def test_the_pickle_and_override_checks_catch_what_they_are_for() -> None:
    assert unpickling("import pickle\nx = pickle.load(fh)\n") == [2]
    assert unpickling("class U(pickle.Unpickler):\n    pass\n") == [1]
    assert unpickling("pickle.dump(x, fh)\n") == []
    assert override_writers('argv += ["-o"] + [f"{k}={v}" for k, v in o.items()]\n') == [1]
    assert override_writers('argv += ["-o"] + [format_override(k, v) for k, v in o.items()]\n') == []


def test_one_safe_unpickler_reads_the_engines_files() -> None:
    """.pdparams / .pdopt / .states are read by rectrain.checkpoints.pickles alone."""
    offenders = {_rel(p): unpickling(p.read_text(encoding="utf-8")) for p in SRC_FILES
                 if _rel(p) != "checkpoints/pickles.py"}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_one_writer_formats_engine_overrides() -> None:
    offenders = {_rel(p): override_writers(p.read_text(encoding="utf-8")) for p in SRC_FILES}
    assert {k: v for k, v in offenders.items() if v} == {}


def archive_extractors(source: str) -> list:
    """Lines that unpack an archive: ``*.extractall(...)``, ``*.extract(...)``,
    ``shutil.unpack_archive``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr in ("extractall", "extract", "unpack_archive"):
            found.append(node.lineno)
    return found


def test_one_safe_extractor_unpacks_archives() -> None:
    """Archives rectrain did not write (model.tar.gz, channel tars) are unpacked by
    rectrain.outputs.files.safe_extract alone, whose writing part is the write gateway's
    outputs/files.py extract_tar (the member checks of rectrain.outputs.archives, the data
    filter, no modes from the archive); packed datasets' shards go through storage/extract.py's
    own checked reader."""
    assert archive_extractors("tar.extractall(dest)\n") == [1]
    assert archive_extractors("shutil.unpack_archive(a, b)\n") == [1]
    assert archive_extractors("tar.extractfile(m)\n") == []
    offenders = {_rel(p): archive_extractors(p.read_text(encoding="utf-8")) for p in SRC_FILES
                 if _rel(p) != "outputs/files.py"}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_engine_environment_is_an_allow_list() -> None:
    """The engine's environment (engine.launch.engine_env, which every engine command uses)
    keeps no AWS or MLflow credential, token, or proxy password."""
    from rectrain.engine.launch import ENGINE_ENV_NAMES, engine_base_env

    env = engine_base_env({"PATH": "/bin", "AWS_SECRET_ACCESS_KEY": "x", "MLFLOW_TRACKING_PASSWORD": "y",
                           "HF_TOKEN": "z", "HTTPS_PROXY": "http://u:p@proxy:3128", "OMP_NUM_THREADS": "2"})
    assert env == {"PATH": "/bin", "OMP_NUM_THREADS": "2"}
    assert "AWS_ACCESS_KEY_ID" not in ENGINE_ENV_NAMES


def run_owners(source: str) -> list:
    """Lines that lock files (``flock`` / ``lockf``) or name the prefix lease's object: who owns
    a run is decided in rectrain.checkpoints.owner alone."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in ("flock", "lockf"):
            found.append(node.lineno)
        if isinstance(node, ast.Constant) and node.value in ("_owner.lease", ".rectrain-run.lock"):
            found.append(node.lineno)
    return sorted(set(found))


def test_one_place_decides_who_owns_a_run() -> None:
    assert run_owners("import fcntl\nfcntl.flock(fd, fcntl.LOCK_EX)\n") == [2]
    assert run_owners('key = prefix + "/_owner.lease"\n') == []
    assert run_owners('uri = prefix.join("_owner.lease")\n') == [1]
    offenders = {_rel(p): run_owners(p.read_text(encoding="utf-8")) for p in SRC_FILES
                 if _rel(p) != "checkpoints/owner.py"}
    assert {k: v for k, v in offenders.items() if v} == {}
