"""SPEC J2: the alert rules, the Grafana dashboard and Prometheus' scrape configuration name metrics that exist,
targets that compose runs, and the runbook sections they point to (parsed: no Prometheus or Grafana runs here)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import yaml
from prometheus_client import generate_latest
from prometheus_client.core import CollectorRegistry

from services.metrics import BusinessCollector

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
# The SDK's metric families seen on a worker's exporter (make run, temporalio 1.35), histogram suffixes removed.
SDK_METRICS = {"temporal_workflow_task_schedule_to_start_latency", "temporal_activity_execution_latency",
               "temporal_worker_task_slots_available", "temporal_workflow_completed"}
METRIC = re.compile(r"\b((?:billing|temporal)_[a-z_]+)")


def business_metrics(db) -> set[str]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BusinessCollector(db, now=lambda: datetime(2027, 2, 1, tzinfo=timezone.utc)))
    return {line.split(" ")[2] for line in generate_latest(registry).decode().splitlines()
            if line.startswith("# TYPE")} | {"billing_amount_charged_total"}


def known(name: str, business: set[str]) -> bool:
    base = re.sub(r"_(bucket|sum|count)$", "", name)
    return name in business or base in SDK_METRICS


def test_alert_rules_use_existing_metrics_and_link_the_runbook(db):
    business = business_metrics(db)
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())["groups"][0]["rules"]
    names = {rule["alert"] for rule in rules}
    assert {"MonthEndNotFinishedBy0600", "FailedPaymentsGrowing"} <= names
    runbook = (ROOT / "docs" / "runbook.md").read_text()
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", runbook, re.M)}
    for rule in rules:
        for name in METRIC.findall(rule["expr"]):
            assert known(name, business), f"{rule['alert']}: unknown metric {name}"
        assert rule["annotations"]["runbook"].split("#")[1] in anchors, rule["alert"]
    month_end = next(r for r in rules if r["alert"] == "MonthEndNotFinishedBy0600")
    assert "6 * 3600" in month_end["expr"] and 'finished="false"' in month_end["expr"]


def test_dashboard_panels_use_existing_metrics(db):
    business = business_metrics(db)
    dashboard = json.loads((DEPLOY / "grafana" / "billing-dashboard.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    used = {name for expr in exprs for name in METRIC.findall(expr)}
    assert all(known(name, business) for name in used), sorted(n for n in used if not known(n, business))
    assert any(n.startswith("temporal_") for n in used) and any(n.startswith("billing_") for n in used)


def test_prometheus_scrapes_the_api_and_every_worker():
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    api = jobs["billing-api"]
    host, port = api["static_configs"][0]["targets"][0].split(":")
    assert host in services and f"--port {port}" in " ".join(services[host]["command"]).replace(", ", " ")
    assert api["authorization"]["credentials_file"] == "/run/secrets/metrics-key"
    worker = jobs["billing-worker"]["dns_sd_configs"][0]
    assert worker["names"] == ["billing-worker"] and "billing-worker" in services
    address = services["billing-worker"]["environment"]["BILLING_SDK_METRICS_ADDRESS"]
    assert address.endswith(f":{worker['port']}")
    prometheus = services["prometheus"]
    assert "metrics-key" in prometheus["secrets"]
    mounted = " ".join(prometheus["volumes"])
    assert "alerts.yml" in mounted and "prometheus.yml" in mounted
