"""`python -m tools.plan` as a reviewer runs it."""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests import documents
from tools import engine

ROOT = Path(__file__).resolve().parent.parent


def plan_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tools.plan", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@functools.cache
def _committed_plan(*args: str) -> subprocess.CompletedProcess:
    return plan_cli(*args)


@pytest.fixture(scope="session")
def committed_plan():
    """committed_plan(*args): `python -m tools.plan` on the committed stacks, run once per argument
    list and test session (each run starts a Python process and the whole program)."""
    return _committed_plan


@pytest.mark.parametrize("stack", ["local", "staging", "prod"])
def test_plan_json_for_each_stack(committed_plan, stack):
    proc = committed_plan("--stack", stack, "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["stack"] == stack
    assert set(data) == {"stack", "resources", "outputs", "violations"}
    for resource in data["resources"]:
        assert set(resource) == {"urn", "type", "name", "parent", "custom", "dependsOn", "provider", "inputs"}
    types = {r["type"] for r in data["resources"]}
    assert "obs:storage:ToolBucket" in types
    assert set(data["outputs"]["buckets"]) == {"loki", "tempo", "thanos"}


def test_prod_secrets_are_placeholders_in_the_plan(committed_plan):
    data = json.loads(committed_plan("--stack", "prod", "--json").stdout)
    provider = next(r for r in data["resources"] if r["type"] == "pulumi:providers:minio")
    assert provider["inputs"]["minioUser"] == "[secret]" and provider["inputs"]["minioPassword"] == "[secret]"
    assert "plan-placeholder" not in json.dumps(data)


def test_text_plan_shows_tree(committed_plan):
    proc = committed_plan("--stack", "staging")
    assert proc.returncode == 0, proc.stderr
    assert "obs:storage:ToolBucket  loki" in proc.stdout
    assert "    aws:s3/bucket:Bucket  loki-bucket" in proc.stdout


def test_bad_config_exits_non_zero_with_one_line(tmp_path):
    for name in ("Pulumi.yaml", "__main__.py"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    (tmp_path / "components").symlink_to(ROOT / "components")
    (tmp_path / "tools").symlink_to(ROOT / "tools")
    (tmp_path / "policies").symlink_to(ROOT / "policies")
    (tmp_path / "Pulumi.broken.yaml").write_text(
        "config:\n  obs-storage:target: local\n  obs-storage:tools:\n"
        "    loki: {bucket: loki, retentionDays: 30, expireAfterDays: 10}\n"
        "    tempo: {bucket: tempo}\n    thanos: {bucket: thanos}\n"
    )
    proc = plan_cli("--stack", "broken", cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "stack 'broken': obs-storage:tools.loki.expireAfterDays = 10" in lines[0] and "Fix:" in lines[0]


def test_unknown_stack_is_an_error():
    proc = plan_cli("--stack", "nope")
    assert proc.returncode == 2 and "local, local-spoke, prod, staging, staging-batch, staging-ec2, staging-us" in proc.stderr


def project_with(tmp_path: Path, stack_file: str) -> Path:
    """A copy of the project whose only stack, `broken`, has the given stack file."""
    for name in ("Pulumi.yaml", "__main__.py"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    for name in ("components", "tools", "policies"):
        (tmp_path / name).symlink_to(ROOT / name)
    (tmp_path / "Pulumi.broken.yaml").write_text(stack_file)
    return tmp_path


@pytest.mark.parametrize(
    "stack_file,where,fix",
    [
        # A tab in the indentation: YAML forbids it.
        ("config:\n  obs-storage:target: local\n\tobs-storage:tenants: [fake]\n", "Pulumi.broken.yaml:3:1:", "spaces"),
        # A flow mapping left open on line 3; the parser notices on line 4.
        ("config:\n  obs-storage:target: local\n  obs-storage:tools: {loki: {bucket: loki}\n  obs-storage:tenants: [fake]\n",
         "Pulumi.broken.yaml:4:3:", "close the '{'"),
        ("config:\n  obs-storage:target: local\n  obs-storage:tools:\n    loki:\n      bucket: \"loki\n", "Pulumi.broken.yaml:6:1:", "close the quote"),
        # A list where Pulumi expects the mapping of config keys.
        ("config:\n  - obs-storage:target: local\n", "Pulumi.broken.yaml:2:3: `config` is a list where a mapping belongs", "no leading '- '"),
        ("- config\n", "Pulumi.broken.yaml:1:1: the file is a list where a mapping belongs", "config:"),
        # A key twice: YAML keeps the last value, and an error about it would show a value the reader
        # sees on another line.
        ("config:\n  obs-storage:target: aws\n  obs-storage:tenants: [fake]\n  obs-storage:target: local\n",
         "Pulumi.broken.yaml:4:3: `obs-storage:target` appears twice in one mapping (first on line 2)", "keep one"),
        ("config:\n  obs-storage:target: local\n  obs-storage:tools:\n    loki: {bucket: a, bucket: b}\n",
         "Pulumi.broken.yaml:4:23: `bucket` appears twice in one mapping (first on line 4)", "keep one"),
        # The keys without the `config:` line above them.
        ("obs-storage:target: local\nobs-storage:tools: {loki: {bucket: loki}}\n",
         "Pulumi.broken.yaml:1:1: `obs-storage:target` is a config key at the top level of the file", "`config:` above the keys"),
    ],
)
def test_stack_file_yaml_errors_are_one_line_with_file_line_and_column(tmp_path, stack_file, where, fix):
    proc = plan_cli("--stack", "broken", cwd=project_with(tmp_path, stack_file))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: stack 'broken': {where}"), lines[0]
    assert "Fix: " in lines[0] and fix in lines[0].split("Fix: ")[1], lines[0]


def test_a_stack_file_named_yml_is_pointed_out(tmp_path):
    root = project_with(tmp_path, "config:\n  obs-storage:target: local\n")
    (root / "Pulumi.broken.yaml").rename(root / "Pulumi.other.yml")
    proc = plan_cli("--stack", "other", cwd=root)
    assert proc.returncode == 2 and proc.stderr == (
        "error: no stack file Pulumi.other.yaml; there is Pulumi.other.yml, which Pulumi does not read next to Pulumi.yaml: "
        "rename it to Pulumi.other.yaml; stacks: \n")
    assert "there is" not in plan_cli("--stack", "nope", cwd=root).stderr


def test_a_key_twice_in_different_mappings_and_merge_keys_are_fine(tmp_path):
    stack_file = ("config:\n  obs-storage:target: local\n  obs-storage:tools:\n    base: &b {enabled: false}\n"
                  "    loki: {bucket: loki}\n    tempo: {bucket: tempo}\n    thanos: {bucket: thanos}\n")
    root = project_with(tmp_path, stack_file)
    data = engine.read_yaml_file("broken", root / "Pulumi.broken.yaml", stack_file=True)
    assert [set(v) for v in data["config"]["obs-storage:tools"].values()] == [{"enabled"}, {"bucket"}, {"bucket"}, {"bucket"}]
    merged = "a: &x {k: 1}\nb:\n  <<: *x\n  k: 2\n"
    (root / "merged.yaml").write_text(merged)
    assert engine.read_yaml_file("broken", root / "merged.yaml") == {"a": {"k": 1}, "b": {"k": 2}}


def test_project_file_yaml_error_is_one_line(tmp_path):
    root = project_with(tmp_path, "config:\n  obs-storage:target: local\n")
    (root / "Pulumi.yaml").write_text("name: obs-storage\nruntime: python\nconfig: {a: 1\n")
    proc = plan_cli("--stack", "broken", cwd=root)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "Pulumi.yaml:4:1: is not valid YAML" in proc.stderr


def test_list_where_a_mapping_belongs_names_the_key(tmp_path):
    stack_file = "config:\n  obs-storage:target: local\n  obs-storage:tools:\n    - loki: {bucket: loki}\n"
    proc = plan_cli("--stack", "broken", cwd=project_with(tmp_path, stack_file))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "obs-storage:tools = " in proc.stderr and "is a list where a mapping belongs" in proc.stderr


LIFECYCLE_TYPES = ("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "minio:index/ilmPolicy:IlmPolicy")


@pytest.mark.parametrize("stack", ["local", "staging", "prod"])
def test_lifecycle_output_describes_every_rule_the_bucket_has(plan, stack):
    result = plan(stack)
    outputs = result.outputs["buckets"]
    declared = [r for r in result.resources if r.type in LIFECYCLE_TYPES]
    for resource in declared:
        tool = resource.parent.rsplit("::", 1)[1]
        lines = outputs[tool]["lifecycle"]
        for rule in resource.inputs["rules"]:
            described = [line for line in lines if rule["id"] in line]
            assert len(described) == 1, f"{resource.urn}: rule {rule['id']} is not in the lifecycle output {lines}"
            text = described[0]
            for transition in rule.get("transitions", []):
                assert transition["storageClass"] in text and f"{transition['days']:g}d" in text, text
            expiration = rule.get("expiration")
            if isinstance(expiration, dict) and "days" in expiration:
                assert f"expire after {expiration['days']:g}d" in text, text
            if isinstance(expiration, str):  # MinIO ILM writes "<n>d"
                assert f"expire after {expiration}" in text, text
            if "abortIncompleteMultipartUpload" in rule:
                assert f"multipart uploads after {rule['abortIncompleteMultipartUpload']['daysAfterInitiation']:g}d" in text, text
            noncurrent = rule.get("noncurrentVersionExpiration", {}).get("noncurrentDays") or rule.get("noncurrentVersionExpirationDays")
            if noncurrent:
                assert f"noncurrent versions {noncurrent:g}d" in text, text
    if stack == "staging":
        # The GLACIER_IR transition, multipart abort and noncurrent versions are all visible.
        thanos = " ".join(outputs["thanos"]["lifecycle"])
        assert "GLACIER_IR after 60d" in thanos and "multipart" in thanos and "noncurrent versions" in thanos


def test_documented_sample_outputs_are_the_local_plans_outputs(plan):
    outputs = plan("local").outputs
    sample = documents.block_after(documents.read("docs/local.md"), "## What you see after `make up`")
    top = set(re.findall(r"^    (\w+)\s*:", sample, re.M))
    assert top == set(outputs), f"docs/local.md sample outputs differ from the plan: {sorted(top ^ set(outputs))}"
    urls = re.search(r"^    urls\s*: \{\n(.*?)^    \}", sample, re.M | re.S).group(1)
    assert dict(re.findall(r'^\s+(\w+)\s*: "([^"]*)"', urls, re.M)) == outputs["urls"]
    assert re.findall(r'^\s+\[\d+\]: "(.*)"$', sample, re.M) == outputs["buckets"]["loki"]["lifecycle"]


def test_documented_lifecycle_sample_is_stagings_thanos_output(plan):
    sample = documents.block_after(documents.read("docs/configuration.md"), "Staging's Thanos bucket (`make plan STACK=staging`")
    assert sample.splitlines() == plan("staging").outputs["buckets"]["thanos"]["lifecycle"]


def test_plan_json_shows_ordering_and_provider(committed_plan):
    data = json.loads(committed_plan("--stack", "local", "--json").stdout)
    by_name = {r["name"]: r for r in data["resources"]}
    loki = by_name["tools-loki"]
    # The Loki container waits for its bucket (created through the MinIO provider, which waits for MinIO).
    assert by_name["loki-bucket"]["urn"] in loki["dependsOn"]
    assert by_name["loki-bucket"]["provider"] == by_name["minio-provider"]["urn"]
    assert loki["provider"].endswith("pulumi:providers:docker::local-docker")


# ---------------------------------------------------------------- the exit status a pull request is blocked by
def plan_main(capsys, *args: str) -> tuple[int, str, str]:
    from tools import plan as plan_tool

    code = plan_tool.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_mandatory_policy_violation_exits_4(monkeypatch, capsys):
    """A program change that drops the TLS-only deny (mandatory s3-tls-only) fails the plan."""
    from components.core import storage

    planned = storage._bucket_policy

    def tls_optional(arn, spec):
        document = json.loads(planned(arn, spec))
        for statement in document["Statement"]:
            if statement.get("Condition", {}).get("Bool"):
                statement["Condition"]["Bool"]["aws:SecureTransport"] = "true"
        return json.dumps(document)

    monkeypatch.setattr(storage, "_bucket_policy", tls_optional)
    code, out, _ = plan_main(capsys, "--stack", "staging")
    assert code == 4
    flagged = [line for line in out.splitlines() if line.startswith("  [mandatory] s3-tls-only: ")]
    assert len(flagged) == 3, out[-2000:]


def test_an_advisory_violation_alone_exits_0(monkeypatch, capsys):
    """Without the abort-multipart rule (advisory s3-abort-incomplete-multipart) the plan is listed
    with its violations and still exits 0: an advisory never blocks a pull request."""
    import dataclasses

    from components.core import lifecycle

    planned = lifecycle.plan

    def without_abort(cfg, tool):
        result = planned(cfg, tool)
        return dataclasses.replace(result, rules=tuple(r for r in result.rules if not r.abort_multipart_days))

    monkeypatch.setattr(lifecycle, "plan", without_abort)
    code, out, _ = plan_main(capsys, "--stack", "staging")
    flagged = [line for line in out.splitlines() if line.startswith("  [") and "] s3-abort-incomplete-multipart: " in line]
    assert len(flagged) == 3 and all(line.startswith("  [advisory]") for line in flagged), out[-2000:]
    assert "policy violations: 3" in out
    assert code == 0


def test_the_committed_stack_plans_with_no_violation_and_exits_0(capsys):
    code, out, _ = plan_main(capsys, "--stack", "staging")
    assert code == 0 and "policy violations: 0" in out


@pytest.mark.parametrize("entry,code,level", [
    # A well-formed exemption is in force: listed on every run (advisory), nothing blocks.
    ({"policy": "s3-abort-incomplete-multipart", "urn": "urn:pulumi:local::obs-storage::x", "reason": "test"}, 0, "advisory"),
    # One without a reason is refused, and that blocks.
    ({"policy": "s3-abort-incomplete-multipart", "urn": "urn:pulumi:local::obs-storage::x", "reason": " "}, 4, "mandatory"),
])
def test_exemptions_in_force_are_advisory_and_malformed_ones_block(monkeypatch, capsys, tmp_path, entry, code, level):
    import functools

    from policies import offline

    path = tmp_path / "exemptions.yaml"
    path.write_text(json.dumps({"local": [entry]}))
    monkeypatch.setattr(offline, "evaluate", functools.partial(offline.evaluate, exemptions_file=path))
    got, out, _ = plan_main(capsys, "--stack", "local", "--json")
    violations = json.loads(out)["violations"]
    assert [(v["policy"], v["enforcement"]) for v in violations] == [("policy-exemptions", level)]
    assert got == code


def test_a_strict_mock_failure_exits_3(monkeypatch, capsys):
    from tools import engine

    def refused(stack, *args, **kwargs):
        raise engine.StrictMockError("aws:s3/bucket:Bucket loki-bucket: unknown input 'acl2'")

    monkeypatch.setattr(engine, "run", refused)
    code, out, err = plan_main(capsys, "--stack", "staging")
    assert (code, out) == (3, "")
    assert err == "error: strict mocks refused the plan:\naws:s3/bucket:Bucket loki-bucket: unknown input 'acl2'\n"


# ---------------------------------------------------------------- several stacks in one run
def _stub_plans(monkeypatch, codes: dict[str, int], unplannable: set[str] = frozenset()) -> list[str]:
    """tools.plan.main with each stack's plan replaced: `codes` gives its exit code, a stack in
    `unplannable` has no plan (a config error). Returns the stacks planned, in order."""
    from tools import plan as plan_tool

    planned: list[str] = []

    def fake_plan(stack):
        planned.append(stack)
        return codes[stack], (None if stack in unplannable else (stack, []))

    monkeypatch.setattr(plan_tool, "plan", fake_plan)
    monkeypatch.setattr(plan_tool, "as_text", lambda result, violations: f"plan of {result}")
    monkeypatch.setattr(plan_tool, "as_json", lambda result, violations: {"stack": result})
    return planned


def test_several_stacks_in_text_each_under_its_header_in_order(monkeypatch, capsys):
    planned = _stub_plans(monkeypatch, {"local": 0, "prod": 0, "staging": 0})
    code, out, _ = plan_main(capsys, "--stack", "local", "--stack", "prod", "--stack", "staging")
    assert code == 0 and planned == ["local", "prod", "staging"]
    assert out == "== local\nplan of local\n== prod\nplan of prod\n== staging\nplan of staging\n"
    # One stack: no header, only its plan.
    _stub_plans(monkeypatch, {"prod": 0})
    assert plan_main(capsys, "--stack", "prod") == (0, "plan of prod\n", "")


@pytest.mark.parametrize("failing, code", [("prod", 4), ("prod", 3), ("prod", 2)])
def test_several_stacks_stop_at_the_first_that_does_not_plan_cleanly(monkeypatch, capsys, failing, code):
    # A mandatory violation (4) still shows that stack's plan, then stops; so do the others.
    planned = _stub_plans(monkeypatch, {"local": 0, "prod": code, "staging": 0}, unplannable={"prod"} if code != 4 else set())
    got, out, _ = plan_main(capsys, "--stack", "local", "--stack", failing, "--stack", "staging")
    assert got == code and planned == ["local", "prod"]
    assert out == "== local\nplan of local\n== prod\n" + ("plan of prod\n" if code == 4 else "")


def test_json_is_one_document_a_plan_for_one_stack_a_list_for_several(monkeypatch, capsys):
    _stub_plans(monkeypatch, {"local": 0, "prod": 0})
    code, out, _ = plan_main(capsys, "--stack", "local", "--stack", "prod", "--json")
    assert code == 0 and json.loads(out) == [{"stack": "local"}, {"stack": "prod"}]
    code, out, _ = plan_main(capsys, "--stack", "prod", "--json")
    assert code == 0 and json.loads(out) == {"stack": "prod"}
    # Several, the second unplannable: the list holds the plans made, and the run fails.
    _stub_plans(monkeypatch, {"local": 0, "prod": 2}, unplannable={"prod"})
    code, out, _ = plan_main(capsys, "--stack", "local", "--stack", "prod", "--json")
    assert code == 2 and json.loads(out) == [{"stack": "local"}]
    # One stack that cannot be planned prints nothing on stdout (its error is on stderr).
    _stub_plans(monkeypatch, {"prod": 2}, unplannable={"prod"})
    assert plan_main(capsys, "--stack", "prod", "--json")[:2] == (2, "")


def test_text_plan_cuts_long_inputs_to_160_characters():
    from tools import plan as plan_tool

    # "  name=" plus the JSON string: 2 + 5 + 2 quotes around the value.
    fits = {"name": "x" * (159 - 9)}
    assert plan_tool._key_inputs(fits) == '  name="' + "x" * 150 + '"' and len(plan_tool._key_inputs(fits)) == 159
    longer = {"name": "x" * (160 - 9)}
    cut = plan_tool._key_inputs(longer)
    assert len(cut) == 160 and cut == '  name="' + "x" * 149 + "..."
    # Any longer line is cut to the same 160, not only one that is exactly 160.
    assert plan_tool._key_inputs({"name": "x" * 500}) == cut
    # Only scalars are shown, sorted by key; none at all gives nothing.
    assert plan_tool._key_inputs({"b": 1, "a": True, "c": {"d": 1}, "e": [1]}) == "  a=true b=1"
    assert plan_tool._key_inputs({"c": {"d": 1}}) == ""


# ---------------------------------------------------------------- the Thanos role under the text plan
def test_text_plan_names_a_hubs_spokes_a_spokes_hub_and_the_hetzner_note():
    """What components/core/thanos_topology.py exports as thanosHub / thanosSpoke, one line each,
    with the Hetzner note (a key pair reaches every bucket of its project) under it when present."""
    from tools import plan as plan_tool

    hub = {"role": "hub", "bucket": "hub-thanos", "region": "eu-1", "clusterLabel": "hub-c",
           "spokes": [{"stack": "s1", "clusterLabel": "c1"}, {"stack": "s2", "clusterLabel": "c2"}]}
    (line,) = plan_tool.thanos_topology_lines({"thanosHub": hub})
    assert line.startswith("thanos hub: bucket hub-thanos in eu-1, cluster hub-c, ")
    # Two spokes listed, each by stack and cluster label, in the hub's order.
    assert line.endswith("; 2 spoke(s): s1 (cluster c1), s2 (cluster c2)"), line
    # A hub with no spoke says 0 and lists none.
    (alone,) = plan_tool.thanos_topology_lines({"thanosHub": {**hub, "spokes": []}})
    assert alone.endswith("; 0 spoke(s)"), alone
    assert plan_tool.thanos_topology_lines({"thanosHub": {**hub, "note": "hetzner key"}})[1:] == ["  note: hetzner key"]

    spoke = {"role": "spoke", "hub": "acme/obs-storage/hub", "clusterLabel": "s1", "mode": "sidecar", "bucket": "hub-thanos", "region": "eu-1"}
    (line,) = plan_tool.thanos_topology_lines({"thanosSpoke": spoke})
    assert line.startswith("thanos spoke of acme/obs-storage/hub: sidecar into bucket hub-thanos in eu-1 as cluster s1;"), line
    assert "no bucket, store gateway, query or compactor of its own" in line
    assert plan_tool.thanos_topology_lines({"thanosSpoke": {**spoke, "note": "hetzner key"}})[1:] == ["  note: hetzner key"]

    # Neither output (a stack without Thanos across clusters): nothing.
    assert plan_tool.thanos_topology_lines({"buckets": {}}) == []
    assert plan_tool.thanos_topology_lines({"thanosHub": None, "thanosSpoke": None}) == []


def test_the_text_plan_shows_the_topology_after_the_outputs():
    from tools import plan as plan_tool

    result = engine.PlanResult(stack="s1", resources=[], outputs={"thanosSpoke": {"hub": "h", "mode": "receive", "bucket": "b", "region": "r", "clusterLabel": "s1"}})
    lines = plan_tool.as_text(result, []).splitlines()
    assert lines[-2].startswith("thanos spoke of h: receive into bucket b in r as cluster s1;") and lines[-1] == "policy violations: 0"


def test_text_plan_is_a_tree_two_spaces_a_level_sorted_by_type_then_name():
    from tools import plan as plan_tool

    stack_urn = "urn:pulumi:s::obs-storage::pulumi:pulumi:Stack::obs-storage-s"

    def reg(typ: str, name: str, parent: str, **inputs) -> engine.Registration:
        return engine.Registration(urn=f"urn:pulumi:s::obs-storage::{typ}::{name}", type=typ, name=name, parent=parent, custom=True, inputs=inputs)

    tool = reg("obs:storage:ToolBucket", "loki", stack_urn)
    bucket = reg("aws:s3/bucket:Bucket", "loki-bucket", tool.urn, bucket="acme-loki")
    block = reg("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "loki-pab", tool.urn)
    other = reg("aws:s3/bucket:Bucket", "a-bucket", stack_urn)
    result = engine.PlanResult(stack="s", resources=[tool, block, bucket, other], outputs={"urls": {"b": "y", "a": "x"}})
    violation = {"enforcement": "mandatory", "policy": "s3-tls-only", "urn": bucket.urn, "message": "bucket acme-loki: no deny"}
    assert plan_tool.as_text(result, [violation]).splitlines() == [
        "stack s: 4 resources (offline plan under strict mocks)",
        # The stack's children one level in ("aws..." sorts before "obs..."), theirs two levels.
        "  aws:s3/bucket:Bucket  a-bucket",
        "  obs:storage:ToolBucket  loki",
        '    aws:s3/bucket:Bucket  loki-bucket  bucket="acme-loki"',
        "    aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock  loki-pab",
        "outputs:",
        # Keys sorted: the same outputs read alike in two plans, whatever order the program built them in.
        '  urls: {"a": "x", "b": "y"}',
        "policy violations: 1",
        f"  [mandatory] s3-tls-only: {bucket.urn}: bucket acme-loki: no deny",
    ]


def test_stack_is_required_and_the_help_lists_the_stacks(capsys):
    from tools import plan as plan_tool

    # argparse's usage error: exit status 2 and the missing option named
    # (https://docs.python.org/3/library/argparse.html#exit-on-error, ArgumentParser.error).
    with pytest.raises(SystemExit) as exited:
        plan_tool.main([])
    assert exited.value.code == 2 and "--stack" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        plan_tool.main(["--help"])
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert exited.value.code == 0
    # The description is the module docstring's first line; the choices are the stack files.
    assert plan_tool.__doc__.splitlines()[0] in out
    stacks = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in ROOT.glob("Pulumi.*.yaml"))
    assert "one of: " + ", ".join(stacks) + " (repeat it for several)" in out, out


@pytest.mark.parametrize("reason, status, level", [(" ", 4, "mandatory"), ("reviewed (SEC-1)", 0, "advisory")])
def test_the_process_exit_status_is_what_blocks_a_pull_request(tmp_path, reason, status, level):
    """`python -m tools.plan` itself exits non-zero on a mandatory violation (the pull-request
    workflow fails on a non-zero status): here the refused exemption, one without a reason, against
    its accepted neighbour, the same exemption with a reason (advisory, exit 0)."""
    import shutil

    root = project_with(tmp_path, (ROOT / "Pulumi.local.yaml").read_text())
    (root / "Pulumi.broken.yaml").rename(root / "Pulumi.local.yaml")
    # A copy of policies/, so that its exemptions.yaml is this test's.
    (root / "policies").unlink()
    shutil.copytree(ROOT / "policies", root / "policies", ignore=shutil.ignore_patterns("__pycache__"))
    entry = {"policy": "s3-abort-incomplete-multipart", "urn": "urn:pulumi:local::obs-storage::x", "reason": reason}
    (root / "policies" / "exemptions.yaml").write_text(json.dumps({"local": [entry]}))
    proc = plan_cli("--stack", "local", cwd=root)
    flagged = [line for line in proc.stdout.splitlines() if line.startswith("  [") and "] policy-exemptions: " in line]
    assert len(flagged) == 1 and flagged[0].startswith(f"  [{level}]"), proc.stdout[-2000:] + proc.stderr
    assert proc.returncode == status, proc.stderr


def test_in_one_log_a_stacks_error_comes_under_its_header_after_the_plans_before_it():
    """CI shows stdout and stderr as one log: the plans and headers are flushed before the next
    stack is planned, so an error (stderr, line-buffered) appears under the header of its stack.
    Python block-buffers stdout into a pipe unless PYTHONUNBUFFERED is set, which CI does not set."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    proc = subprocess.run([sys.executable, "-m", "tools.plan", "--stack", "local", "--stack", "nope"], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stdout.splitlines()
    assert lines[0] == "== local" and lines[1].startswith("stack local: ")
    assert lines[-2] == "== nope" and lines[-1].startswith("error: "), lines[-3:]
