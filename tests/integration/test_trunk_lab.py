"""The site's SIP trunk, on the real lab Asterisk 22: the rendered pjsip.conf includes
``pjsip_trunk.conf`` from its own directory (``#tryinclude``; docs/deploy.md), a file the
site keeps and rendering never writes.

Here the trunk points back at the lab Asterisk itself, identified by its address: a call
placed out on ``PJSIP/400@pstn`` comes back in on the trunk, lands in ``[from-pstn]`` and
reaches the hotline, as a caller of the 400 number would. Every other lab test runs
without the file: a missing trunk file is no error.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from callcenter.asterisk.render import TRUNK_FILE
from callcenter.cli import lab_project_files
from callcenter.lab.instance import InstanceEndpoints, free_engine_port
from callcenter.secrets import load_or_create_secrets
from callcenter.settings import load_settings
from tests.labfixture import LabFactory

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]


def _trunk(sip_host: str, sip_port: int) -> str:
    return f"""\
; the site's trunk: here the lab Asterisk itself
[pstn]
type = endpoint
transport = transport-udp
context = from-pstn
disallow = all
allow = ulaw,alaw
aors = pstn

[pstn]
type = aor
contact = sip:{sip_host}:{sip_port}

[pstn]
type = identify
endpoint = pstn
match = {sip_host}
"""


def test_the_sites_trunk_file_carries_a_400_call_into_the_hotline(lab_factory: LabFactory, tmp_path: Path) -> None:
    base = load_settings(ROOT / "config")
    settings = replace(base, site=replace(base.site, state_dir=tmp_path / "var"))
    secrets = load_or_create_secrets(settings.site.state_dir, [a.id for a in settings.agents])
    render = lab_project_files(settings, free_engine_port(), secrets=secrets, agi_host="127.0.0.1")

    def files(endpoints: InstanceEndpoints) -> dict[str, str]:
        rendered = render(endpoints)
        assert rendered["pjsip.conf"].rstrip().endswith(f"#tryinclude {TRUNK_FILE}")
        return {**rendered, TRUNK_FILE: _trunk(endpoints.sip_host, endpoints.sip_port)}

    handle = lab_factory.start(project_files=files)
    instance = handle.instance
    shown = instance.cli_command("pjsip show endpoint pstn")
    assert "from-pstn" in shown, shown
    assert "agent1001" in instance.cli_command("pjsip show endpoints")  # the rendered ones still there

    instance.cli_command("channel originate PJSIP/400@pstn application Wait 15")
    deadline = time.monotonic() + 15
    inbound: list[str] = []
    while time.monotonic() < deadline and not inbound:
        concise = instance.cli_command("core show channels concise")
        # Channel!Context!Extension!Priority!State!Application!Data!...
        inbound = [line for line in concise.splitlines()
                   if line.startswith("PJSIP/pstn-") and line.split("!")[1] == "hotline"]
        time.sleep(0.3)
    assert inbound, f"no call came in on the trunk to the hotline: {concise}"
