"""Grafana's database: an Aurora PostgreSQL Serverless v2 cluster (Serverless v1 is retired) with
a writer and a reader in different zones, encrypted, private, reachable only from Grafana's
instances. RDS generates the master password and keeps it in Secrets Manager
(`manage_master_user_password`): it is never in the program, the state or the user data; the
Grafana instances read it at boot with their own role. Inputs as pulumi_aws 7.51.1's
rds.ClusterArgs (manage_master_user_password, serverlessv2_scaling_configuration) and
ClusterInstanceArgs define them; `master_user_secrets` is the cluster's output naming the secret.
"""

from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_aws as aws

from components.core.config import Ec2Config

PORT = 5432
DATABASE = "grafana"
USER = "grafana"


class GrafanaDatabase(pulumi.ComponentResource):
    """Outputs: `endpoint` (writer host), `secret_arn` (the RDS-managed master secret)."""

    def __init__(self, name: str, ec2: Ec2Config, grafana_group: pulumi.Output[str], provider: aws.Provider, protect: bool,
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("obs:ec2:GrafanaDatabase", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        db = ec2.database
        self.group = aws.ec2.SecurityGroup(f"{name}-security-group", vpc_id=ec2.vpc_id, description="obs-storage Grafana database", opts=child)
        aws.vpc.SecurityGroupIngressRule(f"{name}-from-grafana", security_group_id=self.group.id, ip_protocol="tcp", from_port=PORT, to_port=PORT,
                                         referenced_security_group_id=grafana_group, description="Grafana instances", opts=child)
        subnets = aws.rds.SubnetGroup(f"{name}-subnets", subnet_ids=[ec2.subnets[z] for z in sorted(ec2.subnets)],
                                      description="obs-storage Grafana database", opts=child)
        self.cluster = aws.rds.Cluster(
            f"{name}-cluster",
            engine="aurora-postgresql",
            engine_mode="provisioned",  # Serverless v2 instances live in a provisioned-mode cluster
            engine_version=db.engine_version,
            database_name=DATABASE,
            master_username=USER,
            manage_master_user_password=True,
            serverlessv2_scaling_configuration={"min_capacity": db.min_capacity, "max_capacity": db.max_capacity},
            db_subnet_group_name=subnets.name,
            vpc_security_group_ids=[self.group.id],
            storage_encrypted=True,
            backup_retention_period=7,
            # Dashboards, users and alerts live here: destroying the stack keeps a final snapshot.
            skip_final_snapshot=False,
            final_snapshot_identifier=f"{name}-final",
            deletion_protection=protect,
            opts=pulumi.ResourceOptions(parent=self, provider=provider, protect=protect),
        )
        for i, zone in enumerate(sorted(ec2.subnets)[:2]):
            # Two instances in two zones: the reader takes over as writer when the writer's zone fails.
            aws.rds.ClusterInstance(f"{name}-instance-{i}", cluster_identifier=self.cluster.id, instance_class="db.serverless", availability_zone=zone,
                                    engine=self.cluster.engine, engine_version=self.cluster.engine_version, publicly_accessible=False,
                                    opts=child)
        self.endpoint = self.cluster.endpoint
        self.secret_arn = self.cluster.master_user_secrets.apply(lambda secrets: secrets[0].secret_arn if secrets else "")
        self.register_outputs({"endpoint": self.endpoint})
