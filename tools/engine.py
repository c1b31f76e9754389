"""Run the real program (`__main__.py`) under Pulumi's mock engine, strictly.

Used by the tests and by `tools.plan`. No Pulumi CLI, provider plugin or cloud credential is
needed. What makes the mocks strict:
- every resource input is checked against the installed provider SDK's own input types (their
  Args classes carry the wire names): an unknown property at any nesting depth, or a missing
  required one, fails the run instead of a later deployment;
- every invoke must have a realistic answer below, or the run fails.

The engine records each registration (type, name, parent, inputs exactly as the engine receives
them, with secret values replaced by "[secret]") and the stack outputs.
"""

from __future__ import annotations

import base64
import collections.abc
import functools
import hashlib
import importlib
import inspect
import json
import re
import runpy
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pulumi
from google.protobuf import json_format
from pulumi import _types
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

def project_root() -> Path:
    """Like the Pulumi CLI: the working directory when it holds Pulumi.yaml, else this checkout."""
    cwd = Path.cwd()
    return cwd if (cwd / "Pulumi.yaml").exists() else Path(__file__).resolve().parent.parent

PROJECT = "obs-storage"
# What a DIY backend (file://, s3://) names every stack's organization; the fully qualified names
# in stack files (tools.thanos.hub, tools.thanos.spokes[].stack) use it.
ORGANIZATION = "organization"
SECRET = "[secret]"
UNKNOWN = "[unknown]"
SDK_PACKAGES = ("pulumi_aws", "pulumi_minio", "pulumi_docker", "pulumi_kubernetes", "pulumi_random")

ACCOUNT_ID = "123456789012"
OIDC_ID = "EXAMPLED539D4633E53DE1B71EXAMPLE"


# Fields the bridged SDK types still accept as inputs but the provider only computes: the real
# provider refuses them at preview ("Computed attributes cannot be set"), and the SDK's Args
# classes cannot show it. Paths use `[]` for every list element. Sources: the provider schema at
# the bridged version (pulumi-minio 0.17.1 bridges terraform-provider-minio v1.20.1, per
# pulumi/pulumi-minio provider/go.mod).
COMPUTED_ONLY: dict[str, tuple[str, ...]] = {
    # minio/resource_minio_ilm_policy.go: rule.status {Type: TypeString, Computed: true}
    "minio:index/ilmPolicy:IlmPolicy": ("rules[].status",),
    # minio/resource_minio_iam_user.go: status {Type: TypeString, Computed: true}
    "minio:index/iamUser:IamUser": ("status",),
}


class StrictMockError(Exception):
    """A resource input the provider SDK does not define, or an invoke without a mock answer."""


# ---------------------------------------------------------------- schema from the SDKs
@functools.cache
def _token_classes() -> dict[str, tuple[str, str]]:
    """Type token -> (module, class name), from each SDK's resource-module registration."""
    tokens: dict[str, tuple[str, str]] = {}
    for package in SDK_PACKAGES:
        spec = importlib.util.find_spec(package)
        source = Path(spec.origin).read_text()
        for blob in re.findall(r'resource_modules="""(.*?)"""', source, re.S):
            for module in json.loads(blob):
                for token, cls in module["classes"].items():
                    tokens[token] = (module["fqn"], cls)
        for blob in re.findall(r'resource_packages="""(.*?)"""', source, re.S):
            for pkg in json.loads(blob):
                tokens[pkg["token"]] = (pkg["fqn"], pkg["class"])
    return tokens


@functools.cache
def args_class(token: str) -> Optional[type]:
    found = _token_classes().get(token)
    if found is None:
        return None
    resource_cls = getattr(importlib.import_module(found[0]), found[1])
    # The Args class is the one the constructor parses its arguments with; its name is not always
    # `<Class>Args` (pulumi_aws.s3.BucketVersioning uses BucketVersioningInitArgs because a nested
    # input type already has that name).
    source = inspect.getsource(resource_cls.__init__)
    match = re.search(r"get_resource_args_opts\((\w+),", source)
    if match is None:
        return None
    return getattr(importlib.import_module(resource_cls.__module__), match.group(1))


def _properties(cls: type) -> dict[str, Any]:
    return _types._types_from_py_properties(cls)


def _required(cls: type) -> frozenset[str]:
    return _types._required_property_names(cls)


def check_inputs(token: str, inputs: dict) -> list[str]:
    """Problems with `inputs` (wire names) for resource type `token`; empty when valid."""
    cls = args_class(token)
    if cls is None:
        if token.startswith("obs:") or token.startswith("pulumi:pulumi:"):
            return []  # this project's own components take no engine inputs
        return [f"{token}: no provider SDK type found (is the package in SDK_PACKAGES?)"]
    provider = token.startswith("pulumi:providers:")
    problems: list[str] = []
    _check_object(cls, inputs, token, problems, provider)
    for path in COMPUTED_ONLY.get(token, ()):
        for found in _paths(inputs, path.split(".")):
            problems.append(f"{token}.{found}: computed by the provider; setting it fails `pulumi preview`")
    return problems


def _paths(value: Any, parts: list[str], here: str = "") -> list[str]:
    """Concrete paths in `value` matching `parts` (a `[]` suffix walks every list element)."""
    if not parts:
        return [here]
    key, rest = parts[0], parts[1:]
    each = key.endswith("[]")
    key = key.removesuffix("[]")
    if not isinstance(value, dict) or key not in value or value[key] is None:
        return []
    item = value[key]
    where = f"{here}.{key}" if here else key
    if not each:
        return _paths(item, rest, where)
    return [p for i, element in enumerate(item if isinstance(item, list) else []) for p in _paths(element, rest, f"{where}[{i}]")]


def _check_object(cls: type, value: Any, path: str, problems: list[str], provider: bool) -> None:
    if isinstance(value, str) and provider:
        # Providers receive object-typed config JSON-encoded; a string that is not JSON is no
        # object, refused below like a list field's string that is no JSON list.
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            pass
    if not isinstance(value, dict):
        if not _is_placeholder(value):
            problems.append(f"{path}: expected an object of {cls.__name__}, got {type(value).__name__}")
        return
    props = _properties(cls)
    for key, item in value.items():
        if key not in props:
            known = ", ".join(sorted(props))
            problems.append(f"{path}.{key}: unknown property of {cls.__name__} (known: {known})")
            continue
        _check_value(props[key], item, f"{path}.{key}", problems, provider)
    for key in sorted(_required(cls) - set(value)):
        problems.append(f"{path}.{key}: required property of {cls.__name__} is missing")


def _check_value(hint: Any, value: Any, path: str, problems: list[str], provider: bool) -> None:
    if value is None or _is_placeholder(value):
        return
    typ = _types.unwrap_type(hint)
    origin = typing.get_origin(typ)
    if isinstance(typ, type) and _types.is_input_type(typ):
        _check_object(typ, value, path, problems, provider)
    elif origin in (list, collections.abc.Sequence, typing.Sequence):
        if isinstance(value, str) and provider:
            value = json.loads(value) if value[:1] == "[" else value
        if not isinstance(value, list):
            problems.append(f"{path}: expected a list, got {type(value).__name__}")
            return
        (element,) = typing.get_args(typ) or (Any,)
        for i, item in enumerate(value):
            _check_value(element, item, f"{path}[{i}]", problems, provider)
    elif origin in (dict, collections.abc.Mapping, typing.Mapping):
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a map, got {type(value).__name__}")
            return
        args = typing.get_args(typ)
        element = args[1] if len(args) == 2 else Any
        for key, item in value.items():
            _check_value(element, item, f"{path}.{key}", problems, provider)
    elif origin is typing.Union:
        members = [m for m in typing.get_args(typ) if m is not type(None)]
        objects = [m for m in members if isinstance(m, type) and _types.is_input_type(m)]
        if objects and isinstance(value, dict):
            attempts = []
            for member in objects:
                found: list[str] = []
                _check_object(member, value, path, found, provider)
                if not found:
                    return
                attempts.append(found)
            problems.extend(min(attempts, key=len))


def _is_placeholder(value: Any) -> bool:
    return isinstance(value, pulumi.output.Unknown) or value == UNKNOWN


# ---------------------------------------------------------------- mock answers
def _fake_id(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:16]


def _ec2_id(prefix: str, *parts: str) -> str:
    """An EC2 resource ID as EC2 makes them now: the prefix and 17 hex digits (sg-0123456789abcdef0;
    components/core/config.py accepts only 8 or 17 in the IDs a stack file names)."""
    return f"{prefix}-{hashlib.sha256('/'.join(parts).encode()).hexdigest()[:17]}"


class StrictMocks(pulumi.runtime.Mocks):
    """Realistic computed outputs for the resources and invokes this program uses.

    `stack_outputs` maps fully qualified stack names to their outputs as a plan records them
    ("[secret]" for a secret one): what a `pulumi.StackReference` to that stack reads. A reference
    to any other stack fails the run, as it would fail a preview.
    """

    def __init__(self, region: str = "ap-northeast-2", stack_outputs: Optional[dict[str, dict[str, Any]]] = None):
        self.region = region
        self.invokes: list[str] = []
        self.stack_outputs = stack_outputs or {}

    def _stack_reference(self, name: str) -> dict[str, Any]:
        if name not in self.stack_outputs:
            known = ", ".join(sorted(self.stack_outputs)) or "none"
            raise StrictMockError(f"StackReference to {name}: no outputs of that stack to read offline (stacks planned first: {known})")
        outputs = self.stack_outputs[name]
        secret = sorted(k for k, v in outputs.items() if v == SECRET)
        # Like the engine: secret outputs arrive as secrets, and their names are listed.
        values = {k: rpc.wrap_rpc_secret(v) if k in secret else v for k, v in outputs.items()}
        return {"name": name, "outputs": values, "secretOutputNames": secret}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        state = dict(args.inputs)
        name, typ = args.name, args.typ
        rid = f"{name}-{_fake_id(typ, name)}"
        if typ == "pulumi:pulumi:StackReference":
            rid = args.resource_id or str(state.get("name"))
            return rid, self._stack_reference(rid)
        if typ == "aws:s3/bucket:Bucket":
            rid = state.get("bucket", name)
            state.update(bucket=rid, arn=f"arn:aws:s3:::{rid}", region=self.region)
        elif typ == "aws:iam/role:Role":
            rid = state.get("name", name)
            state.update(name=rid, arn=f"arn:aws:iam::{ACCOUNT_ID}:role/{rid}", uniqueId=f"AROA{_fake_id(rid).upper()}")
        elif typ == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
            url = str(state.get("url", "")).removeprefix("https://")
            state.update(arn=f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/{url}")
        elif typ == "aws:eks/podIdentityAssociation:PodIdentityAssociation":
            state.update(associationArn=f"arn:aws:eks:{self.region}:{ACCOUNT_ID}:podidentityassociation/{rid}", associationId=rid)
        elif typ == "aws:iam/instanceProfile:InstanceProfile":
            rid = state.get("name", name)
            state.update(name=rid, arn=f"arn:aws:iam::{ACCOUNT_ID}:instance-profile/{rid}")
        elif typ == "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace":
            rid = f"ns-{_fake_id(typ, name)}"
            state.update(arn=f"arn:aws:servicediscovery:{self.region}:{ACCOUNT_ID}:namespace/{rid}", hostedZone=f"Z{_fake_id(name).upper()}")
        elif typ == "aws:servicediscovery/service:Service":
            rid = f"srv-{_fake_id(typ, name)}"
            state["arn"] = f"arn:aws:servicediscovery:{self.region}:{ACCOUNT_ID}:service/{rid}"
        elif typ == "aws:lb/loadBalancer:LoadBalancer":
            state.update(arn=f"arn:aws:elasticloadbalancing:{self.region}:{ACCOUNT_ID}:loadbalancer/net/{name[:32]}/{_fake_id(name)}",
                         dnsName=f"{name[:32]}-{_fake_id(name)[:10]}.elb.{self.region}.amazonaws.com")
        elif typ == "aws:lb/targetGroup:TargetGroup":
            state["arn"] = f"arn:aws:elasticloadbalancing:{self.region}:{ACCOUNT_ID}:targetgroup/{name[:32]}/{_fake_id(name)}"
        elif typ == "aws:ec2/launchTemplate:LaunchTemplate":
            rid = _ec2_id("lt", typ, name)
            state.update(latestVersion=1, defaultVersion=1)
        elif typ == "aws:ec2/securityGroup:SecurityGroup":
            rid = _ec2_id("sg", typ, name)
        elif typ == "aws:secretsmanager/secret:Secret":
            state["arn"] = f"arn:aws:secretsmanager:{self.region}:{ACCOUNT_ID}:secret:{name}-{_fake_id(name)[:6]}"
        elif typ == "aws:rds/cluster:Cluster":
            state.update(endpoint=f"{name}.cluster-{_fake_id(name)[:12]}.{self.region}.rds.amazonaws.com",
                         masterUserSecrets=[{"secretArn": f"arn:aws:secretsmanager:{self.region}:{ACCOUNT_ID}:secret:rds!cluster-{_fake_id(name)}-abc123",
                                             "secretStatus": "active", "kmsKeyId": ""}])
        elif typ.startswith("random:index/random"):
            state["result"] = f"mock-{name}-{_fake_id(name)}"
        elif typ == "docker:index/remoteImage:RemoteImage":
            state["imageId"] = f"sha256:{hashlib.sha256(str(state.get('name')).encode()).hexdigest()}"
            state["repoDigest"] = f"{state.get('name')}@{state['imageId']}"
        elif typ in ("docker:index/network:Network", "docker:index/volume:Volume", "docker:index/secret:Secret", "docker:index/serviceConfig:ServiceConfig"):
            state.setdefault("name", name)
        elif typ == "minio:index/s3Bucket:S3Bucket":
            rid = state.get("bucket", name)
            state.update(bucket=rid, bucketDomainName=f"{rid}.mock", arn=f"arn:aws:s3:::{rid}")
        elif typ == "minio:index/iamUser:IamUser":
            rid = state.get("name", name)
            state.update(name=rid, secret=state.get("secret") or f"mock-secret-{_fake_id(rid)}")
        elif typ == "minio:index/iamPolicy:IamPolicy":
            rid = state.get("name", name)
            state["name"] = rid
        elif typ.startswith("kubernetes:"):
            metadata = dict(state.get("metadata") or {})
            metadata.setdefault("name", f"{name}-{_fake_id(name)[:8]}")
            state["metadata"] = metadata
        return rid, state

    def call(self, args: pulumi.runtime.MockCallArgs):
        token, a = args.token, args.args
        self.invokes.append(token)
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT_ID, "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/ci", "userId": "AIDAEXAMPLE", "id": ACCOUNT_ID}
        if token == "aws:eks/getCluster:getCluster":
            name = a["name"]
            issuer = f"https://oidc.eks.{self.region}.amazonaws.com/id/{OIDC_ID}"
            return {
                "name": name,
                "id": name,
                "arn": f"arn:aws:eks:{self.region}:{ACCOUNT_ID}:cluster/{name}",
                "endpoint": f"https://{OIDC_ID}.gr7.{self.region}.eks.amazonaws.com",
                "version": "1.33",
                "status": "ACTIVE",
                "certificateAuthorities": [{"data": base64.b64encode(b"mock-ca").decode()}],
                "identities": [{"oidcs": [{"issuer": issuer}]}],
                "vpcConfig": {"subnetIds": [], "securityGroupIds": []},
            }
        if token == "aws:iam/getOpenIdConnectProvider:getOpenIdConnectProvider":
            url = a["url"].removeprefix("https://")
            return {"arn": f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/{url}", "url": url, "clientIdLists": ["sts.amazonaws.com"], "id": url}
        raise StrictMockError(f"invoke {token} has no mock answer in tools/engine.py; add a realistic one")


# ---------------------------------------------------------------- recording monitor
@dataclass
class Registration:
    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    inputs: dict
    provider: str = ""
    depends_on: list[str] = field(default_factory=list)
    protect: bool = False


class RecordingMonitor(pulumi_mocks.MockMonitor):
    def __init__(self, mocks: StrictMocks):
        super().__init__(mocks)
        self.registrations: list[Registration] = []
        self.problems: list[str] = []

    def ReadResource(self, request):
        # Reads (a StackReference is one) declare nothing, but the plan lists them: a reviewer
        # sees which other stacks this one depends on.
        response = super().ReadResource(request)
        self.registrations.append(
            Registration(
                urn=response.urn,
                type=request.type,
                name=request.name,
                parent=request.parent,
                custom=True,
                inputs=_masked(json_format.MessageToDict(request.properties)),
                provider=request.provider.rsplit("::", 1)[0] if request.provider else "",
                depends_on=list(request.dependencies),
            )
        )
        return response

    def RegisterResource(self, request):
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type != "pulumi:pulumi:Stack":
            # The SDK's deserializer lifts a secret nested at any depth up to its top-level input
            # (pulumi/runtime/rpc.py deserialize_property), so unwrapping those unwraps them all.
            plain, _ = rpc.deserialize_properties_unwrap_secrets(request.object)
            problems = check_inputs(request.type, plain)
            if problems:
                self.problems.extend(f"{urn}: {p}" for p in problems)
                raise StrictMockError(f"{urn}: " + "; ".join(problems))
            self.registrations.append(
                Registration(
                    urn=urn,
                    type=request.type,
                    name=request.name,
                    parent=request.parent,
                    custom=bool(request.custom),
                    inputs=_masked(json_format.MessageToDict(request.object)),
                    # A provider reference is "<urn>::<id>"; the URN names it across runs.
                    provider=request.provider.rsplit("::", 1)[0] if request.provider else "",
                    depends_on=list(request.dependencies),
                    protect=bool(request.protect),
                )
            )
        if request.type == "pulumi:pulumi:Stack":
            return resource_pb2.RegisterResourceResponse(urn=urn)
        inputs = rpc.deserialize_properties(request.object)
        resource_args = pulumi_mocks.MockResourceArgs(
            typ=request.type,
            name=request.name,
            inputs=inputs,
            provider=request.provider,
            resource_id=request.importId,
            custom=request.custom or False,
        )
        id_, state = self.mocks.new_resource(resource_args)
        # Like the engine, mark the outputs the SDK declares secret (e.g. random passwords).
        returned = {
            k: rpc.wrap_rpc_secret(v) if k in request.additionalSecretOutputs else v for k, v in state.items()
        }
        obj_proto = _sync_await(rpc.serialize_properties(returned, {}))
        self.resources[urn] = pulumi_mocks.MockMonitor.ResourceRegistration(urn, id_, state)
        return resource_pb2.RegisterResourceResponse(urn=urn, id=id_, object=obj_proto)


def _masked(value: Any) -> Any:
    """Engine wire values with secrets and unknowns replaced by readable markers."""
    if isinstance(value, dict):
        sig = value.get(rpc._special_sig_key)
        if sig == rpc._special_secret_sig:
            return SECRET
        if sig == rpc._special_resource_sig:
            return value.get("urn", "")
        if sig in (rpc._special_asset_sig, rpc._special_archive_sig):
            return "[asset]"
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    if value == rpc.UNKNOWN:
        return UNKNOWN
    return value


# ---------------------------------------------------------------- stack config
def stack_config(stack: str, overrides: Optional[dict[str, Any]] = None, root: Optional[Path] = None) -> tuple[dict[str, str], list[str]]:
    """The config map Pulumi would hand the program: project defaults, then Pulumi.<stack>.yaml.

    Encrypted (`secure:`) values become placeholders that stay secret. `overrides` (full keys,
    plain values; None deletes) are applied last, for tests.
    """
    root = root or project_root()
    project = read_yaml_file(stack, root / "Pulumi.yaml")
    values: dict[str, Any] = {}
    for key, spec in (project.get("config") or {}).items():
        full = key if ":" in key else f"{PROJECT}:{key}"
        if isinstance(spec, dict) and "default" in spec:
            values[full] = spec["default"]
    stack_file = root / f"Pulumi.{stack}.yaml"
    if not stack_file.exists():
        # Pulumi names a stack file with the project file's extension (pulumi/pulumi
        # sdk/go/common/workspace/paths.go, DetectProjectStackPath): next to Pulumi.yaml, a .yml is never read.
        other = stack_file.with_suffix(".yml")
        hint = (f"; there is {other.name}, which Pulumi does not read next to Pulumi.yaml: rename it to {stack_file.name}"
                if other.exists() else "")
        raise FileNotFoundError(f"no stack file {stack_file.name}{hint}; stacks: {', '.join(available_stacks(root))}")
    for key, value in (read_yaml_file(stack, stack_file, stack_file=True).get("config") or {}).items():
        values[key if ":" in key else f"{PROJECT}:{key}"] = value
    for key, value in (overrides or {}).items():
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value
    raw: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in values.items():
        value, secret = _placeholders(key, value)
        if secret:
            secret_keys.append(key)
        raw[key] = value if isinstance(value, str) else json.dumps(value)
    return raw, secret_keys


def read_yaml_file(stack: str, path: Path, stack_file: bool = False) -> dict[str, Any]:
    """A project or stack file as Pulumi reads it: a mapping whose `config` is a mapping, no key
    twice in one mapping, and (in a stack file) no config key outside `config:`.

    Anything else raises `config.StackFileError`: one line with the file, line and column and
    what to change, instead of a parser traceback or a value the user does not see being used.
    """
    import yaml

    from components.core.config import StackFileError

    loader = yaml.SafeLoader(path.read_text())
    try:
        node = loader.get_single_node()
        # Before constructing: construction folds merge keys (`<<: *anchor`) into the mapping.
        duplicate = _duplicate_key(node)
        data = loader.construct_document(node) if node is not None else {}
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        raise StackFileError(stack, path.name, mark.line + 1, mark.column + 1, *_yaml_syntax_problem(error)) from None
    finally:
        loader.dispose()
    if not isinstance(node, yaml.MappingNode) and node is not None:
        mark = node.start_mark
        raise StackFileError(stack, path.name, mark.line + 1, mark.column + 1,
                             f"the file is {_yaml_kind(node)} where a mapping belongs",
                             "start the file with `config:` and put each key on its own indented line below it")
    if duplicate:
        first, again = duplicate
        raise StackFileError(stack, path.name, again.start_mark.line + 1, again.start_mark.column + 1,
                             f"`{again.value}` appears twice in one mapping (first on line {first.start_mark.line + 1}); "
                             "YAML would silently keep only the last value",
                             "keep one of the two")
    for key_node, value_node in node.value if node is not None else []:
        if stack_file and ":" in str(key_node.value):
            mark = key_node.start_mark
            raise StackFileError(stack, path.name, mark.line + 1, mark.column + 1,
                                 f"`{key_node.value}` is a config key at the top level of the file, where Pulumi does not read it",
                                 "put a line `config:` above the keys and indent each of them under it by two spaces")
        if key_node.value == "config" and not isinstance(value_node, yaml.MappingNode) and value_node.tag != "tag:yaml.org,2002:null":
            mark = value_node.start_mark
            raise StackFileError(stack, path.name, mark.line + 1, mark.column + 1,
                                 f"`config` is {_yaml_kind(value_node)} where a mapping belongs",
                                 f"write each key as `  {PROJECT}:<key>: <value>` under `config:` (no leading '- ')")
    return data


def _duplicate_key(node: Any) -> Optional[tuple[Any, Any]]:
    """The first and the repeated key node of the first mapping, at any depth, that has a scalar
    key twice (YAML merge keys aside)."""
    import yaml

    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if key_node.value in seen:
                    return seen[key_node.value], key_node
                seen[key_node.value] = key_node
            found = _duplicate_key(value_node)
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            found = _duplicate_key(item)
            if found:
                return found
    return None


def _yaml_kind(node: Any) -> str:
    import yaml

    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return f"the value {node.value!r}" if isinstance(node, yaml.ScalarNode) else "not a mapping"


def _yaml_syntax_problem(error: Any) -> tuple[str, str]:
    """(problem, fix) for a YAML parser or scanner error."""
    problem = error.problem or "is not valid YAML"
    if error.context and error.context_mark is not None and error.context_mark != error.problem_mark:
        problem += f" ({error.context} at line {error.context_mark.line + 1}, column {error.context_mark.column + 1})"
    elif error.context:
        problem = f"{error.context}: {problem}"
    if "'\\t'" in problem:
        fix = "indent with spaces; YAML does not allow tabs in indentation"
    elif "flow mapping" in problem or "flow sequence" in problem:
        fix = "close the '{' or '[' opened there, or write the value as indented lines instead"
    elif "mapping values are not allowed" in problem:
        fix = "put a space after every ':' that ends a key, and quote values that contain ': '"
    elif "quoted scalar" in problem:
        fix = "close the quote"
    else:
        fix = "correct the YAML at that position: indent with spaces, end each key with ': ', close every quote and bracket"
    return f"is not valid YAML: {problem}", fix


def _placeholders(key: str, value: Any) -> tuple[Any, bool]:
    if isinstance(value, dict) and set(value) == {"secure"}:
        return f"plan-placeholder-for-{key.split(':')[-1]}", True
    if isinstance(value, dict):
        pairs = {k: _placeholders(key, v) for k, v in value.items()}
        return {k: v for k, (v, _) in pairs.items()}, any(s for _, s in pairs.values())
    if isinstance(value, list):
        pairs = [_placeholders(key, v) for v in value]
        return [v for v, _ in pairs], any(s for _, s in pairs)
    if isinstance(value, bool):
        return ("true" if value else "false"), False
    return value, False


def available_stacks(root: Optional[Path] = None) -> list[str]:
    root = root or project_root()
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))


# ---------------------------------------------------------------- running the program
@dataclass
class PlanResult:
    stack: str
    resources: list[Registration]
    outputs: dict[str, Any]
    # Tokens of the invokes the program made, in call order.
    invokes: list[str] = field(default_factory=list)

    def by_type(self, typ: str) -> list[Registration]:
        return [r for r in self.resources if r.type == typ]

    def one(self, typ: str, name: str) -> Registration:
        found = [r for r in self.resources if r.type == typ and r.name == name]
        assert len(found) == 1, f"expected one {typ} named {name}, found {[r.urn for r in found]}"
        return found[0]


def run(stack: str, overrides: Optional[dict[str, Any]] = None, program: Optional[Path] = None, preview: bool = False,
        stack_outputs: Optional[dict[str, dict[str, Any]]] = None) -> PlanResult:
    """Run `program` for `stack` under strict mocks; raise on bad config or a strict-mock failure.

    `stack_outputs` are what StackReferences read (fully qualified name -> outputs). Default: the
    hub a Thanos spoke names, planned first from its own stack file, so a spoke is planned
    against its hub's real plan outputs.
    """
    program = program or project_root() / "__main__.py"
    raw, secret_keys = stack_config(stack, overrides)
    if stack_outputs is None:
        stack_outputs = {name: _referenced_outputs(stack, raw, secret_keys, name) for name in referenced_stacks(raw)}
    region = _region_hint(raw)
    monitor = RecordingMonitor(StrictMocks(region, stack_outputs))
    settings.reset_options()
    pulumi.runtime.set_all_config(raw, secret_keys)
    pulumi.runtime.set_mocks(monitor.mocks, project=PROJECT, stack=stack, preview=preview, monitor=monitor, organization=ORGANIZATION)
    root = settings.get_root_resource()

    def program_run():
        runpy.run_path(str(program), run_name="__main__")

    _sync_await(run_pulumi_func(program_run))
    if monitor.problems:
        raise StrictMockError("\n".join(monitor.problems))
    outputs = _sync_await(_resolve_outputs(dict(root.outputs)))
    return PlanResult(stack, monitor.registrations, outputs, monitor.mocks.invokes)


def referenced_stacks(raw: dict[str, str]) -> list[str]:
    """Fully qualified names of the stacks the config makes the program reference: a Thanos
    spoke's hub. Unreadable config is left for the program to report."""
    try:
        thanos = json.loads(raw.get(f"{PROJECT}:tools", "{}")).get("thanos") or {}
    except (json.JSONDecodeError, AttributeError):
        return []
    hub = thanos.get("hub") if isinstance(thanos, dict) and thanos.get("role") == "spoke" else None
    return [hub] if isinstance(hub, str) else []


def stack_file_of(name: str, root: Optional[Path] = None) -> Optional[str]:
    """The stack of this project a fully qualified name points at, if its stack file is here."""
    parts = name.split("/")
    if len(parts) != 3 or parts[1] != PROJECT or parts[2] not in available_stacks(root):
        return None
    return parts[2]


def _referenced_outputs(stack: str, raw: dict[str, str], secret_keys: list[str], name: str) -> dict[str, Any]:
    """The outputs a spoke's StackReference to its hub reads, once the spoke's own config holds.

    The spoke's config is validated first, as the program and tools.cost validate it: a hub that
    is the stack itself or not fully qualified is that one config error, not a plan of some other
    stack. A hub that is itself a spoke is refused with the program's own check (check_hub) before
    it is planned: planning it would plan its hub in turn, and two spokes naming each other would
    never end.
    """
    from components.core import loading, thanos_topology

    cfg = loading.load(stack, raw, set(secret_keys))
    hub = stack_file_of(name, project_root())
    if hub is not None:
        hubs_hub = referenced_stacks(stack_config(hub)[0])
        if hubs_hub:
            thanos_topology.check_hub(cfg, stack, f"{ORGANIZATION}/{PROJECT}/{stack}", None, {"hub": hubs_hub[0]})
    return referenced_stack_outputs(name)


def referenced_stack_outputs(name: str) -> dict[str, Any]:
    """The plan outputs of a referenced stack of this project, planned from its stack file."""
    return _planned_outputs(name, project_root())


@functools.lru_cache(maxsize=None)
def _planned_outputs(name: str, root: Path) -> dict[str, Any]:
    stack = stack_file_of(name, root)
    if stack is None:
        raise StrictMockError(f"StackReference to {name}: no Pulumi.<stack>.yaml of project {PROJECT} here to plan it offline "
                              f"(stacks: {', '.join(available_stacks(root))})")
    return run(stack).outputs


def _region_hint(raw: dict[str, str]) -> str:
    try:
        return json.loads(raw.get(f"{PROJECT}:storage", "{}")).get("region") or "ap-northeast-2"
    except (json.JSONDecodeError, AttributeError):
        return "ap-northeast-2"


async def _resolve_outputs(outputs: dict[str, Any]) -> dict[str, Any]:
    resolved = {}
    for name, value in outputs.items():
        out = pulumi.Output.from_input(value)
        is_secret = await out.is_secret()
        known = await out.is_known()
        plain = await out.future()
        resolved[name] = SECRET if is_secret else (plain if known else UNKNOWN)
    return resolved


def keys_of(value: Any) -> set[str]:
    """Every dict key at any depth (for asserting shapes)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for k, v in value.items():
            found.add(k)
            found |= keys_of(v)
    elif isinstance(value, list):
        for v in value:
            found |= keys_of(v)
    return found


def walk_strings(value: Any) -> typing.Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from walk_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from walk_strings(v)


