"""One trial of the fault campaign: a tiny real training run (CPU) with ``--checkpoint-s3``
through the fault proxy, faults drawn from a seed, resumed until it completes or runs out of
attempts, checked by the oracle after every attempt.

Black box: the run is ``python -m rectrain train ...`` in a subprocess; what it did is read
from its exit code, its JSON display on stdout (``--display json``: the train records of this
attempt), its stderr, and S3 through ``oracle.py``. Nothing here imports rectrain.

Faults, combined at random per attempt (``make_plan``):
- network (the proxy), all through the attempt: cuts (mean 0.8-4 MB of request or of
  response), S3 503 SlowDown / 500 errors, stalled responses (0.2-2 s), a bandwidth limit;
  from the start (preflight included) or from the first step;
- a strike at a random moment (after 1-7 steps of the attempt plus 0-0.6 s):
  SIGTERM (rectrain's documented interruption); SIGKILL of the whole process tree (the
  machine is gone); LOST: SIGKILL, then the run folder's ``checkpoints/snapshots`` deleted
  (the engine's own files kept; the next attempt on the same machine); ENOSPC (the run folder
  on a small tmpfs, filled by a ballast file to leave 0-2.5 MB, for 0.5-6 s or until the
  attempt ends); OUTAGE (the endpoint resets everything for 2-15 s);
- clock: the attempt's wall clock skewed by minutes to hours (tests/faults/clockshim);
- machine: the next attempt on the same run folder or on a fresh one (everything from S3).

Invariants (``INVARIANTS``) are checked after every attempt; a violation is recorded with
the seed, the attempt and what the oracle saw.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from tests.faults import mounts
from tests.faults.oracle import Checker, Report
from tests.faults.proxy import OFF, FaultPlan, FaultProxy

REPO = Path(__file__).resolve().parents[2]
CLOCKSHIM = Path(__file__).resolve().parent / "clockshim"
STEPS_PER_EPOCH = 4  # tinydata: 16 training images, batch 4, drop_last
SUB_EPOCHS = 2  # a `latest` every 2 steps
ATTEMPT_TIMEOUT_S = 300.0
TMPFS_BYTES = 160 * 1024 * 1024

INVARIANTS = {
    "resume-not-older": "a resume continues from at least the newest checkpoint S3 held verified",
    "no-silent-restart": "no resume trains step 1 while S3 holds a verified checkpoint of the run, "
                         "or its machine the engine's files of a save the engine logged",
    "exit0-final-in-s3": "exit 0 only when S3's latest is the final step, verified",
    "exit5-truthful": "exit 5 only when S3 lacks a checkpoint, and its push command recovers it",
    "s3-consistent": "S3 never shows a marker beside wrong files, nor a pointer to an unverified folder",
    "transient-absorbed": "an attempt struck by nothing but the network (faults, an outage), clock "
                          "skew or what an earlier strike left exits 0; a resume on the machine of "
                          "an earlier strike may refuse (2)",
    "sigterm-75": "SIGTERM ends the command with exit 75 (or 0 when it had finished)",
    "resume-accepted": "a resume on a fresh machine is not refused while S3 holds a verified checkpoint",
    "no-hang": f"an attempt ends within {ATTEMPT_TIMEOUT_S:.0f} s",
    "completes": "the trial completes (exit 0, final step verified in S3) within its attempts",
}


NETWORK_STRIKES = ("OUTAGE",)  # transient: the attempt must absorb them


@dataclass
class Strike:
    kind: str  # SIGTERM | SIGKILL | LOST | ENOSPC | OUTAGE
    after_steps: int  # train records of this attempt before it strikes
    delay_s: float = 0.0
    leave_bytes: int = 0  # ENOSPC: free space left
    lasts_s: Optional[float] = None  # ENOSPC, OUTAGE: undone after this (None: at the end)


@dataclass
class AttemptPlan:
    net: FaultPlan
    net_from_start: bool
    strike: Optional[Strike]
    fresh_machine: bool
    skew_s: float


def describe(ap: AttemptPlan) -> str:
    n = ap.net
    parts = [f"cut~{n.cut_mean_bytes / 1e6:.1f}MB" if n.cut_mean_bytes else "",
             f"rcut~{n.cut_response_mean_bytes / 1e6:.1f}MB" if n.cut_response_mean_bytes else "",
             f"err{n.error_rate:.0%}" if n.error_rate else "",
             f"stall{n.stall_rate:.0%}" if n.stall_rate else "",
             f"bw{n.bandwidth / 1e6:.0f}MB/s" if n.bandwidth else ""]
    net = " ".join(p for p in parts if p) or "clean"
    out = f"net {net}{' from start' if n.active and ap.net_from_start else ''}"
    if ap.strike:
        out += f"; {ap.strike.kind} after {ap.strike.after_steps} steps +{ap.strike.delay_s:.2f}s"
        if ap.strike.kind in ("ENOSPC", "OUTAGE"):
            lasts = ap.strike.lasts_s
            out += f" for {f'{lasts:.1f}s' if lasts else 'the attempt'}"
    if ap.fresh_machine:
        out += "; fresh machine"
    if ap.skew_s:
        out += f"; clock {ap.skew_s:+.0f}s"
    return out


@dataclass
class TrialPlan:
    seed: int
    epochs: int
    attempts: List[AttemptPlan]

    @property
    def final_step(self) -> int:
        return self.epochs * STEPS_PER_EPOCH


def _net_plan(rng: random.Random) -> FaultPlan:
    if rng.random() < 0.2:
        return OFF
    kw: Dict[str, Any] = {}
    # a cut every 0.8-4 MB: a checkpoint file of the tiny model is 1.1 MB, so an upload needs
    # a few tries (up to ~10) at worst, which a client that retries with backoff absorbs
    if rng.random() < 0.6:
        kw["cut_mean_bytes"] = rng.uniform(0.8e6, 4e6)
    if rng.random() < 0.2:
        kw["cut_response_mean_bytes"] = rng.uniform(0.8e6, 4e6)
    if rng.random() < 0.4:
        kw["error_rate"] = rng.uniform(0.03, 0.15)
        kw["error_statuses"] = (503, 500)
    if rng.random() < 0.3:
        kw["stall_rate"] = rng.uniform(0.02, 0.1)
        kw["stall_s"] = (0.2, 2.0)
    if rng.random() < 0.2:
        kw["bandwidth"] = rng.uniform(2e6, 8e6)
    return FaultPlan(**kw)


def make_plan(seed: int, enospc: bool = True, skew: bool = True) -> TrialPlan:
    """The faults of trial ``seed`` (the same seed gives the same plan)."""
    rng = random.Random(seed)
    epochs = rng.choice([3, 4, 5])
    kinds = ["SIGTERM"] * 3 + ["SIGKILL"] * 3 + ["LOST"] + ["OUTAGE"] * 2 + (["ENOSPC"] * 2 if enospc else [])
    strikes = []
    for _ in range(rng.choice([0, 1, 1, 2])):
        kind = rng.choice(kinds)
        lasts = {"ENOSPC": rng.choice([None, rng.uniform(0.5, 6.0)]), "OUTAGE": rng.uniform(2.0, 15.0)}
        strikes.append(Strike(kind, rng.randint(1, 7), rng.uniform(0.0, 0.6), rng.randint(0, 2_500_000),
                              lasts.get(kind)))
    attempts = []
    for i in range(len(strikes) + 3):  # the strikes, then up to three attempts to finish
        attempts.append(AttemptPlan(
            net=_net_plan(rng), net_from_start=rng.random() < 0.5,
            strike=strikes[i] if i < len(strikes) else None,
            fresh_machine=i > 0 and rng.random() < 0.5,
            skew_s=rng.choice([-7200.0, -600.0, 600.0, 7200.0]) if skew and rng.random() < 0.25 else 0.0))
    return TrialPlan(seed, epochs, attempts)


@dataclass
class Violation:
    invariant: str
    attempt: int
    detail: str


@dataclass
class Attempt:
    index: int
    rc: Optional[int]
    run_dir: str
    s3_before: int  # newest verified resume step in S3 before it started
    first_step: Optional[int]
    last_step: Optional[int]
    struck: Optional[str]
    net: Dict[str, int]
    plan: str
    s3_after_latest: Optional[int]
    seconds: float
    stderr_tail: str = ""


@dataclass
class TrialResult:
    seed: int
    final_step: int
    attempts: List[Attempt] = field(default_factory=list)
    violations: List[Violation] = field(default_factory=list)
    completed: bool = False
    via_push: bool = False
    seconds: float = 0.0
    notes: List[str] = field(default_factory=list)

    def violate(self, invariant: str, attempt: int, detail: str) -> None:
        self.violations.append(Violation(invariant, attempt, detail))

    def report(self) -> str:
        state = "NOT completed"
        if self.completed:
            state = "completed via ckpt push" if self.via_push else "completed"
        lines = [f"seed {self.seed}: final step {self.final_step}, {state} in {len(self.attempts)} "
                 f"attempt(s), {self.seconds:.0f} s"]
        for a in self.attempts:
            lines.append(f"  attempt {a.index} [{a.plan}]: rc {a.rc}, S3 before {a.s3_before}, trained "
                         f"{a.first_step}..{a.last_step}, struck {a.struck}, injected {a.net}, "
                         f"S3 latest after {a.s3_after_latest}, {a.seconds:.0f} s, {a.run_dir}")
        for v in self.violations:
            lines.append(f"  VIOLATION {v.invariant} (attempt {v.attempt}): {v.detail}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_json(self) -> Dict[str, Any]:
        return asdict(self)


@dataclass
class TrialEnv:
    """What a trial needs: the S3 server (direct, for the oracle), a proxy in front of it, a
    bucket, a scratch folder, a config maker, and whether mounts work."""

    s3_env: Dict[str, str]  # AWS_* of the server (endpoint: the server itself)
    client: Any  # boto3 client, direct to the server
    proxy: FaultProxy
    bucket: str
    workdir: Path
    config_for: Callable[[int], Path]  # epochs -> config file
    can_mount: bool = True


def descendants(pid: int) -> List[int]:
    """Every live process below ``pid`` (from /proc)."""
    children: Dict[int, List[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="utf-8") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL ``proc`` and everything it started (the machine is gone)."""
    family = [proc.pid] + descendants(proc.pid)
    for pid in family:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    for pid in family[1:]:  # engines re-parented to init: wait until they are gone
        for _ in range(100):
            if not os.path.exists(f"/proc/{pid}") or _zombie(pid):
                break
            time.sleep(0.05)


def _start_time(pid: int) -> str:
    """The process's start time (with its pid, it names one process), "" when gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def display_records(stdout: Path) -> List[Dict[str, Any]]:
    """The JSON records an attempt displayed (``--display json``): its own, in order."""
    out = []
    if stdout.exists():
        for line in stdout.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict):
                out.append(rec)
    return out


def train_steps(stdout: Path) -> List[int]:
    """The global steps of the train records the attempt displayed."""
    return [r["global_step"] for r in display_records(stdout)
            if r.get("type") == "train" and isinstance(r.get("global_step"), int)]


def run_env(trial: TrialEnv, endpoint: str, skew_s: float = 0.0) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_"))}
    env.update(trial.s3_env)
    path = [str(REPO / "src")] + ([str(CLOCKSHIM)] if skew_s else [])
    env.update({"AWS_ENDPOINT_URL": endpoint, "AWS_EC2_METADATA_DISABLED": "true", "NO_COLOR": "1",
                "COLUMNS": "200", "PYTHONPATH": os.pathsep.join(path + [env.get("PYTHONPATH", "")])})
    if skew_s:
        env["FAULT_CLOCK_SKEW_S"] = str(skew_s)
    return env


def train_argv(config: Path, run_dir: Path, s3: Optional[str], endpoint: str, *extra: str) -> List[str]:
    """``rectrain train`` on the CPU with JSON display (``s3=None``: no --checkpoint-s3)."""
    remote = ["--checkpoint-s3", s3, "--endpoint-url", endpoint] if s3 else []
    return [sys.executable, "-m", "rectrain", "train", "--config", str(config), "--run-dir",
            str(run_dir), "--device", "cpu", "--sub-epochs", str(SUB_EPOCHS), *remote,
            "--display", "json", *extra]


def launch(trial: TrialEnv, argv: List[str], log: Path, skew_s: float = 0.0) -> subprocess.Popen:
    """Start ``argv`` (stdout to ``log.out``, stderr to ``log.err``) in its own session."""
    with open(log.with_suffix(".out"), "wb") as fo, open(log.with_suffix(".err"), "wb") as fe:
        return subprocess.Popen(argv, env=run_env(trial, trial.proxy.endpoint_url, skew_s),
                                stdout=fo, stderr=fe, start_new_session=True)


def wait_until(proc: subprocess.Popen, ready: Callable[[], bool], timeout: float = ATTEMPT_TIMEOUT_S) -> bool:
    """Poll ``ready`` until it holds (True) or ``proc`` ended (False); kills it after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return True
        if proc.poll() is not None:
            return ready()
        time.sleep(0.05)
    kill_tree(proc)
    raise AssertionError(f"not ready within {timeout:.0f} s: {proc.args}")


class Trial:
    def __init__(self, env: TrialEnv, seed: int, plan: Optional[TrialPlan] = None) -> None:
        self.env = env
        self.plan = plan or make_plan(seed, enospc=env.can_mount)
        self.seed = seed
        self.prefix = f"trial-{seed}"
        self.s3 = f"s3://{env.bucket}/{self.prefix}"
        self.dir = env.workdir / f"seed{seed}"
        self.checker = Checker(env.client)
        self.result = TrialResult(seed, self.plan.final_step)
        self.disk: Optional[Path] = None
        self._machine = 0
        self._engine_saved = 0  # the newest `latest` the engine logged saving on this machine

    def run(self) -> TrialResult:
        start = time.monotonic()
        self.dir.mkdir(parents=True, exist_ok=True)
        with ExitStack() as stack:
            if any(a.strike and a.strike.kind == "ENOSPC" for a in self.plan.attempts):
                self.disk = stack.enter_context(mounts.tmpfs(self.dir / "disk", TMPFS_BYTES))
            try:
                self._attempts()
            finally:
                self.env.proxy.off()
        self.result.seconds = time.monotonic() - start
        return self.result

    def _run_dir(self, fresh: bool) -> Path:
        root = self.disk or self.dir
        if fresh:  # the old machine is gone
            shutil.rmtree(root / f"machine{self._machine}", ignore_errors=True)
            self._machine += 1
            self._engine_saved = 0
        return root / f"machine{self._machine}" / "run"

    def _attempts(self) -> None:
        next_fresh: Optional[bool] = None  # forced by what happened
        for i, ap in enumerate(self.plan.attempts):
            fresh = i > 0 and (ap.fresh_machine if next_fresh is None else next_fresh)
            rc, report, stderr, struck = self._attempt(i, ap, self._run_dir(fresh), fresh)
            next_fresh = None
            if rc == 0:
                self.result.completed = self._final_ok(report)
                return
            if rc == 5:
                self._recover_with_push(i, stderr)
                return
            if struck == "LOST":
                next_fresh = False  # the point: the same machine, its snapshots gone
            elif rc == 2 and not fresh and i:
                next_fresh = True  # what a user would try next: a fresh machine, from S3
        last = self.result.attempts[-1] if self.result.attempts else None
        self.result.violate("completes", len(self.plan.attempts) - 1,
                            f"no exit 0 in {len(self.plan.attempts)} attempts (last rc {last and last.rc})")

    def _final_ok(self, report: Report) -> bool:
        latest = report.verified("latest")
        return report.pointer_step("latest") == self.plan.final_step and bool(latest) \
            and latest[0].step == self.plan.final_step

    def _attempt(self, i: int, ap: AttemptPlan, run_dir: Path,
                 fresh: bool) -> Tuple[Optional[int], Report, str, str]:
        proxy = self.env.proxy
        before = self.checker.check(self.s3)
        engine_before = self._engine_saved
        log = self.dir / f"attempt{i}.log"
        argv = train_argv(self.env.config_for(self.plan.epochs), run_dir, self.s3, proxy.endpoint_url,
                          *(["--resume"] if i else []))
        proxy.plan = ap.net if ap.net_from_start else OFF
        stats0 = proxy.stats()
        started = time.monotonic()
        proc = launch(self.env, argv, log, ap.skew_s)
        struck, rc = self._watch(proc, ap, log.with_suffix(".out"), run_dir)
        proxy.off()
        if self.disk is not None:
            mounts.unfill(self.disk)
        faults = ("cuts", "cuts_response", "error_503", "error_500", "stalls", "resets")
        stats = {k: v - stats0.get(k, 0) for k, v in proxy.stats().items()
                 if k in faults and v > stats0.get(k, 0)}
        records = display_records(log.with_suffix(".out"))
        steps = [r["global_step"] for r in records if r.get("type") == "train"]
        saved = [r["global_step"] for r in records if r.get("type") == "save" and r.get("name") == "latest"]
        self._engine_saved = max([self._engine_saved] + saved)
        stderr = log.with_suffix(".err").read_text(encoding="utf-8", errors="replace")
        after = self.checker.check(self.s3)
        attempt = Attempt(i, rc, str(run_dir), before.newest_resume_step(), steps[0] if steps else None,
                          steps[-1] if steps else None, struck, stats, describe(ap),
                          after.pointer_step("latest"), time.monotonic() - started, stderr[-1500:])
        self.result.attempts.append(attempt)
        self._judge(attempt, before, after, stderr, fresh, engine_before)
        return rc, after, stderr, (struck or "").split("@")[0]

    def _watch(self, proc: subprocess.Popen, ap: AttemptPlan, out: Path,
               run_dir: Path) -> Tuple[Optional[str], Optional[int]]:
        deadline = time.monotonic() + ATTEMPT_TIMEOUT_S
        struck: Optional[str] = None
        net_on = ap.net_from_start
        undo_at: Optional[float] = None
        family: Dict[int, str] = {}
        tick = 0
        while proc.poll() is None:
            if tick % 10 == 0:  # every 0.5 s: what it started, to kill what it leaves behind
                family.update({pid: _start_time(pid) for pid in descendants(proc.pid) if pid not in family})
            tick += 1
            if time.monotonic() > deadline:
                kill_tree(proc)
                self.result.violate("no-hang", len(self.result.attempts),
                                    f"still running after {ATTEMPT_TIMEOUT_S:.0f} s ({describe(ap)}); killed")
                return struck or "hang", None
            n = len(train_steps(out))
            if not net_on and n >= 1 and undo_at is None:
                self.env.proxy.plan, net_on = ap.net, True
            if ap.strike and struck is None and n >= ap.strike.after_steps:
                time.sleep(ap.strike.delay_s)
                if proc.poll() is not None:
                    break
                struck = self._strike(proc, ap.strike, run_dir)
                if ap.strike.lasts_s:
                    undo_at = time.monotonic() + ap.strike.lasts_s
            if undo_at is not None and time.monotonic() >= undo_at:  # the disk, the endpoint come back
                undo_at = None
                if self.disk is not None:
                    mounts.unfill(self.disk)
                self.env.proxy.plan, net_on = ap.net, True
            time.sleep(0.05)
        try:
            rc = proc.wait(timeout=ATTEMPT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            kill_tree(proc)
            self.result.violate("no-hang", len(self.result.attempts), "did not end after SIGTERM; killed")
            return struck, None
        for pid, started in family.items():  # nothing it started may outlive it (an orphaned engine)
            if started and _start_time(pid) == started:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        return struck, rc

    def _strike(self, proc: subprocess.Popen, strike: Strike, run_dir: Path) -> str:
        if strike.kind == "SIGTERM":
            proc.send_signal(signal.SIGTERM)
        elif strike.kind in ("SIGKILL", "LOST"):
            kill_tree(proc)
            if strike.kind == "LOST":
                shutil.rmtree(run_dir / "checkpoints" / "snapshots", ignore_errors=True)
        elif strike.kind == "OUTAGE":
            self.env.proxy.plan = FaultPlan(down=True)
        else:
            assert self.disk is not None
            mounts.fill(self.disk, strike.leave_bytes)
        return f"{strike.kind}@{strike.after_steps}+{strike.delay_s:.2f}s"

    def _judge(self, a: Attempt, before: Report, after: Report, stderr: str, fresh: bool,
               engine_saved: int) -> None:
        v, final = a.s3_before, self.plan.final_step
        if a.first_step is not None and a.index:
            if a.first_step == 1 and (v or engine_saved):
                held = [f"S3 a verified checkpoint at step {v}" if v else "",
                        f"this machine the engine's `latest` of step {engine_saved}" if engine_saved else ""]
                self.result.violate("no-silent-restart", a.index,
                                    f"trained from step 1 while {' and '.join(h for h in held if h)} "
                                    f"(exit {a.rc}):\n{stderr[-1200:]}")
            elif a.first_step - 1 < v:
                self.result.violate("resume-not-older", a.index,
                                    f"resumed at step {a.first_step - 1}, S3 held step {v} verified")
        new = [x for x in after.anomalies if x not in before.anomalies]
        if new:
            self.result.violate("s3-consistent", a.index, "; ".join(new) + "\n" + after.summary())
        if a.rc == 0 and not self._final_ok(after):
            self.result.violate("exit0-final-in-s3", a.index,
                                f"exit 0, but S3's latest is {after.pointer_step('latest')} "
                                f"(final step {final})\n{after.summary()}\n{stderr[-1200:]}")
        if a.rc == 5:
            named = re.findall(r"s3://\S+?/(s\d{8}-[A-Za-z0-9_]+-[0-9a-f]{6})/", stderr)
            lacking = [n for n in named if not (n in after.folders and after.folders[n].verified)]
            if self._final_ok(after) and not lacking and after.pointer_step("best_of_run") is not None:
                self.result.violate("exit5-truthful", a.index,
                                    f"exit 5, but S3 holds everything it names ({named})")
        kind = (a.struck or "").split("@")[0]
        if kind == "SIGTERM" and a.rc not in (0, 75):
            self.result.violate("sigterm-75", a.index, f"SIGTERM gave exit {a.rc}: {stderr[-600:]}")
        earlier_strike = a.index > 0 and bool(self.result.attempts[a.index - 1].struck)
        if (kind in ("",) + NETWORK_STRIKES and a.rc not in (0, None)
                and not (a.rc == 2 and earlier_strike and not fresh)):
            self.result.violate("transient-absorbed", a.index,
                                f"exit {a.rc} with faults {a.net} ({a.plan}):\n{stderr[-1200:]}")
        if a.rc == 2 and a.index and fresh and v:
            self.result.violate("resume-accepted", a.index,
                                f"refused on a fresh machine while S3 held step {v} verified:\n"
                                f"{stderr[-1200:]}")

    def _recover_with_push(self, i: int, stderr: str) -> None:
        """Exit 5: run the command it names (on a good network) and check S3 then holds the
        final checkpoint: nothing was lost, only not uploaded."""
        m = re.search(r"`rectrain (ckpt push [^`]+)`", stderr)
        if m is None:
            self.result.violate("exit5-truthful", i, "exit 5 without a `rectrain ckpt push` command")
            return
        proc = subprocess.run([sys.executable, "-m", "rectrain", *m.group(1).split()],
                              env=run_env(self.env, self.env.proxy.endpoint_url), capture_output=True,
                              text=True, timeout=ATTEMPT_TIMEOUT_S)
        report = self.checker.check(self.s3)
        if proc.returncode != 0 or not self._final_ok(report):
            self.result.violate("exit5-truthful", i,
                                f"`{m.group(1)}` exit {proc.returncode}; S3 latest then "
                                f"{report.pointer_step('latest')}: {proc.stderr[-800:]}")
            return
        self.result.completed = self.result.via_push = True
