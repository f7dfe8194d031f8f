"""Table-driven hostile cases: each runs the real ``rectrain`` command in a subprocess, in a
scratch folder, and checks the exit code, that the message names what it must (file, line,
field, fix), that nothing printed a traceback, and that no file changed except the declared
outputs (SHA-256 of every file before and after).

Black-box: a case knows the command line and the files, never rectrain's modules. Beyond the
first campaign's fields a case may accept several exit codes (``code=(1, 2)``), ask for one of
several wordings (a tuple inside ``says``) or a regular expression (``re.compile``), run an
extra check on the result (``check``), require that a refused command leaves nothing new
behind (``leaves_nothing``), and bound the time a command may take (``within``). A command
still running at ``timeout`` is killed with its whole process group and reported as hung.
Cases can be started together (:func:`start_case` / :func:`finish_case`) where each may have
to wait for a timeout: the suite then pays for one wait, not one per case.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Pattern, Sequence, Tuple, Union

REPO = Path(__file__).resolve().parents[2]

Says = Union[str, Pattern[str], Tuple[Union[str, Pattern[str]], ...]]


@dataclass(frozen=True)
class Case:
    id: str
    argv: Sequence[Any]  # after `rectrain`; "{tmp}" is replaced by the scratch folder; a callable
    # item is called with the scratch folder after the setup (a path only known then)
    setup: Callable[[Path], None]
    code: Union[int, Tuple[int, ...]]
    says: Tuple[Says, ...] = ()  # substrings (case-insensitive), any-of tuples, or regexes
    cwd: str = "."  # relative to the scratch folder
    may_change: Tuple[str, ...] = ()  # paths (relative, or prefixes ending with "/") allowed to change
    env: Dict[str, str] = field(default_factory=dict)
    timeout: float = 180.0
    # issue 21: a refused command leaves nothing behind (no new file or folder but may_change)
    leaves_nothing: bool = False
    within: Optional[float] = None  # the command must end within this many seconds
    memory_mb: Optional[int] = None  # cap on the command's heap (RLIMIT_DATA): an endless read fails
    check: Optional[Callable[[Path, Result], None]] = None  # extra assertions after the run


@dataclass
class Result:
    returncode: int
    output: str
    seconds: float
    argv: Sequence[str]


def snapshot(root: Path) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            if p.is_symlink():
                out[str(p.relative_to(root))] = "link:" + os.readlink(p)
                continue
            try:
                mode = p.lstat().st_mode
                if not stat.S_ISREG(mode):  # a named pipe, socket or device: never opened
                    out[str(p.relative_to(root))] = f"special:{stat.S_IFMT(mode)}"
                    continue
                out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
            except OSError:
                out[str(p.relative_to(root))] = "unreadable"
    return out


def folders(root: Path) -> set:
    return {str(Path(d).relative_to(root)) for d, _dirs, _files in os.walk(root)} - {"."}


RUN_LOCK = ".rectrain-run.lock"  # the run lock (checkpoints/owner.py) names its last holder: not data


def _allowed(path: str, may_change: Sequence[str]) -> bool:
    if path.rsplit("/", 1)[-1] == RUN_LOCK:
        return True
    return any(path == m or (m.endswith("/") and (path.startswith(m) or path + "/" == m))
               for m in may_change)


def cli_env(extra: Optional[Dict[str, str]] = None, tmp: Optional[Path] = None) -> Dict[str, str]:
    env = dict(os.environ)
    for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        env.pop(key, None)
    env.update({"PYTHONPATH": str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", ""),
                "NO_COLOR": "1", "COLUMNS": "200", "AWS_EC2_METADATA_DISABLED": "true"})
    for k, v in (extra or {}).items():
        env[k] = v.replace("{tmp}", str(tmp)) if tmp is not None else v
    return env


@dataclass
class Running:
    case: Case
    tmp: Path
    argv: Sequence[str]
    proc: subprocess.Popen
    log: Any  # the command's output (a temporary file: a pipe nobody reads would block it)
    started: float
    before: Dict[str, str]
    dirs_before: set
    ended: Optional[float] = None


def start_case(case: Case, tmp: Path, python: Optional[str] = None) -> Running:
    """Set up ``case`` in ``tmp`` and start its command (in its own process group)."""
    case.setup(tmp)
    before, dirs_before = snapshot(tmp), folders(tmp)
    argv = [str(a(tmp)) if callable(a) else a.replace("{tmp}", str(tmp)) for a in case.argv]
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by finish_case
    limit = case.memory_mb

    def cap() -> None:
        if limit:
            import resource

            resource.setrlimit(resource.RLIMIT_DATA, (limit << 20, limit << 20))

    proc = subprocess.Popen([python or sys.executable, "-m", "rectrain", *argv], cwd=str(tmp / case.cwd),
                            env=cli_env(case.env, tmp), stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True,
                            preexec_fn=cap if limit else None)
    return Running(case, tmp, argv, proc, log, time.monotonic(), before, dirs_before)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _read(log: Any) -> str:
    log.seek(0)
    text = log.read().decode("utf-8", errors="replace")
    log.close()
    return text


def _matches(says: Any, low: str, tmp: Path) -> bool:
    if isinstance(says, re.Pattern):
        return says.search(low) is not None
    if isinstance(says, str):
        return says.lower().replace("{tmp}", str(tmp).lower()) in low
    return any(_matches(s, low, tmp) for s in says)  # any of these


def finish_case(run: Running, deadline: Optional[float] = None) -> Result:
    """Wait for a started case (until ``deadline``, a time.monotonic() value, or its own
    timeout), then check everything the case declares."""
    case = run.case
    limit = run.started + case.timeout
    if deadline is not None:
        limit = min(limit, deadline)
    where = f"[{case.id}] rectrain {' '.join(run.argv)}"
    try:
        run.proc.wait(timeout=max(0.1, limit - time.monotonic()))
    except subprocess.TimeoutExpired:
        _kill_group(run.proc)
        run.proc.wait()
        raise AssertionError(f"hung: still running after {time.monotonic() - run.started:.0f} s "
                             f"(killed)\n{where}\n--- output ---\n{_read(run.log)[-3000:]}") from None
    finally:
        _kill_group(run.proc)  # nothing it started outlives the case
    out = _read(run.log)
    seconds = (run.ended or time.monotonic()) - run.started
    result = Result(run.proc.returncode, out, seconds, run.argv)
    check_result(run, result)
    return result


def check_result(run: Running, result: Result) -> None:
    """Every broken promise of the case at once (exit code, words, time, files), so a failure
    says whether data was lost as well."""
    case, tmp = run.case, run.tmp
    output = result.output
    after = snapshot(tmp)
    problems = []
    if "Traceback (most recent call last)" in output:
        problems.append("a traceback was printed")
    codes = case.code if isinstance(case.code, tuple) else (case.code,)
    if result.returncode not in codes:
        problems.append(f"exit {result.returncode}, expected {case.code}")
    if case.within is not None and result.seconds >= case.within:
        problems.append(f"took {result.seconds:.0f} s (bound {case.within} s)")
    low = output.lower()
    problems += [f"output lacks {s!r}" for s in case.says if not _matches(s, low, tmp)]
    lost = sorted(p for p in run.before if p not in after and not _allowed(p, case.may_change))
    changed = sorted(p for p in run.before if p in after and run.before[p] != after[p]
                     and not _allowed(p, case.may_change))
    if lost:
        problems.append(f"files lost: {lost}")
    if changed:
        problems.append(f"files changed: {changed}")
    if case.leaves_nothing:
        new = sorted(p for p in after if p not in run.before and not _allowed(p, case.may_change))
        new_dirs = sorted(d for d in folders(tmp) - run.dirs_before if not _allowed(d, case.may_change))
        if new or new_dirs:
            problems.append(f"left behind: {(new + new_dirs)[:12]}")
    where = f"[{case.id}] rectrain {' '.join(run.argv)}\n--- output ---\n{output[-3000:]}"
    assert not problems, "; ".join(problems) + "\n" + where
    if case.check is not None:
        case.check(tmp, result)


def wait_all(runs: Sequence[Running]) -> None:
    """Wait for started cases together, noting when each ended (each until its own timeout;
    :func:`finish_case` then kills what is left and checks each)."""
    pending = list(runs)
    while pending:
        now = time.monotonic()
        for run in list(pending):
            if run.proc.poll() is not None:
                run.ended = now
                pending.remove(run)
            elif now - run.started > run.case.timeout:
                pending.remove(run)
        time.sleep(0.1)


def run_batch(cases: Sequence[Case], root: Path, workers: int = 3) -> Dict[str, Optional[BaseException]]:
    """Run ``cases`` with up to ``workers`` commands at once (each in ``root/<id>``); returns
    {case id: None, or the failure its own test re-raises}. Setups run one at a time."""
    queue = list(cases)
    running: list = []
    results: Dict[str, Optional[BaseException]] = {}
    while queue or running:
        while queue and len(running) < max(1, workers):
            case = queue.pop(0)
            tmp = root / re.sub(r"[^A-Za-z0-9_.-]", "_", case.id)
            tmp.mkdir(parents=True)
            try:
                running.append(start_case(case, tmp))
            except BaseException as exc:  # noqa: BLE001 - reported by the case's own test
                results[case.id] = exc
        time.sleep(0.05)
        for run in list(running):
            now = time.monotonic()
            done = run.proc.poll() is not None
            if done:
                run.ended = now
            if done or now - run.started > run.case.timeout:
                running.remove(run)
                try:
                    finish_case(run)
                    results[run.case.id] = None
                except BaseException as exc:  # noqa: BLE001
                    results[run.case.id] = exc
    return results


WORKERS = int(os.environ.get("RECTRAIN_HOSTILE_WORKERS", "3"))


def batch_of(request: Any, tmp_path_factory: Any, cases: Sequence[Case]) -> Dict[str,
                                                                                 Optional[BaseException]]:
    """For a module-scoped fixture: run the cases of ``cases`` that this session selected (-k,
    node ids), a few at once (RECTRAIN_HOSTILE_WORKERS, default 3; the commands mostly wait
    for Python to start). Each test then re-raises its own case's failure."""
    wanted = set()
    for item in request.session.items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if item.module is request.module and "case" in params:
            wanted.add(params["case"].id)
    chosen = [c for c in cases if c.id in wanted]
    return run_batch(chosen, tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1]), WORKERS)


def raise_failure(results: Dict[str, Optional[BaseException]], case: Case) -> None:
    err = results[case.id]
    if err is not None:
        raise err


def run_case(case: Case, tmp: Path, python: Optional[str] = None) -> Result:
    return finish_case(start_case(case, tmp, python))
