"""The lab's own Asterisk plumbing files, rendered as readable Asterisk configuration.

This module owns the files that make one lab Asterisk a self-contained instance:
``asterisk.conf`` (every per-instance directory points into the instance's home),
``modules.conf`` (autoload, minus modules that bind fixed ports or are irrelevant),
``logger.conf``, ``http.conf``, ``rtp.conf``, ``prometheus.conf``, ``cdr.conf``,
``cel.conf``, ``indications.conf``, ``musiconhold.conf`` and a few quiet defaults.

The project's own files (``manager.conf``, ``extensions.conf``, ``queues.conf``,
``pjsip.conf``) are rendered elsewhere (``callcenter.asterisk.render``) and handed to
the lab as a ``{filename: text}`` dict; this module only adds the lab's own AMI user to
``manager.conf`` (:func:`add_manager_user`) so that the lab can wait for ``FullyBooted``
whatever users the project defines.

Everything here is pure: strings in, strings out, no file system access.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "BASE_FILES",
    "DEBIAN_INSTALLATION",
    "NOLOAD_MODULES",
    "REQUIRED_MODULES",
    "AsteriskDirectories",
    "Installation",
    "ManagerUser",
    "add_manager_user",
    "default_moh_directory",
    "header",
    "merge_project_files",
    "render_asterisk_conf",
    "render_base_config",
    "render_http_conf",
    "render_logger_conf",
    "render_manager_conf",
    "render_modules_conf",
    "render_musiconhold_conf",
    "render_prometheus_conf",
    "render_rtp_conf",
]


@dataclass(frozen=True)
class Installation:
    """Where an Asterisk installation keeps its shared, read-only parts.

    Paths are as Asterisk sees them (inside the root file system for the chroot runtime).
    """

    modules: str
    data: str
    agi: str
    sbin: str


# Debian's layout (package asterisk / asterisk-modules on amd64), as seen inside the root.
DEBIAN_INSTALLATION = Installation(
    modules="/usr/lib/x86_64-linux-gnu/asterisk/modules",
    data="/usr/share/asterisk",
    agi="/usr/share/asterisk/agi-bin",
    sbin="/usr/sbin",
)


@dataclass(frozen=True)
class AsteriskDirectories:
    """Every directory named in ``asterisk.conf`` ``[directories]``, as Asterisk sees it."""

    etc: str
    modules: str
    var_lib: str
    db: str
    keys: str
    data: str
    agi: str
    spool: str
    run: str
    log: str
    cache: str
    sbin: str

    @classmethod
    def for_instance(
        cls, home: str, installation: Installation, run_dir: str | None = None
    ) -> AsteriskDirectories:
        """Per-instance directories under ``home``; shared parts from ``installation``.

        ``run_dir`` overrides ``home/run`` (the control socket path must stay short).
        """
        home = home.rstrip("/")
        return cls(
            etc=f"{home}/etc",
            modules=installation.modules,
            var_lib=f"{home}/lib",
            db=f"{home}/lib",
            keys=f"{home}/lib",
            data=installation.data,
            agi=installation.agi,
            spool=f"{home}/spool",
            run=run_dir if run_dir is not None else f"{home}/run",
            log=f"{home}/log",
            cache=f"{home}/cache",
            sbin=installation.sbin,
        )

    def per_instance(self) -> tuple[str, ...]:
        """The directories the lab must create (the installation's exist already)."""
        return (
            self.etc,
            self.var_lib,
            f"{self.keys}/keys",
            self.spool,
            self.run,
            self.log,
            self.cache,
        )


@dataclass(frozen=True)
class ManagerUser:
    """One AMI user section of ``manager.conf``."""

    name: str
    secret: str
    read: str = "all"
    write: str = "all"
    permit: str = "127.0.0.1/255.255.255.255"


# Modules that must load, or Asterisk refuses to boot (a missing one is a broken lab,
# better seen at start than as a confusing test failure later).
REQUIRED_MODULES: tuple[str, ...] = (
    "pbx_config.so",
    "res_agi.so",
    "app_queue.so",
    "app_mixmonitor.so",
    "app_chanspy.so",
    "app_amd.so",
    "chan_pjsip.so",
    "res_http_websocket.so",
    "res_prometheus.so",
    "res_fax.so",
    "res_musiconhold.so",
)

# Modules never loaded in the lab, with the reason. Ports first: several instances run
# side by side, so nothing may bind a fixed port.
NOLOAD_MODULES: tuple[tuple[str, str], ...] = (
    ("chan_iax2.so", "binds UDP 4569"),
    ("pbx_dundi.so", "binds UDP 4520"),
    ("chan_unistim.so", "binds UDP 5000"),
    ("chan_mgcp.so", "binds UDP 2727"),
    ("chan_skinny.so", "binds TCP 2000"),
    ("chan_ooh323.so", "binds TCP 1720"),
    ("chan_motif.so", "XMPP/Jingle, irrelevant"),
    ("res_xmpp.so", "XMPP, irrelevant"),
    ("res_stun_monitor.so", "polls a STUN server"),
    ("res_hep.so", "HEP capture, needs a collector"),
    ("res_hep_pjsip.so", "HEP capture"),
    ("res_hep_rtcp.so", "HEP capture"),
    ("res_snmp.so", "needs an SNMP master agent"),
    ("res_statsd.so", "needs a statsd server"),
    ("chan_console.so", "needs a sound card"),
    ("app_jack.so", "needs a JACK server"),
    ("pbx_lua.so", "extensions.lua not used"),
    ("pbx_ael.so", "extensions.ael not used"),
    ("pbx_realtime.so", "no realtime"),
    ("res_realtime.so", "no realtime"),
    ("res_config_curl.so", "no realtime"),
    ("res_config_ldap.so", "no realtime"),
    ("res_config_odbc.so", "no realtime"),
    ("res_config_pgsql.so", "no realtime"),
    ("res_config_sqlite3.so", "no realtime"),
    ("res_odbc.so", "no ODBC"),
    ("res_odbc_transaction.so", "no ODBC"),
    ("func_odbc.so", "no ODBC"),
    ("app_voicemail_odbc.so", "conflicts with app_voicemail"),
    ("cdr_adaptive_odbc.so", "CDR backends off (cdr.conf)"),
    ("cdr_csv.so", "CDR backends off"),
    ("cdr_custom.so", "CDR backends off"),
    ("cdr_manager.so", "CDR backends off"),
    ("cdr_odbc.so", "CDR backends off"),
    ("cdr_pgsql.so", "CDR backends off"),
    ("cdr_radius.so", "CDR backends off"),
    ("cdr_sqlite3_custom.so", "CDR backends off"),
    ("cdr_tds.so", "CDR backends off"),
    ("cel_custom.so", "CEL backends off (cel.conf)"),
    ("cel_manager.so", "CEL backends off"),
    ("cel_odbc.so", "CEL backends off"),
    ("cel_pgsql.so", "CEL backends off"),
    ("cel_radius.so", "CEL backends off"),
    ("cel_sqlite3_custom.so", "CEL backends off"),
    ("cel_tds.so", "CEL backends off"),
    ("res_calendar.so", "calendars irrelevant"),
    ("res_calendar_caldav.so", "calendars irrelevant"),
    ("res_calendar_ews.so", "calendars irrelevant"),
    ("res_calendar_exchange.so", "calendars irrelevant"),
    ("res_calendar_icalendar.so", "calendars irrelevant"),
    ("res_phoneprov.so", "phone provisioning irrelevant"),
    ("res_pjsip_phoneprov_provider.so", "phone provisioning irrelevant"),
    ("res_smdi.so", "needs a serial SMDI link"),
    ("app_festival.so", "needs a festival server"),
    ("res_stir_shaken.so", "needs certificates"),
    ("res_pjsip_stir_shaken.so", "needs res_stir_shaken"),
    ("res_aeap.so", "external speech engines irrelevant"),
    ("res_speech_aeap.so", "external speech engines irrelevant"),
    ("app_alarmreceiver.so", "alarm panels irrelevant"),
    ("app_minivm.so", "app_voicemail is enough"),
    ("app_followme.so", "find-me/follow-me irrelevant"),
    ("res_clialiases.so", "no CLI aliases"),
    ("res_http_media_cache.so", "no media from URLs"),
    ("res_adsi.so", "deprecated, warns at load"),
    ("app_adsiprog.so", "needs res_adsi"),
    ("app_getcpeid.so", "needs res_adsi"),
    ("res_corosync.so", "no cluster"),
    ("res_resolver_unbound.so", "system resolver is enough"),
)

# Debian's core sounds hold real silence frames; hold "music" made of them keeps
# audio flowing (AMD and fax need frames, not gaps) without extra packages.
_MOH_SUBDIR = "sounds/en/silence"

# Tone sets copied from Asterisk's indications.conf.sample.
_INDICATIONS = """\
[general]
country = us

[us]
description = United States / North America
ringcadence = 2000,4000
dial = 350+440
busy = 480+620/500,0/500
ring = 440+480/2000,0/4000
congestion = 480+620/250,0/250
callwaiting = 440/300,0/10000
dialrecall = !350+440/100,!0/100,!350+440/100,!0/100,!350+440/100,!0/100,350+440
record = 1400/500,0/15000
info = !950/330,!1400/330,!1800/330,0
stutter = !350+440/100,!0/100,!350+440/100,!0/100,!350+440/100,!0/100,350+440

[uk]
description = United Kingdom
ringcadence = 400,200,400,2000
dial = 350+440
busy = 400/375,0/375
congestion = 400/400,0/350,400/225,0/525
ring = 400+450/400,0/200,400+450/400,0/2000
callwaiting = 400/100,0/4000
record = 1400/500,0/60000
info = 950/330,0/15,1400/330,0/15,1800/330,0/1000

[de]
description = Germany
ringcadence = 1000,4000
dial = 425
busy = 425/480,0/480
ring = 425/1000,0/4000
congestion = 425/240,0/240
record = 1400/80,0/15000
info = 950/330,1400/330,1800/330,0/1000

[cn]
description = China
ringcadence = 1000,4000
dial = 450
busy = 450/350,0/350
ring = 450/1000,0/4000
congestion = 450/700,0/700
callwaiting = 450/400,0/4000
dialrecall = 450
record = 950/400,0/10000
info = 450/100,0/100,450/100,0/100,450/100,0/100,450/400,0/400
"""


def header(filename: str, purpose: str) -> str:
    """The comment block opening every generated file."""
    return (
        f"; {filename}: generated by callcenter lab (callcenter/lab/asterisk_base.py)"
        " -- do not edit;\n"
        "; `callcenter lab up` rewrites it on every start.\n"
        f"; {purpose}\n\n"
    )


def _section(name: str, items: Iterable[tuple[str, str]]) -> str:
    lines = [f"[{name}]"]
    lines.extend(f"{key} = {value}" for key, value in items)
    return "\n".join(lines) + "\n"


def render_asterisk_conf(dirs: AsteriskDirectories) -> str:
    """``asterisk.conf``: per-instance directories and quiet, predictable options."""
    directories = _section(
        "directories",
        [
            ("astetcdir", dirs.etc),
            ("astmoddir", dirs.modules),
            ("astvarlibdir", dirs.var_lib),
            ("astdbdir", dirs.db),
            ("astkeydir", dirs.keys),
            ("astdatadir", dirs.data),
            ("astagidir", dirs.agi),
            ("astspooldir", dirs.spool),
            ("astrundir", dirs.run),
            ("astlogdir", dirs.log),
            ("astcachedir", dirs.cache),
            ("astsbindir", dirs.sbin),
        ],
    )
    options = _section(
        "options",
        [
            ("documentation_language", "en_US"),
            ("defaultlanguage", "en"),
            ("verbose", "3"),
            ("debug", "0"),
            ("dumpcore", "no"),
            ("hideconnect", "yes"),
            ("lockconfdir", "no"),
            ("live_dangerously", "no"),
            # Lab parties are Local channels sitting in Wait(): without this they send no
            # audio frames and MixMonitor writes empty files. Real phones send RTP anyway.
            ("transmit_silence", "yes"),
        ],
    )
    return (
        header(
            "asterisk.conf", "Selected with `asterisk -C`; one instance, its own dirs."
        )
        + directories
        + "\n"
        + options
    )


def render_modules_conf(
    required: Sequence[str] = REQUIRED_MODULES,
    noload: Sequence[tuple[str, str]] = NOLOAD_MODULES,
) -> str:
    """``modules.conf``: autoload, ``require`` what the engine needs, skip the rest."""
    lines = ["[modules]", "autoload = yes", ""]
    lines.append("; needed by the call center: boot fails loudly without them")
    lines.extend(f"require = {module}" for module in required)
    lines.append("")
    lines.append(
        "; never loaded in the lab (fixed ports, missing services, irrelevant)"
    )
    lines.extend(f"noload = {module} ; {reason}" for module, reason in noload)
    return (
        header("modules.conf", "Autoload everything except modules listed as noload.")
        + "\n".join(lines)
        + "\n"
    )


def render_logger_conf() -> str:
    """``logger.conf``: ``messages.log`` in the instance log dir, plus the console."""
    general = _section(
        "general",
        [
            ("dateformat", "%F %T.%3q"),
            ("use_callids", "yes"),
            ("queue_log", "yes"),
        ],
    )
    logfiles = _section(
        "logfiles",
        [
            ("console", "notice,warning,error"),
            ("messages.log", "notice,warning,error,verbose"),
        ],
    )
    return (
        header("logger.conf", "Logs go to astlogdir of this instance.")
        + general
        + "\n"
        + logfiles
    )


def render_http_conf(http_port: int, bindaddr: str = "127.0.0.1") -> str:
    """``http.conf``: the built-in HTTP server on loopback (Prometheus, websockets)."""
    return header("http.conf", "Per-instance HTTP port.") + _section(
        "general",
        [
            ("enabled", "yes"),
            ("bindaddr", bindaddr),
            ("bindport", str(http_port)),
            ("servername", "callcenter-lab"),
            ("enablestatic", "no"),
            ("tlsenable", "no"),
        ],
    )


def render_rtp_conf(rtp_start: int, rtp_end: int) -> str:
    """``rtp.conf``: a per-instance RTP range, so instances never share media ports."""
    if not 1024 <= rtp_start < rtp_end <= 65535:
        raise ValueError(f"bad RTP range {rtp_start}-{rtp_end}")
    return header("rtp.conf", "Per-instance RTP port range.") + _section(
        "general",
        [
            ("rtpstart", str(rtp_start)),
            ("rtpend", str(rtp_end)),
            ("strictrtp", "yes"),
            ("icesupport", "no"),
        ],
    )


def render_prometheus_conf(uri: str = "metrics") -> str:
    """``prometheus.conf``: metrics at ``http://127.0.0.1:<http port>/<uri>``."""
    return header(
        "prometheus.conf", "res_prometheus on the instance HTTP server."
    ) + _section(
        "general",
        [
            ("enabled", "yes"),
            ("core_metrics_enabled", "yes"),
            ("uri", uri),
        ],
    )


def default_moh_directory(data_dir: str) -> str:
    """The core sounds' ``silence`` directory under an Asterisk data directory."""
    return f"{data_dir.rstrip('/')}/{_MOH_SUBDIR}"


def render_musiconhold_conf(directory: str) -> str:
    """``musiconhold.conf``: a ``default`` class playing the files in ``directory``."""
    return (
        header("musiconhold.conf", "Hold audio is silence from the core sounds.")
        + _section("general", [])
        + "\n"
        + _section("default", [("mode", "files"), ("directory", directory)])
    )


def render_manager_conf(
    ami_port: int, users: Sequence[ManagerUser], bindaddr: str = "127.0.0.1"
) -> str:
    """A complete ``manager.conf`` (used when the caller supplies none)."""
    general = _section(
        "general",
        [
            ("enabled", "yes"),
            ("port", str(ami_port)),
            ("bindaddr", bindaddr),
            ("displayconnects", "no"),
        ],
    )
    text = header("manager.conf", "AMI on loopback.") + general
    for user in users:
        text = add_manager_user(text, user)
    return text


def add_manager_user(manager_conf: str, user: ManagerUser) -> str:
    """Append one AMI user section to a ``manager.conf`` text."""
    if not user.name or any(c in user.name for c in "[]\n;="):
        raise ValueError(f"bad AMI user name {user.name!r}")
    if any(c in user.secret for c in "\n;"):
        raise ValueError("AMI secret must not hold ';' or a newline")
    body = (
        manager_conf
        if manager_conf.endswith("\n") or not manager_conf
        else manager_conf + "\n"
    )
    return (
        body
        + "\n"
        + _section(
            user.name,
            [
                ("secret", user.secret),
                ("deny", "0.0.0.0/0.0.0.0"),
                ("permit", user.permit),
                ("read", user.read),
                ("write", user.write),
            ],
        )
    )


def _quiet(
    filename: str, purpose: str, *sections: tuple[str, list[tuple[str, str]]]
) -> str:
    text = header(filename, purpose)
    return text + "\n".join(_section(name, items) for name, items in sections)


_AMD_DEFAULTS = [
    ("initial_silence", "2500"),
    ("greeting", "1500"),
    ("after_greeting_silence", "800"),
    ("total_analysis_time", "5000"),
    ("min_word_length", "100"),
    ("between_words_silence", "50"),
    ("maximum_number_of_words", "2"),
    ("silence_threshold", "256"),
    ("maximum_word_length", "5000"),
]


def render_base_config(
    dirs: AsteriskDirectories,
    *,
    http_port: int,
    rtp_start: int,
    rtp_end: int,
    required_modules: Sequence[str] = REQUIRED_MODULES,
    moh_directory: str | None = None,
) -> dict[str, str]:
    """Every plumbing file of one instance, as ``{filename: text}``.

    ``moh_directory`` holds the default hold audio (default: the core sounds' silence).

    Besides the files that carry instance settings, it holds a quiet default for every
    config file a loaded module would otherwise complain about at boot, including empty
    ``pjsip.conf`` and ``extensions.conf`` that the project's files replace.
    """
    return {
        "asterisk.conf": render_asterisk_conf(dirs),
        "modules.conf": render_modules_conf(required_modules),
        "logger.conf": render_logger_conf(),
        "http.conf": render_http_conf(http_port),
        "rtp.conf": render_rtp_conf(rtp_start, rtp_end),
        "udptl.conf": _quiet(
            "udptl.conf",
            "T.38 UDPTL ports share the instance RTP range.",
            ("general", [("udptlstart", str(rtp_start)), ("udptlend", str(rtp_end))]),
        ),
        "prometheus.conf": render_prometheus_conf(),
        "musiconhold.conf": render_musiconhold_conf(
            moh_directory or default_moh_directory(dirs.data)
        ),
        "indications.conf": header("indications.conf", "Call progress tones.")
        + _INDICATIONS,
        "cdr.conf": _quiet(
            "cdr.conf",
            "CDRs off: the engine keeps its own records.",
            ("general", [("enable", "no")]),
        ),
        "cel.conf": _quiet("cel.conf", "CEL off.", ("general", [("enable", "no")])),
        "amd.conf": _quiet(
            "amd.conf", "Asterisk's AMD defaults.", ("general", _AMD_DEFAULTS)
        ),
        "ari.conf": _quiet(
            "ari.conf",
            "ARI off: the engine speaks AMI.",
            ("general", [("enabled", "no")]),
        ),
        "stasis.conf": _quiet(
            "stasis.conf",
            "Stasis defaults.",
            ("taskpool", []),
            ("declined_message_types", []),
        ),
        "confbridge.conf": _quiet(
            "confbridge.conf", "Default bridge and user profiles.", ("general", [])
        ),
        "res_fax.conf": _quiet("res_fax.conf", "res_fax defaults.", ("general", [])),
        "queuerules.conf": header("queuerules.conf", "No penalty rules."),
        "voicemail.conf": _quiet("voicemail.conf", "No mailboxes.", ("general", [])),
        "agents.conf": _quiet(
            "agents.conf", "No app_agent_pool agents.", ("general", [])
        ),
        "features.conf": _quiet("features.conf", "Asterisk defaults.", ("general", [])),
        "ccss.conf": _quiet("ccss.conf", "Call completion defaults.", ("general", [])),
        "res_parking.conf": _quiet(
            "res_parking.conf", "One default parking lot.", ("general", [])
        ),
        "pjproject.conf": _quiet(
            "pjproject.conf",
            "PJSIP stack log levels.",
            ("startup", [("log_level", "default")]),
        ),
        "acl.conf": header("acl.conf", "No named ACLs."),
        "geolocation.conf": header("geolocation.conf", "No geolocation profiles."),
        "pjsip_wizard.conf": header("pjsip_wizard.conf", "No wizard objects."),
        "pjsip_notify.conf": header("pjsip_notify.conf", "No NOTIFY templates."),
        "websocket_client.conf": header(
            "websocket_client.conf", "No websocket clients."
        ),
        "chan_websocket.conf": header("chan_websocket.conf", "No websocket channels."),
        "pjsip.conf": header(
            "pjsip.conf", "Empty default; the project's pjsip.conf replaces it."
        ),
        "queues.conf": _quiet(
            "queues.conf",
            "Empty default; the project's queues.conf replaces it.",
            ("general", []),
        ),
        "extensions.conf": _quiet(
            "extensions.conf",
            "Empty default; the project's extensions.conf replaces it.",
            ("general", [("static", "yes"), ("writeprotect", "yes")]),
        ),
    }


# The files render_base_config returns.
BASE_FILES: tuple[str, ...] = tuple(
    render_base_config(
        AsteriskDirectories.for_instance("/x", DEBIAN_INSTALLATION),
        http_port=8088,
        rtp_start=10000,
        rtp_end=20000,
    )
)


def merge_project_files(
    base: Mapping[str, str], project: Mapping[str, str]
) -> dict[str, str]:
    """Base files overlaid with the project's; ``asterisk.conf`` stays the lab's."""
    for name in project:
        if name == "asterisk.conf":
            raise ValueError(
                "asterisk.conf belongs to the lab; the project may not replace it"
            )
        if "/" in name or name.startswith(".") or not name:
            raise ValueError(f"bad config file name {name!r}")
    merged = dict(base)
    merged.update(project)
    return merged
