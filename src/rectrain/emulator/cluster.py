"""``rectrain sagemaker run-local --instance-count 2``: two SageMaker hosts on this machine.

What SageMaker does for a two-instance job, done here with real processes and a real network:

- two hosts, ``algo-1`` and ``algo-2``, each in its own Linux network namespace with its own
  address, UTS host name and a hosts file naming both (:mod:`rectrain.emulator.netns`);
- each host is a fresh instance at every start: its own ``/opt/ml`` tree at
  ``WORK_DIR/algo-N/`` (``resourceconfig.json`` with ``current_host`` and
  ``network_interface_name`` = its veth), every channel downloaded in full
  (``FullyReplicated``), ``/opt/ml/checkpoints`` restored from ``CheckpointConfig.S3Uri``
  and uploaded back to that same prefix by every host while it runs and after it stops;
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
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from rectrain.errors import EXIT_INTERRUPTED, EXIT_OK
from rectrain.logs import get_logger
from rectrain.paths import MLPaths
from rectrain.storage.s3 import S3Uri

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


def _prepare_host(local: Any, s3: Any, request: Dict[str, Any], root: Path, host: str,
                  hosts: Sequence[str], interface: str) -> Tuple[MLPaths, int]:
    """A fresh instance: an empty /opt/ml tree, the contract, the channels, the checkpoints
    restored from S3. Returns the paths and the number of checkpoint files restored."""
    if root.exists():
        shutil.rmtree(root)
    paths = MLPaths.resolve(str(root))
    local.write_contract(paths, request, host=host, hosts=hosts, interface=interface)
    for channel in request["InputDataConfig"]:
        dest = paths.channel(channel["ChannelName"])
        dest.mkdir(parents=True)
        local.download_prefix(s3, S3Uri.parse(channel["DataSource"]["S3DataSource"]["S3Uri"]), dest)
    for folder in (paths.model, paths.output_data, paths.failure.parent, paths.checkpoints):
        folder.mkdir(parents=True, exist_ok=True)
    restored = local.download_prefix(s3, S3Uri.parse(request["CheckpointConfig"]["S3Uri"]), paths.checkpoints)
    return paths, restored


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


def _checkpoint_uploaded(sync: Any, ckdir: Path, before: Dict[str, Tuple[int, int]]) -> Callable[[], bool]:
    """True once a checkpoint (its ``.states``, which the engine writes last) written in this
    start is in S3. ``latest`` is rewritten every epoch and may only settle at the end; the
    ``iter_epoch_N`` ones are written once."""
    def ready() -> bool:
        uploaded = getattr(sync, "state", {})
        return any(rel.endswith(".states") and sig != before.get(rel) for rel, sig in uploaded.items())
    return ready


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
               grace: float, ready: Optional[Callable[[], bool]] = None) -> Tuple[Dict[str, int], bool]:
    """Wait for every host; SIGTERM all at ``interrupt_after`` seconds (and once ``ready()``)
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


def run_cluster(local: Any, job: Any, request: Dict[str, Any], s3: Any, root: Path, *,
                interrupt_after: Sequence[float], device: str, max_steps: Optional[int],
                grace_seconds: float, max_starts: Optional[int],
                extra_env: Optional[Dict[str, str]], interrupt_after_checkpoint: bool = False) -> Any:
    """Run ``request`` on ``InstanceCount`` (2) hosts; returns ``local.LocalRunResult``.
    ``interrupt_after_checkpoint``: an interruption waits until the first host has uploaded a
    checkpoint written in this start, so that a restart has one to resume."""
    from rectrain.emulator.netns import HostNetwork

    name = request["TrainingJobName"]
    checkpoint_uri = request["CheckpointConfig"]["S3Uri"]
    hosts = host_names(int(request["ResourceConfig"]["InstanceCount"]))
    result = local.LocalRunResult(job_name=name, ml_root=str(root), exit_code=EXIT_OK,
                                  checkpoint_s3=checkpoint_uri)
    plan = list(interrupt_after) + [None]
    if max_starts:
        plan = plan[:max_starts]
    roots = {h: root / h for h in hosts}
    with _sigterm_as_interrupt(), HostNetwork(hosts) as net:
        for number, after in enumerate(plan, start=1):
            procs: Dict[str, subprocess.Popen] = {}
            syncs: Dict[str, Any] = {}
            background: List[Any] = []
            restored: Dict[str, int] = {}
            before: Dict[str, Dict[str, Tuple[int, int]]] = {}
            for host in hosts:  # new instances
                paths, restored[host] = _prepare_host(local, s3, request, roots[host], host, hosts,
                                                      net.interface(host))
                syncs[host] = local.TreeSync(s3, paths.checkpoints, checkpoint_uri)
                syncs[host].mark_present()
                before[host] = _tree(paths.checkpoints)
            until = f"interrupt after {after:.0f} s" if after is not None else "to the end"
            log.info("run-local: start %d on %s (%s), checkpoint files restored: %s", number,
                     ", ".join(hosts), until, ", ".join(f"{h} {n}" for h, n in restored.items()))
            started = time.monotonic()
            try:
                for host in hosts:
                    env = dict(os.environ)
                    env.update({"RECTRAIN_ML_ROOT": str(roots[host]), "RECTRAIN_DEVICE": device,
                                "PYTHONUNBUFFERED": "1", "SM_CURRENT_HOST": host,
                                "TRAINING_JOB_NAME": name})
                    env.update(request.get("Environment", {}))
                    env.update(extra_env or {})
                    argv = net.command(host, local._entrypoint_argv(roots[host], max_steps))
                    # the working directory is the host's own tree (the image's WORKDIR is /opt/ml):
                    # Paddle's gloo store writes http.log into it
                    procs[host] = subprocess.Popen(argv, env=env, stdout=sys.stderr, stderr=sys.stderr,
                                                   cwd=str(roots[host]))
                    thread = local._BackgroundSync(syncs[host], local.SYNC_EVERY_SECONDS)
                    thread.start()
                    background.append(thread)
                ready = _checkpoint_uploaded(syncs[hosts[0]], roots[hosts[0]] / "checkpoints",
                                             before[hosts[0]]) if interrupt_after_checkpoint else None
                codes, interrupted = _run_hosts(procs, after, grace_seconds, ready)
            finally:
                for thread in background:
                    thread.stopped.set()
                    thread.join()
                if any(p.poll() is None for p in procs.values()):
                    _stop_all(procs, 5.0)
            for host in hosts:
                syncs[host].sync()  # the containers have stopped: what they left is final
            code = codes[hosts[0]] if codes[hosts[0]] != EXIT_OK else \
                next((c for c in codes.values() if c != EXIT_OK), EXIT_OK)
            attempt = local.Attempt(number, code, time.monotonic() - started, interrupted,
                                    sum(restored.values()), sum(s.uploaded for s in syncs.values()))
            written = {h: sorted(_changed(roots[h] / "checkpoints", before[h])) for h in hosts}
            attempt.hosts = {h: {"exit_code": codes[h], "restored_files": restored[h],
                                 "uploaded_files": syncs[h].uploaded, "written": written[h]} for h in hosts}
            result.attempts.append(attempt)
            result.exit_code = code
            if not interrupted or code == EXIT_OK:
                break
            if code != EXIT_INTERRUPTED:
                log.warning("run-local: exit code %s after SIGTERM (expected %s)", code, EXIT_INTERRUPTED)
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
        out_prefix = f"{str(job.output or job.checkpoint_s3).rstrip('/')}/{name}/output"
        result.model_s3 = local._upload_tar(s3, master.model, f"{out_prefix}/model.tar.gz")
        if master.output_data.is_dir() and any(master.output_data.iterdir()):
            local._upload_tar(s3, master.output_data, f"{out_prefix}/output.tar.gz")
    return result
