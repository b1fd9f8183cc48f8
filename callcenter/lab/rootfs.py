"""The Debian sid root file system that holds the lab's Asterisk 22.

This module owns provisioning (``debootstrap`` + ``apt-get`` inside a ``chroot``, as in
``shared/LAB.md``), the cache directory, the choice of Debian mirror (read from the host's
own apt sources, never written into the code), and the mount helpers that the runtime
shares (``/proc`` inside the root, bind mounts, their safe removal).

A root is complete only when its marker file exists; the marker is written after the
last package is installed and before the finished tree is renamed into place, so an
interrupted build never looks usable and is simply rebuilt.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

__all__ = [
    "MARKER",
    "PACKAGES",
    "ROOTFS_NAME",
    "SUITE",
    "LabError",
    "default_cache_dir",
    "detect_mirror",
    "file_lock",
    "is_mounted",
    "is_provisioned",
    "mirrors_from_deb822",
    "mirrors_from_sources_list",
    "mount_points",
    "processes_rooted_in",
    "provision_rootfs",
    "remove_tree",
    "rootfs_path",
    "unmount",
    "unmount_all_under",
]

SUITE = "sid"
ROOTFS_NAME = f"rootfs-{SUITE}"
PACKAGES: tuple[str, ...] = (
    "asterisk",
    "asterisk-modules",
    "asterisk-core-sounds-en-gsm",
    "ghostscript",
    "libtiff-tools",
)
MARKER = ".callcenter-lab-rootfs.json"
CACHE_ENV = "CALLCENTER_LAB_CACHE"

Log = Callable[[str], None]


class LabError(RuntimeError):
    """The lab cannot do what was asked; the message says why and what to do."""


def default_cache_dir(
    environ: os._Environ[str] | dict[str, str] | None = None, euid: int | None = None
) -> Path:
    """``$CALLCENTER_LAB_CACHE``, else ``/var/cache/callcenter/lab`` for root, else
    ``~/.cache/callcenter/lab``."""
    env = os.environ if environ is None else environ
    override = env.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    uid = os.geteuid() if euid is None else euid
    if uid == 0:
        return Path("/var/cache/callcenter/lab")
    return Path(env.get("HOME", str(Path.home()))) / ".cache" / "callcenter" / "lab"


def rootfs_path(cache_dir: Path) -> Path:
    """Where the root file system lives inside a cache directory."""
    return cache_dir / ROOTFS_NAME


def is_provisioned(root: Path) -> bool:
    """True when ``root`` is a complete root file system (its marker exists)."""
    return (root / MARKER).is_file()


# --- the Debian mirror, from the host's apt sources -------------------------------------


def _is_security(uri: str, suites: Sequence[str]) -> bool:
    return "security" in uri or any(s.endswith("-security") for s in suites)


def mirrors_from_deb822(text: str) -> list[str]:
    """Mirror URIs of a deb822 ``.sources`` file (``Types: deb``, enabled, not security)."""
    mirrors: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        current: str | None = None
        for raw in paragraph.splitlines():
            if raw.startswith("#") or not raw.strip():
                continue
            if raw[0].isspace() and current is not None:
                fields[current] += " " + raw.strip()
                continue
            key, sep, value = raw.partition(":")
            if not sep:
                continue
            current = key.strip().lower()
            fields[current] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        suites = fields.get("suites", "").split()
        for uri in fields.get("uris", "").split():
            if uri.startswith(("http://", "https://")) and not _is_security(
                uri, suites
            ):
                mirrors.append(uri.rstrip("/"))
    return mirrors


def mirrors_from_sources_list(text: str) -> list[str]:
    """Mirror URIs of a one-line-style ``sources.list`` (``deb [opts] URI suite ...``)."""
    mirrors: list[str] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        line = re.sub(r"\[[^\]]*\]", " ", line[4:])
        parts = line.split()
        if len(parts) < 2:
            continue
        uri, suite = parts[0], parts[1]
        if uri.startswith(("http://", "https://")) and not _is_security(uri, [suite]):
            mirrors.append(uri.rstrip("/"))
    return mirrors


def detect_mirror(
    sources_dir: Path = Path("/etc/apt/sources.list.d"),
    sources_list: Path = Path("/etc/apt/sources.list"),
) -> str:
    """The first Debian mirror named by the host's apt sources.

    Reads ``sources_dir/*.sources`` (field ``URIs:``) first, then ``*.list`` files and
    ``sources_list``. Security archives are skipped: they do not carry ``sid``.
    """
    candidates: list[str] = []
    if sources_dir.is_dir():
        for path in sorted(sources_dir.glob("*.sources")):
            candidates += mirrors_from_deb822(path.read_text(errors="replace"))
        for path in sorted(sources_dir.glob("*.list")):
            candidates += mirrors_from_sources_list(path.read_text(errors="replace"))
    if sources_list.is_file():
        candidates += mirrors_from_sources_list(
            sources_list.read_text(errors="replace")
        )
    if not candidates:
        raise LabError(
            f"no Debian mirror found in {sources_dir}/*.sources or {sources_list}; "
            "pass one explicitly (callcenter lab provision --mirror URL)"
        )
    return candidates[0]


# --- mounts and locks --------------------------------------------------------------------


def _unescape_mount(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mount_points(mountinfo: Path = Path("/proc/self/mountinfo")) -> list[str]:
    """Every mount point of this mount namespace, in mount order."""
    points = []
    for line in mountinfo.read_text().splitlines():
        fields = line.split()
        if len(fields) > 4:
            points.append(_unescape_mount(fields[4]))
    return points


def is_mounted(path: Path) -> bool:
    """True when ``path`` itself is a mount point."""
    target = os.path.realpath(path)
    return target in mount_points()


def unmount(path: Path, log: Log | None = None) -> None:
    """Unmount ``path``; fall back to a lazy unmount when it is busy."""
    result = subprocess.run(
        ["umount", str(path)], capture_output=True, text=True, check=False
    )
    if result.returncode == 0:
        return
    lazy = subprocess.run(
        ["umount", "-l", str(path)], capture_output=True, text=True, check=False
    )
    if lazy.returncode != 0:
        raise LabError(
            f"cannot unmount {path}: {result.stderr.strip() or lazy.stderr.strip()}"
        )
    if log is not None:
        log(f"{path} was busy; unmounted lazily")


def unmount_all_under(path: Path, log: Log | None = None) -> None:
    """Unmount every mount at or below ``path``, deepest first."""
    prefix = os.path.realpath(path)
    under = [p for p in mount_points() if p == prefix or p.startswith(prefix + "/")]
    for point in sorted(set(under), key=lambda p: p.count("/"), reverse=True):
        unmount(Path(point), log)
    left = [p for p in mount_points() if p == prefix or p.startswith(prefix + "/")]
    if left:
        raise LabError(f"still mounted under {path}: {', '.join(left)}")


def processes_rooted_in(root: Path) -> list[int]:
    """Pids of live processes whose root directory is ``root`` (chrooted into it)."""
    target = os.path.realpath(root)
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "root") == target:
                pids.append(int(entry.name))
        except OSError:  # gone, a zombie, or not ours to inspect
            continue
    return pids


def remove_tree(path: Path, log: Log | None = None) -> None:
    """Delete a directory tree, never following a mount point into the host."""
    if not path.exists() and not path.is_symlink():
        return
    busy = processes_rooted_in(path)
    if busy:
        raise LabError(f"{path} is in use by processes {busy}; stop them first")
    unmount_all_under(path, log)
    shutil.rmtree(path)


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (created when missing) for the ``with`` block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- provisioning ------------------------------------------------------------------------


def _require_root_and_debootstrap() -> str:
    if os.geteuid() != 0:
        raise LabError(
            "provisioning the lab needs root (debootstrap, mount and chroot): run it as root, "
            "or install Asterisk on the host and use the host runtime (--runtime host)"
        )
    debootstrap = shutil.which("debootstrap") or (
        "/usr/sbin/debootstrap" if Path("/usr/sbin/debootstrap").exists() else None
    )
    if debootstrap is None:
        raise LabError("debootstrap is not installed: apt-get install -y debootstrap")
    if shutil.which("chroot") is None:
        raise LabError("chroot is not installed (package coreutils)")
    return debootstrap


def _run(
    argv: Sequence[str], transcript: Path, env: dict[str, str] | None = None
) -> None:
    with open(transcript, "a") as out:
        out.write(f"\n$ {' '.join(argv)}\n")
        out.flush()
        result = subprocess.run(
            list(argv), stdout=out, stderr=subprocess.STDOUT, env=env, check=False
        )
    if result.returncode != 0:
        lines = transcript.read_text(errors="replace").splitlines()[-25:]
        raise LabError(
            f"{argv[0]} failed with exit code {result.returncode} (full log: {transcript}):\n"
            + "\n".join(lines)
        )


def installed_packages(root: Path, packages: Sequence[str] = PACKAGES) -> set[str]:
    """Which of ``packages`` dpkg inside ``root`` reports as installed."""
    if not (root / "usr/bin/dpkg-query").exists():
        return set()
    result = subprocess.run(
        [
            "chroot",
            str(root),
            "dpkg-query",
            "-W",
            "-f=${Package} ${db:Status-Status}\\n",
            *packages,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return {
        line.split()[0]
        for line in result.stdout.splitlines()
        if line.endswith(" installed") and line.split()[0] in packages
    }


def _write_marker(root: Path, mirror: str | None, how: str) -> None:
    marker = {
        "suite": SUITE,
        "packages": list(PACKAGES),
        "mirror": mirror,
        "how": how,
        "completed": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    (root / MARKER).write_text(json.dumps(marker, indent=2) + "\n")


def provision_rootfs(
    cache_dir: Path, mirror: str | None = None, log: Log = print
) -> Path:
    """Return a complete Debian sid root with Asterisk 22 under ``cache_dir``; build it if
    needed.

    Idempotent: a root with its marker is reused as is. A root without the marker whose
    packages are all installed (made by hand) is adopted; anything else is rebuilt. The
    build runs in ``<cache>/rootfs-sid.build-<pid>`` and is renamed into place only when
    complete. Needs root and ``debootstrap``; takes about 1.5 minutes and 650 MB.
    """
    root = rootfs_path(cache_dir)
    if is_provisioned(root):
        return root
    _require_root_and_debootstrap()
    cache_dir.mkdir(parents=True, exist_ok=True)
    with file_lock(cache_dir / "provision.lock"):
        if is_provisioned(root):  # another process finished it while we waited
            return root
        if root.exists():
            found = installed_packages(root)
            if found == set(PACKAGES):
                log(
                    f"adopting existing root file system {root} (all packages installed)"
                )
                _write_marker(root, None, "adopted")
                return root
            log(
                f"{root} is incomplete (has {sorted(found) or 'no packages'}); rebuilding"
            )
            remove_tree(root, log)
        for stale in cache_dir.glob(f"{ROOTFS_NAME}.build-*"):
            log(f"removing unfinished build {stale}")
            remove_tree(stale, log)
        return _build(cache_dir, root, mirror or detect_mirror(), log)


def _build(cache_dir: Path, root: Path, mirror: str, log: Log) -> Path:
    debootstrap = _require_root_and_debootstrap()
    build = cache_dir / f"{ROOTFS_NAME}.build-{os.getpid()}"
    transcript = cache_dir / "provision.log"
    transcript.write_text(f"callcenter lab provision: {SUITE} from {mirror}\n")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive", LC_ALL="C.UTF-8")
    started = time.monotonic()
    try:
        log(f"debootstrap --variant=minbase {SUITE} from {mirror} (about 35 s)")
        _run(
            [debootstrap, "--variant=minbase", SUITE, str(build), mirror],
            transcript,
            env,
        )
        unmount_all_under(build, log)
        log(f"  done in {time.monotonic() - started:.0f} s")
        resolv = build / "etc/resolv.conf"
        if resolv.is_symlink() or resolv.exists():
            resolv.unlink()
        shutil.copyfile("/etc/resolv.conf", resolv)
        # Never let a package's postinst start a service (an Asterisk on 5038/5060).
        policy = build / "usr/sbin/policy-rc.d"
        policy.write_text(
            "#!/bin/sh\n# callcenter lab: services never start here\nexit 101\n"
        )
        policy.chmod(0o755)
        subprocess.run(["mount", "-t", "proc", "proc", str(build / "proc")], check=True)
        try:
            step = time.monotonic()
            log(f"apt-get install {' '.join(PACKAGES)} (about 15 s)")
            chroot = ["chroot", str(build)]
            _run(
                [
                    *chroot,
                    "apt-get",
                    "-o",
                    "Acquire::Check-Valid-Until=false",
                    "update",
                ],
                transcript,
                env,
            )
            _run(
                [
                    *chroot,
                    "apt-get",
                    "install",
                    "-y",
                    "--no-install-recommends",
                    *PACKAGES,
                ],
                transcript,
                env,
            )
            _run([*chroot, "apt-get", "clean"], transcript, env)
            log(f"  done in {time.monotonic() - step:.0f} s")
        finally:
            unmount_all_under(build, log)
        missing = set(PACKAGES) - installed_packages(build)
        if missing:
            raise LabError(
                f"packages missing after install: {sorted(missing)} (see {transcript})"
            )
        _write_marker(build, mirror, "debootstrap")
        build.rename(root)
    except BaseException:
        with contextlib.suppress(LabError, OSError):
            remove_tree(build, log)
        raise
    log(f"root file system ready at {root} in {time.monotonic() - started:.0f} s")
    return root
