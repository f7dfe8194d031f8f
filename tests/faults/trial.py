"""One trial of the fault campaign: a tiny real training run (CPU) with ``--checkpoint-s3``
through the fault proxy, faults drawn from a seed, resumed until it completes or runs out of
attempts, checked by the oracle after every attempt.

Black box (``blackbox.py``): the run is ``python -m rectrain train ...`` in a subprocess; what
it did is read from its exit code, its JSON display on stdout (this attempt's own train and
save records), its stderr, and S3 through ``oracle.py``. Nothing here imports rectrain.

Faults (``make_plan``; the same seed gives the same plan):
- network, the whole attempt (the proxy): cuts (mean 0.8-4 MB of request or of response),
  S3 503 SlowDown / 500 errors, stalled responses (0.2-2 s), a bandwidth limit; from the
  first request (the preflight) or from the first step;
- a **strike** that ends the attempt, in the first 0-2 attempts, after 1-7 of its steps plus
  0-0.6 s: SIGTERM (rectrain's documented interruption); SIGKILL of the whole process tree
  (the machine is gone); LOST: that SIGKILL, then ``checkpoints/snapshots`` deleted with the
  engine's own files kept (the next attempt on the same machine); ENOSPC (the run folder on a
  small tmpfs, filled to leave 0-2.5 MB) or READONLY (``checkpoints/snapshots`` made
  read-only, root included) until the attempt ends;
- a **blip** (30% of attempts), undone after 0.5-15 s: OUTAGE (the endpoint resets
  everything), ENOSPC, READONLY;
- clock: an attempt's wall clock skewed by minutes to hours (``clockshim``);
- machine: each resume on the same run folder or on a fresh one (everything from S3).

Invariants (``INVARIANTS``) are checked after every attempt; a violation is recorded with the
seed, the attempt and what the oracle saw.
"""

from __future__ import annotations

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
from tests.faults.blackbox import (
    ATTEMPT_TIMEOUT_S,
    STEPS_PER_EPOCH,
    descendants,
    display_records,
    kill_tree,
    launch,
    reap,
    run_env,
    start_time,
    train_argv,
)
from tests.faults.oracle import Checker, Report
from tests.faults.proxy import OFF, FaultPlan, FaultProxy

TMPFS_BYTES = 160 * 1024 * 1024

INVARIANTS = {
    "resume-not-older": "a resume continues from at least the newest checkpoint S3 held verified",
    "no-silent-restart": "no resume trains step 1 while S3 holds a verified checkpoint of the run, "
                         "or its machine the engine's files of a save the engine logged",
    "exit0-final-in-s3": "exit 0 only when S3's latest is the final step, verified",
    "exit5-truthful": "exit 5 only when S3 lacks a checkpoint, and its push command recovers it",
    "exit2-before-training": "exit 2 (a user error before training) only when nothing was trained",
    "s3-consistent": "S3 never shows a marker beside wrong files, nor a pointer to an unverified folder",
    "transient-absorbed": "an attempt hit by nothing but the network (faults, an outage) and clock "
                          "skew exits 0 (a resume on the machine of an earlier strike may refuse: 2)",
    "sigterm-75": "SIGTERM ends the command with exit 75 (or 0 when it had finished)",
    "resume-accepted": "a resume on a fresh machine is not refused while S3 holds a verified checkpoint",
    "no-traceback": "no bare traceback on stderr, whatever happened",
    "no-hang": f"an attempt ends within {ATTEMPT_TIMEOUT_S:.0f} s",
    "completes": "the trial completes (exit 0, final step verified in S3) within its attempts",
}
NETWORK = ("OUTAGE",)  # blips the attempt must absorb


@dataclass
class Strike:
    kind: str  # SIGTERM | SIGKILL | LOST | ENOSPC | READONLY | OUTAGE
    after_steps: int  # train records of this attempt before it strikes
    delay_s: float = 0.0
    lasts_s: Optional[float] = None  # undone after this many seconds (None: at the attempt's end)
    leave_bytes: int = 0  # ENOSPC: the free space left

    def __str__(self) -> str:
        lasts = "" if self.kind in ("SIGTERM", "SIGKILL", "LOST") else \
            f" for {f'{self.lasts_s:.1f}s' if self.lasts_s else 'the attempt'}"
        return f"{self.kind} after {self.after_steps} steps +{self.delay_s:.2f}s{lasts}"


@dataclass
class AttemptPlan:
    net: FaultPlan
    net_from_start: bool
    strike: Optional[Strike]
    blip: Optional[Strike]
    fresh_machine: bool
    skew_s: float

    def __str__(self) -> str:
        n = self.net
        parts = [f"cut~{n.cut_mean_bytes / 1e6:.1f}MB" if n.cut_mean_bytes else "",
                 f"rcut~{n.cut_response_mean_bytes / 1e6:.1f}MB" if n.cut_response_mean_bytes else "",
                 f"err{n.error_rate:.0%}" if n.error_rate else "",
                 f"stall{n.stall_rate:.0%}" if n.stall_rate else "",
                 f"bw{n.bandwidth / 1e6:.0f}MB/s" if n.bandwidth else ""]
        out = "net " + (" ".join(p for p in parts if p) or "clean")
        out += " from start" if n.active and self.net_from_start else ""
        out += "".join(f"; {s}" for s in (self.blip, self.strike) if s)
        out += "; fresh machine" if self.fresh_machine else ""
        return out + (f"; clock {self.skew_s:+.0f}s" if self.skew_s else "")


@dataclass
class TrialPlan:
    seed: int
    epochs: int
    attempts: List[AttemptPlan]

    @property
    def final_step(self) -> int:
        return self.epochs * STEPS_PER_EPOCH

    def needs_tmpfs(self) -> bool:
        return any(s and s.kind == "ENOSPC" for a in self.attempts for s in (a.strike, a.blip))


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


def make_plan(seed: int, mounts_ok: bool = True, skew: bool = True, light: bool = False) -> TrialPlan:
    """The faults of trial ``seed``. ``light`` (CI): a shorter run (2-3 epochs) and at most one
    strike, striking within its first 5 steps; the same kinds of faults, drawn the same way."""
    rng = random.Random(seed)
    epochs = rng.choice([2, 3] if light else [3, 4, 5])
    within = 5 if light else 7
    disk = ["ENOSPC", "READONLY"] if mounts_ok else []
    strikes = [Strike(rng.choice(["SIGTERM"] * 3 + ["SIGKILL"] * 3 + ["LOST"] + disk), rng.randint(1, within),
                      rng.uniform(0.0, 0.6), None, rng.randint(0, 2_500_000))
               for _ in range(rng.choice([0, 1] if light else [0, 1, 1, 2]))]
    attempts = []
    for i in range(len(strikes) + 3):  # the strikes, then up to three attempts to finish
        blip = None
        if rng.random() < 0.3:
            kind = rng.choice(["OUTAGE"] * 2 + disk)
            blip = Strike(kind, rng.randint(1, within), rng.uniform(0.0, 0.6),
                          rng.uniform(2.0, 15.0) if kind == "OUTAGE" else rng.uniform(0.5, 6.0),
                          rng.randint(0, 2_500_000))
        attempts.append(AttemptPlan(
            net=_net_plan(rng), net_from_start=rng.random() < 0.5,
            strike=strikes[i] if i < len(strikes) else None, blip=blip,
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
    plan: str
    rc: Optional[int]
    run_dir: str
    s3_before: int  # newest verified resume step in S3 before it started
    first_step: Optional[int]
    last_step: Optional[int]
    struck: List[str]  # what happened of the strike and the blip
    net: Dict[str, int]  # what the proxy did
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

    def violate(self, invariant: str, attempt: int, detail: str) -> None:
        assert invariant in INVARIANTS, invariant
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


class _Faults:
    """The faults of one attempt while it runs: the network plan, the strike, the blip, and
    undoing them (always, on the way out)."""

    def __init__(self, trial: Trial, ap: AttemptPlan, run_dir: Path, stack: ExitStack) -> None:
        self.trial, self.ap, self.run_dir, self.stack = trial, ap, run_dir, stack
        self.happened: List[str] = []
        self.net_on = ap.net_from_start
        self._pending = [s for s in (ap.blip, ap.strike) if s]
        self._undo: List[Tuple[float, Callable[[], None]]] = []
        trial.env.proxy.plan = ap.net if ap.net_from_start else OFF
        stack.callback(self._undo_all)

    def tick(self, proc: subprocess.Popen, steps: int) -> None:
        now = time.monotonic()
        for at, undo in [u for u in self._undo if u[0] <= now]:
            self._undo.remove((at, undo))
            undo()
        if not self.net_on and steps >= 1:
            self.trial.env.proxy.plan, self.net_on = self.ap.net, True
        for s in [s for s in self._pending if steps >= s.after_steps]:
            self._pending.remove(s)
            time.sleep(s.delay_s)
            if proc.poll() is None:
                self._strike(proc, s)

    def _strike(self, proc: subprocess.Popen, s: Strike) -> None:
        self.happened.append(s.kind)
        proxy, until = self.trial.env.proxy, (time.monotonic() + s.lasts_s if s.lasts_s else float("inf"))
        if s.kind == "SIGTERM":
            proc.send_signal(signal.SIGTERM)
        elif s.kind in ("SIGKILL", "LOST"):
            kill_tree(proc)
            if s.kind == "LOST":
                shutil.rmtree(self.run_dir / "checkpoints" / "snapshots", ignore_errors=True)
        elif s.kind == "OUTAGE":
            proxy.plan = FaultPlan(down=True)
            self._undo.append((until, self._network_back))
        elif s.kind == "ENOSPC":
            disk = self.trial.disk
            assert disk is not None
            mounts.fill(disk, s.leave_bytes)
            self._undo.append((until, lambda: mounts.unfill(disk)))
        elif s.kind == "READONLY":
            folder = self.run_dir / "checkpoints" / "snapshots"
            folder.mkdir(parents=True, exist_ok=True)
            inner = ExitStack()
            try:
                inner.enter_context(mounts.read_only(folder))
            except mounts.MountUnavailable:  # busy the whole time: this strike did not happen
                self.happened[-1] = "READONLY-missed"
                return
            self._undo.append((until, inner.close))

    def _network_back(self) -> None:
        self.trial.env.proxy.plan = self.ap.net if self.net_on else OFF

    def _undo_all(self) -> None:
        for _, undo in self._undo:
            undo()
        self._undo.clear()
        self.trial.env.proxy.off()


class Trial:
    def __init__(self, env: TrialEnv, seed: int, plan: Optional[TrialPlan] = None,
                 light: bool = False) -> None:
        self.env = env
        self.plan = plan or make_plan(seed, mounts_ok=env.can_mount, light=light)
        self.seed = seed
        self.s3 = f"s3://{env.bucket}/trial-{seed}"
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
            if self.plan.needs_tmpfs():
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
            a, report, stderr = self._attempt(i, ap, self._run_dir(fresh), fresh)
            next_fresh = None
            if a.rc == 0:
                self.result.completed = self._final_ok(report)
                return
            if a.rc == 5:
                self._recover_with_push(i, stderr)
                return
            if "LOST" in a.struck:
                next_fresh = False  # the point: the same machine, its snapshots gone
            elif a.rc == 2 and not fresh and i:
                next_fresh = True  # what a user would try next: a fresh machine, from S3
        last = self.result.attempts[-1]
        self.result.violate("completes", last.index,
                            f"no exit 0 in {len(self.plan.attempts)} attempts (last rc {last.rc})")

    def _final_ok(self, report: Report) -> bool:
        latest = report.verified("latest")
        return report.pointer_step("latest") == self.plan.final_step and bool(latest) \
            and latest[0].step == self.plan.final_step

    def _attempt(self, i: int, ap: AttemptPlan, run_dir: Path, fresh: bool) -> Tuple[Attempt, Report, str]:
        proxy = self.env.proxy
        before = self.checker.check(self.s3)
        engine_before = self._engine_saved
        log = self.dir / f"attempt{i}.log"
        # --resume as a user would pass it: when there is something to continue (S3 as the oracle
        # reads it, or the machine's run folder); with nothing anywhere, --resume is refused (exit 2)
        local = (run_dir / "run-state.json").exists() or any((run_dir / "checkpoints").glob("*"))
        listed = self.env.client.list_objects_v2(Bucket=self.env.bucket, Prefix=f"trial-{self.seed}/")
        remote = before.newest_resume_step() > 0 or any(
            o["Key"].endswith("run-state.json") for o in listed.get("Contents", []))
        resume = bool(i) and (remote or local)
        argv = train_argv(self.env.config_for(self.plan.epochs), run_dir, self.s3, proxy.endpoint_url,
                          *(["--resume"] if resume else []))
        stats0, started = proxy.stats(), time.monotonic()
        with ExitStack() as stack:
            faults = _Faults(self, ap, run_dir, stack)
            proc = launch(argv, run_env(self.env.s3_env, proxy.endpoint_url, ap.skew_s), log)
            try:
                rc = self._watch(proc, faults, log.with_suffix(".out"))
            except BaseException:  # the harness is stopped: nothing of the run may outlive it
                kill_tree(proc)
                raise
        if self.disk is not None:
            mounts.unfill(self.disk)
        kinds = ("cuts", "cuts_response", "error_503", "error_500", "stalls", "resets")
        stats = {k: v - stats0.get(k, 0) for k, v in proxy.stats().items()
                 if k in kinds and v > stats0.get(k, 0)}
        records = display_records(log.with_suffix(".out"))
        steps = [r["global_step"] for r in records if r.get("type") == "train"]
        saved = [r["global_step"] for r in records if r.get("type") == "save" and r.get("name") == "latest"]
        self._engine_saved = max([self._engine_saved] + saved)
        stderr = log.with_suffix(".err").read_text(encoding="utf-8", errors="replace")
        after = self.checker.check(self.s3)
        attempt = Attempt(i, str(ap), rc, str(run_dir), before.newest_resume_step(),
                          steps[0] if steps else None, steps[-1] if steps else None, faults.happened,
                          stats, after.pointer_step("latest"), time.monotonic() - started, stderr[-1500:])
        self.result.attempts.append(attempt)
        self._judge(attempt, before, after, stderr, fresh, engine_before)
        return attempt, after, stderr

    def _watch(self, proc: subprocess.Popen, faults: _Faults, out: Path) -> Optional[int]:
        deadline = time.monotonic() + ATTEMPT_TIMEOUT_S
        family: Dict[int, str] = {}
        tick = 0
        while proc.poll() is None:
            if tick % 10 == 0:  # every 0.5 s: what it started, to kill what it leaves behind
                family.update({pid: start_time(pid) for pid in descendants(proc.pid) if pid not in family})
            tick += 1
            if time.monotonic() > deadline:
                kill_tree(proc)
                self.result.violate("no-hang", len(self.result.attempts),
                                    f"still running after {ATTEMPT_TIMEOUT_S:.0f} s ({faults.ap}); killed")
                return None
            faults.tick(proc, sum(r.get("type") == "train" for r in display_records(out)))
            time.sleep(0.05)
        rc = proc.wait()
        reap(family)  # an engine orphaned by a rectrain that died
        return rc

    def _judge(self, a: Attempt, before: Report, after: Report, stderr: str, fresh: bool,
               engine_saved: int) -> None:
        v, final, tail = a.s3_before, self.plan.final_step, stderr[-1200:]
        if a.first_step is not None and a.index:
            if a.first_step == 1 and (v or engine_saved):
                held = [f"S3 a verified checkpoint at step {v}" if v else "",
                        f"this machine the engine's `latest` of step {engine_saved}" if engine_saved else ""]
                self.result.violate("no-silent-restart", a.index,
                                    f"trained from step 1 while {' and '.join(h for h in held if h)} "
                                    f"(exit {a.rc}):\n{tail}")
            elif a.first_step - 1 < v:
                self.result.violate("resume-not-older", a.index,
                                    f"resumed at step {a.first_step - 1}, S3 held step {v} verified")
        new = [x for x in after.anomalies if x not in before.anomalies]
        if new:
            self.result.violate("s3-consistent", a.index, "; ".join(new) + "\n" + after.summary())
        if a.rc == 0 and not self._final_ok(after):
            self.result.violate("exit0-final-in-s3", a.index,
                                f"exit 0, but S3's latest is {after.pointer_step('latest')} "
                                f"(final step {final})\n{after.summary()}\n{tail}")
        if a.rc == 5:
            named = re.findall(r"s3://\S+?/(s\d{8}-[A-Za-z0-9_]+-[0-9a-f]{6})/", stderr)
            lacking = [n for n in named if not (n in after.folders and after.folders[n].verified)]
            # a checkpoint the engine saved but rectrain could not snapshot (a full disk, a
            # read-only folder) is missing too, whatever S3 holds: it names the engine's files
            unsnapshotted = "could not be snapshotted" in stderr
            if self._final_ok(after) and not lacking and not unsnapshotted \
                    and after.pointer_step("best_of_run") is not None:
                self.result.violate("exit5-truthful", a.index, f"exit 5, but S3 holds all it names ({named})")
        if a.rc == 2 and a.first_step is not None:
            self.result.violate("exit2-before-training", a.index,
                                f"exit 2 after training steps {a.first_step}..{a.last_step}:\n{tail}")
        # (a full disk struck first: the run may have failed for it, exit 4, before the signal)
        decided = a.rc == 4 and "ENOSPC" in a.struck and "the disk is full" in stderr
        if "SIGTERM" in a.struck and a.rc not in (0, 75) and not decided:
            self.result.violate("sigterm-75", a.index, f"SIGTERM gave exit {a.rc}:\n{tail}")
        earlier = a.index > 0 and bool(self.result.attempts[a.index - 1].struck)
        if all(k in NETWORK for k in a.struck) and a.rc not in (0, None) \
                and not (a.rc == 2 and earlier and not fresh):
            self.result.violate("transient-absorbed", a.index, f"exit {a.rc}, injected {a.net}:\n{tail}")
        if a.rc == 2 and a.index and fresh and v and a.first_step is None:
            self.result.violate("resume-accepted", a.index,
                                f"refused on a fresh machine while S3 held step {v} verified:\n{tail}")
        if "Traceback (most recent call last)" in stderr:
            at = stderr.index("Traceback (most recent call last)")
            self.result.violate("no-traceback", a.index, f"exit {a.rc}:\n{stderr[at:at + 1500]}")

    def _recover_with_push(self, i: int, stderr: str) -> None:
        """Exit 5: run the command it names (on a good network) and check S3 then holds the
        final checkpoint: nothing was lost, only not uploaded."""
        m = re.search(r"`rectrain (ckpt push [^`]+)`", stderr)
        if m is None:
            self.result.violate("exit5-truthful", i, "exit 5 without a `rectrain ckpt push` command")
            return
        proc = subprocess.run([sys.executable, "-m", "rectrain", *m.group(1).split()],
                              env=run_env(self.env.s3_env, self.env.proxy.endpoint_url), capture_output=True,
                              text=True, timeout=ATTEMPT_TIMEOUT_S)
        report = self.checker.check(self.s3)
        if proc.returncode != 0 or not self._final_ok(report):
            self.result.violate("exit5-truthful", i,
                                f"`{m.group(1)}` exit {proc.returncode}; S3 latest then "
                                f"{report.pointer_step('latest')}: {proc.stderr[-800:]}")
            return
        self.result.completed = self.result.via_push = True
