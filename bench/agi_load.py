"""FastAGI load: 100 concurrent IVR calls through the engine on the real lab Asterisk.

Usage (from the repository root, as root so the chroot lab can start)::

    .venv/bin/python bench/agi_load.py [--calls 100] [--baseline-calls 3] [--agents 40] [--timeout 150]

What it does, on one lab Asterisk 22 instance configured from the project's files
(``callcenter.cli.lab_project_files``) and the whole engine (``make_service(...,
lab=True)``: AMI client, FastAGI server, storage, HTTP API, metrics):

* the hotline flow is opened around the clock and ``ivr.sounds_dir`` points at an
  empty directory, so no rendered prompt is played (plays are skipped, menus use
  stock sounds or silence) and callers get through the IVR in seconds; ``ivr.channels``
  is raised to ``--calls`` (in memory), so every caller gets the IVR;
* ``--agents`` lab agents (Local channels that talk 3-8 s) are logged in to the
  hotline queue at penalty 0 (in memory only: the outbound agents get ``hotline: 0``
  in this process's settings; ``config/agents.yaml`` is untouched);
* callers are ``Local/400@from-pstn/n`` originated into ``lab-caller``: they press 1
  after 2 s (language), 0 three seconds later (agent), then 5 every 2 s (survey);
* phase 1 (baseline): ``--baseline-calls`` calls, one at a time, each to its call record;
* phase 2 (load): ``--calls`` calls originated in one burst (all Originates sent at
  once; the AMI client matches each OriginateResponse by ActionID), then the bench
  waits until every call has ended and has its call record (``--timeout`` bound).

Latency is measured in this process only, by wrapping ``AgiSession._pump`` (the
command is written to the socket) and ``AgiSession.reply_received`` (its reply has
been parsed): the time from write to reply on the reactor, per command. Commands
whose duration is the caller's or the media's (STREAM FILE, GET DATA, EXEC) are
listed but kept out of the headline figure, which covers the control commands
(SET VARIABLE, GET VARIABLE, HANGUP, ...): the engine's round trip through
Asterisk's AGI. The ratio printed is p99 under load / p99 with one call at a time.

Exit status 0 when every call placed (both phases) ended with a call record,
1 otherwise.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

from twisted.internet import defer, task

from callcenter.agi.codec import AgiReply
from callcenter.agi.server import AgiSession
from callcenter.ami import actions
from callcenter.settings import Settings, load_settings
from callcenter.state.calls import CallEnded

MEDIA_COMMANDS = frozenset({"STREAM FILE", "GET DATA", "EXEC", "GET OPTION", "WAIT FOR DIGIT",
                            "RECORD FILE", "SAY DIGITS", "SAY NUMBER", "CONTROL STREAM FILE"})


# ------------------------------------------------------------------ measurement


class Latencies:
    """Write-to-reply times of AGI commands, by phase and command name (seconds)."""

    def __init__(self) -> None:
        self.phase = "idle"
        self.samples: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        self.sessions: dict[str, int] = defaultdict(int)
        self._sent: dict[int, tuple[float, str]] = {}

    def install(self) -> None:
        """Wrap AgiSession in this process so each command's round trip is timed."""
        pump, reply_received, init = AgiSession._pump, AgiSession.reply_received, AgiSession.__init__
        sent = self._sent

        def timed_init(session: AgiSession, *args: Any, **kwargs: Any) -> None:
            init(session, *args, **kwargs)
            self.sessions[self.phase] += 1

        def timed_pump(session: AgiSession) -> None:
            before = session._in_flight
            pump(session)
            pending = session._in_flight
            if pending is not None and pending is not before:
                sent[id(session)] = (time.perf_counter(), pending.name)

        def timed_reply(session: AgiSession, reply: AgiReply) -> None:
            if reply.code != 100 and session._in_flight is not None:
                started = sent.pop(id(session), None)
                if started is not None:
                    self.samples[self.phase][started[1]].append(time.perf_counter() - started[0])
            reply_received(session, reply)

        setattr(AgiSession, "__init__", timed_init)  # noqa: B010 - patching the class, bench only
        setattr(AgiSession, "_pump", timed_pump)  # noqa: B010
        setattr(AgiSession, "reply_received", timed_reply)  # noqa: B010

    def control(self, phase: str) -> list[float]:
        """Every control-command (non-media) sample of ``phase``."""
        return [s for name, values in self.samples[phase].items() if name not in MEDIA_COMMANDS for s in values]


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile of ``values`` (p in 0..100)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def _ms(value: float) -> str:
    return f"{value * 1000:8.2f}"


def _summary(label: str, values: list[float]) -> str:
    if not values:
        return f"{label:<28} {'n=0':>7}"
    return (f"{label:<28} {len(values):>7} {_ms(percentile(values, 50))} {_ms(percentile(values, 90))} "
            f"{_ms(percentile(values, 99))} {_ms(max(values))}")


def _say(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')}  {text}", flush=True)


# ------------------------------------------------------------------- the run


def _with_hotline_agents(settings: Settings, count: int) -> tuple[Settings, list[str]]:
    """Settings where the first ``count`` agents all take hotline calls at penalty 0."""
    chosen = [a for a in settings.agents if a.role == "agent"][:count]
    ids = {a.id for a in chosen}
    agents = tuple(replace(a, queues={**dict(a.queues), "hotline": 0}) if a.id in ids else a
                   for a in settings.agents)
    return replace(settings, agents=agents), [a.id for a in chosen]


async def _wait(reactor: Any, seconds: float) -> None:
    await task.deferLater(reactor, seconds, lambda: None)


async def _bench(reactor: Any, settings: Settings, args: argparse.Namespace, work: Path,
                 lat: Latencies) -> int:
    from callcenter.cli import lab_project_files
    from callcenter.demo import open_around_the_clock
    from callcenter.engine import RecordingPaths
    from callcenter.lab.instance import (
        ChrootRuntime,
        HostRuntime,
        LabInstance,
        LabPorts,
        tcp_port_free,
    )
    from callcenter.lab.rootfs import default_cache_dir, provision_rootfs
    from callcenter.service import make_service

    cache = settings.lab.cache_dir or default_cache_dir()
    runtime: Any = HostRuntime.detect() if settings.lab.asterisk == "host" else ChrootRuntime(
        provision_rootfs(cache, log=_say))
    agi_port = next(p for p in range(24673, 24773) if tcp_port_free(p))
    # every caller gets the IVR: the bench measures the FastAGI server under --calls concurrent
    # sessions (with the shipped 8 IVR channels the rest would be queued without the menus)
    settings = replace(settings, ivr=replace(settings.ivr, channels=max(args.calls, settings.ivr.channels)))
    instance = LabInstance("agiload", cache / "instances", runtime, LabPorts.allocate(),
                           work / "recordings")
    instance.write_config(dict(lab_project_files(settings, agi_port)(instance.endpoints)))
    boot = instance.start(timeout=60)
    ep = instance.endpoints
    _say(f"lab Asterisk 22 booted in {boot:.1f} s ({runtime.describe()}); AMI :{ep.ami_port}, FastAGI :{agi_port}")
    sounds = work / "sounds"
    sounds.mkdir()
    flow = settings.ivr.hotline_flow
    if flow is not None:
        flow = open_around_the_clock(flow, work / "hotline-24h.yaml")
    settings, agents = _with_hotline_agents(settings, args.agents)
    settings = replace(
        settings,
        ivr=replace(settings.ivr, hotline_flow=flow, sounds_dir=sounds),
        ami=replace(settings.ami, port=ep.ami_port, ping_interval=5.0),
        agi=replace(settings.agi, port=agi_port),
        http=replace(settings.http, port=0),
        metrics=replace(settings.metrics, port=0),
        database=replace(settings.database, url=f"sqlite:///{work / 'agiload.sqlite3'}"),
    )
    services = make_service(settings, reactor, recordings=RecordingPaths(ep.recordings_dir, instance.recordings_dir),
                            lab=True)
    engine = services.engine
    ended: dict[str, list[CallEnded]] = defaultdict(list)
    engine.fact_listeners.append(lambda f: ended[lat.phase].append(f) if isinstance(f, CallEnded) else None)
    agi_factory = services.agi_server.args[1]
    peak = {"agi": 0}

    def sample() -> None:
        peak["agi"] = max(peak["agi"], len(agi_factory.connections))

    sampler = task.LoopingCall(sample)
    sampler.clock = reactor
    services.root.startService()  # type: ignore[no-untyped-call]
    sampler.start(0.05)
    try:
        await services.ami.when_connected()
        for agent in agents:
            await services.ami.send(actions.command(f"devstate change Custom:agent{agent} NOT_INUSE"))
            await engine.agent_service.login(agent, ["hotline"])
        for _ in range(50):
            if all(engine.agents.state_of(a).value != "logged_out" for a in agents):
                break
            await _wait(reactor, 0.1)
        ready = sum(1 for a in agents if engine.agents.state_of(a).value != "logged_out")
        _say(f"{ready}/{len(agents)} lab agents logged in to the hotline queue (penalty 0)")
        repo = engine.repository
        assert repo is not None
        numbers: list[str] = []

        def originate(i: int) -> defer.Deferred[Any]:
            number = f"1390000{i:04d}"
            numbers.append(number)
            action = actions.originate(
                "Local/400@from-pstn/n", context="lab-caller", exten="s", priority=1,
                caller_id=f"Load {i} <{number}>", timeout_ms=30000,
                variables={"LAB_SECONDS": 120, "LAB_DELAY": 2, "LAB_DTMF": "1", "LAB_DELAY2": 3,
                           "LAB_DTMF2": "0", "LAB_REPEAT_DTMF": "5"},
            )
            return services.ami.originate(action, action_id=f"agiload-{i}")

        async def phase(name: str, first: int, count: int) -> tuple[int, float]:
            lat.phase = name
            before = engine.records_written
            started = reactor.seconds()
            responses = await defer.gatherResults(
                [originate(first + i) for i in range(count)], consumeErrors=True)
            answered = sum(1 for r in responses if r.get("Response") == "Success")
            deadline = started + args.timeout
            while reactor.seconds() < deadline and (
                    len(ended[name]) < count or engine.records_written - before < count):
                await _wait(reactor, 0.25)
            return answered, reactor.seconds() - started

        base_answered, base_wall = 0, 0.0
        for i in range(args.baseline_calls):  # one call at a time
            answered, wall = await phase("baseline", i, 1)
            base_answered, base_wall = base_answered + answered, base_wall + wall
            ended["baseline-all"].extend(ended.pop("baseline"))
        ended["baseline"] = ended.pop("baseline-all", [])
        _say(f"baseline: {args.baseline_calls} calls one at a time, {len(ended['baseline'])} ended, "
             f"{base_wall:.1f} s")
        peak["agi"] = 0
        load_answered, load_wall = await phase("load", args.baseline_calls, args.calls)
        _say(f"load: {args.calls} calls originated in one burst, {load_answered} answered, "
             f"{len(ended['load'])} ended, {load_wall:.1f} s")
        await _wait(reactor, 1.0)
        records = await repo.list_recent_call_records(limit=len(numbers) + 10)
        phones = {r.phone for r in records}
        missing = [n for n in numbers if n not in phones]

        print()
        print(f"calls placed {len(numbers)} ({args.baseline_calls} baseline + {args.calls} load), answered "
              f"{base_answered + load_answered}, ended {len(ended['baseline']) + len(ended['load'])}, "
              f"call records {len(records)}, missing records {len(missing)}")
        print(f"AGI sessions: baseline {lat.sessions['baseline']}, load {lat.sessions['load']} "
              f"(peak {peak['agi']} FastAGI connections open at once)")
        print(f"wall time: baseline calls {base_wall:.1f} s, load phase {load_wall:.1f} s")
        print()
        print(f"{'AGI command (write->reply)':<28} {'n':>7} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}")
        for name in ("baseline", "load"):
            for command in sorted(lat.samples[name]):
                tag = " (media)" if command in MEDIA_COMMANDS else ""
                print(_summary(f"{name}: {command}{tag}"[:28], lat.samples[name][command]))
        base, load = lat.control("baseline"), lat.control("load")
        print(_summary("baseline: control commands", base))
        print(_summary("load: control commands", load))
        if base and load:
            print(f"\ncontrol-command p99 ratio, {args.calls} concurrent / 1 call at a time: "
                  f"{percentile(load, 99) / percentile(base, 99):.2f}x "
                  f"(p50 ratio {percentile(load, 50) / percentile(base, 50):.2f}x)")
        print(f"python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs")
        if missing:
            _say(f"FAILED: {len(missing)} calls have no call record: {', '.join(missing[:10])}")
            return 1
        return 0
    finally:
        sampler.stop()
        await services.root.stopService()  # type: ignore[no-untyped-call]
        instance.stop()
        _say("engine and lab Asterisk stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=100, help="concurrent calls in the load phase")
    parser.add_argument("--baseline-calls", type=int, default=3, help="calls placed one at a time first")
    parser.add_argument("--agents", type=int, default=40, help="lab agents logged in to the hotline")
    parser.add_argument("--timeout", type=float, default=150.0, help="seconds to wait for each phase")
    args = parser.parse_args(argv)
    settings = load_settings()
    lat = Latencies()
    lat.install()
    work = Path(tempfile.mkdtemp(prefix="callcenter-agiload-"))
    result: list[int] = []

    async def run(reactor: Any) -> None:
        result.append(await _bench(reactor, settings, args, work, lat))

    started = time.monotonic()
    try:
        task.react(lambda reactor: defer.ensureDeferred(run(reactor)))
    except SystemExit:
        pass
    finally:
        _say(f"bench took {time.monotonic() - started:.0f} s")
    if result and result[0] == 0:
        shutil.rmtree(work, ignore_errors=True)
    else:
        _say(f"files kept in {work}")
    return result[0] if result else 1


if __name__ == "__main__":
    sys.exit(main())
