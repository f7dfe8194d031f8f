"""``rectrain sagemaker run-local --instance-count 2``: two SageMaker hosts on this machine.

What SageMaker does for a two-instance job, done here with real processes and a real network:

- two hosts, ``algo-1`` and ``algo-2``, each in its own Linux network namespace with its own
  address, UTS host name and a hosts file naming both (:mod:`rectrain.emulator.netns`);
- each host is a fresh instance at every start: its own ``/opt/ml`` tree at
  ``WORK_DIR/algo-N/`` (``resourceconfig.json`` with ``current_host`` and
  ``network_interface_name`` = its veth), every channel downloaded in full
  (``FullyReplicated``), and SageMaker's checkpoint agent for its ``/opt/ml/checkpoints``
  (:mod:`rectrain.emulator.checkpoint_agent`, the one emulation single-host run-local uses
  too): restored from ``CheckpointConfig.S3Uri`` in random order with new mtimes, synced back
  to that same prefix continuously while the host runs (deletions too), nothing uploaded once
  the job is stopped;
- the real entrypoint on both hosts; ``paddle.distributed.launch`` joins them (gloo on the
  CPU) through the first host's IP address;
- when one host fails, the job fails: the other hosts are stopped (SIGTERM, the grace,
  SIGKILL); ``--interrupt-after`` interrupts every host at once (a spot interruption), and
  the next start restores the checkpoints on both;
- on success ``algo-1``'s ``/opt/ml/model`` becomes ``model.tar.gz`` and its
  ``/opt/ml/output/data`` ``output.tar.gz``.

The S3 side (channels, checkpoint sync, model upload) runs here, outside the namespaces, as
SageMaker's agent does outside the container: the hosts need no route to the S3 server.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from rectrain.emulator.checkpoint_agent import SageMakerCheckpointSync
from rectrain.errors import EXIT_INTERRUPTED, EXIT_OK
from rectrain.logs import get_logger
from rectrain.outputs import remove_tree
from rectrain.paths import MLPaths
from rectrain.storage.s3 import S3Uri
from rectrain.storage.service import S3Service

log = get_logger("sagemaker.cluster")


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM to run-local (a CI timeout, ``kill``) unwinds like Ctrl-C, so the namespaces,
    the veth and /etc/netns are removed and the host processes killed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, frame: Any) -> None:  # noqa: ARG001
        raise KeyboardInterrupt("SIGTERM")

    previous = signal.signal(signal.SIGTERM, handle)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def host_names(count: int) -> List[str]:
    return [f"algo-{i + 1}" for i in range(count)]


def _prepare_host(local: Any, s3: S3Service, request: Dict[str, Any], root: Path, host: str,
                  hosts: Sequence[str], interface: str) -> Tuple[MLPaths, SageMakerCheckpointSync, int]:
    """A fresh instance: an empty /opt/ml tree, the contract, the channels, and SageMaker's
    checkpoint agent with the checkpoints restored from S3 (random order, new mtimes). Returns
    the paths, the agent (not started yet) and the number of checkpoint files restored."""
    if root.exists():
        remove_tree(root)
    paths = MLPaths.resolve(str(root))
    local.write_contract(paths, request, host=host, hosts=hosts, interface=interface)
    local.download_channels(paths, request, s3)
    for folder in (paths.model, paths.output_data, paths.failure.parent, paths.checkpoints):
        folder.mkdir(parents=True, exist_ok=True)
    agent = SageMakerCheckpointSync(s3, paths.checkpoints, S3Uri.parse(request["CheckpointConfig"]["S3Uri"]),
                                    every=local.SYNC_EVERY_SECONDS)
    return paths, agent, agent.restore()


def _tree(folder: Path) -> Dict[str, Tuple[int, int]]:
    out: Dict[str, Tuple[int, int]] = {}
    for path in folder.rglob("*"):
        try:
            if path.is_file():
                st = path.stat()
                out[path.relative_to(folder).as_posix()] = (st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            continue
    return out


def _changed(folder: Path, before: Dict[str, Tuple[int, int]]) -> List[str]:
    return [rel for rel, sig in _tree(folder).items() if before.get(rel) != sig]


def _stop_all(procs: Dict[str, subprocess.Popen], grace: float) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _run_hosts(procs: Dict[str, subprocess.Popen], interrupt_after: Optional[float],
               grace: float, ready: Optional[Callable[[], bool]] = None,
               on_interrupt: Optional[Callable[[], None]] = None) -> Tuple[Dict[str, int], bool]:
    """Wait for every host; SIGTERM all at ``interrupt_after`` seconds (and once ``ready()``),
    after ``on_interrupt()`` (the checkpoint agents stop: a stopped job uploads nothing more),
    or as soon as one host fails (SageMaker fails and stops the job). Returns the exit codes
    and whether interrupted."""
    started = time.monotonic()
    interrupted = False
    term_at: Optional[float] = None
    try:
        while any(p.poll() is None for p in procs.values()):
            time.sleep(0.5)
            now = time.monotonic()
            failed = [h for h, p in procs.items() if p.poll() not in (None, 0)]
            if term_at is None and failed:
                log.error("run-local: %s exited %s: stopping the other host(s), as SageMaker does",
                          failed[0], procs[failed[0]].returncode)
                term_at = now
                for proc in procs.values():
                    if proc.poll() is None:
                        proc.send_signal(signal.SIGTERM)
            if interrupt_after is not None and term_at is None and now - started >= interrupt_after \
                    and (ready is None or ready()):
                log.warning("run-local: simulated spot interruption of every host: SIGTERM after %.0f s",
                            now - started)
                if on_interrupt is not None:
                    on_interrupt()
                interrupted, term_at = True, now
                for proc in procs.values():
                    if proc.poll() is None:
                        proc.send_signal(signal.SIGTERM)
            if term_at is not None and now - term_at > grace:
                log.error("run-local: still running %.0f s after SIGTERM: SIGKILL", grace)
                for proc in procs.values():
                    if proc.poll() is None:
                        proc.kill()
    except BaseException:
        for proc in procs.values():
            proc.kill()
            proc.wait()
        raise
    return {h: int(p.returncode) for h, p in procs.items()}, interrupted


def run_cluster(local: Any, job: Any, request: Dict[str, Any], s3: S3Service, root: Path, *,
                interrupt_after: Sequence[float], device: str, max_steps: Optional[int],
                grace_seconds: float, max_starts: Optional[int],
                extra_env: Optional[Dict[str, str]], interrupt_after_checkpoint: bool = False,
                agent_at_stop: str = "stop") -> Any:
    """Run ``request`` on ``InstanceCount`` (2) hosts; returns ``local.LocalRunResult``.
    ``interrupt_after_checkpoint``: an interruption waits until the first host's agent has
    uploaded a complete ``latest`` checkpoint and the run's state written in this start, so
    that a restart has them to resume."""
    from rectrain.emulator.netns import HostNetwork

    name = request["TrainingJobName"]
    hosts = host_names(int(request["ResourceConfig"]["InstanceCount"]))
    result = local.LocalRunResult(job_name=name, ml_root=str(root), exit_code=EXIT_OK,
                                  checkpoint_s3=request["CheckpointConfig"]["S3Uri"])
    plan = list(interrupt_after) + [None]
    if max_starts:
        plan = plan[:max_starts]
    roots = {h: root / h for h in hosts}
    with _sigterm_as_interrupt(), HostNetwork(hosts) as net:
        for number, after in enumerate(plan, start=1):
            start = _Start(local, s3, request, roots, net, device, max_steps, extra_env, job.region)
            attempt = start.run(number, after, grace_seconds, interrupt_after_checkpoint, agent_at_stop)
            result.attempts.append(attempt)
            result.exit_code = attempt.exit_code
            if not attempt.interrupted or attempt.exit_code == EXIT_OK:
                break
            if attempt.exit_code != EXIT_INTERRUPTED:
                log.warning("run-local: exit code %s after SIGTERM (expected %s)", attempt.exit_code,
                            EXIT_INTERRUPTED)
    _finish_job(local, job, s3, result, roots, hosts)
    return result


class _Start:
    """One start of the job: a fresh instance per host, each with its own SageMaker checkpoint
    agent (:mod:`rectrain.emulator.checkpoint_agent`: restore in random order, continuous
    upload with deletions, nothing after a stop), the entrypoint on every host."""

    def __init__(self, local: Any, s3: S3Service, request: Dict[str, Any], roots: Dict[str, Path],
                 net: Any, device: str, max_steps: Optional[int],
                 extra_env: Optional[Dict[str, str]], region: Optional[str] = None) -> None:
        self.local, self.s3, self.request, self.roots, self.net = local, s3, request, roots, net
        self.region = region
        self.device, self.max_steps, self.extra_env = device, max_steps, extra_env
        self.hosts = list(roots)
        self.agents: Dict[str, SageMakerCheckpointSync] = {}
        self.restored: Dict[str, int] = {}
        self.before: Dict[str, Dict[str, Tuple[int, int]]] = {}

    def _prepare(self) -> None:
        for host in self.hosts:  # new instances
            paths, self.agents[host], self.restored[host] = _prepare_host(
                self.local, self.s3, self.request, self.roots[host], host, self.hosts,
                self.net.interface(host))
            self.before[host] = _tree(paths.checkpoints)

    def _popen(self, host: str) -> subprocess.Popen:
        env = dict(os.environ)
        env.update({"RECTRAIN_ML_ROOT": str(self.roots[host]), "RECTRAIN_DEVICE": self.device,
                    "PYTHONUNBUFFERED": "1", "SM_CURRENT_HOST": host})
        env.update(self.local.job_environment(self.request, self.region))
        env.update(self.extra_env or {})
        argv = self.net.command(host, self.local._entrypoint_argv(self.roots[host], self.max_steps))
        # the working directory is the host's own tree (the image's WORKDIR is /opt/ml):
        # Paddle's gloo store writes http.log into it
        return subprocess.Popen(argv, env=env, stdout=sys.stderr, stderr=sys.stderr,
                                cwd=str(self.roots[host]))

    def _stop_agents(self, final: bool) -> None:
        for agent in self.agents.values():
            agent.stop(final=final)

    def run(self, number: int, after: Optional[float], grace: float, wait_for_checkpoint: bool,
            agent_at_stop: str = "stop") -> Any:
        """One start; at an interruption the agents stop at once (``stop``) or keep syncing
        until the hosts' processes end (``grace``)."""
        self._prepare()
        until = f"interrupt after {after:.0f} s" if after is not None else "to the end"
        log.info("run-local: start %d on %s (%s), checkpoint files restored: %s", number,
                 ", ".join(self.hosts), until, ", ".join(f"{h} {n}" for h, n in self.restored.items()))
        started = time.monotonic()
        procs: Dict[str, subprocess.Popen] = {}
        stopped = False

        def stop_agents() -> None:  # a stopped job: SageMaker uploads nothing more
            nonlocal stopped
            stopped = True
            self._stop_agents(final=False)

        try:
            for host in self.hosts:
                procs[host] = self._popen(host)
                self.agents[host].start()
            first = self.hosts[0]
            trial = self.local.trial_folder(self.request)
            ready = (lambda: self.agents[first].restart_ready(trial)) if wait_for_checkpoint else None
            codes, interrupted = _run_hosts(procs, after, grace, ready,
                                            on_interrupt=stop_agents if agent_at_stop == "stop" else None)
        except BaseException:
            self._stop_agents(final=False)  # run-local itself was stopped: nothing more goes up
            raise
        finally:
            if any(p.poll() is None for p in procs.values()):
                _stop_all(procs, 5.0)
        if not stopped:  # ended by itself (done or failed): the agents' last upload; after an
            self._stop_agents(final=not interrupted)  # interruption's grace: nothing more
        return self._attempt(number, codes, interrupted, time.monotonic() - started)

    def _attempt(self, number: int, codes: Dict[str, int], interrupted: bool, seconds: float) -> Any:
        first = self.hosts[0]
        code = codes[first] if codes[first] != EXIT_OK else \
            next((c for c in codes.values() if c != EXIT_OK), EXIT_OK)
        attempt = self.local.Attempt(number, code, seconds, interrupted, sum(self.restored.values()),
                                     sum(a.uploaded for a in self.agents.values()))
        written = {h: sorted(_changed(self.roots[h] / "checkpoints", self.before[h])) for h in self.hosts}
        attempt.hosts = {h: {"exit_code": codes[h], "restored_files": self.restored[h],
                             "uploaded_files": self.agents[h].uploaded, "written": written[h]}
                         for h in self.hosts}
        return attempt


def _finish_job(local: Any, job: Any, s3: S3Service, result: Any, roots: Dict[str, Path],
                hosts: List[str]) -> None:
    """The failure reason, and on success ``algo-1``'s model and output packed to S3."""
    master = MLPaths.resolve(str(roots[hosts[0]]))
    failures = [(h, MLPaths.resolve(str(roots[h])).failure) for h in hosts]
    result.failure = next((f"{h}: " + p.read_text(encoding="utf-8", errors="replace")
                           for h, p in failures if p.is_file()), None)
    for host in hosts[1:]:
        model = MLPaths.resolve(str(roots[host])).model
        if model.is_dir() and any(model.iterdir()):
            log.warning("run-local: %s wrote to /opt/ml/model; only %s's model is packed", host, hosts[0])
    if result.exit_code == EXIT_OK and any(master.model.iterdir()):
        result.model_dir = str(master.model)
        out_prefix = f"{str(job.output or job.checkpoint_s3).rstrip('/')}/{result.job_name}/output"
        result.model_s3 = local._upload_tar(s3, master.model, f"{out_prefix}/model.tar.gz")
        if master.output_data.is_dir() and any(master.output_data.iterdir()):
            local._upload_tar(s3, master.output_data, f"{out_prefix}/output.tar.gz")
