"""What watches the storage path on Docker-style platforms (local engine and Swarm).

`attach` takes the workloads `workloads.build` declared and adds, next to the Prometheus that is
already there: a scrape job for every component that serves metrics, the alert rules
(renderers/alerts.py) as a rule file, an Alertmanager to route them, one bucket-freshness probe
per tool (renderers/freshness.py), and the storage-path dashboards in Grafana
(renderers/dashboards.py). It derives everything from the workloads themselves, so
a component that is not deployed is neither scraped nor alerted on.

Scrape targets: one static target per workload, by its network alias; a service with several
tasks (Swarm) is discovered through `tasks.<alias>`, which Docker's DNS answers with one record
per task for every alias of a service (moby libnetwork service_common.go addServiceBinding).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Optional

import yaml

from components.core import versions
from components.core.config import StackConfig
from components.containers.workloads import ETCD_PORT, File, Layout, Workload, _credentials_env, _wget
from components.core.renderers import alerts, dashboards, dump, freshness, loki, object_store, prometheus, tempo, thanos

ALERTMANAGER_PORT = 9093
ALERTMANAGER_CONFIG = "/etc/alertmanager/alertmanager.yml"
ALERTMANAGER_DATA = "/alertmanager"
RULES_DIR = "/etc/prometheus/rules"
RULES_FILE = f"{RULES_DIR}/obs-storage.yml"
# Scrape-target label joining a Thanos sidecar to its Prometheus (alerts.Scope.sidecar_join); its
# value is the pair's `replica` external label (workloads.prometheus_pairs).
PAIR_LABEL = "obs_prometheus"
# MinIO serves its metrics without a token only with MINIO_PROMETHEUS_AUTH_TYPE=public
# (minio/minio RELEASE.2025-09-07T16-13-09Z cmd/metrics-router.go); components/docker/minio.py sets it.
MINIO_METRICS = {"minio": "/minio/v2/metrics/cluster", "minio-bucket": "/minio/v2/metrics/bucket"}


def _metrics_port(w: Workload) -> Optional[int]:
    """Where a workload serves /metrics; None for one that serves none."""
    if _job(w.name) == "prometheus":
        return prometheus.PORT
    if w.name.startswith("thanos-"):
        return thanos.HTTP_PORT
    return {
        "loki": loki.HTTP_PORT,
        "tempo": tempo.HTTP_PORT,
        "alertmanager": ALERTMANAGER_PORT,
    }.get(w.name, freshness.PORT if w.name.startswith(f"{freshness.JOB}-") else
          # etcd serves /metrics on its client URL (etcd-io/etcd v3.6.14 server/embed/etcd.go).
          ETCD_PORT if _job(w.name) == "ring-kv" else None)


def _job(name: str) -> str:
    # Numbered families: Receive replicas, probes, ring-store members, the second Prometheus pair.
    for family in ("thanos-receive", freshness.JOB, "ring-kv", "prometheus", "thanos-sidecar"):
        if name.startswith(f"{family}-"):
            return family
    return name


def scrape_configs(cfg: StackConfig, workloads: list[Workload], layout: Layout) -> list[dict[str, Any]]:
    # EC2 fleets (layout.domain): any workload beside Prometheus is a fleet of instances found
    # through its Cloud Map name, however many there are.
    fleet = bool(layout.domain)
    # A single Prometheus scrapes itself; each of an HA pair scrapes both, so that the survivor
    # sees the other one down (ObsStorageTargetDown) and both evaluate the same rules on the same data.
    alone = sum(_job(w.name) == "prometheus" for w in workloads) == 1
    jobs: dict[str, dict[str, Any]] = {}
    for w in workloads:
        port = _metrics_port(w)
        if port is None:
            continue
        job = jobs.setdefault(_job(w.name), {"job_name": _job(w.name), "static_configs": [], "dns_sd_configs": []})
        host = "localhost" if w.name == "prometheus" and alone else w.name
        labels = {PAIR_LABEL: w.prometheus_replica} if w.prometheus_replica else {}
        if w.replicas > 1 or (fleet and w.name not in layout.colocated):
            job["dns_sd_configs"].append({"names": [layout.peers(w.name)], "type": "A", "port": port})
        elif labels:
            job["static_configs"].append({"targets": [f"{host}:{port}"], "labels": labels})
        elif job["static_configs"] and "labels" not in job["static_configs"][-1]:
            job["static_configs"][-1]["targets"].append(f"{host}:{port}")
        else:
            job["static_configs"].append({"targets": [f"{host}:{port}"]})
    if cfg.runs_minio:
        for job, path in MINIO_METRICS.items():
            jobs[job] = {"job_name": job, "metrics_path": path, "static_configs": [{"targets": ["minio:9000"]}]}
    return [{k: v for k, v in job.items() if v != []} for _, job in sorted(jobs.items())]


def scope(cfg: StackConfig, workloads: list[Workload]) -> alerts.Scope:
    names = {_job(w.name) for w in workloads}

    def sel(job: str) -> Optional[str]:
        return f'job="{job}"' if job in names else None

    probed = {w.tool for w in workloads if w.name.startswith(f"{freshness.JOB}-")}
    return alerts.Scope(
        prometheus=sel("prometheus"), sidecar=sel("thanos-sidecar"), receive=sel("thanos-receive"), store=sel("thanos-store"),
        compact=sel("thanos-compact"), query=sel("thanos-query"), loki=sel("loki"), tempo=sel("tempo"),
        freshness=sel(freshness.JOB), alertmanager=sel("alertmanager"), ring=sel("ring-kv"),
        minio='job="minio"' if cfg.runs_minio else None,
        sidecar_join=PAIR_LABEL,
        freshness_windows={tool: freshness.MAX_AGE_SECONDS[tool] for tool in sorted(probed)},
    )


ALERTMANAGER_SECRETS_DIR = "/run/secrets/alertmanager"


def alertmanager_config(cfg: StackConfig, secrets_dir: str = ALERTMANAGER_SECRETS_DIR) -> dict[str, Any]:
    """Alertmanager's routing from `alerting` (renderers/alerts.py `alertmanager_config`), each
    receiver's secret read from a file under `secrets_dir` that the platform mounts."""
    return alerts.alertmanager_config(cfg.alerting, secrets_dir)


def receiver_secret_files(cfg: StackConfig, secrets_dir: str = ALERTMANAGER_SECRETS_DIR) -> dict[str, str]:
    """Path -> receiver name, for every receiver that reads a secret."""
    return {f"{secrets_dir}/{r.name}": r.name for r in cfg.alerting.receivers if r.needs_secret}


def _probes(cfg: StackConfig) -> list[Workload]:
    out = []
    # Only the buckets this stack owns: a Thanos spoke's bucket is its hub's, which probes it.
    for tool in sorted(cfg.tools.owned()):
        store = object_store(cfg, tool)
        out.append(Workload(
            name=f"{freshness.JOB}-{tool}", tool=tool, pin="python", image=versions.image(cfg.pins, "python"),
            entrypoint=freshness.command(), args=[],
            health=freshness.health(), health_note="python3 bucket_freshness.py --health",
            env=_credentials_env(store),
            files=[File(freshness.SCRIPT_PATH, freshness.script()), File(freshness.CONFIG_PATH, json.dumps(freshness.config(cfg, tool, store), indent=2))],
            # The tool's own credentials: the probe lists exactly what the tool may list.
            credentials=True,
            user="65534:65534",
        ))
    return out


def attach(cfg: StackConfig, layout: Layout, workloads: list[Workload]) -> list[Workload]:
    """`workloads` plus what watches them; unchanged when the stack runs no Prometheus."""
    proms = [w for w in workloads if _job(w.name) == "prometheus"]
    if not proms:
        return workloads
    out = list(workloads) + _probes(cfg)
    out.append(Workload(
        name="alertmanager", tool="alertmanager", pin="alertmanager", image=versions.image(cfg.pins, "alertmanager"),
        args=[f"--config.file={ALERTMANAGER_CONFIG}", f"--storage.path={ALERTMANAGER_DATA}"],
        health=_wget("/bin/wget", f"http://127.0.0.1:{ALERTMANAGER_PORT}/-/ready"), health_note="wget /-/ready",
        ports=[ALERTMANAGER_PORT], files=[File(ALERTMANAGER_CONFIG, dump(alertmanager_config(cfg)))],
        receiver_secret_files=receiver_secret_files(cfg),
        # Silences and notification state outlive the container. Not pinned to the state node:
        # after a node loss Swarm starts it elsewhere (silences start empty there) rather than
        # leaving the stack without an Alertmanager.
        volumes={"alertmanager-data": ALERTMANAGER_DATA},
    ))
    scrapes, rules = scrape_configs(cfg, out, layout), dump(alerts.rule_file(scope(cfg, out)))
    # Every Prometheus of an HA pair: the same jobs, rules and Alertmanager, its own external labels.
    for prom in proms:
        config_file = next(f for f in prom.files if f.path.endswith("prometheus.yml"))
        config = prometheus.with_monitoring(
            # A pattern, not the file's path: promtool and Prometheus accept a pattern that matches
            # nothing yet, and this file arrives in the container next to the config.
            yaml.safe_load(config_file.content), scrapes, [f"{RULES_DIR}/*.yml"], [f"alertmanager:{ALERTMANAGER_PORT}"],
            replicated=len(proms) > 1,
        )
        files = [f for f in prom.files if f is not config_file]
        files += [File(config_file.path, dump(config)), File(RULES_FILE, rules)]
        out[out.index(prom)] = replace(prom, files=files)
    grafana = next((w for w in out if w.name == "grafana"), None)
    if grafana is not None:
        boards = [File(dashboards.PROVIDER_FILE, dump(dashboards.provider()))]
        boards += [File(f"{dashboards.DASHBOARDS_DIR}/{name}", json.dumps(board, indent=1)) for name, board in dashboards.dashboards().items()]
        out[out.index(grafana)] = replace(grafana, files=[*grafana.files, *boards])
    return out
