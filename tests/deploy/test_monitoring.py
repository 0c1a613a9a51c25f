"""Prometheus, Alertmanager and Grafana files agree with the code and with each other.

Every dashboard panel's query and every alert's expression names only metrics a process
exports, with labels those metrics carry; the names exported are collected from the real
metric objects and collectors each process builds (``ApiMetrics`` and ``EdgeMetrics``,
``WorkMetrics`` and Dramatiq's middleware, the scheduler's metrics and its queue-state
collector), not from a list kept here. ``promtool`` checks the rules and the scrape
config and runs the alert rules' unit tests; ``amtool`` checks Alertmanager's config.
Under ``CI=true`` a missing tool fails the run (``.ci/run`` installs them); elsewhere
those tests skip, saying why.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from prometheus_client.metrics import MetricWrapperBase

import scheduler.metrics
from infra.metrics.api import ApiMetrics
from infra.metrics.edge import EdgeMetrics
from infra.metrics.queue_state import QueueStateCollector
from infra.metrics.work import WorkMetrics
from infra.queue_report import PIPELINES
from infra.settings_reference import EXAMPLE_ENV, README
from infra.store.records import RelayBacklog

DEPLOY = EXAMPLE_ENV.parent
PROMETHEUS = DEPLOY / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS / "prometheus.yml"
ALERTMANAGER_CONFIG = DEPLOY / "alertmanager" / "alertmanager.yml"
GRAFANA = DEPLOY / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
COMPOSE = DEPLOY / "docker-compose.yml"
RULE_TESTS = Path(__file__).with_name("alert_rules_test.yml")
IN_CI = os.environ.get("CI") == "true"
TOOL_TIMEOUT_S = 60

RUNBOOK = "README.md#on-call"
REQUIRED_ALERTS = {
    "SwitchboardDeadLettersGrowing",
    "SwitchboardOldestMessageTooOld",
    "SwitchboardSchedulerSilent",
    "SwitchboardRelayBacklog",
    "SwitchboardJobsStalled",
    "SwitchboardApiErrors",
    "SwitchboardWorkerDown",
}
"""What issue 8 asks to be alerted on: a growing DLQ, an old oldest message, a silent
scheduler, the relay backlog, stalled jobs, API 5xx, a worker down."""

TARGET_LABELS = frozenset({"job", "instance"})
"""Labels Prometheus adds to every scraped series."""

SAMPLE_SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("", "_sum", "_count"),
    "info": ("_info",),
}


# --- what the processes export ----------------------------------------------------------


def _series(metrics: Iterable[Any]) -> dict[str, frozenset[str]]:
    """Sample name -> label names of metric objects and described families."""
    series: dict[str, frozenset[str]] = {}
    for metric in metrics:
        # Both prometheus_client's metric objects and its metric families keep the label
        # names they were declared with here; a family without samples shows no other way.
        labels = frozenset(getattr(metric, "_labelnames", ()))
        families = metric.describe() if isinstance(metric, MetricWrapperBase) else [metric]
        for family in families:
            for suffix in SAMPLE_SUFFIXES[family.type]:
                extra = {"le"} if suffix == "_bucket" else set()
                series[family.name + suffix] = labels | extra
    return series


def _wrappers(owner: object) -> list[MetricWrapperBase]:
    return [value for value in vars(owner).values() if isinstance(value, MetricWrapperBase)]


def _dramatiq_metrics(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Any]:
    """Dramatiq's Prometheus middleware's metrics, as each worker process creates them."""
    from dramatiq.middleware import prometheus

    # Its boot hook points prometheus_client at its directory through the environment:
    # undone after the test, like the directory itself.
    monkeypatch.setattr(prometheus, "DB_PATH", str(tmp_path))
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setenv("prometheus_multiproc_dir", str(tmp_path))
    middleware = prometheus.Prometheus()
    middleware.after_process_boot(None)  # type: ignore[no-untyped-call]
    return _wrappers(middleware)


def _scheduler_metrics() -> Iterator[Any]:
    yield from _wrappers(scheduler.metrics)
    client = redis.Redis(port=1)  # never asked: describe() reads nothing
    try:

        class NoBacklog:
            def relay_backlog(self) -> RelayBacklog:
                raise AssertionError("describe() must not read the inbox")

        collector = QueueStateCollector(client, "ns", PIPELINES, NoBacklog(), leading=lambda: True)
        yield from collector.describe()
    finally:
        client.close()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, frozenset[str]]]:
    """Per process: every sample name it exports, with its label names."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        dramatiq = _dramatiq_metrics(monkeypatch, tmp_path_factory.mktemp("dramatiq"))
    return {
        "api": _series([*_wrappers(ApiMetrics()), *_wrappers(EdgeMetrics())]),
        "worker": _series([*_wrappers(WorkMetrics()), *dramatiq]),
        "scheduler": _series(_scheduler_metrics()),
        # Recorded by Prometheus itself for every target it scrapes.
        "prometheus": {"up": TARGET_LABELS},
    }


@pytest.fixture(scope="module")
def every_series(exported: dict[str, dict[str, frozenset[str]]]) -> dict[str, frozenset[str]]:
    merged: dict[str, frozenset[str]] = {}
    for series in exported.values():
        merged |= series
    return merged


# --- reading PromQL ---------------------------------------------------------------------

_SELECTOR = re.compile(r"(?P<name>[A-Za-z_:][\w:]*)\s*\{(?P<matchers>[^}]*)\}")
_MATCHER = re.compile(r"(?P<label>[A-Za-z_]\w*)\s*(?:=~|!~|!=|=)\s*\"(?P<value>[^\"]*)\"")
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\((?P<labels>[^)]*)\)"
)
_IDENTIFIER = re.compile(r"(?<![\w:.$])(?P<name>[A-Za-z_:][\w:]*)(?P<call>\s*\()?")
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
_KEYWORDS |= {"and", "or", "unless", "inf", "nan"}


def promql_metrics(expr: str) -> set[str]:
    """The metric names an expression selects."""
    text = _GROUPING.sub(" ", expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r'"[^"]*"', " ", text)
    text = re.sub(r"\boffset\s+\w+", " ", text)
    return {
        m["name"]
        for m in _IDENTIFIER.finditer(text)
        if m["call"] is None and m["name"].lower() not in _KEYWORDS
    }


def promql_problems(expr: str, series: dict[str, frozenset[str]], jobs: set[str]) -> list[str]:
    """What in ``expr`` no exported series has: unknown names, labels, scrape jobs."""
    names = promql_metrics(expr)
    problems = [f"{name} is not exported" for name in sorted(names - set(series))]
    known = set(TARGET_LABELS)
    for name in names & set(series):
        known |= series[name]
    for selector in _SELECTOR.finditer(expr):
        labels = series.get(selector["name"], frozenset()) | TARGET_LABELS
        for matcher in _MATCHER.finditer(selector["matchers"]):
            if matcher["label"] not in labels:
                problems.append(f"{selector['name']} has no label {matcher['label']}")
            if matcher["label"] == "job" and matcher["value"] not in jobs:
                problems.append(f"no scrape job {matcher['value']}")
    for grouping in _GROUPING.finditer(expr):
        for label in filter(None, (part.strip() for part in grouping["labels"].split(","))):
            if label not in known:
                problems.append(f"grouped by {label}, which none of {sorted(names)} has")
    return problems


def test_the_promql_reader_finds_names_labels_and_groupings() -> None:
    series = {"a_total": frozenset({"queue"}), "b_bucket": frozenset({"le", "actor"})}
    expr = (
        'histogram_quantile(0.9, sum by (le, actor) (rate(b_bucket{actor="x"}[5m]))) '
        '/ on() group_left sum(rate(a_total{queue=~"q.*", job="api"}[1h] offset 1d)) '
        "or absent(c) and time() - d > 1e3"
    )

    assert promql_metrics(expr) == {"a_total", "b_bucket", "c", "d"}
    assert promql_problems(expr, series, {"api"}) == ["c is not exported", "d is not exported"]
    assert promql_problems('sum by (pipeline) (a_total{actor="x", job="w"})', series, set()) == [
        "a_total has no label actor",
        "no scrape job w",
        "grouped by pipeline, which none of ['a_total'] has",
    ]


# --- the files --------------------------------------------------------------------------


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _rules() -> list[dict[str, Any]]:
    config = _yaml(PROMETHEUS_CONFIG)
    return [
        rule
        for name in config["rule_files"]
        for group in _yaml(PROMETHEUS / name)["groups"]
        for rule in group["rules"]
    ]


def _jobs() -> set[str]:
    return {job["job_name"] for job in _yaml(PROMETHEUS_CONFIG)["scrape_configs"]}


def _targets(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            yield panel["title"], target["expr"]


_DASHBOARD_QUERIES = [
    pytest.param(title, expr, id=f"{path.stem}: {title} #{n}")
    for path in DASHBOARDS
    for n, (title, expr) in enumerate(_targets(json.loads(path.read_text())))
]


@pytest.mark.parametrize(("title", "expr"), _DASHBOARD_QUERIES)
def test_every_dashboard_query_names_exported_metrics_and_their_labels(
    title: str, expr: str, every_series: dict[str, frozenset[str]]
) -> None:
    assert promql_metrics(expr), f"{title}: {expr} selects no metric"
    assert promql_problems(expr, every_series, _jobs()) == [], expr


def test_the_intake_dashboards_5xx_ratio_is_the_api_errors_alerts_expression() -> None:
    [rule] = [rule for rule in _rules() if rule["alert"] == "SwitchboardApiErrors"]
    dashboard = json.loads((GRAFANA / "dashboards" / "switchboard-intake.json").read_text())
    [expr] = [expr for title, expr in _targets(dashboard) if title.startswith("API 5xx ratio")]
    ratio, threshold = rule["expr"].rsplit(">", 1)

    assert float(threshold) == 0.05
    assert re.sub(r"\s+", "", expr) == re.sub(r"\s+", "", ratio)
    # The edge's own answers are counted, which never reach the app's counter.
    assert "switchboard_edge_refused_requests_total" in promql_metrics(expr)


@pytest.mark.parametrize("rule", _rules(), ids=lambda rule: rule["alert"])
def test_every_alert_names_exported_metrics_and_has_a_summary_and_the_runbook_link(
    rule: dict[str, Any], every_series: dict[str, frozenset[str]]
) -> None:
    assert promql_problems(rule["expr"], every_series, _jobs()) == [], rule["expr"]
    assert rule["labels"]["severity"] in {"page", "ticket"}
    assert rule["annotations"]["summary"]
    assert rule["annotations"]["description"]
    assert rule["annotations"]["runbook_url"] == RUNBOOK


def test_the_alerts_the_issue_asks_for_exist_and_the_readme_explains_each() -> None:
    names = [rule["alert"] for rule in _rules()]
    readme = README.read_text()

    assert len(names) == len(set(names))
    assert set(names) >= REQUIRED_ALERTS
    assert "\n## On call\n" in readme  # the anchor every runbook_url points to
    for name in names:
        assert f"| `{name}` |" in readme, f"the README's Alerts table lacks {name}"


def test_the_readme_lists_every_metric_switchboard_exports(
    exported: dict[str, dict[str, frozenset[str]]],
) -> None:
    readme = README.read_text()
    families = {
        re.sub(r"_(bucket|sum|count)$", "", name)
        for process in ("api", "worker", "scheduler")
        for name in exported[process]
        if name.startswith("switchboard_")
    }
    missing = sorted(name for name in families if f"`{name}`" not in readme)
    assert missing == []


def test_dashboards_are_provisioned_from_the_directory_compose_mounts_and_use_the_datasource() -> (
    None
):
    provider = _yaml(GRAFANA / "provisioning" / "dashboards" / "switchboard.yml")["providers"][0]
    grafana = _yaml(COMPOSE)["services"]["grafana"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in grafana["volumes"]
    assert [path.stem for path in DASHBOARDS] == [
        "switchboard-dead-letters",
        "switchboard-intake",
        "switchboard-pipelines",
        "switchboard-queues",
    ]
    uids = set()
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        assert dashboard["uid"] == path.stem
        uids.add(dashboard["uid"])
        assert [v["name"] for v in dashboard["templating"]["list"]] == ["datasource"]
        ids = [panel["id"] for panel in dashboard["panels"]]
        assert len(ids) == len(set(ids)), path.name
        for panel in dashboard["panels"]:
            assert panel["type"] in {"timeseries", "stat"}, panel["title"]
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["targets"], panel["title"]
            position = panel["gridPos"]
            assert position["x"] + position["w"] <= 24, panel["title"]
    assert len(uids) == len(DASHBOARDS)


def test_prometheus_scrapes_each_process_where_compose_serves_its_metrics() -> None:
    services = _yaml(COMPOSE)["services"]
    ports = {
        "api": services["api"]["environment"]["SWITCHBOARD_API__PROMETHEUS_PORT"],
        "worker": services["worker"]["environment"]["SWITCHBOARD_WORKER__PROMETHEUS_PORT"],
        "scheduler": services["scheduler"]["environment"]["SWITCHBOARD_SCHEDULER__PROMETHEUS_PORT"],
    }
    targets = {
        job["job_name"]: target
        for job in _yaml(PROMETHEUS_CONFIG)["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }

    # That each process listens there on every interface, not only its container's
    # loopback, is tests/deploy/test_compose.py's to check.
    assert targets == {f"switchboard-{name}": f"{name}:{port}" for name, port in ports.items()}
    [alertmanagers] = _yaml(PROMETHEUS_CONFIG)["alerting"]["alertmanagers"]
    assert alertmanagers["static_configs"][0]["targets"] == ["alertmanager:9093"]
    assert (
        "./alertmanager/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro"
        in (services["alertmanager"]["volumes"])
    )
    mounted = {volume.split(":")[1] for volume in services["prometheus"]["volumes"]}
    for name in _yaml(PROMETHEUS_CONFIG)["rule_files"]:
        assert f"/etc/prometheus/{name}" in mounted


def test_alertmanager_routes_every_alert_to_a_receiver_it_defines() -> None:
    config = _yaml(ALERTMANAGER_CONFIG)
    receivers = {receiver["name"] for receiver in config["receivers"]}

    def routes(route: dict[str, Any]) -> Iterator[dict[str, Any]]:
        yield route
        for child in route.get("routes", []):
            yield from routes(child)

    assert {route.get("receiver", "on-call") for route in routes(config["route"])} <= receivers
    webhooks = [hook for receiver in config["receivers"] for hook in receiver["webhook_configs"]]
    assert all(hook["send_resolved"] for hook in webhooks)


# --- the tools ----------------------------------------------------------------------------


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (Debian package {package}; .ci/run installs it)"
        if IN_CI:
            pytest.fail(f"{message}: CI=true requires it")
        pytest.skip(message)
    return path


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=False)


def test_promtool_checks_every_rule_file() -> None:
    promtool = _tool("promtool", "prometheus")
    files = sorted(PROMETHEUS.glob("*.yml"))
    rule_files = [path for path in files if "groups" in _yaml(path)]
    assert [path.name for path in rule_files] == _yaml(PROMETHEUS_CONFIG)["rule_files"]
    assert set(files) - set(rule_files) == {PROMETHEUS_CONFIG}

    done = _run(promtool, "check", "rules", *map(str, rule_files))

    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_checks_the_scrape_config_and_the_rules_it_loads() -> None:
    done = _run(_tool("promtool", "prometheus"), "check", "config", str(PROMETHEUS_CONFIG))

    assert done.returncode == 0, done.stdout + done.stderr


def test_the_alert_rules_fire_when_they_should_and_not_before() -> None:
    done = _run(_tool("promtool", "prometheus"), "test", "rules", str(RULE_TESTS))

    assert done.returncode == 0, done.stdout + done.stderr


def test_amtool_checks_the_alertmanager_config() -> None:
    amtool = _tool("amtool", "prometheus-alertmanager")

    done = _run(amtool, "check-config", str(ALERTMANAGER_CONFIG))

    assert done.returncode == 0, done.stdout + done.stderr
