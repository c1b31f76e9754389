"""obs-storage: object storage for Loki, Tempo and Thanos, and the tools wired to it.

Read the stack config once, validate it (bad input stops here, before any resource exists),
pick the target's seams, declare one hardened bucket and least-privilege identities per enabled
tool, export what users need.
"""

import dataclasses

import pulumi

from components import targets
from components.core import access, config, loading, thanos_topology
from components.core.identity import ToolIdentity
from components.core.storage import ToolBucket, bucket_spec

try:
    raw, secret_keys = loading.read_pulumi_config()
    cfg = loading.load(pulumi.get_stack(), raw, secret_keys)
    thanos = cfg.tools.thanos
    # A Thanos spoke reads its hub (StackReference) and checks it before declaring anything else.
    hub = thanos_topology.read_hub(cfg, pulumi.get_stack()) if thanos.enabled and not thanos.owns_bucket else None
except config.ConfigError as error:
    raise pulumi.RunError(str(error)) from None

target = targets.build(cfg, hub)

buckets = {tool: ToolBucket(tool, bucket_spec(cfg, tool), target.storage) for tool in cfg.tools.owned()}

grants = access.grants(cfg)
identities = {
    tool: ToolIdentity(f"{tool}-identity", [g for g in grants if g.tool == tool], bucket, target.identity)
    for tool, bucket in buckets.items()
}
if hub and any(g.tool == "thanos" for g in grants):
    identities["thanos"] = ToolIdentity("thanos-identity", [g for g in grants if g.tool == "thanos"], hub.shared, target.hub_identity)

deployment = target.platform.deploy(cfg, buckets, identities)

pulumi.export("target", cfg.target.value)
if "thanos" in buckets:
    pulumi.export(thanos_topology.HUB_OUTPUT, thanos_topology.hub_output(cfg, buckets["thanos"], target.docker_network, target.urls.get("minioApi")))
if hub:
    pulumi.export(thanos_topology.SPOKE_OUTPUT, thanos_topology.spoke_output(cfg, hub.bucket))
pulumi.export(
    "buckets",
    {
        tool: {
            "name": bucket.bucket_name,
            "endpoint": bucket.endpoint,
            "region": bucket.region,
            "prefix": bucket.prefix,
            **({"arn": bucket.arn} if bucket.arn is not None else {}),
            "lifecycle": list(bucket.spec.lifecycle.describe()),
            # What `python -m tools.verify` reads back from the live bucket.
            "lifecycleRules": [dataclasses.asdict(rule) for rule in bucket.spec.lifecycle.rules],
            "versioning": bucket.spec.versioning,
            "tls": target.storage.tls,
            "pathStyle": target.storage.path_style,
        }
        for tool, bucket in buckets.items()
    },
)
pulumi.export(
    "identities",
    {
        tool: {
            "kind": identity.kind,
            **({"roleArns": identity.credentials.role_arns} if identity.credentials.role_arns else {}),
            **({"minioUser": identity.credentials.user} if identity.credentials.user is not None else {}),
            "serviceAccounts": {g.service_account: list(g.actions) for g in identity.grants},
            **({"cluster": cfg.aws.cluster_name, "namespace": cfg.aws.namespace} if identity.credentials.role_arns and cfg.aws and cfg.aws.platform == "eks" else {}),
            **({"note": "Hetzner has no IAM: the project's key pair reaches every bucket of the project"} if identity.kind == "hetzner-key-pair" else {}),
        }
        for tool, identity in identities.items()
    },
)
pulumi.export("urls", {**target.urls, **deployment.pop("urls", {})})
# Each tool's own S3 credentials file (local MinIO users), so `tools.verify` can prove what they may do.
tool_credentials = {tool: i.credentials.file_content for tool, i in identities.items() if i.credentials.file_content is not None}
if tool_credentials:
    pulumi.export("s3Credentials", pulumi.Output.secret(tool_credentials))
for name, value in {**target.secret_outputs, **deployment}.items():
    pulumi.export(name, value)
