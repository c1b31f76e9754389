"""`tools.verify` storage checks: what each live bucket says about itself, read back over S3."""

from __future__ import annotations

import json
from typing import Any

from tools.verify.common import Report, Stack, attempt, delete_all_versions

PART = "storage"
HETZNER_LIFECYCLE = "Hetzner documents lifecycle as unreliable: the tools' own retention is what deletes data"


def check(stack: Stack, report: Report) -> None:
    admin = stack.owner_s3(report, PART)
    if admin is None:
        return
    anonymous = stack.s3(None, anonymous=True)
    for tool, bucket in stack.buckets.items():
        name = bucket["name"]
        outcome, detail = attempt(lambda: admin.head_bucket(Bucket=name))
        if not report.check(PART, tool, outcome == "allowed", f"bucket {name} exists", f"HEAD bucket: {outcome} {detail}"):
            continue
        _anonymous_denied(stack, report, tool, name, admin, anonymous)
        _versioning(report, tool, name, bucket, admin)
        _lifecycle(stack, report, tool, name, bucket, admin)
        if stack.target == "aws":
            _aws_hardening(report, tool, name, bucket, admin)


def _anonymous_denied(stack: Stack, report: Report, tool: str, name: str, admin, anonymous) -> None:
    outcome, detail = attempt(lambda: anonymous.list_objects_v2(Bucket=name, MaxKeys=1))
    report.check(PART, tool, outcome == "denied", f"anonymous LIST of {name} denied", f"got {outcome} {_short(detail)}")
    # A GET of an object that exists: a missing key could answer 403 or 404 for other reasons.
    key = stack.probe_key(tool, "anonymous-get")
    put, detail = attempt(lambda: admin.put_object(Bucket=name, Key=key, Body=b"obs-verify anonymous probe"))
    if put != "allowed":
        report.failed(PART, tool, f"anonymous GET not checked: cannot write probe object {key}: {put} {_short(detail)}")
        return
    try:
        outcome, detail = attempt(lambda: anonymous.get_object(Bucket=name, Key=key))
        report.check(PART, tool, outcome == "denied", f"anonymous GET of {name}/{key} denied", f"got {outcome} {_short(detail)}")
    finally:
        delete_all_versions(admin, name, key)


def _versioning(report: Report, tool: str, name: str, bucket: dict, admin) -> None:
    declared = bool(bucket.get("versioning"))
    outcome, response = attempt(lambda: admin.get_bucket_versioning(Bucket=name))
    if outcome != "allowed":
        report.failed(PART, tool, f"versioning of {name} not readable: {outcome} {_short(response)}")
        return
    status = response.get("Status", "never enabled")
    ok = (status == "Enabled") == declared
    report.check(PART, tool, ok, f"versioning {status} (declared {'Enabled' if declared else 'off'})", "differs from the declaration")


def declared_rules(bucket: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The program's lifecycle rules (outputs buckets.*.lifecycleRules) in a comparable form."""
    return {
        r["id"]: {
            "prefix": r["prefix"],
            "expireDays": r.get("expire_days"),
            "transitions": sorted((int(d), c) for d, c in r.get("transitions", [])),
            "abortMultipartDays": r.get("abort_multipart_days"),
            "noncurrentDays": r.get("noncurrent_days"),
            "status": "Enabled",
        }
        for r in bucket.get("lifecycleRules", [])
    }


def read_rules(rules: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """GetBucketLifecycleConfiguration rules in the same form as `declared_rules`."""
    out = {}
    for r in rules:
        flt = r.get("Filter", {})
        prefix = flt.get("Prefix", flt.get("And", {}).get("Prefix", r.get("Prefix", "")))
        out[r.get("ID", "")] = {
            "prefix": prefix or "",
            "expireDays": r.get("Expiration", {}).get("Days"),
            "transitions": sorted((int(t["Days"]), t["StorageClass"]) for t in r.get("Transitions", []) if "Days" in t),
            "abortMultipartDays": r.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation"),
            "noncurrentDays": r.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays"),
            "status": r.get("Status"),
        }
    return out


def _lifecycle(stack: Stack, report: Report, tool: str, name: str, bucket: dict, admin) -> None:
    declared = declared_rules(bucket)
    outcome, response = attempt(lambda: admin.get_bucket_lifecycle_configuration(Bucket=name))
    if outcome == "error" and "NoSuchLifecycleConfiguration" in str(response):
        live: dict[str, dict[str, Any]] = {}
    elif outcome != "allowed":
        report.failed(PART, tool, f"lifecycle of {name} not readable: {outcome} {_short(response)}")
        return
    else:
        live = read_rules(response.get("Rules", []))
    hint = f" ({HETZNER_LIFECYCLE})" if stack.target == "hetzner" else ""
    if live == declared:
        report.passed(PART, tool, f"lifecycle rules read back as declared: {', '.join(sorted(declared)) or 'none'}")
        return
    problems = []
    for rule_id in sorted(set(declared) | set(live)):
        if rule_id not in live:
            problems.append(f"{rule_id} missing")
        elif rule_id not in declared:
            problems.append(f"{rule_id} not declared ({_diff_text(live[rule_id])})")
        elif live[rule_id] != declared[rule_id]:
            fields = [k for k in declared[rule_id] if declared[rule_id][k] != live[rule_id].get(k)]
            problems.append(f"{rule_id}: " + ", ".join(f"{k} {live[rule_id].get(k)!r} != declared {declared[rule_id][k]!r}" for k in fields))
    report.failed(PART, tool, f"lifecycle rules of {name} differ from the declaration: {'; '.join(problems)}{hint}")


def _aws_hardening(report: Report, tool: str, name: str, bucket: dict, admin) -> None:
    outcome, response = attempt(lambda: admin.get_public_access_block(Bucket=name))
    flags = response.get("PublicAccessBlockConfiguration", {}) if outcome == "allowed" else {}
    wanted = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
    off = [f for f in wanted if flags.get(f) is not True]
    report.check(PART, tool, outcome == "allowed" and not off, "public access block: all four flags on",
                 f"{outcome} {_short(response)}" if outcome != "allowed" else f"off: {', '.join(off)}")

    outcome, response = attempt(lambda: admin.get_bucket_ownership_controls(Bucket=name))
    rules = response.get("OwnershipControls", {}).get("Rules", []) if outcome == "allowed" else []
    owners = [r.get("ObjectOwnership") for r in rules]
    report.check(PART, tool, owners == ["BucketOwnerEnforced"], "ownership controls BucketOwnerEnforced (ACLs disabled)",
                 f"read back {owners or _short(response)}")

    outcome, response = attempt(lambda: admin.get_bucket_encryption(Bucket=name))
    rules = response.get("ServerSideEncryptionConfiguration", {}).get("Rules", []) if outcome == "allowed" else []
    algorithms = [r.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm") for r in rules]
    report.check(PART, tool, bool(algorithms) and all(a in ("AES256", "aws:kms", "aws:kms:dsse") for a in algorithms),
                 f"default encryption {', '.join(a for a in algorithms if a) or 'none'}", f"read back {algorithms or _short(response)}")

    outcome, response = attempt(lambda: admin.get_bucket_policy(Bucket=name))
    arn = bucket.get("arn", f"arn:aws:s3:::{name}")
    ok = outcome == "allowed" and denies_insecure_transport(json.loads(response["Policy"]), arn)
    report.check(PART, tool, ok, "bucket policy denies every request without TLS (aws:SecureTransport false)",
                 "no such Deny statement" if outcome == "allowed" else f"{outcome} {_short(response)}")


def denies_insecure_transport(policy: dict[str, Any], arn: str) -> bool:
    for st in _as_list(policy.get("Statement")):
        principal = st.get("Principal")
        if st.get("Effect") != "Deny" or principal not in ("*", {"AWS": "*"}):
            continue
        actions = set(_as_list(st.get("Action")))
        resources = set(_as_list(st.get("Resource")))
        secure = st.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport")
        if actions & {"s3:*", "*"} and {arn, f"{arn}/*"} <= resources and str(secure).lower() == "false":
            return True
    return False


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [] if value is None else [value]


def _diff_text(rule: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in rule.items() if v not in (None, [], ""))


def _short(detail: Any, limit: int = 160) -> str:
    text = detail if isinstance(detail, str) else ""
    return text if len(text) <= limit else text[: limit - 3] + "..."
