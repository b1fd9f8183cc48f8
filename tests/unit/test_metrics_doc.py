"""docs/metrics.md lists every metric the engine registers, and names none it does not;
docs/prometheus-alerts.yml is valid rule-file YAML naming only metrics that exist."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry

from callcenter.dialer.service import DialerMetrics
from callcenter.metrics import EngineMetrics, QueueCollector

ROOT = Path(__file__).resolve().parents[2]
NAME = re.compile(r"callcenter_[a-z_]+[a-z]")


def _families() -> dict[str, str]:
    """Every metric family the daemon registers: name -> type."""
    registry = CollectorRegistry()
    EngineMetrics(registry)
    DialerMetrics(registry)
    registry.register(QueueCollector(list))
    return {family.name: family.type for family in registry.collect()}


def _wire_names(families: dict[str, str]) -> set[str]:
    """The names as Prometheus scrapes them (counters with _total, histograms' series)."""
    names = set(families)
    for name, kind in families.items():
        if kind == "counter":
            names.add(f"{name}_total")
        if kind == "histogram":
            names.update(f"{name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
    return names


def test_every_registered_metric_is_documented_and_nothing_else() -> None:
    families = _families()
    text = (ROOT / "docs/metrics.md").read_text(encoding="utf-8")
    documented = set(NAME.findall(text))
    assert sorted(set(families) - documented) == []
    assert sorted(documented - _wire_names(families)) == []


def test_alert_rules_are_rule_file_yaml_naming_existing_metrics() -> None:
    rules_file = ROOT / "docs/prometheus-alerts.yml"
    data = yaml.safe_load(rules_file.read_text(encoding="utf-8"))
    (group,) = data["groups"]
    rules = group["rules"]
    assert len(rules) >= 8
    wire = _wire_names(_families())
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert rule["labels"]["severity"] in ("page", "warn", "info") and rule["annotations"]["summary"]
        used = set(NAME.findall(rule["expr"]))
        assert used and used <= wire, (rule["alert"], sorted(used - wire))
    assert len({rule["alert"] for rule in rules}) == len(rules)
