"""Composition root: the one place that builds the engine's service tree.

``make_service(settings, reactor)`` returns a Twisted ``MultiService`` holding the AMI
client (reconnecting), the storage thread pool, the engine, the FastAGI server, the HTTP
JSON API and the Prometheus endpoint. ``run_daemon`` runs it on the global reactor until
SIGTERM or SIGINT, stopping every service cleanly. Only this module, the CLI and the demo
import the global reactor.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.twisted import MetricsResource
from sqlalchemy.exc import SQLAlchemyError
from twisted.application.internet import TCPServer, backoffPolicy
from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.error import CannotListenError
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import Site

from callcenter.agents import LAB_INTERFACES, PJSIP_INTERFACES, MemberInterfaces
from callcenter.agi.server import FastAgiFactory
from callcenter.ami.client import AmiClient, AmiCredentials
from callcenter.asterisk.render import LAB_TRUNK, lab_sms_gateway
from callcenter.dialer.config import (
    callback_notes,
    load_dialer_config,
    validate_against,
)
from callcenter.dialer.reload import ConfigWatcher, thread_reader
from callcenter.dialer.service import DialerMetrics, DialerService
from callcenter.engine import Engine, RecordingPaths
from callcenter.fax_service import FaxService
from callcenter.http_api import (
    AgentPage,
    ApiResource,
    IndexPage,
    LeadPage,
    PasswordPage,
    ReportsPage,
    WallboardPage,
)
from callcenter.metrics import EngineMetrics, QueueCollector
from callcenter.secrets import load_or_create_secrets
from callcenter.settings import ConfigError, Settings
from callcenter.sms.service import SmsService
from callcenter.storage.db import create_engine_for, upgrade_database
from callcenter.storage.repository import Repository, make_threadpool
from callcenter.web_guard import SignInGuard

__all__ = ["EngineServices", "StartError", "database_url", "make_service", "run_daemon", "start_services"]

_log = Logger(namespace="callcenter.service")


def _hide_password(url: str) -> str:
    """``postgresql://cc:***@host/db``: a database URL fit for an error message."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def database_url(settings: Settings) -> str:
    """The database URL with a relative SQLite path resolved against the project root."""
    url = settings.database.url
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite://":
        path = settings.root / url[len(prefix):]
        path.parent.mkdir(parents=True, exist_ok=True)
        return prefix + str(path)
    return url


class _RepositoryService(Service):
    """Starts and stops the repository's thread pool with the daemon."""

    name = "storage"

    def __init__(self, repository: Repository) -> None:
        self.repository = repository

    def startService(self) -> None:
        super().startService()
        self.repository.start()

    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        self.repository.stop()
        return None


@dataclass
class EngineServices:
    """The built service tree and the pieces tests and the demo look at."""

    root: MultiService
    engine: Engine
    ami: AmiClient
    agi_server: TCPServer
    http_server: TCPServer
    metrics_server: TCPServer
    registry: CollectorRegistry
    dialer: DialerService | None = None
    fax: FaxService | None = None
    sms: SmsService | None = None
    api_token: str = ""
    """The host's credential on the HTTP port (the CLI's; docs/web-access.md)."""

    @staticmethod
    def _port(server: TCPServer) -> int:
        port: Any = server._port  # set by startService
        return int(port.getHost().port)

    @property
    def agi_port(self) -> int:
        return self._port(self.agi_server)

    @property
    def http_port(self) -> int:
        return self._port(self.http_server)

    @property
    def metrics_port(self) -> int:
        return self._port(self.metrics_server)


def make_service(
    settings: Settings,
    reactor: Any,
    *,
    recordings: RecordingPaths | None = None,
    migrate: bool = True,
    lab: bool = False,
    dialer_config: Path | None = None,
) -> EngineServices:
    """Build the daemon's services from validated settings (nothing is started yet).

    With ``dialer_config`` (``config/dialer.yaml``), the outbound dialer runs too and the
    file is watched for edits; in the lab it dials the simulated network
    (``Local/<phone>@sim-pstn``) instead of the configured trunk.
    """
    secrets = load_or_create_secrets(settings.site.state_dir, [a.id for a in settings.agents])
    registry = CollectorRegistry()
    metrics = EngineMetrics(registry)
    root = MultiService()

    ami = AmiClient(
        TCP4ClientEndpoint(reactor, settings.ami.host, settings.ami.port, timeout=int(settings.ami.connect_timeout)),
        AmiCredentials(settings.ami.username, secrets.ami_secret),
        reactor,
        retry_policy=backoffPolicy(initialDelay=0.5, maxDelay=settings.ami.reconnect_max_delay),
        ping_interval=settings.ami.ping_interval,
        action_timeout=settings.ami.action_timeout,
    )
    ami.setName("ami")
    ami.setServiceParent(root)

    url = database_url(settings)
    db_engine = create_engine_for(url)
    if migrate:
        upgrade_database(db_engine)
    repository = Repository(db_engine, make_threadpool(maxthreads=settings.database.threads), reactor)
    _RepositoryService(repository).setServiceParent(root)

    if recordings is None:
        directory = settings.recordings.directory
        recordings = RecordingPaths(str(directory), directory)
    # In the lab, agents may be Local channels (Local/<ID>@lab-agents/n, Custom:agent<ID>).
    interfaces = LAB_INTERFACES if lab else PJSIP_INTERFACES
    engine = Engine(settings, ami, repository, metrics, reactor, recordings, agent_interfaces=interfaces)
    engine.setServiceParent(root)
    registry.register(QueueCollector(engine.queue_views))  # the wallboard's numbers, read at each scrape

    agi_factory = FastAgiFactory(engine.agi_router(), reactor, command_timeout=settings.agi.command_timeout)
    agi_server = TCPServer(settings.agi.port, agi_factory, interface=settings.agi.bind, reactor=reactor)
    agi_server.setName("fastagi")
    agi_server.setServiceParent(root)

    dialer = None
    if dialer_config is not None:
        dialer = _dialer(settings, dialer_config, reactor, ami, repository, engine, registry, lab, interfaces)
        dialer.setServiceParent(root)
        # the hotline's call-back requests (and callers who hung up waiting, call_back_abandoned)
        # become leads of dialer.callbacks_campaign; a number that talks with an agent first
        # needs no call back for an abandoned call any more
        engine.callback_listeners.append(
            lambda request: dialer.request_callback(request.phone, name=request.record.customer_name,
                                                    ticket=request.record.ticket_number,
                                                    abandoned=request.abandoned))
        engine.talked_listeners.append(
            lambda record: dialer.close_abandoned_callback(record.phone or "", ticket=record.ticket_number))
        watcher = ConfigWatcher(dialer_config, dialer.config, dialer.apply_config, reactor,
                                thread_reader(reactor, reactor.getThreadPool()),
                                validate=lambda config: validate_against(config, settings))
        watcher.setName("dialer-config")
        watcher.setServiceParent(root)

    fax = FaxService(settings, ami, repository, reactor, recordings, trunk=LAB_TRUNK if lab else None,
                     metrics=metrics, calls=engine.calls)
    fax.setName("fax")
    fax.setServiceParent(root)

    sms = None
    if settings.sms.enabled:
        sms = SmsService(settings, ami, repository, reactor, gateway=settings.sms.gateway, metrics=metrics)
        sms.setName("sms")
        sms.setServiceParent(root)
        if dialer is not None:  # a customer who answers a text is called back (dialer.callbacks_campaign)
            sms.reply_listeners.append(
                lambda reply: dialer.request_callback(reply.phone, name=None, sms_reply=reply.body))

    def run_blocking(f: Callable[..., Any], *args: Any) -> Deferred[Any]:  # file reads and scrypt: off the reactor
        return deferToThreadPool(reactor, reactor.getThreadPool(), f, *args)

    api_root = Resource()
    api_root.putChild(b"", IndexPage(settings))
    api_root.putChild(b"api", ApiResource(engine, dialer, fax, sms))
    api_root.putChild(b"wallboard", WallboardPage(engine, dialer))
    api_root.putChild(b"agent", AgentPage(engine, dialer, sms))
    api_root.putChild(b"lead", LeadPage(engine, dialer, sms))
    api_root.putChild(b"reports", ReportsPage(engine))
    api_root.putChild(b"password", PasswordPage(settings.site.state_dir, run_blocking))
    api_root.putChild(b"metrics", MetricsResource(registry=registry))
    guard = SignInGuard(  # nothing from the network reaches a page or route without signing in
        api_root, lambda: settings.people, api_token=secrets.api_token, state_dir=settings.site.state_dir,
        run_blocking=run_blocking, on_refused=lambda reason: metrics.http_refused.labels(reason).inc(),
        clock=reactor.seconds)
    http_server = TCPServer(settings.http.port, _quiet(Site(guard, reactor=reactor)), interface=settings.http.bind,
                             reactor=reactor)
    http_server.setName("http")
    http_server.setServiceParent(root)

    metrics_server = TCPServer(settings.metrics.port, _quiet(Site(MetricsResource(registry=registry), reactor=reactor)),
                               interface=settings.metrics.bind, reactor=reactor)
    metrics_server.setName("metrics")
    metrics_server.setServiceParent(root)

    return EngineServices(root, engine, ami, agi_server, http_server, metrics_server, registry, dialer, fax, sms,
                          api_token=secrets.api_token)


def _dialer(settings: Settings, path: Path, reactor: Any, ami: AmiClient, repository: Repository,
            engine: Engine, registry: CollectorRegistry, lab: bool, interfaces: MemberInterfaces) -> DialerService:
    """The outbound dialer on the engine's AMI client, repository and agent board."""
    config = load_dialer_config(path)  # ConfigError (file:line) stops the start-up
    problems = validate_against(config, settings)
    if problems:
        raise ConfigError(problems)
    for note in callback_notes(config, settings):
        _log.warn("dialer.no_callbacks {note}", note=note)
    wrapups = {q.name: float(q.wrapup_time) for q in settings.queues}
    return DialerService(
        config, ami=ami, repository=repository, agents=engine.agents, clock=reactor,
        metrics=DialerMetrics(registry), trunk=LAB_TRUNK if lab else None,
        wrapup_seconds=lambda queue: wrapups.get(queue, 0.0),
        agent_channel=interfaces.interface,
        # a conversation (paced or preview) gets its call record: the agent's screen pop
        on_conversation=engine.open_record,
        people=settings.people,
        team_queues=settings.team_queues,
    )


def settings_for_lab(settings: Settings, instance_name: str, cache_dir: Path | None = None) -> tuple[Settings, RecordingPaths]:
    """Point the engine at a running lab instance: its AMI port and recordings directory."""
    from callcenter.lab.instance import LabInstance
    from callcenter.lab.rootfs import default_cache_dir

    instances = (cache_dir or settings.lab.cache_dir or default_cache_dir()) / "instances"
    instance = LabInstance.load(instance_name, instances)
    endpoints = instance.endpoints
    ami = replace(settings.ami, host=endpoints.ami_host, port=endpoints.ami_port)
    sms = replace(settings.sms, gateway=lab_sms_gateway(endpoints))  # as rendered for the lab
    return replace(settings, ami=ami, sms=sms), RecordingPaths(endpoints.recordings_dir, instance.recordings_dir)


class StartError(Exception):
    """The daemon cannot start: the message names the setting (database.url, http.port...)."""


def start_services(settings: Settings, reactor: Any, *, recordings: RecordingPaths | None = None, lab: bool = False,
                   dialer_config: Path | None = None) -> EngineServices:
    """:func:`make_service`, started; :class:`StartError` when the database cannot be reached
    or a port is taken (what had started is stopped again)."""
    try:
        services = make_service(settings, reactor, recordings=recordings, lab=lab, dialer_config=dialer_config)
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).splitlines()[0]
        raise StartError(f"database.url {_hide_password(database_url(settings))}: {reason}") from None
    try:
        services.root.startService()
    except CannotListenError as error:
        services.root.stopService()  # what had started (the database threads, other ports)
        taken = {settings.http.port: "http.port", settings.metrics.port: "metrics.port", settings.agi.port: "agi.port"}
        reason = getattr(error.socketError, "strerror", None) or error.socketError
        raise StartError(f"{taken.get(error.port, 'port')} {error.port} on {error.interface or '*'}: {reason}") from None
    return services


def _quiet(site: Site) -> Site:
    """A Site that does not log "Starting factory <Site object at 0x...>" (daemon.started names
    the ports); requests are still logged."""
    site.noisy = False
    return site


def run_daemon(settings: Settings, lab: str | None = None, dialer_config: Path | None = None) -> int:
    """Run the daemon on the global reactor until SIGTERM/SIGINT; return the exit code."""
    from twisted.internet import reactor

    from callcenter.logs import start_logging

    start_logging(settings.logging.level, settings.logging.format)
    recordings = None
    if lab:
        settings, recordings = settings_for_lab(settings, lab)
    try:
        services = start_services(settings, reactor, recordings=recordings, lab=lab is not None,
                                  dialer_config=dialer_config)
    except StartError as error:
        print(f"not started: {error}", file=sys.stderr)
        return 1
    reactor.addSystemEventTrigger("before", "shutdown", services.root.stopService)
    _log.info(
        "daemon.started pid={pid} ami={ami_host}:{ami_port} agi={agi} http={http} metrics={metrics}",
        pid=os.getpid(), ami_host=settings.ami.host, ami_port=settings.ami.port,
        agi=services.agi_port, http=services.http_port, metrics=services.metrics_port,
    )
    reactor.run()
    _log.info("daemon.stopped")
    return 0
