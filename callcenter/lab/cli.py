"""``callcenter lab``: provision the root file system and run lab Asterisk instances.

Sub-commands: ``provision``, ``up``, ``down``, ``status``, ``shell``. The composition
root (``callcenter.cli``) registers them with :func:`add_parser` and calls :func:`run`
with a function that renders the project's Asterisk files for an instance's endpoints.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from callcenter.lab.instance import (
    ChrootRuntime,
    HostRuntime,
    InstanceEndpoints,
    InstanceStatus,
    LabInstance,
    LabPorts,
    Runtime,
    tcp_port_free,
    udp_port_free,
)
from callcenter.lab.rootfs import LabError, default_cache_dir, provision_rootfs

__all__ = ["ProjectFiles", "add_parser", "make_runtime", "run"]

# Renders the project's Asterisk files ({filename: text}) for one instance.
ProjectFiles = Callable[[InstanceEndpoints], Mapping[str, str]]
Out = Callable[[str], None]

RUNTIME_ENV = "CALLCENTER_LAB_RUNTIME"
DEFAULT_NAME = "default"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``lab`` and its sub-commands on an ``argparse`` sub-parsers object."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="lab cache (root file system, instances); default $CALLCENTER_LAB_CACHE, "
        "/var/cache/callcenter/lab as root, else ~/.cache/callcenter/lab",
    )
    common.add_argument(
        "--instances-dir",
        type=Path,
        default=None,
        help="instance state directories (default: CACHE/instances)",
    )
    common.add_argument(
        "--runtime",
        choices=("chroot", "host"),
        default=None,
        help="chroot: Debian sid root (needs root); host: the host's asterisk "
        f"(default: ${RUNTIME_ENV}, else the configuration's lab.asterisk, else chroot)",
    )
    common.add_argument(
        "--asterisk",
        type=Path,
        default=None,
        help="host asterisk binary (host runtime)",
    )
    named = argparse.ArgumentParser(add_help=False)
    named.add_argument("--name", default=DEFAULT_NAME, help="instance name")

    lab = subparsers.add_parser(
        "lab", help="provision and run lab Asterisk instances (real Asterisk 22)"
    )
    commands = lab.add_subparsers(dest="lab_command", metavar="COMMAND", required=True)
    provision = commands.add_parser(
        "provision",
        parents=[common],
        help="build the Debian sid root file system (once; about a minute)",
    )
    provision.add_argument(
        "--mirror",
        default=None,
        help="Debian mirror (default: from the host's apt sources)",
    )
    up = commands.add_parser(
        "up", parents=[common, named], help="render the config and start an instance"
    )
    up.add_argument(
        "--ports",
        choices=("auto", "fixed"),
        default="auto",
        help="auto: free loopback ports (kept across restarts); "
        "fixed: AMI 5038, SIP 5060, HTTP 8088, RTP 10000-20000",
    )
    up.add_argument(
        "--recordings",
        type=Path,
        default=None,
        help="host directory for MixMonitor files (default: INSTANCE/recordings)",
    )
    up.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for boot"
    )
    down = commands.add_parser("down", parents=[common, named], help="stop an instance")
    down.add_argument("--all", action="store_true", help="stop every instance")
    down.add_argument(
        "--purge", action="store_true", help="also delete the instance's files"
    )
    status = commands.add_parser(
        "status", parents=[common], help="show instances (all, or --name)"
    )
    status.add_argument("--name", default=None, help="instance name")
    commands.add_parser(
        "shell", parents=[common, named], help="asterisk -r console of an instance"
    )
    return lab  # type: ignore[no-any-return]


def make_runtime(
    kind: str, cache_dir: Path, asterisk: Path | None = None, log: Out = print
) -> Runtime:
    """The runtime named ``kind``; the chroot root is provisioned when missing."""
    if kind == "host":
        return HostRuntime.detect(asterisk)
    return ChrootRuntime(provision_rootfs(cache_dir, log=log))


def _paths(args: argparse.Namespace) -> tuple[Path, Path]:
    cache_dir: Path = args.cache_dir or default_cache_dir()
    instances_dir: Path = args.instances_dir or cache_dir / "instances"
    return cache_dir, instances_dir


def _describe(status: InstanceStatus, instance: LabInstance) -> list[str]:
    ports = status.ports
    if status.running:
        state = f"running, pid {status.pid}, up {status.uptime_seconds or 0:.0f} s"
    else:
        state = "stopped" + (
            " (stale pid file removed on next up/down)" if status.stale_pid_file else ""
        )
    ami = (
        f"  AMI   127.0.0.1:{ports.ami}  (lab user callcenter-lab, secret in "
        f"{instance.state_dir / 'instance.json'})"
    )
    sip = (
        f"  SIP   127.0.0.1:{ports.sip}  HTTP 127.0.0.1:{ports.http} (/metrics)  "
        f"RTP {ports.rtp_start}-{ports.rtp_end}"
    )
    lines = [
        f"{status.name}: {state}",
        ami,
        sip,
        f"  runtime {status.runtime}",
        f"  home {status.home}",
        f"  recordings {status.recordings_dir}",
        f"  logs {instance.messages_log}",
    ]
    return lines


def _choose_ports(
    args: argparse.Namespace, instances_dir: Path, previous: LabInstance | None
) -> LabPorts:
    if args.ports == "fixed":
        return LabPorts.fixed()
    if previous is not None:
        old = previous.ports
        if (
            tcp_port_free(old.ami)
            and tcp_port_free(old.http)
            and udp_port_free(old.sip)
        ):
            return old
    others = []
    for name in LabInstance.names(instances_dir):
        if name != args.name:
            others.append(LabInstance.load(name, instances_dir).ports)
    return LabPorts.allocate(avoid=others)


def _up(args: argparse.Namespace, project_files: ProjectFiles | None, out: Out) -> int:
    cache_dir, instances_dir = _paths(args)
    previous = None
    if args.name in LabInstance.names(instances_dir):
        previous = LabInstance.load(args.name, instances_dir)
        if previous.pid() is not None:
            out(f"already running; `callcenter lab down --name {args.name}` stops it")
            for line in _describe(previous.status(), previous):
                out(line)
            return 0
        previous.stop()  # clears a stale pid file and leftover mounts
    runtime = make_runtime(args.runtime, cache_dir, args.asterisk, log=out)
    recordings = args.recordings or (previous.recordings_dir if previous else None)
    instance = LabInstance(
        args.name,
        instances_dir,
        runtime,
        _choose_ports(args, instances_dir, previous),
        recordings,
    )
    files = dict(project_files(instance.endpoints)) if project_files else {}
    instance.write_config(files)
    seconds = instance.start(timeout=args.timeout)
    out(f"Asterisk fully booted in {seconds:.1f} s")
    for line in _describe(instance.status(), instance):
        out(line)
    return 0


def _down(args: argparse.Namespace, out: Out) -> int:
    _, instances_dir = _paths(args)
    names = LabInstance.names(instances_dir) if args.all else [args.name]
    if not args.all and args.name not in LabInstance.names(instances_dir):
        raise LabError(f"no lab instance {args.name!r} in {instances_dir}")
    for name in names:
        instance = LabInstance.load(name, instances_dir)
        was_running = instance.pid() is not None
        instance.stop()
        out(f"{name}: {'stopped' if was_running else 'was not running'}")
        if args.purge:
            instance.remove()
            out(f"{name}: files removed (recordings kept in {instance.recordings_dir})")
    return 0


def _status(args: argparse.Namespace, out: Out) -> int:
    _, instances_dir = _paths(args)
    names = [args.name] if args.name else LabInstance.names(instances_dir)
    if not names:
        out(f"no lab instances in {instances_dir}")
        return 0
    for name in names:
        instance = LabInstance.load(name, instances_dir)
        for line in _describe(instance.status(), instance):
            out(line)
    return 0


def _shell(args: argparse.Namespace) -> int:
    _, instances_dir = _paths(args)
    instance = LabInstance.load(args.name, instances_dir)
    if instance.pid() is None:
        raise LabError(f"lab instance {args.name!r} is not running: callcenter lab up")
    argv = instance.shell_argv()
    os.execvp(argv[0], argv)
    return 0  # not reached


def run(
    args: argparse.Namespace,
    project_files: ProjectFiles | None = None,
    out: Out = print,
) -> int:
    """Run the ``lab`` sub-command in ``args``; return the process exit code.

    ``project_files(endpoints)`` renders the project's files for ``up``; without it the
    instance gets the lab's defaults only (AMI with the lab user, an empty dialplan).
    """
    args.runtime = args.runtime or os.environ.get(RUNTIME_ENV) or "chroot"
    try:
        if args.lab_command == "provision":
            cache_dir, _ = _paths(args)
            root = provision_rootfs(cache_dir, mirror=args.mirror, log=out)
            out(f"root file system ready: {root}")
            return 0
        if args.lab_command == "up":
            return _up(args, project_files, out)
        if args.lab_command == "down":
            return _down(args, out)
        if args.lab_command == "status":
            return _status(args, out)
        if args.lab_command == "shell":
            return _shell(args)
    except LabError as exc:
        print(f"callcenter lab {args.lab_command}: {exc}", file=sys.stderr)
        return 1
    raise AssertionError(f"unknown lab command {args.lab_command!r}")


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m callcenter.lab.cli``) until the lead wires
    ``lab`` into ``callcenter.cli``."""
    parser = argparse.ArgumentParser(prog="callcenter")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
