"""Grafana datasource provisioning for Thanos Query, Loki and Tempo (trace-to-logs link).
Keys checked against tests/upstream/grafana-datasource.keys."""

from __future__ import annotations

from typing import Any

from components.core.config import StackConfig


def _tenant_suffix(cfg: StackConfig, tenant: str) -> str:
    return f"-{tenant}" if cfg.multi_tenant else ""


def _tenant_header(cfg: StackConfig, tenant: str) -> dict[str, Any]:
    if not cfg.multi_tenant:
        return {}
    return {"jsonData": {"httpHeaderName1": "X-Scope-OrgID"}, "secureJsonData": {"httpHeaderValue1": tenant}}


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = {**out.get(key, {}), **value} if isinstance(value, dict) else value
    return out


def render(cfg: StackConfig, urls: dict[str, str]) -> dict[str, Any]:
    """`urls` maps "thanos", "loki", "tempo" to the URLs Grafana reaches them at."""
    enabled = cfg.tools.enabled()
    datasources: list[dict[str, Any]] = []
    # Thanos only where this stack runs a Query (not on a spoke, which passes no "thanos" URL).
    metrics = "thanos" in enabled and bool(urls.get("thanos"))
    if metrics:
        datasources.append({
            "name": "Thanos", "uid": "thanos", "type": "prometheus", "access": "proxy", "url": urls["thanos"], "isDefault": True,
            "jsonData": {"prometheusType": "Thanos", "timeInterval": "30s"},
        })
    for tenant in cfg.tenants:
        suffix = _tenant_suffix(cfg, tenant)
        if "loki" in enabled:
            loki: dict[str, Any] = {"name": f"Loki{suffix}", "uid": f"loki{suffix}", "type": "loki", "access": "proxy", "url": urls["loki"], "jsonData": {"maxLines": 1000}}
            if "tempo" in enabled:
                loki["jsonData"]["derivedFields"] = [
                    # `$$` is Grafana provisioning's escape for a literal `$`.
                    {"name": "TraceID", "matcherRegex": r"(?:traceID|trace_id)=(\w+)", "datasourceUid": f"tempo{suffix}", "url": "$${__value.raw}"}
                ]
            datasources.append(_merge(loki, _tenant_header(cfg, tenant)))
        if "tempo" in enabled:
            tempo: dict[str, Any] = {"name": f"Tempo{suffix}", "uid": f"tempo{suffix}", "type": "tempo", "access": "proxy", "url": urls["tempo"], "jsonData": {}}
            if "loki" in enabled:
                tempo["jsonData"]["tracesToLogsV2"] = {
                    "datasourceUid": f"loki{suffix}",
                    "spanStartTimeShift": "-5m",
                    "spanEndTimeShift": "5m",
                    "filterByTraceID": True,
                    "filterBySpanID": False,
                    "tags": [{"key": "service.name", "value": "service_name"}],
                }
            # No `serviceMap`: it would query service-graph metrics that only Tempo's
            # metrics-generator produces, and none runs here.
            datasources.append(_merge(tempo, _tenant_header(cfg, tenant)))
    return {"apiVersion": 1, "datasources": datasources}
