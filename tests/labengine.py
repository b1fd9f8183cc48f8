"""The whole engine (``make_service``) on a lab Asterisk built from the project's files, for
integration tests: the shipped configuration with a test's changes, its own database and
state directory, free ports, and a clean stop."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import select

from callcenter.ami import actions
from callcenter.asterisk.render import lab_sms_gateway
from callcenter.cli import lab_project_files
from callcenter.engine import RecordingPaths
from callcenter.lab.instance import free_engine_port
from callcenter.secrets import Secrets, load_or_create_secrets
from callcenter.service import EngineServices, make_service
from callcenter.settings import Settings, load_settings
from callcenter.storage import models
from tests.labfixture import LabFactory, LabHandle
from tests.reactorthread import ReactorThread

__all__ = ["ROOT", "callback_leads", "engine_on_lab", "hotline_open", "hotline_queue", "rings_with_the_call"]

ROOT = Path(__file__).resolve().parents[1]


def hotline_queue(settings: Settings, **changes: Any) -> Settings:
    """``settings`` with the hotline queue's settings changed (``max_wait=12``, ...)."""
    return replace(settings, queues=tuple(replace(q, **changes) if q.name == "hotline" else q
                                          for q in settings.queues))


def hotline_open(tmp_path: Path, **queue: Any) -> Callable[[Settings], Settings]:
    """A ``change`` for :func:`engine_on_lab`: the hotline flow open around the clock (a copy
    under ``tmp_path``), its prompts looked for under ``tmp_path`` (none: stock sounds), and
    the hotline queue changed by ``queue`` (:func:`hotline_queue`)."""
    from callcenter.demo import open_around_the_clock

    flow = open_around_the_clock(ROOT / "ivr_flows/hotline.yaml", tmp_path / "open.yaml")

    def change(settings: Settings) -> Settings:
        settings = hotline_queue(settings, **queue)
        return replace(settings, ivr=replace(settings.ivr, hotline_flow=flow, sounds_dir=tmp_path / "sounds"))

    return change


@contextmanager
def engine_on_lab(lab_factory: LabFactory, reactor_thread: ReactorThread, tmp_path: Path, *,
                  change: Callable[[Settings], Settings] = lambda settings: settings, lab_agents: bool = True,
                  dialer_config: Path | None = None) -> Iterator[tuple[EngineServices, LabHandle, Secrets]]:
    """The engine's services, started and logged in to a new lab instance; stopped after.

    ``change`` edits the settings (the shipped ones, with a SQLite database and state under
    ``tmp_path`` and ports chosen by the system) before the Asterisk files are rendered.
    ``lab_agents``: agents are Local channels (``Local/<ID>@lab-agents/n``), else their
    PJSIP softphones. The SMS gateway is the lab Asterisk itself, as ``callcenter run --lab``
    has it.
    """
    base = load_settings(ROOT / "config")
    settings = change(replace(
        base,
        site=replace(base.site, state_dir=tmp_path / "var"),
        database=replace(base.database, url=f"sqlite:///{tmp_path / 'cc.sqlite3'}"),
        http=replace(base.http, port=0), metrics=replace(base.metrics, port=0),
    ))
    secrets = load_or_create_secrets(settings.site.state_dir, [a.id for a in settings.agents])
    agi_port = free_engine_port()  # never a port the lab may give the instance next
    handle = lab_factory.start(project_files=lab_project_files(settings, agi_port, secrets=secrets,
                                                               agi_host="127.0.0.1"),
                               ami_credentials=(settings.ami.username, secrets.ami_secret))
    ep = handle.endpoints
    settings = replace(settings, ami=replace(settings.ami, port=handle.ami_port),
                       agi=replace(settings.agi, port=agi_port),
                       sms=replace(settings.sms, gateway=lab_sms_gateway(ep)))
    from twisted.internet import reactor

    services = make_service(settings, reactor, lab=lab_agents, dialer_config=dialer_config,
                            recordings=RecordingPaths(ep.recordings_dir, handle.recordings_dir))
    reactor_thread.call(services.root.startService)
    try:
        reactor_thread.call(services.ami.when_connected, timeout=20)
        yield services, handle, secrets
    finally:
        reactor_thread.call(services.root.stopService, timeout=20)
        lab_factory.stop(handle)


def callback_leads(services: EngineServices, reactor_thread: ReactorThread) -> list[tuple[str, dict[str, str]]]:
    """(number, extra columns) of each lead of the dialer's ``callbacks_campaign``."""
    dialer = services.dialer
    assert dialer is not None
    campaign = dialer.campaigns[dialer.config.callbacks_campaign or ""]

    def query(session: Any) -> list[tuple[str, dict[str, str]]]:
        rows = session.scalars(select(models.Lead).where(models.Lead.campaign_id == campaign.record.id))
        return [(row.phone, dict(row.extra or {})) for row in rows]

    return reactor_thread.call(dialer.repository.run, query, timeout=10)  # type: ignore[no-any-return]


def callback_leads_when(services: EngineServices, reactor_thread: ReactorThread,
                        ready: Callable[[list[tuple[str, dict[str, str]]]], object] = bool,
                        timeout: float = 10.0) -> list[tuple[str, dict[str, str]]]:
    """:func:`callback_leads` once ``ready`` says so (any lead, by default), or as they are
    after ``timeout`` seconds: the dialer writes a lead in the repository's thread after the
    call's record."""
    deadline = time.monotonic() + timeout
    found = callback_leads(services, reactor_thread)
    while not ready(found) and time.monotonic() < deadline:
        time.sleep(0.2)
        found = callback_leads(services, reactor_thread)
    return found


def network_people(services: EngineServices, reactor_thread: ReactorThread, talk_seconds: int) -> None:
    """The lab network's people (``sim-pstn``, dialplans/lab/sim-pstn.conf) answer after a
    second and stay on the line ``talk_seconds`` after their hello."""
    for name, value in (("SIM_RING_MIN", 1), ("SIM_RING_MAX", 1), ("SIM_TALK_MIN", talk_seconds),
                        ("SIM_TALK_MAX", talk_seconds)):
        reactor_thread.call(services.ami.send, actions.setvar(name, value), timeout=10)


def rings_with_the_call(services: EngineServices, reactor_thread: ReactorThread, agent: str, linkedid: str | None,
                        *, timeout: float, message: str) -> str:
    """Wait until ``agent``'s phone rings with the call ``linkedid`` (any call: None) on their
    screen pop; the screen pop's linkedid.

    The agent is busy from their channel's pre-dial handler (``[agent-callee]``'s AgentBusy),
    a moment before Asterisk dials the phone; the engine pops the screen on the ring itself
    (DialBegin), so the two are waited for together: a screen pop that never comes, or shows
    another call, still fails."""
    engine = services.engine

    def ringing() -> str | None:
        shown = engine.screen_pops.get(agent)
        busy = engine.agents.state_of(agent).value == "on_call"
        return shown if busy and shown is not None and linkedid in (None, shown) else None

    return reactor_thread.wait_for(
        ringing, timeout=timeout,
        message=lambda: f"{message} (state {engine.agents.state_of(agent).value}, "
                        f"screen pop {engine.screen_pops.get(agent)!r}, the call {linkedid!r})")


def call_and_message(services: EngineServices, reactor_thread: ReactorThread, record_id: int) -> tuple[Any, Any]:
    """The recordings of a call whose caller left a message: (the call's, the message), once
    both are filed (the engine files them when the files settle), each checked by name."""
    repository = services.engine.repository
    assert repository is not None
    deadline = time.monotonic() + 10
    recordings: list[Any] = []
    while len(recordings) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
        recordings = reactor_thread.call(repository.list_recordings_for_call, record_id)
    call, message = sorted(recordings, key=lambda r: r.started_at)
    assert Path(message.path).name.endswith("-message.wav"), recordings
    assert Path(call.path).stem == Path(message.path).stem.removesuffix("-message")
    return call, message
