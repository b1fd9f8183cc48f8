"""pytest plugin: real lab Asterisk instances for integration tests.

Load it with ``-p tests.labfixture`` (or ``pytest_plugins = ["tests.labfixture"]`` in a
conftest). It provides:

- ``lab_factory`` (session): provisions or reuses the Debian sid root file system and
  starts instances on free loopback ports; every instance still running is stopped (and
  its files removed, unless ``CALLCENTER_LAB_KEEP=1``) at the end of the session.
- ``lab`` (function): one running instance built from ``lab_project_files`` (default:
  a minimal ``manager.conf`` with a test user plus ``lab_extensions``); override those
  two fixtures in a test module to give it another dialplan or the project's files.

Policy: when the lab cannot run here (not root, no debootstrap, Asterisk does not boot)
the tests are skipped with the reason, except with ``CI=true``, where they fail: a skip
is not allowed in CI. ``CALLCENTER_LAB_RUNTIME=host`` uses an Asterisk installed on the
host instead of the root file system.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import pytest

from callcenter.lab.asterisk_base import ManagerUser, render_manager_conf
from callcenter.lab.instance import (
    ChrootRuntime,
    HostRuntime,
    InstanceEndpoints,
    LabInstance,
    LabPorts,
    Runtime,
)
from callcenter.lab.rootfs import LabError, default_cache_dir, provision_rootfs

ProjectFiles = Callable[[InstanceEndpoints], Mapping[str, str]]

DEFAULT_EXTENSIONS = """\
[general]
static = yes
writeprotect = yes

[test-context]
exten => s,1,Answer()
 same => n,Wait(1)
 same => n,Hangup()
"""


def lab_unavailable(reason: str) -> NoReturn:
    """Skip (or, with CI=true, fail) the current test because the lab cannot run."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"lab unavailable in CI: {reason}", pytrace=False)
    pytest.skip(f"lab unavailable: {reason}")


def need_prompt_tools() -> None:
    """Skip (or, with CI=true, fail) the current test unless espeak-ng and sox render prompts."""
    import shutil

    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI must render prompts: install espeak-ng and sox", pytrace=False)
        pytest.skip("espeak-ng or sox not installed (apt-get install espeak-ng sox)")


def zh_asterisk_sounds(tmp_path: Path) -> Path:
    """`callcenter prompts build`'s Mandarin renderings of Asterisk's own sounds (queue
    announcements, numbers, the message prompts) under ``tmp_path/built``, ready for
    ``Runtime.install_sounds``: no flow prompts (those would land in the shared root too)."""
    import shutil

    from callcenter.prompts import build_prompts

    need_prompt_tools()
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "zh.yaml").write_text("flow: zhsounds\nprompts:\n  hello: {zh: 您好}\n", encoding="utf-8")
    built = tmp_path / "built"
    build_prompts(flows, built)
    shutil.rmtree(built / "custom")
    return built


@contextlib.contextmanager
def sounds_opened(pid: int) -> Iterator[set[str]]:
    """The sound files (paths after ``/sounds/``) process ``pid`` opens while the block runs,
    read from its open file descriptors every 20 ms (Asterisk's log names the sound, not the
    file it found)."""
    import threading
    import time

    seen: set[str] = set()
    stop = threading.Event()

    def watch() -> None:
        fds = Path(f"/proc/{pid}/fd")
        while not stop.is_set():
            try:
                links = [os.readlink(fd) for fd in fds.iterdir()]
            except OSError:
                links = []  # a descriptor closed while listing
            seen.update(link.split("/sounds/", 1)[1] for link in links if "/sounds/" in link)
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield seen
    finally:
        stop.set()
        watcher.join(timeout=5)


def minimal_project_files(
    extensions: str, user: ManagerUser
) -> Callable[[InstanceEndpoints], dict[str, str]]:
    """Project files for tests: manager.conf with ``user`` plus the given dialplan."""

    def render(endpoints: InstanceEndpoints) -> dict[str, str]:
        return {
            "manager.conf": render_manager_conf(endpoints.ami_port, [user]),
            "extensions.conf": extensions,
        }

    return render


@dataclass
class LabHandle:
    """One running lab instance, as a test sees it."""

    instance: LabInstance
    ami_username: str
    ami_secret: str
    files: dict[str, str] = field(repr=False)

    @property
    def ports(self) -> LabPorts:
        return self.instance.ports

    @property
    def ami_host(self) -> str:
        return self.instance.endpoints.ami_host

    @property
    def ami_port(self) -> int:
        return self.instance.ports.ami

    @property
    def endpoints(self) -> InstanceEndpoints:
        return self.instance.endpoints

    @property
    def recordings_dir(self) -> Path:
        """Host directory where MixMonitor files of this instance land."""
        return self.instance.recordings_dir

    def cli_command(self, command: str) -> str:
        """Output of ``asterisk -rx COMMAND`` on this instance."""
        return self.instance.cli_command(command)


class LabFactory:
    """Starts lab instances on free ports; stops them all at the end of the session."""

    def __init__(self, runtime: Runtime, instances_dir: Path) -> None:
        self.runtime = runtime
        self.instances_dir = instances_dir
        self._handles: list[LabHandle] = []
        self._counter = itertools.count(1)

    def new_name(self) -> str:
        """A name no other test session uses (instance homes share the root)."""
        return f"t{os.getpid()}-{next(self._counter)}"

    def start(
        self,
        project_files: ProjectFiles | None = None,
        *,
        extensions: str = DEFAULT_EXTENSIONS,
        ami_credentials: tuple[str, str] | None = None,
        name: str | None = None,
        recordings_dir: Path | None = None,
        timeout: float = 60.0,
    ) -> LabHandle:
        """Start an instance and wait for FullyBooted.

        Without ``project_files`` the instance gets a manager.conf with a fresh test
        user (read/write all) and ``extensions``. With ``project_files`` the handle's AMI
        credentials are ``ami_credentials`` or else the lab's own user (read/write all).
        """
        if project_files is None:
            user = ManagerUser("lab-test", secrets.token_hex(12))
            project_files = minimal_project_files(extensions, user)
            ami_credentials = (user.name, user.secret)
        instance = LabInstance(
            name or self.new_name(),
            self.instances_dir,
            self.runtime,
            LabPorts.allocate(avoid=[h.ports for h in self._handles]),
            recordings_dir,
        )
        files = dict(project_files(instance.endpoints))
        try:
            instance.write_config(files)
            instance.start(timeout=timeout)
        except LabError as exc:
            self._discard(instance)
            lab_unavailable(str(exc))
        assert instance.lab_user is not None
        username, secret = ami_credentials or (
            instance.lab_user.name,
            instance.lab_user.secret,
        )
        handle = LabHandle(instance, username, secret, files)
        self._handles.append(handle)
        return handle

    def _discard(self, instance: LabInstance) -> None:
        try:
            instance.stop()
            if os.environ.get("CALLCENTER_LAB_KEEP") != "1":
                instance.remove()
        finally:
            instance.ports.release()

    def stop(self, handle: LabHandle) -> None:
        """Stop one instance and remove its files."""
        if handle in self._handles:
            self._handles.remove(handle)
        self._discard(handle.instance)

    def stop_all(self) -> None:
        """Stop every instance this factory started."""
        errors = []
        for handle in list(self._handles):
            try:
                self.stop(handle)
            except LabError as exc:  # keep stopping the others
                errors.append(str(exc))
        if errors:
            raise LabError("; ".join(errors))


def _lab_runtime() -> Runtime:
    if os.environ.get("CALLCENTER_LAB_RUNTIME") == "host":
        return HostRuntime.detect()
    if os.geteuid() != 0:
        raise LabError(
            "the chroot lab needs root (set CALLCENTER_LAB_RUNTIME=host to use an "
            "Asterisk installed on this host)"
        )

    def log(message: str) -> None:
        print(f"[lab] {message}", file=sys.__stderr__, flush=True)

    return ChrootRuntime(provision_rootfs(default_cache_dir(), log=log))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "lab: needs the real lab Asterisk (skips without root unless CI=true)",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests using a lab fixture carry the ``lab`` marker (``-m 'not lab'`` skips them)."""
    for item in items:
        names = getattr(item, "fixturenames", ())
        if ("lab" in names or "lab_factory" in names) and not item.get_closest_marker(
            "lab"
        ):
            item.add_marker(pytest.mark.lab)


@pytest.fixture(scope="session")
def lab_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabFactory]:
    """Session-wide factory of real Asterisk instances on free loopback ports."""
    try:
        runtime = _lab_runtime()
        runtime.check()
    except LabError as exc:
        lab_unavailable(str(exc))
    factory = LabFactory(runtime, tmp_path_factory.mktemp("lab-instances"))
    yield factory
    factory.stop_all()


@pytest.fixture
def lab_extensions() -> str:
    """The dialplan of the ``lab`` fixture's instance (override per module)."""
    return DEFAULT_EXTENSIONS


@pytest.fixture
def lab_project_files() -> ProjectFiles | None:
    """Project files for the ``lab`` fixture (None: minimal manager.conf + dialplan)."""
    return None


@pytest.fixture
def lab(
    lab_factory: LabFactory,
    lab_project_files: ProjectFiles | None,
    lab_extensions: str,
) -> Iterator[LabHandle]:
    """One running lab Asterisk for this test, stopped afterwards."""
    handle = lab_factory.start(lab_project_files, extensions=lab_extensions)
    yield handle
    lab_factory.stop(handle)
