"""`tools.verify` freshness check: per tool and tenant prefix, the age of the newest upload in the
bucket against the age beyond which the tool has stopped uploading (the probe the stacks run,
probes/bucket_freshness.py, with the same limits, components/core/renderers/freshness.py).

It reads with the credentials `storage` uses (MinIO root, the Hetzner key pair, the caller's AWS
credentials) and finds the tenants in the bucket itself. A prefix with no upload yet is a SKIP
(a new stack, or a tool that was never sent data); an upload older than the limit is a FAIL.
"""

from __future__ import annotations

import time
from typing import Optional

from components.core.renderers import freshness
from probes import bucket_freshness
from tools.verify.common import Report, Stack

PART = "freshness"


class Boto3Lister:
    """The probe's two S3 calls through boto3 (components/bucket_freshness.Lister)."""

    def __init__(self, client, bucket: str):
        self.client, self.bucket = client, bucket

    def list(self, prefix: str, delimiter: str = "") -> tuple[list[tuple[str, float]], list[str]]:
        objects, prefixes = [], []
        kwargs = {"Bucket": self.bucket, "Prefix": prefix, **({"Delimiter": delimiter} if delimiter else {})}
        for page in self.client.get_paginator("list_objects_v2").paginate(**kwargs):
            objects += [(o["Key"], o["LastModified"].timestamp()) for o in page.get("Contents", [])]
            prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        return objects, prefixes

    def get(self, key: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            raise RuntimeError(f"S3 answered {status} {code}".strip()) from None


def tenants(tool: str, lister: Boto3Lister, prefix: str) -> list[str]:
    """The tenant prefixes the tool has written (Thanos keeps none)."""
    if tool == "thanos":
        return []
    if tool == "loki":
        # Tenant folders of the daily index tables (probes/bucket_freshness.py loki_newest).
        _, tables = lister.list("index/", "/")
        found: set[str] = set()
        for table in sorted(tables)[-2:]:
            _, folders = lister.list(table, "/")
            found |= {f[len(table):].rstrip("/") for f in folders}
        return sorted(found)
    _, folders = lister.list(prefix, "/")
    # Tempo's tenant folders hold a tenant index; block folders (under a tenant) do not appear here.
    return sorted(f[len(prefix):].rstrip("/") for f in folders if not f[len(prefix):].startswith("obs-verify/"))


def _age(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min"


def check_tool(report: Report, tool: str, bucket: dict, lister: Boto3Lister, now: Optional[float] = None) -> None:
    now = time.time() if now is None else now
    limit = freshness.MAX_AGE_SECONDS[tool]
    prefix = bucket.get("prefix", "") if tool != "loki" else ""
    try:
        found = tenants(tool, lister, prefix)
        newest = bucket_freshness.newest_uploads(tool, lister, prefix, found)
    except Exception as error:  # a refused or unreachable bucket is the finding
        report.failed(PART, tool, f"cannot read the newest uploads in {bucket['name']}: {type(error).__name__}: {error}")
        return
    if not newest:
        report.skipped(PART, tool, f"no tenant has uploaded to {bucket['name']} yet")
        return
    for tenant, uploaded in sorted(newest.items()):
        where = f"{bucket['name']}/{prefix}{tenant + '/' if tenant else ''}"
        if uploaded is None:
            report.skipped(PART, tool, f"nothing uploaded under {where} yet")
            continue
        age = now - uploaded
        report.check(PART, tool, age <= limit, f"newest upload under {where} is {_age(age)} old (limit {_age(limit)})",
                     f"the tool has stopped uploading there, or that tenant sent nothing for {_age(age)}")


def check(stack: Stack, report: Report) -> None:
    client = stack.owner_s3(report, PART)
    if client is None:
        return
    for tool, bucket in stack.buckets.items():
        if tool in freshness.MAX_AGE_SECONDS:
            check_tool(report, tool, bucket, Boto3Lister(client, bucket["name"]))
