"""The shipped Grafana dashboard and Prometheus alert rules: well-formed, and every metric their expressions name is
one a real bot exports (read from its /metrics after a job ran, never from a list kept here)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.botprocess import ROOT
from tests.e2e import final_reply, free_port, option, running_bot
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.flux_api import FakeFlux

DASHBOARD = ROOT / "ops" / "grafana-dashboard.json"
ALERTS = ROOT / "ops" / "prometheus-alerts.yml"
#: Series Prometheus makes itself for every target; the bot cannot export them.
PROMETHEUS_SERIES = frozenset(
    {"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_series_added", "ALERTS", "ALERTS_FOR_STATE"}
)
#: The series a family of each type is queried by (a counter family `x` is the series `x_total`).
SERIES_SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}
#: PromQL words that are neither metrics nor followed by "(" (aggregations and functions are).
KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "inf", "nan", "start", "end"})
#: Label lists: `by (a, b)`, `on (a)`, `group_left (a)`, ...
LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", re.I)
IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (Grafana's `$variables` allowed)."""
    text = re.sub(r"\$\{?\w+\}?", "1", expr)  # Grafana variables, wherever they stand
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', text)  # string literals
    text = re.sub(r"#[^\n]*", "", text)  # comments
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges and subqueries
    text = LABEL_LISTS.sub("", text)
    names = set()
    for found in IDENTIFIER.finditer(text):
        word, before = found.group(), text[: found.start()]
        if word.lower() in KEYWORDS or re.match(r"\s*\(", text[found.end() :]):
            continue  # a keyword, or a function or aggregation
        if re.search(r"[0-9.]$", before):
            continue  # the tail of a number or duration: 1e3, 0x1f, 5m
        names.add(word)
    return names


def unknown_metrics(exprs: Iterable[str], exported: set[str]) -> dict[str, set[str]]:
    """Each expression that names a metric neither the bot nor Prometheus has, with those names."""
    unknown = {expr: metric_names(expr) - exported - PROMETHEUS_SERIES for expr in exprs}
    return {expr: names for expr, names in unknown.items() if names}


def exported_series(exposition: str) -> set[str]:
    """Every series name a /metrics text offers, families without samples yet included."""
    return {
        family.name + suffix
        for family in text_string_to_metric_families(exposition)
        for suffix in SERIES_SUFFIXES[family.type]
    }


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside collapsed rows too."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    """The PromQL of every panel target and of every query variable (`label_values(<expr>, label)`)."""
    exprs = [target["expr"] for panel in panels(dashboard) for target in panel.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
            found = re.fullmatch(r"label_values\((.+),\s*\w+\)", query)
            assert found, f"variable {variable['name']}: {query}"
            exprs.append(found[1])
    return exprs


def alert_rules() -> list[dict[str, Any]]:
    """Every rule of the alert rules file."""
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_the_extractor_finds_metrics_not_functions_labels_or_numbers() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (le, provider) (rate(fluxbot_provider_request_duration_seconds_bucket"
        '{instance=~"$instance", call="submit"}[$__rate_interval])))'
    )
    assert metric_names(expr) == {"fluxbot_provider_request_duration_seconds_bucket"}
    expr = (
        "sum(rate(a_total[5m] offset 1h)) / on (instance) group_left (shard) b > 1e3"
        " and max without (instance) (delta(c[30m:1m])) > 0x1f or absent(up{job='x'}) unless d bool == inf"
    )
    assert metric_names(expr) == {"a_total", "b", "c", "up", "d"}
    assert metric_names('count(fluxbot_health_check{check="a{b}"} == 0) or vector(0)') == {"fluxbot_health_check"}


def test_an_expression_naming_a_metric_the_bot_lacks_is_reported() -> None:
    exported = {"fluxbot_jobs_finished_total", "fluxbot_jobs"}
    good = 'sum by (status) (rate(fluxbot_jobs_finished_total{instance=~"$instance"}[5m])) and up == 1'
    bad = 'rate(fluxbot_jobs_finishd_total[5m]) / fluxbot_jobs{state="queued"}'
    assert unknown_metrics([good, bad], exported) == {bad: {"fluxbot_jobs_finishd_total"}}
    counter = "# HELP x_total X.\n# TYPE x_total counter\n# HELP h H.\n# TYPE h histogram\n"
    assert exported_series(counter) == {"x_total", "h_bucket", "h_sum", "h_count"}
    assert unknown_metrics(["rate(x[5m])", "h"], exported_series(counter)) == {"rate(x[5m])": {"x"}, "h": {"h"}}


def test_the_dashboard_is_a_grafana_dashboard_on_a_prometheus_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert (dashboard["uid"], dashboard["title"]) == ("fluxbot", "fluxbot")
    assert isinstance(dashboard["schemaVersion"], int)
    [source] = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert (source["name"], source["query"]) == ("datasource", "prometheus")
    all_panels = list(panels(dashboard))
    assert len({panel["id"] for panel in all_panels}) == len(all_panels), "panel ids are unique"
    for panel in all_panels:
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}, panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
            assert panel["targets"], panel["title"]
            for target in panel["targets"]:
                assert target["datasource"] == panel["datasource"], panel["title"]
                assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]
    titles = " | ".join(panel["title"].lower() for panel in all_panels)
    for topic in (
        "jobs by state", "throughput", "failures by kind", "provider errors", "provider request latency",
        "delivery latency", "edit failures", "queue length",
    ):  # fmt: skip
        assert topic in titles, f"no panel on {topic}"


def test_the_alert_rules_cover_what_an_operator_is_woken_for() -> None:
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(set(names)) == len(names)
    for expected in (
        "FluxbotDown", "FluxbotGatewayDisconnected", "FluxbotDatabaseNotWritable", "FluxbotProviderErrorRateHigh",
        "FluxbotQueueGrowing", "FluxbotDeliveriesFailing",
    ):  # fmt: skip
        assert expected in names
    for rule in rules:
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert set(rule["annotations"]) == {"summary", "description"}, rule["alert"]
        assert all(rule["annotations"].values()), rule["alert"]


async def test_every_expression_names_a_metric_the_bot_exports(
    fakes: tuple[FakeDiscord, FakeFlux], tmp_path: Path
) -> None:
    discord, flux = fakes
    env = {"METRICS_PORT": str(free_port()), "METRICS_HOST": "127.0.0.1"}
    async with running_bot(discord, flux, tmp_path, **env) as world:
        done = await discord.send_slash_command("imagine", [option("prompt", "a lighthouse")])
        await final_reply(world, done, "Done")
        exported = exported_series(await world.metrics())
    assert {"fluxbot_jobs_finished_total", "fluxbot_delivery_seconds_bucket", "fluxbot_jobs"} <= exported
    exprs = dashboard_exprs(json.loads(DASHBOARD.read_text())) + [rule["expr"] for rule in alert_rules()]
    assert len(exprs) > 20
    assert all(metric_names(expr) for expr in exprs), "every expression names some metric"
    assert unknown_metrics(exprs, exported) == {}
