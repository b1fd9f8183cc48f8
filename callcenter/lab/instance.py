"""Running lab Asterisk instances: ports, runtimes, start/stop, status, CLI access.

This module owns one lab instance's life: the loopback ports it listens on
(:class:`LabPorts`), where its files live, how Asterisk is executed (:class:`ChrootRuntime`
for the Debian sid root, :class:`HostRuntime` for an ``asterisk`` installed on the host),
starting it and waiting for ``FullyBooted`` over AMI, stopping it by pid and cleaning up
its mounts.

Layout, for an instance ``NAME`` in ``INSTANCES`` (the state directory)::

    INSTANCES/NAME/instance.json   what the lab needs to find it again (0600: AMI secret)
    INSTANCES/NAME/asterisk.pid    pid of the running Asterisk (absent when stopped)
    INSTANCES/NAME/asterisk.out    Asterisk's stdout/stderr
    INSTANCES/NAME/recordings/     default host directory for MixMonitor files
    INSTANCES/NAME/home            the instance's Asterisk directory (etc, lib, log, run,
                                   spool, cache); with the chroot runtime a symlink to
                                   ROOT/srv/callcenter/instances/NAME, which Asterisk sees
                                   as /srv/callcenter/instances/NAME

Recordings: Asterisk's monitor directory (``spool/monitor``) is the caller's host
directory: bind-mounted there (chroot) or a symlink to it (host runtime).

The blocking AMI client (``asterisk.ami``, threads) is used only here, by the synchronous
lab CLI and test fixtures, never on the reactor.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Final

from callcenter.files import replace_file
from callcenter.lab.asterisk_base import (
    DEBIAN_INSTALLATION,
    AsteriskDirectories,
    Installation,
    ManagerUser,
    add_manager_user,
    default_moh_directory,
    merge_project_files,
    render_base_config,
    render_manager_conf,
)
from callcenter.lab.rootfs import (
    LabError,
    file_lock,
    is_mounted,
    processes_rooted_in,
    remove_tree,
    unmount,
)

__all__ = [
    "ENGINE_PORTS",
    "ChrootRuntime",
    "HostRuntime",
    "InstanceEndpoints",
    "InstanceStatus",
    "LabError",
    "LabInstance",
    "LabPorts",
    "Runtime",
    "free_engine_port",
    "runtime_from_dict",
    "wait_fully_booted",
]

LOOPBACK = "127.0.0.1"
LAB_AMI_USER = "callcenter-lab"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
# The control socket path must fit in sockaddr_un.sun_path (108 bytes).
_MAX_SOCKET_PATH = 100

# Ports handed out by this process and not yet released, so that two instances
# allocated one after the other (before either binds) never get the same port.
_handed_out: set[int] = set()
_handed_out_lock = threading.Lock()


# --- ports ---------------------------------------------------------------------------------


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


ENGINE_PORTS: Final = range(31000, 32000)
"""Loopback ports for the engine's own listener next to a lab instance (its FastAGI server,
in tests and the demo): never one of the lab's single ports (20000-29999, chosen by
:meth:`LabPorts.allocate` while nothing listens there yet) nor, on a usual kernel, an
ephemeral one (32768-60999)."""


def free_engine_port(ports: range = ENGINE_PORTS) -> int:
    """The first TCP port of ``ports`` free on the loopback; :class:`LabError` when none is."""
    for port in ports:
        if tcp_port_free(port):
            return port
    raise LabError(f"no free loopback port in {ports.start}-{ports.stop - 1} for the engine")


def tcp_port_free(port: int, host: str = LOOPBACK) -> bool:
    """True when a TCP listener could bind ``host:port`` (as Asterisk, with SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def udp_port_free(port: int, host: str = LOOPBACK) -> bool:
    """True when ``host:port`` is free for UDP (checked on the wildcard address too)."""
    for address in (host, "0.0.0.0"):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind((address, port))
            except OSError:
                return False
    return True


#: Asterisk's database (astdb) in an instance's ``astdbdir``: SQLite since Asterisk 10, with
#: its journal; ``astdb`` is the Berkeley DB file of older versions.
ASTDB_FILES: Final = ("astdb.sqlite3", "astdb.sqlite3-journal", "astdb")


@dataclass(frozen=True)
class LabPorts:
    """The loopback ports of one instance: AMI, SIP (UDP and TCP), HTTP, and an RTP range."""

    ami: int
    sip: int
    http: int
    rtp_start: int
    rtp_end: int

    FIXED: ClassVar[tuple[int, int, int, int, int]] = (5038, 5060, 8088, 10000, 20000)

    @classmethod
    def fixed(cls) -> LabPorts:
        """Asterisk's well-known ports (for softphones configured by hand)."""
        return cls(*cls.FIXED)

    @classmethod
    def allocate(
        cls,
        avoid: Iterable[LabPorts] = (),
        rtp_size: int = 100,
        rng: random.Random | None = None,
    ) -> LabPorts:
        """Free loopback ports outside the kernel's ephemeral range, and a free RTP range.

        Single ports come from 20000-29999 (TCP checked; SIP also UDP), the RTP range
        (even start, ``rtp_size`` ports) from above 30000, never overlapping the ports of
        ``avoid`` (e.g. instances that are not running right now) or earlier allocations.
        """
        rng = rng or random.Random()
        eph_low, eph_high = _ephemeral_range()
        taken: set[int] = set()
        for other in avoid:
            taken |= {other.ami, other.sip, other.http}
            taken |= set(range(other.rtp_start, other.rtp_end + 1))

        def usable(port: int) -> bool:
            return not (eph_low <= port <= eph_high) and port not in taken

        with _handed_out_lock:
            taken |= _handed_out
            singles: list[int] = []
            for _ in range(2000):
                port = rng.randrange(20000, 30000)
                if not usable(port) or port in singles:
                    continue
                ok = tcp_port_free(port)
                if ok and len(singles) == 1:  # the second port is SIP: UDP and TCP
                    ok = udp_port_free(port)
                if ok:
                    singles.append(port)
                if len(singles) == 3:
                    break
            else:
                raise LabError("no free loopback ports found in 20000-29999")
            rtp_start = cls._rtp_range(rtp_size, usable, rng, eph_low, eph_high)
            ports = cls(
                singles[0], singles[1], singles[2], rtp_start, rtp_start + rtp_size - 1
            )
            _handed_out.update(ports.all_ports())
        return ports

    @staticmethod
    def _rtp_range(
        size: int,
        usable: Callable[[int], bool],
        rng: random.Random,
        eph_low: int,
        eph_high: int,
    ) -> int:
        spans = [(30000, eph_low - 1), (eph_high + 1, 65535)]
        spans = [(lo, hi) for lo, hi in spans if hi - lo + 1 >= size]
        if not spans:
            spans = [(30000, 65535)]
        for _ in range(200):
            lo, hi = rng.choice(spans)
            start = rng.randrange(lo, hi - size + 2) & ~1
            if start < lo:
                continue
            block = range(start, start + size)
            if all(usable(p) for p in block) and all(
                udp_port_free(p) for p in block[::2]
            ):
                return start
        raise LabError(f"no free RTP range of {size} ports found")

    def all_ports(self) -> set[int]:
        """Every port of this instance (the RTP range included)."""
        return {self.ami, self.sip, self.http, *range(self.rtp_start, self.rtp_end + 1)}

    def release(self) -> None:
        """Forget this allocation (its ports may be handed out again)."""
        with _handed_out_lock:
            _handed_out.difference_update(self.all_ports())

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LabPorts:
        return cls(
            int(data["ami"]),
            int(data["sip"]),
            int(data["http"]),
            int(data["rtp_start"]),
            int(data["rtp_end"]),
        )


@dataclass(frozen=True)
class InstanceEndpoints:
    """Where one lab Asterisk listens, as handed to the project's config renderer.

    ``recordings_dir`` is the recordings directory as Asterisk sees it (inside the root
    file system for the chroot runtime); MixMonitor files written there appear in the
    host directory the instance was given.
    """

    name: str
    ami_host: str
    ami_port: int
    sip_host: str
    sip_port: int
    http_host: str
    http_port: int
    rtp_start: int
    rtp_end: int
    recordings_dir: str


@dataclass(frozen=True)
class InstanceStatus:
    """What ``callcenter lab status`` shows for one instance."""

    name: str
    running: bool
    pid: int | None
    ports: LabPorts
    runtime: str
    home: Path
    recordings_dir: Path
    uptime_seconds: float | None
    stale_pid_file: bool


# --- runtimes ------------------------------------------------------------------------------


class Runtime(abc.ABC):
    """How Asterisk is executed and how its paths map to host paths."""

    kind: ClassVar[str]
    installation: Installation

    @abc.abstractmethod
    def home(self, name: str, state_dir: Path) -> Path:
        """Host path of the instance's Asterisk directory."""

    @abc.abstractmethod
    def seen_by_asterisk(self, host_path: Path) -> str:
        """``host_path`` as the Asterisk process sees it."""

    @abc.abstractmethod
    def argv(self, *args: str) -> list[str]:
        """The command line running the asterisk binary with ``args``."""

    def run_dir(self, home: Path) -> str | None:
        """Asterisk's run directory when ``home/run`` will not do (None: use it)."""
        return None

    def check(self) -> None:
        """Raise :class:`LabError` when this runtime cannot work here."""

    @contextlib.contextmanager
    def starting(self) -> Iterator[None]:
        """Held around spawning a process (mounts shared by instances are set up here)."""
        yield

    def wait_entered(self, pid: int, deadline: float) -> None:
        """Return once process ``pid`` runs in this runtime."""

    def release(self) -> None:
        """Called after an instance stopped: drop shared mounts nobody uses."""

    def attach_recordings(self, host_dir: Path, monitor_dir: Path) -> None:
        """Make ``monitor_dir`` (host path of spool/monitor) show ``host_dir``."""
        if monitor_dir.is_symlink():
            if os.readlink(monitor_dir) == str(host_dir):
                return
            monitor_dir.unlink()
        elif monitor_dir.is_dir():
            monitor_dir.rmdir()  # only ever empty: files go to the host directory
        monitor_dir.symlink_to(host_dir)

    def detach_recordings(self, monitor_dir: Path) -> None:
        """Undo :meth:`attach_recordings` (a symlink may stay)."""

    def recordings_seen_by_asterisk(self, host_dir: Path, monitor_dir: Path) -> str:
        return str(host_dir)

    def host_path(self, seen: str) -> Path:
        """A path Asterisk sees, as a host path (a last component that is a link followed)."""
        return Path(seen)

    def install_sounds(self, sounds_dir: Path) -> int:
        """Copy a ``callcenter prompts build`` output where this Asterisk looks for sounds.

        ``custom/`` goes to ``<astdatadir>/sounds/custom`` and each language's own Asterisk
        sounds (``zh/``) to ``<astdatadir>/sounds/<language>``. Each file is copied next to
        its target and renamed into place (Asterisks of other instances may be playing it);
        a file already there with the same bytes is left alone. Returns the files copied.
        """
        copied = 0
        for part in sorted(p for p in sounds_dir.iterdir() if p.is_dir()):
            target_dir = self.host_path(f"{self.installation.data}/sounds/{part.name}")
            for source in sorted(f for f in part.rglob("*") if f.is_file() and not f.name.startswith(".")):
                target = target_dir / source.relative_to(part)
                data = source.read_bytes()
                if target.is_file() and target.read_bytes() == data:
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
                tmp.write_bytes(data)
                tmp.replace(target)
                copied += 1
        return copied

    @abc.abstractmethod
    def to_dict(self) -> dict[str, str]:
        """What :func:`runtime_from_dict` needs to rebuild this runtime."""

    @abc.abstractmethod
    def describe(self) -> str:
        """One line for humans."""


class ChrootRuntime(Runtime):
    """Debian's Asterisk in a root file system, run with ``chroot`` (needs root).

    Instance homes live inside the root, under ``/srv/callcenter/instances``. ``/proc``
    is mounted into the root while any process runs there; the recordings directory is
    bind-mounted onto the instance's ``spool/monitor``.
    """

    kind = "chroot"
    INSTANCES_INSIDE = "/srv/callcenter/instances"

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.realpath(root))
        self.installation = DEBIAN_INSTALLATION

    def home(self, name: str, state_dir: Path) -> Path:
        return self.root / self.INSTANCES_INSIDE.lstrip("/") / name

    def seen_by_asterisk(self, host_path: Path) -> str:
        relative = Path(os.path.realpath(host_path)).relative_to(self.root)
        return "/" + str(relative)

    def argv(self, *args: str) -> list[str]:
        return ["chroot", str(self.root), f"{self.installation.sbin}/asterisk", *args]

    def check(self) -> None:
        if os.geteuid() != 0:
            raise LabError(
                "the chroot lab needs root (mount, chroot); run as root or use an "
                "Asterisk installed on the host (--runtime host)"
            )
        if not (self.root / "usr/sbin/asterisk").exists():
            raise LabError(
                f"no Asterisk in {self.root}: run `callcenter lab provision`"
            )

    @property
    def _lock_path(self) -> Path:
        return self.root / "srv/callcenter/lab.lock"

    @contextlib.contextmanager
    def starting(self) -> Iterator[None]:
        with file_lock(self._lock_path):
            proc = self.root / "proc"
            if not is_mounted(proc):
                subprocess.run(["mount", "-t", "proc", "proc", str(proc)], check=True)
            yield

    def wait_entered(self, pid: int, deadline: float) -> None:
        # `chroot` calls chroot(2) after exec; until then a concurrent release() would not
        # count this process as a user of /proc.
        while time.monotonic() < deadline:
            try:
                if os.readlink(f"/proc/{pid}/root") == str(self.root):
                    return
            except OSError:
                return  # exited already; the caller reports it
            time.sleep(0.01)

    def release(self) -> None:
        with file_lock(self._lock_path):
            proc = self.root / "proc"
            if is_mounted(proc) and not processes_rooted_in(self.root):
                unmount(proc)

    def attach_recordings(self, host_dir: Path, monitor_dir: Path) -> None:
        if monitor_dir.is_symlink():
            monitor_dir.unlink()
        monitor_dir.mkdir(parents=True, exist_ok=True)
        if not is_mounted(monitor_dir):
            subprocess.run(
                ["mount", "--bind", str(host_dir), str(monitor_dir)], check=True
            )

    def detach_recordings(self, monitor_dir: Path) -> None:
        if (
            monitor_dir.is_dir()
            and not monitor_dir.is_symlink()
            and is_mounted(monitor_dir)
        ):
            unmount(monitor_dir)

    def recordings_seen_by_asterisk(self, host_dir: Path, monitor_dir: Path) -> str:
        return self.seen_by_asterisk(monitor_dir)

    def host_path(self, seen: str) -> Path:
        """``seen`` inside the root, as a host path; a last component that is a link is
        followed inside the root (Debian links ``sounds/custom`` to the absolute
        ``/usr/local/share/asterisk/sounds``, which is the root's, not the host's)."""
        path = self.root / seen.lstrip("/")
        for _ in range(8):
            if not path.is_symlink():
                return path
            target = Path(os.readlink(path))
            path = self.root / str(target).lstrip("/") if target.is_absolute() else path.parent / target
        raise LabError(f"{seen}: too many links in {self.root}")

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "root": str(self.root)}

    def describe(self) -> str:
        return f"chroot {self.root}"


def _read_directories(conf: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    if not conf.is_file():
        return found
    section = ""
    for raw in conf.read_text(errors="replace").splitlines():
        line = raw.split(";", 1)[0].strip()
        if line.startswith("["):
            section = line[1:].split("]", 1)[0]
        elif section == "directories" and "=" in line:
            key, _, value = line.partition("=")
            found[key.strip()] = value.lstrip(">").strip()
    return found


class HostRuntime(Runtime):
    """An ``asterisk`` binary installed on the host; config chosen with ``asterisk -C``.

    Modules, sounds and AGI directories come from the host's ``/etc/asterisk/asterisk.conf``
    (or the usual locations); everything per-instance lives in the instance's home.
    Needs no root when ports above 1024 are used.
    """

    kind = "host"
    _MODULE_DIRS = (
        "/usr/lib/x86_64-linux-gnu/asterisk/modules",
        "/usr/lib/aarch64-linux-gnu/asterisk/modules",
        "/usr/lib64/asterisk/modules",
        "/usr/lib/asterisk/modules",
        "/usr/local/lib/asterisk/modules",
    )
    _DATA_DIRS = (
        "/usr/share/asterisk",
        "/var/lib/asterisk",
        "/usr/local/share/asterisk",
    )

    def __init__(self, binary: Path, installation: Installation) -> None:
        self.binary = binary
        self.installation = installation

    @staticmethod
    def find_binary() -> Path | None:
        """The host's asterisk binary, if one is installed."""
        found = shutil.which("asterisk")
        if found:
            return Path(found)
        for candidate in ("/usr/sbin/asterisk", "/usr/local/sbin/asterisk"):
            if Path(candidate).exists():
                return Path(candidate)
        return None

    @classmethod
    def detect(
        cls,
        binary: Path | None = None,
        host_conf: Path = Path("/etc/asterisk/asterisk.conf"),
    ) -> HostRuntime:
        """A runtime for the host's Asterisk; :class:`LabError` when there is none."""
        binary = binary or cls.find_binary()
        if binary is None or not binary.exists():
            raise LabError(
                "no asterisk binary on the host (looked on PATH, /usr/sbin, /usr/local/sbin); "
                "use the chroot runtime or pass --asterisk PATH"
            )
        dirs = _read_directories(host_conf)

        def pick(key: str, candidates: Iterable[str]) -> str:
            if key in dirs and Path(dirs[key]).is_dir():
                return dirs[key]
            for candidate in candidates:
                if Path(candidate).is_dir():
                    return candidate
            raise LabError(
                f"cannot find Asterisk's {key} on this host; set it in {host_conf}"
            )

        modules = pick("astmoddir", cls._MODULE_DIRS)
        data = pick("astdatadir", cls._DATA_DIRS)
        agi = dirs.get("astagidir", f"{data}/agi-bin")
        return cls(binary, Installation(modules, data, agi, str(binary.parent)))

    def home(self, name: str, state_dir: Path) -> Path:
        return state_dir / "home"

    def seen_by_asterisk(self, host_path: Path) -> str:
        return str(host_path)

    def argv(self, *args: str) -> list[str]:
        return [str(self.binary), *args]

    def run_dir(self, home: Path) -> str | None:
        if len(str(home / "run" / "asterisk.ctl")) <= _MAX_SOCKET_PATH:
            return None
        digest = hashlib.sha1(str(home).encode()).hexdigest()[:12]
        return f"/tmp/callcenter-lab-{os.geteuid()}-{digest}"

    def check(self) -> None:
        if not self.binary.exists():
            raise LabError(f"asterisk binary {self.binary} is gone")

    def to_dict(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "binary": str(self.binary),
            **asdict(self.installation),
        }

    def describe(self) -> str:
        return f"host {self.binary}"


def runtime_from_dict(data: Mapping[str, str]) -> Runtime:
    """Rebuild a runtime saved by :meth:`Runtime.to_dict`."""
    if data.get("kind") == "chroot":
        return ChrootRuntime(Path(data["root"]))
    if data.get("kind") == "host":
        return HostRuntime(
            Path(data["binary"]),
            Installation(data["modules"], data["data"], data["agi"], data["sbin"]),
        )
    raise LabError(f"unknown lab runtime {data.get('kind')!r}")


# --- waiting for FullyBooted ---------------------------------------------------------------


def wait_fully_booted(
    host: str,
    port: int,
    username: str,
    secret: str,
    timeout: float,
    alive: Callable[[], bool] | None = None,
) -> float:
    """Log in to AMI and wait for the ``FullyBooted`` event; return the seconds waited.

    Retries while the port refuses connections. ``alive`` (a callable returning bool) is
    polled so that an Asterisk dying during boot fails at once. Raises :class:`LabError`
    on timeout, refused login or a dead process.
    """
    from asterisk.ami import AMIClient  # blocking, thread-based: lab only

    started = time.monotonic()
    deadline = started + timeout
    last_error = "no answer"
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise LabError("Asterisk exited during boot")
        booted = threading.Event()
        remaining = max(1.0, deadline - time.monotonic())
        client = AMIClient(address=host, port=port, timeout=remaining)
        client.add_event_listener(
            on_event=lambda event, _booted=booted, **_: _booted.set(),
            white_list=["FullyBooted"],
        )
        try:
            future = client.login(username=username, secret=secret)
        except OSError as exc:
            # asterisk.ami leaves the socket of a refused connection open
            sock = getattr(client, "_socket", None)
            if sock is not None:
                sock.close()
            last_error = f"AMI {host}:{port}: {exc}"
            time.sleep(0.1)
            continue
        try:
            response = future.response
            if response is None:
                last_error = "AMI login got no answer"
                continue
            if response.is_error():
                raise LabError(
                    f"AMI login as {username!r} refused: {response.keys.get('Message')}"
                )
            while not booted.wait(0.1):
                if time.monotonic() >= deadline:
                    break
                if alive is not None and not alive():
                    raise LabError("Asterisk exited during boot")
            if booted.is_set():
                return time.monotonic() - started
            last_error = "logged in, but no FullyBooted event"
        finally:
            with contextlib.suppress(Exception):
                client.logoff().response  # noqa: B018 - waits for Goodbye
            with contextlib.suppress(Exception):
                client.disconnect()
    raise LabError(f"Asterisk not fully booted after {timeout:.0f} s ({last_error})")


# --- one instance --------------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


class LabInstance:
    """One lab Asterisk: its files, ports and process.

    ``write_config`` renders the files; ``start`` runs Asterisk and waits for FullyBooted;
    ``stop`` ends it by pid and removes its mounts. Every method works from the state
    directory alone, so a later process (``callcenter lab down``) can stop what an earlier
    one started (:meth:`load`).
    """

    def __init__(
        self,
        name: str,
        instances_dir: Path,
        runtime: Runtime,
        ports: LabPorts,
        recordings_dir: Path | None = None,
    ) -> None:
        if not _NAME_RE.match(name):
            raise LabError(
                f"bad instance name {name!r}: letters, digits, '.', '_', '-' (max 40)"
            )
        self.name = name
        self.instances_dir = Path(instances_dir)
        self.runtime = runtime
        self.ports = ports
        self.recordings_dir = Path(
            os.path.abspath(recordings_dir or self.state_dir / "recordings")
        )
        self.lab_user: ManagerUser | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    # paths

    @property
    def state_dir(self) -> Path:
        return self.instances_dir / self.name

    @property
    def home(self) -> Path:
        """Host path of the instance's Asterisk directory."""
        return self.runtime.home(self.name, self.state_dir)

    @property
    def directories(self) -> AsteriskDirectories:
        """The directories in asterisk.conf, as Asterisk sees them."""
        return AsteriskDirectories.for_instance(
            self.runtime.seen_by_asterisk(self.home),
            self.runtime.installation,
            run_dir=self.runtime.run_dir(self.home),
        )

    @property
    def config_path(self) -> str:
        """``asterisk.conf`` as Asterisk sees it (the ``-C`` argument)."""
        return f"{self.directories.etc}/asterisk.conf"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "asterisk.pid"

    @property
    def output_log(self) -> Path:
        return self.state_dir / "asterisk.out"

    @property
    def messages_log(self) -> Path:
        return self.home / "log" / "messages.log"

    def _host_path(self, seen: str) -> Path:
        """A path Asterisk sees, as a host path."""
        if isinstance(self.runtime, ChrootRuntime):
            return self.runtime.root / seen.lstrip("/")
        return Path(seen)

    @property
    def monitor_dir(self) -> Path:
        return self.home / "spool" / "monitor"

    @property
    def endpoints(self) -> InstanceEndpoints:
        return InstanceEndpoints(
            name=self.name,
            ami_host=LOOPBACK,
            ami_port=self.ports.ami,
            sip_host=LOOPBACK,
            sip_port=self.ports.sip,
            http_host=LOOPBACK,
            http_port=self.ports.http,
            rtp_start=self.ports.rtp_start,
            rtp_end=self.ports.rtp_end,
            recordings_dir=self.runtime.recordings_seen_by_asterisk(
                self.recordings_dir, self.monitor_dir
            ),
        )

    # state

    def _save_state(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        state = {
            "name": self.name,
            "runtime": self.runtime.to_dict(),
            "ports": self.ports.to_dict(),
            "recordings_dir": str(self.recordings_dir),
            "lab_ami_user": asdict(self.lab_user) if self.lab_user else None,
        }
        replace_file(self.state_dir / "instance.json", json.dumps(state, indent=2) + "\n")

    @classmethod
    def load(cls, name: str, instances_dir: Path) -> LabInstance:
        """The instance saved by an earlier :meth:`write_config`."""
        path = Path(instances_dir) / name / "instance.json"
        try:
            state = json.loads(path.read_text())
        except FileNotFoundError:
            raise LabError(f"no lab instance {name!r} in {instances_dir}") from None
        instance = cls(
            state["name"],
            Path(instances_dir),
            runtime_from_dict(state["runtime"]),
            LabPorts.from_dict(state["ports"]),
            Path(state["recordings_dir"]),
        )
        if state.get("lab_ami_user"):
            instance.lab_user = ManagerUser(**state["lab_ami_user"])
        return instance

    @staticmethod
    def names(instances_dir: Path) -> list[str]:
        """Names of the instances saved in ``instances_dir``."""
        if not Path(instances_dir).is_dir():
            return []
        return sorted(
            p.parent.name for p in Path(instances_dir).glob("*/instance.json")
        )

    # configuration

    def write_config(self, project_files: Mapping[str, str]) -> None:
        """Render the lab's plumbing files plus the project's into ``home/etc``.

        ``project_files`` is ``{filename: text}`` (``manager.conf``, ``extensions.conf``,
        ...). The lab appends its own AMI user ``callcenter-lab`` (read/write all, loopback
        only, fresh secret in ``instance.json``) to ``manager.conf`` (or
        renders a manager.conf with only that user when none is given); the manager port
        must be this instance's AMI port. Files from an earlier render that are no longer
        produced are removed.
        """
        dirs = self.directories
        files = merge_project_files(
            render_base_config(
                dirs,
                http_port=self.ports.http,
                rtp_start=self.ports.rtp_start,
                rtp_end=self.ports.rtp_end,
                moh_directory=self._moh_directory(dirs.data),
            ),
            project_files,
        )
        self.lab_user = ManagerUser(
            LAB_AMI_USER,
            secrets.token_hex(16),
            read="all",
            write="all",
        )
        manager = files.get("manager.conf")
        if manager is None:
            files["manager.conf"] = render_manager_conf(self.ports.ami, [self.lab_user])
        else:
            port = _general_value(manager, "port")
            if port is not None and port != str(self.ports.ami):
                raise LabError(
                    f"manager.conf listens on port {port}, but this instance's AMI port is "
                    f"{self.ports.ami}: render it from the instance endpoints"
                )
            if _general_value(manager, "enabled") not in ("yes", "true", "1", "on"):
                raise LabError("manager.conf must have enabled = yes in [general]")
            files["manager.conf"] = add_manager_user(manager, self.lab_user)

        for seen in dirs.per_instance():
            self._host_path(seen).mkdir(parents=True, exist_ok=True)
        # A fresh configuration starts without an earlier run's Asterisk state: the queue
        # members Asterisk keeps (persistentmembers) would come back logged in, and custom
        # device states as they were. restart() keeps it, as a real restart does.
        for name in ASTDB_FILES if self.pid() is None else ():  # never under a running Asterisk
            with contextlib.suppress(FileNotFoundError):
                (self._host_path(dirs.db) / name).unlink()
        etc = self._host_path(dirs.etc)
        for old in etc.glob("*.conf"):
            if old.name not in files:
                old.unlink()
        for filename, text in files.items():
            replace_file(etc / filename, text)  # secrets: read by the chroot's root only
        self.recordings_dir.mkdir(parents=True, exist_ok=True)
        link = self.state_dir / "home"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if link != self.home:
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(self.home)
        self._save_state()

    def _moh_directory(self, data: str) -> str:
        """The core sounds' silence directory that exists in this installation."""
        candidates = [default_moh_directory(data)]
        sounds = self._host_path(f"{data}/sounds")
        if sounds.is_dir():
            candidates += sorted(
                f"{data}/sounds/{p.parent.name}/silence"
                for p in sounds.glob("*/silence")
            )
        for seen in candidates:
            if self._host_path(seen).is_dir():
                return seen
        return candidates[0]

    # process

    def pid(self) -> int | None:
        """Pid of this instance's running Asterisk, None when it is not running."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if (
            self._proc is not None
            and self._proc.pid == pid
            and self._proc.poll() is not None
        ):
            return None
        if not _pid_alive(pid):
            return None
        cmdline = _cmdline(pid)
        if self.config_path not in cmdline:  # pid reused by another process
            return None
        return pid

    def _others_running_this_config(self) -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and _pid_alive(int(entry.name)):
                cmd = _cmdline(int(entry.name))
                remote = any(c.startswith(("-r", "-R")) for c in cmd)
                if self.config_path in cmd and "-f" in cmd and not remote:
                    found.append(int(entry.name))
        return found

    def start(self, timeout: float = 60.0) -> float:
        """Start Asterisk and wait for FullyBooted; return the seconds it took.

        Raises :class:`LabError` (with the tail of Asterisk's logs) when it does not boot;
        the half-started process is stopped first.
        """
        self.runtime.check()
        if self.pid() is not None:
            raise LabError(
                f"lab instance {self.name!r} is already running (pid {self.pid()})"
            )
        if self.lab_user is None or not (self.home / "etc" / "asterisk.conf").exists():
            raise LabError(
                f"lab instance {self.name!r} has no configuration: write_config first"
            )
        others = self._others_running_this_config()
        if others:
            raise LabError(
                f"another Asterisk (pid {others}) already runs {self.config_path}"
            )
        busy = [
            f"AMI {self.ports.ami}/tcp" if not tcp_port_free(self.ports.ami) else "",
            f"HTTP {self.ports.http}/tcp" if not tcp_port_free(self.ports.http) else "",
            f"SIP {self.ports.sip}/udp" if not udp_port_free(self.ports.sip) else "",
        ]
        if any(busy):
            raise LabError(f"ports in use: {', '.join(b for b in busy if b)}")
        self._clear_stale()

        started = time.monotonic()
        deadline = started + timeout
        run_dir = self.directories.run
        self._host_path(run_dir).mkdir(parents=True, exist_ok=True)
        for leftover in ("asterisk.ctl", "asterisk.pid"):
            with contextlib.suppress(FileNotFoundError):
                (self._host_path(run_dir) / leftover).unlink()
        self.recordings_dir.mkdir(parents=True, exist_ok=True)
        with self.runtime.starting():
            self.runtime.attach_recordings(self.recordings_dir, self.monitor_dir)
            with open(self.output_log, "ab") as out:
                out.write(f"--- start {time.strftime('%F %T')}\n".encode())
                out.flush()
                self._proc = subprocess.Popen(
                    self.runtime.argv("-f", "-n", "-C", self.config_path),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    cwd="/",
                    close_fds=True,
                )
            self.runtime.wait_entered(self._proc.pid, deadline)
        self.pid_file.write_text(f"{self._proc.pid}\n")
        proc = self._proc
        try:
            wait_fully_booted(
                LOOPBACK,
                self.ports.ami,
                self.lab_user.name,
                self.lab_user.secret,
                max(1.0, deadline - time.monotonic()),
                alive=lambda: proc.poll() is None,
            )
        except LabError as exc:
            tail = self.log_tail()
            with contextlib.suppress(LabError, OSError):
                self.stop(grace=5.0)
            raise LabError(
                f"lab instance {self.name!r} did not boot: {exc}\n{tail}"
            ) from None
        return time.monotonic() - started

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.pid == pid:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._proc.wait(timeout=0.05)
                if self._proc.poll() is not None:
                    return True
            elif not _pid_alive(pid):
                return True
            else:
                time.sleep(0.05)
        return False

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM by pid, SIGKILL after ``grace`` seconds; then unmount and clean up.

        Safe to call when the instance is not running (a stale pid file and leftover
        mounts from a killed Asterisk are cleaned up).
        """
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            if not self._wait_gone(pid, grace):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                if not self._wait_gone(pid, 10.0):
                    raise LabError(f"Asterisk pid {pid} survived SIGKILL")
        self._clear_stale()

    def _clear_stale(self) -> None:
        if self._proc is not None and self._proc.poll() is not None:
            self._proc = None
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()
        self.runtime.detach_recordings(self.monitor_dir)
        self.runtime.release()

    def kill(self) -> None:
        """SIGKILL Asterisk at once (a crash, for reconnect tests); mounts stay until
        :meth:`stop` or :meth:`restart`."""
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGKILL)
        if not self._wait_gone(pid, 10.0):
            raise LabError(f"Asterisk pid {pid} survived SIGKILL")

    def restart(self, timeout: float = 60.0) -> float:
        """Stop (if running) and start again on the same ports and configuration."""
        self.stop()
        return self.start(timeout)

    def status(self) -> InstanceStatus:
        """Whether it runs, its pid, ports and uptime; notes a stale pid file."""
        pid = self.pid()
        uptime = None
        if pid is not None:
            with contextlib.suppress(OSError):
                uptime = time.time() - self.pid_file.stat().st_mtime
        return InstanceStatus(
            name=self.name,
            running=pid is not None,
            pid=pid,
            ports=self.ports,
            runtime=self.runtime.describe(),
            home=self.home,
            recordings_dir=self.recordings_dir,
            uptime_seconds=uptime,
            stale_pid_file=pid is None and self.pid_file.exists(),
        )

    def cli_command(self, command: str, timeout: float = 30.0) -> str:
        """Run one Asterisk CLI command (``asterisk -rx``) through the control socket."""
        if self.pid() is None:
            raise LabError(f"lab instance {self.name!r} is not running")
        result = subprocess.run(
            self.runtime.argv("-C", self.config_path, "-rx", command),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if result.returncode != 0:
            raise LabError(
                f"asterisk -rx {command!r} failed ({result.returncode}): "
                f"{(result.stderr or result.stdout).strip()}"
            )
        return result.stdout

    def shell_argv(self) -> list[str]:
        """The command line of an interactive ``asterisk -r`` console on this instance."""
        return self.runtime.argv("-C", self.config_path, "-r", "-vvv")

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of Asterisk's messages log and of its stdout/stderr."""
        parts = []
        for title, path in (
            ("messages.log", self.messages_log),
            ("output", self.output_log),
        ):
            try:
                text = path.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                continue
            parts.append(f"--- {title} ({path}):\n" + "\n".join(text))
        return "\n".join(parts) or "(no Asterisk log yet)"

    def remove(self) -> None:
        """Delete the instance's files (its host recordings directory is kept)."""
        if self.pid() is not None:
            raise LabError(f"lab instance {self.name!r} is running; stop it first")
        self._clear_stale()
        if is_mounted(self.monitor_dir):
            raise LabError(f"{self.monitor_dir} is still mounted")
        remove_tree(self.home)
        link = self.state_dir / "home"
        if link.is_symlink():
            link.unlink()
        for leftover in ("instance.json", "asterisk.out", "asterisk.pid"):
            with contextlib.suppress(FileNotFoundError):
                (self.state_dir / leftover).unlink()
        with contextlib.suppress(OSError):
            self.state_dir.rmdir()  # stays when it holds the recordings


def _general_value(text: str, key: str) -> str | None:
    """The value of ``key`` in ``[general]`` of an Asterisk config text."""
    section = ""
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if line.startswith("["):
            section = line[1:].split("]", 1)[0].strip()
        elif section == "general" and "=" in line:
            name, _, value = line.partition("=")
            if name.strip().lower() == key:
                return value.lstrip(">").strip().lower()
    return None
