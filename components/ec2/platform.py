"""Workload platform of target aws with `aws.platform: ec2`: Grafana, Loki, Tempo and Thanos on EC2
fleets without Kubernetes.

The workloads are the ones every Docker platform runs (`containers.workloads.build`, with the
same renderers), laid out for Cloud Map: rings in memberlist joined through each fleet's DNS
name, every address the instance's own. `topology` groups them into fleets; each fleet gets a
launch template and an Auto Scaling group (fleet.py) whose user data (userdata.py) installs
Docker and Compose from Debian, writes the configs and the Compose file, and starts the agent
(agent.py) that registers the instance and drains it before termination.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Optional

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.containers import monitoring, workloads
from components.containers.workloads import Layout, Workload
from components.core.config import RING_REPLICATION, Ec2Config, StackConfig
from components.core.identity import ToolIdentity
from components.core.storage import ToolBucket
from components.core import access
from components.ec2 import topology, userdata
from components.ec2.database import DATABASE, PORT as DB_PORT, USER as DB_USER, GrafanaDatabase
from components.ec2.fleet import LIFECYCLE_HOOK, FleetGroup, FleetInputs
from components.ec2.identity import InstanceRoles, instance_policy
from components.ec2.network import Discovery, Traffic

# Where Grafana reads its secrets (`GF_<SECTION>_<KEY>__FILE`: the value is the file's content).
GRAFANA_SECRET_KEY_FILE = "/run/secrets/grafana-secret-key"
GRAFANA_DB_PASSWORD_FILE = "/run/secrets/grafana-db-password"
# Loki and Tempo replace ${VAR} in their config file from the environment with this flag.
EXPAND_ENV = "-config.expand-env=true"


def layout(cfg: StackConfig, domain: str, colocated: frozenset[str]) -> Layout:
    fleets = cfg.aws.ec2.fleets
    return Layout(
        ring_replicas=RING_REPLICATION, interface=None, cluster_label=cfg.tools.thanos.cluster_label,
        query_replicas=fleets.thanos_query.size, domain=domain, ring_store="memberlist",
        address=userdata.ADDRESS_REF, colocated=colocated,
    )


MONITORING_NAMES = frozenset({"prometheus", "alertmanager", "bucket-freshness-loki", "bucket-freshness-tempo", "bucket-freshness-thanos"})


def declared_workloads(cfg: StackConfig, domain: str) -> list[Workload]:
    """The stack's workloads for EC2: instance roles instead of credential files, the instance's
    address from the environment, Grafana on PostgreSQL with its secrets as files."""
    out = []
    lay = layout(cfg, domain, MONITORING_NAMES)
    for w in monitoring.attach(cfg, lay, workloads.build(cfg, lay)):
        env = {k: v for k, v in w.env.items() if k != "AWS_SHARED_CREDENTIALS_FILE"}
        args = list(w.args)
        if any(userdata.ADDRESS_REF in f.content for f in w.files) and EXPAND_ENV not in args:
            args.append(EXPAND_ENV)
        if w.name == "grafana":
            env.update({
                "GF_SECURITY_SECRET_KEY__FILE": GRAFANA_SECRET_KEY_FILE,
                "GF_DATABASE_TYPE": "postgres",
                "GF_DATABASE_NAME": DATABASE,
                "GF_DATABASE_USER": DB_USER,
                "GF_DATABASE_PASSWORD__FILE": GRAFANA_DB_PASSWORD_FILE,
                "GF_DATABASE_SSL_MODE": "require",
            })
        out.append(dataclasses.replace(w, env=env, args=args, credentials=False))
    return out


class Ec2Tools(pulumi.ComponentResource):
    """Outputs: `urls` (through the internal load balancer), `fleets` (fleet -> Auto Scaling group
    name and Cloud Map service), `namespace`, and the Grafana admin password (secret)."""

    def __init__(self, name: str, cfg: StackConfig, stack: str, roles: InstanceRoles, buckets: dict[str, ToolBucket], identities: dict[str, ToolIdentity],
                 provider: aws.Provider, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("obs:ec2:Ec2Tools", name, None, opts)
        ec2: Ec2Config = cfg.aws.ec2
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        domain = ec2.namespace_for(stack)
        declared = declared_workloads(cfg, domain)
        by_name = {w.name: w for w in declared}
        fleets = topology.fleets(declared)
        self.discovery = Discovery(f"{name}-discovery", domain, ec2.vpc_id, fleets, provider, opts=pulumi.ResourceOptions(parent=self))
        self.traffic = Traffic(f"{name}-traffic", ec2, fleets, provider, opts=pulumi.ResourceOptions(parent=self))
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOptions(provider=provider)).account_id
        region = cfg.storage.region

        secrets: dict[str, list[userdata.Secret]] = {}
        secret_arns: dict[str, list[pulumi.Output[str]]] = {}
        self.grafana_admin_password: Optional[pulumi.Output[str]] = None
        if "grafana" in by_name:
            self.database = GrafanaDatabase(f"{name}-grafana-db", ec2, self.traffic.groups["grafana"].id, provider, bool(cfg.storage.protect),
                                            opts=pulumi.ResourceOptions(parent=self))
            self.grafana_admin_password, app_secret = self._grafana_secret(name, child)
            uid = int(by_name["grafana"].uid)
            secrets["grafana"] = [
                userdata.Secret(f"{userdata.SECRETS_DIR}/grafana-admin-password", app_secret.arn, "adminPassword", uid),
                userdata.Secret(f"{userdata.SECRETS_DIR}/grafana-secret-key", app_secret.arn, "secretKey", uid),
                userdata.Secret(f"{userdata.SECRETS_DIR}/grafana-db-password", self.database.secret_arn, "password", uid),
            ]
            secret_arns["grafana"] = [app_secret.arn, self.database.secret_arn]

        # Families whose instances touch no bucket get their role here; tool families got theirs
        # with their bucket grant (InstanceRoles.declare, through ToolIdentity).
        purposes = {"grafana": "dashboards on PostgreSQL, datasources", "thanos-query": "queries store gateways and Receive",
                    "monitoring": "Prometheus, Alertmanager, bucket-freshness probes"}
        for family in sorted({f.family for f in fleets}):
            if family not in roles.roles:
                roles.role(self, family, purposes.get(family, family))
        if "monitoring" in roles.roles:
            # The freshness probes list each bucket's newest objects (probes/bucket_freshness.py).
            for tool, bucket in sorted(buckets.items()):
                aws.iam.RolePolicy(f"monitoring-lists-{tool}", role=roles.roles["monitoring"].id,
                                   policy=bucket.arn.apply(lambda arn, b=bucket: access.bucket_policy_document(arn, b.prefix, ("s3:ListBucket",))), opts=child)

        self.groups: dict[str, FleetGroup] = {}
        by_family: dict[str, list[topology.Fleet]] = {}
        for fleet in fleets:
            by_family.setdefault(fleet.family, []).append(fleet)
        zone_id = self.discovery.namespace.hosted_zone
        for family, members in sorted(by_family.items()):
            group_names = [self._group_name(stack, f) for f in members]
            services = [self.discovery.services[f.name] for f in members if f.discoverable]
            policy = pulumi.Output.all(
                account, zone_id, [s.arn for s in services], secret_arns.get(family, []),
            ).apply(lambda v, names=group_names, fleets=members: instance_policy(
                v[2], v[1], [f"{f.name}.{domain}" for f in fleets if f.discoverable],
                [f"arn:aws:autoscaling:{region}:{v[0]}:autoScalingGroup:*:autoScalingGroupName/{g}" for g in names], v[3]))
            aws.iam.RolePolicy(f"{family}-instance", role=roles.roles[family].id, policy=policy, opts=child)

        for fleet in fleets:
            members = [by_name[n] for n in fleet.workloads]
            grace = max(w.stop_grace_seconds for w in members)
            group_name = self._group_name(stack, fleet)
            service = self.discovery.services.get(fleet.name)
            mounts = {"grafana": [(s.path, s.path.replace(userdata.SECRETS_DIR, "/run/secrets")) for s in secrets.get("grafana", [])]}
            db_host = (self.database.endpoint.apply(lambda host: f"{host}:{DB_PORT}") if "grafana" in fleet.workloads
                       else pulumi.Output.from_input(""))
            fleet_secrets = secrets.get(fleet.family, [])
            user_data = pulumi.Output.all(
                service.id if service else "", db_host, [s.secret_arn for s in fleet_secrets],
            ).apply(lambda v, f=fleet, m=members, g=group_name, s=fleet_secrets, grace=grace: self._user_data(
                f, m, g, v[0], v[1], [dataclasses.replace(x, secret_arn=arn) for x, arn in zip(s, v[2])], region, grace, mounts))
            targets = [self.traffic.target_groups[l.name].arn for l in topology.LISTENERS if l.family == fleet.family and l.name in self.traffic.target_groups]
            self.groups[fleet.name] = FleetGroup(
                f"{name}-{fleet.name}", ec2,
                FleetInputs(fleet, getattr(ec2.fleets, fleet.settings_key), group_name, roles.profiles[fleet.family].arn,
                            self.traffic.groups[fleet.family].id, user_data, targets, grace,
                            {k: v for w in members for k, v in w.labels.items()}),
                provider,
                # Instances flush to their bucket and read with their role from their first second.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[identities[t] for t in sorted({by_name[n].tool for n in fleet.workloads}) if t in identities]),
            )
        dns = self.traffic.balancer.dns_name
        self.urls: dict[str, Any] = {}
        listeners = {l.name for l in topology.LISTENERS if l.name in self.traffic.target_groups}
        for key, (listener, template) in {
            "grafana": ("grafana", "http://{}:3000"), "loki": ("loki", "http://{}:3100"), "lokiPush": ("loki", "http://{}:3100/loki/api/v1/push"),
            "otlpGrpc": ("otlp-grpc", "{}:4317"), "otlpHttp": ("otlp-http", "http://{}:4318"), "tempo": ("tempo", "http://{}:3200"),
            "remoteWrite": ("remote-write", "http://{}:19291/api/v1/receive"),
        }.items():
            if listener in listeners:
                self.urls[key] = dns.apply(template.format)
        # What `tools.verify` compares: each group's healthy instances with its Cloud Map service's
        # registrations, and the target groups' health.
        self.fleets = {
            f.name: {
                "group": self._group_name(stack, f),
                **({"service": f"{f.name}.{domain}", "serviceId": self.discovery.services[f.name].id} if f.discoverable else {}),
                "targetGroups": [self.traffic.target_groups[l.name].arn for l in topology.LISTENERS
                                 if l.family == f.family and l.name in self.traffic.target_groups],
            }
            for f in fleets
        }
        self.register_outputs({"urls": self.urls, "fleets": self.fleets, "namespace": domain})

    @staticmethod
    def _group_name(stack: str, fleet: topology.Fleet) -> str:
        return f"obs-{stack}-{fleet.name}"

    def _grafana_secret(self, name: str, child: pulumi.ResourceOptions) -> tuple[pulumi.Output[str], aws.secretsmanager.Secret]:
        admin = random.RandomPassword(f"{name}-grafana-admin-password", length=32, special=False, opts=pulumi.ResourceOptions(parent=self))
        # Grafana encrypts datasource secrets with its secret key: both instances need the same one.
        key = random.RandomPassword(f"{name}-grafana-secret-key", length=40, special=False, opts=pulumi.ResourceOptions(parent=self))
        secret = aws.secretsmanager.Secret(f"{name}-grafana", description="obs-storage Grafana: admin password and secret key", opts=child)
        aws.secretsmanager.SecretVersion(
            f"{name}-grafana",
            secret_id=secret.id,
            secret_string=pulumi.Output.secret(pulumi.Output.all(admin.result, key.result).apply(
                lambda v: json.dumps({"adminPassword": v[0], "secretKey": v[1]}))),
            opts=child,
        )
        return pulumi.Output.secret(admin.result), secret

    @staticmethod
    def _user_data(fleet: topology.Fleet, members: list[Workload], group: str, service_id: str, db_host: str, secrets: list[userdata.Secret],
                   region: str, grace: int, mounts: dict[str, list[tuple[str, str]]]) -> str:
        # The database's writer endpoint is known once RDS created it.
        members = [dataclasses.replace(w, env={**w.env, "GF_DATABASE_HOST": db_host}) if w.name == "grafana" else w for w in members]
        compose = userdata.compose_file(members, mounts, host_network=fleet.host_network)
        agent = userdata.agent_config(fleet.name, region, group, LIFECYCLE_HOOK, [service_id] if service_id else [], grace, secrets)
        return userdata.encode(userdata.cloud_config(members, compose, agent))


class Ec2Platform:
    """Workload platform of target aws, `aws.platform: ec2`."""

    def __init__(self, provider: aws.Provider, stack: str, roles: InstanceRoles):
        self.provider, self.stack, self.roles = provider, stack, roles

    def deploy(self, cfg: StackConfig, buckets: dict[str, ToolBucket], identities: dict[str, ToolIdentity]) -> dict:
        tools = Ec2Tools("tools", cfg, self.stack, self.roles, buckets, identities, self.provider)
        out: dict = {"urls": tools.urls, "fleets": tools.fleets, "namespace": tools.discovery.domain}
        if tools.grafana_admin_password is not None:
            out["grafanaAdminPassword"] = tools.grafana_admin_password
        return out
