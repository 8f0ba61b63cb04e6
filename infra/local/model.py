"""What the local stack runs, read from template.yaml: functions, routes, S3 triggers, log
subscriptions, storage.

Everything here comes from the template - no route, name or environment variable is repeated
in code - so the local stack cannot drift from what `sam deploy` creates.
"""

from __future__ import annotations

import copy
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from infra.template import load_template

from .intrinsics import Resolver, TemplateError, cfn_string
from .logs import FilterPattern, parse_filter_pattern

FUNCTION_TYPES = ("AWS::Serverless::Function",)
LAYER_TYPES = ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion")
TABLE_TYPES = ("AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable")
# Resource types that have no local meaning (permissions, log retention, the API itself, whose
# routes come from the functions' events); they are listed at startup so nothing is silent.
NOT_EMULATED_NOTE = "not emulated locally"

# Lambda's own defaults when a function declares neither value nor a Globals value.
DEFAULT_TIMEOUT_SECONDS = 3
DEFAULT_MEMORY_MB = 128
DEFAULT_ASYNC_RETRIES = 2


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    name: str  # the physical function name (what `!Ref TheFunction` gives)
    arn: str
    code_dir: Path
    handler: str  # "module.function", e.g. "app.lambda_handler"
    layer_dirs: tuple[Path, ...]
    environment: dict[str, str]  # Globals.Function.Environment merged with the function's own
    timeout_seconds: float
    memory_mb: int
    package_type: str  # "Zip" or "Image"
    reserved_concurrency: int | None  # ReservedConcurrentExecutions, None when unreserved
    async_retries: int  # EventInvokeConfig.MaximumRetryAttempts
    dead_letter_queue: str | None  # physical SQS queue name for failed async invocations


@dataclass(frozen=True)
class ApiRoute:
    function: str  # logical id of the function
    method: str  # upper case, or "ANY"
    path: str  # resource path template, e.g. /v1/users/{user_id}/profile
    stage: str
    binary_media_types: tuple[str, ...] = ()
    # Auth as the template declares it (the API's DefaultAuthorizer unless the event says
    # otherwise): "AWS_IAM" (SigV4) or "NONE"; enforced only by a stack started with --auth.
    authorizer: str = "NONE"
    api_key_required: bool = False

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(part for part in self.path.split("/") if part)


@dataclass(frozen=True)
class S3Subscription:
    """One `Type: S3` event of one function."""

    function: str  # logical id
    event_id: str  # the event's logical name in the template
    bucket: str  # physical bucket name
    events: tuple[str, ...]  # e.g. ("s3:ObjectCreated:*",)
    prefix: str = ""
    suffix: str = ""

    def matches(self, bucket: str, event_name: str, encoded_key: str) -> bool:
        """Apply S3's own rules: event type pattern, then prefix/suffix on the decoded key.

        `event_name` is the record's eventName (`ObjectCreated:Put`, without `s3:`); the record's
        key is URL-encoded (spaces as `+`) while filter rules are written against the real key.
        """
        if bucket != self.bucket:
            return False
        full_name = "s3:" + event_name
        if not any(full_name == pattern or (pattern.endswith("*") and full_name.startswith(pattern[:-1]))
                   for pattern in self.events):
            return False
        key = unquote_plus(encoded_key)
        return key.startswith(self.prefix) and key.endswith(self.suffix)


@dataclass(frozen=True)
class Schedule:
    """An EventBridge Scheduler event of a function (SAM `ScheduleV2`): not run on a clock locally;
    `LocalStack.fire_schedule` delivers its `Input` when a test or a person asks."""

    function: str
    event_id: str
    expression: str
    enabled: bool
    input: Any


@dataclass(frozen=True)
class LogSubscription:
    """An `AWS::Logs::SubscriptionFilter` from one function's log group to another function."""

    logical_id: str  # the filter's logical id
    name: str  # its FilterName, else the name CloudFormation would generate (minus the random suffix)
    source_function: str  # logical id of the function whose log group the filter reads
    log_group: str  # physical log group name, /aws/lambda/<source function name>
    pattern: FilterPattern  # pattern.text is the template's FilterPattern
    destination_function: str  # logical id of the function DestinationArn names


@dataclass
class StorageResource:
    logical_id: str
    kind: str
    name: str  # physical name
    properties: dict[str, Any]  # intrinsics already resolved


@dataclass
class StackModel:
    template_path: Path
    stage: str
    resolver: Resolver
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    routes: list[ApiRoute] = field(default_factory=list)
    s3_subscriptions: list[S3Subscription] = field(default_factory=list)
    schedules: list[Schedule] = field(default_factory=list)
    log_subscriptions: list[LogSubscription] = field(default_factory=list)
    buckets: list[StorageResource] = field(default_factory=list)
    tables: list[StorageResource] = field(default_factory=list)
    queues: list[StorageResource] = field(default_factory=list)
    delivery_streams: list[StorageResource] = field(default_factory=list)
    not_emulated: Counter = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)

    def function_by_name(self, name_or_arn: str) -> FunctionSpec | None:
        """Find a function by physical name, logical id, or (partial) ARN, as Lambda's Invoke does."""
        name = name_or_arn
        if ":function:" in name:  # arn:aws:lambda:region:account:function:name[:qualifier]
            name = name.split(":function:", 1)[1].split(":", 1)[0]
        elif ":" in name:  # name:qualifier
            name = name.split(":", 1)[0]
        for spec in self.functions.values():
            if name in (spec.name, spec.logical_id):
                return spec
        return None


def merge_globals(global_properties: dict, own_properties: dict) -> dict:
    """SAM's Globals rule: maps merge (the function wins), lists concatenate, scalars override."""
    merged = copy.deepcopy(global_properties)
    for key, value in own_properties.items():
        current = merged.get(key)
        if isinstance(current, dict) and isinstance(value, dict) and not _is_intrinsic(value):
            merged[key] = merge_globals(current, value)
        elif isinstance(current, list) and isinstance(value, list):
            merged[key] = current + value
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _is_intrinsic(node: dict) -> bool:
    if len(node) != 1:
        return False
    key = next(iter(node))
    return key in ("Ref", "Condition") or key.startswith("Fn::")


def load_stack_model(template_path: str | Path, stage: str = "local", parameters: dict[str, Any] | None = None,
                     **resolver_options: Any) -> StackModel:
    template_path = Path(template_path).resolve()
    template = load_template(template_path)
    overrides = {"Stage": stage} if "Stage" in (template.get("Parameters") or {}) else {}
    overrides.update(parameters or {})
    resolver = Resolver(template, overrides, **resolver_options)
    model = StackModel(template_path=template_path, stage=stage, resolver=resolver)
    base = template_path.parent
    resources = template.get("Resources") or {}
    globals_section = template.get("Globals") or {}
    layer_dirs = {
        logical_id: base / resolver.resolve(res.get("Properties", {}).get("ContentUri", "."))
        for logical_id, res in resources.items()
        if res.get("Type") in LAYER_TYPES and resolver.resource_enabled(logical_id)
    }

    subscription_filters = []
    for logical_id, resource in resources.items():
        kind = resource.get("Type", "")
        if not resolver.resource_enabled(logical_id):
            continue
        if kind in FUNCTION_TYPES:
            properties = merge_globals(globals_section.get("Function") or {}, resource.get("Properties") or {})
            spec = _function_spec(model, logical_id, resource, properties, layer_dirs, base)
            model.functions[logical_id] = spec
            api_globals = globals_section.get("Api") or {}
            _read_events(model, spec, properties.get("Events") or {}, resources, api_globals)
        elif kind == "AWS::S3::Bucket":
            model.buckets.append(_storage(resolver, logical_id, resource))
        elif kind in TABLE_TYPES:
            model.tables.append(_storage(resolver, logical_id, resource))
        elif kind == "AWS::SQS::Queue":
            model.queues.append(_storage(resolver, logical_id, resource))
        elif kind == "AWS::KinesisFirehose::DeliveryStream":
            model.delivery_streams.append(_storage(resolver, logical_id, resource))
        elif kind == "AWS::Logs::SubscriptionFilter":
            subscription_filters.append(logical_id)  # read once every function is known
        elif kind not in LAYER_TYPES:
            model.not_emulated[kind] += 1
    for logical_id in subscription_filters:
        model.log_subscriptions.append(_log_subscription(model, logical_id, resources))
    return model


def _log_subscription(model: StackModel, logical_id: str, resources: dict) -> LogSubscription:
    """Read one subscription filter; anything the local stack cannot deliver is a TemplateError."""
    resolver = model.resolver
    properties = resources[logical_id].get("Properties") or {}
    groups = {f"/aws/lambda/{spec.name}": spec.logical_id for spec in model.functions.values()}
    log_group = cfn_string(resolver.resolve(properties.get("LogGroupName")))
    if log_group not in groups:
        raise TemplateError(f"{logical_id}: LogGroupName {log_group!r} is not the log group of a function in the "
                            "template (/aws/lambda/<function name>); only functions' logs are emulated locally")
    destination = cfn_string(resolver.resolve(properties.get("DestinationArn")))
    target = next((spec for spec in model.functions.values() if spec.arn == destination), None)
    if target is None:
        raise TemplateError(f"{logical_id}: DestinationArn {destination!r} is not a function of the template; "
                            "only Lambda destinations are emulated locally (not Kinesis, Firehose or OpenSearch)")
    pattern_text = resolver.resolve(properties.get("FilterPattern"))
    if not isinstance(pattern_text, str):
        raise TemplateError(f"{logical_id}: FilterPattern must be a string, got {pattern_text!r}")
    try:
        pattern = parse_filter_pattern(pattern_text)
    except TemplateError as exc:
        raise TemplateError(f"{logical_id}: {exc}") from None
    if not _invoke_permitted(model, resources, target.logical_id):
        model.warnings.append(f"{logical_id}: no AWS::Lambda::Permission lets logs.amazonaws.com invoke "
                              f"{target.logical_id}; CloudWatch Logs would refuse to create the filter")
    name = resolver.resolve(properties.get("FilterName"))
    return LogSubscription(
        logical_id=logical_id,
        name=cfn_string(name) if name else f"{resolver.stack_name}-{logical_id}",
        source_function=groups[log_group],
        log_group=log_group,
        pattern=pattern,
        destination_function=target.logical_id,
    )


def _invoke_permitted(model: StackModel, resources: dict, function: str) -> bool:
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::Lambda::Permission" or not model.resolver.resource_enabled(logical_id):
            continue
        properties = resource.get("Properties") or {}
        if model.resolver.resolve(properties.get("Principal")) != "logs.amazonaws.com":
            continue
        named = model.function_by_name(cfn_string(model.resolver.resolve(properties.get("FunctionName", ""))))
        if named is not None and named.logical_id == function:
            return True
    return False


def _storage(resolver: Resolver, logical_id: str, resource: dict) -> StorageResource:
    return StorageResource(
        logical_id=logical_id,
        kind=resource["Type"],
        name=resolver.physical_name(logical_id),
        properties=resolver.resolve(resource.get("Properties") or {}),
    )


def _function_spec(model: StackModel, logical_id: str, resource: dict, properties: dict,
                   layer_dirs: dict[str, Path], base: Path) -> FunctionSpec:
    resolver = model.resolver
    package_type = resolver.resolve(properties.get("PackageType", "Zip"))
    if package_type == "Image":
        code_dir, handler = _image_code(resource, properties, base, resolver)
        # An image cannot take layers: its Dockerfile copies the layer folders (shared/) into the
        # image instead. Every layer folder of the template goes on sys.path to mirror that.
        layers = tuple(layer_dirs.values())
    else:
        code_uri = resolver.resolve(properties.get("CodeUri"))
        if not isinstance(code_uri, str):
            raise TemplateError(f"{logical_id}: CodeUri must be a local folder for the local stack, got {code_uri!r}")
        code_dir = base / code_uri
        handler = resolver.resolve(properties.get("Handler") or "")
        layers = tuple(_layer_dirs(model, logical_id, properties.get("Layers") or [], layer_dirs))
    if not handler:
        raise TemplateError(f"{logical_id}: no Handler")
    if not code_dir.is_dir():
        model.warnings.append(f"{logical_id}: code folder {code_dir} does not exist (yet); invocations will fail")

    variables = resolver.resolve((properties.get("Environment") or {}).get("Variables") or {})
    reserved = resolver.resolve(properties.get("ReservedConcurrentExecutions"))
    retries = resolver.resolve((properties.get("EventInvokeConfig") or {}).get("MaximumRetryAttempts"))
    return FunctionSpec(
        logical_id=logical_id,
        name=resolver.physical_name(logical_id),
        arn=resolver.arn(logical_id),
        code_dir=code_dir,
        handler=handler,
        layer_dirs=layers,
        # Lambda passes every variable as a string: MAX_UPLOAD_MB: !Ref MaxUploadMB arrives as "200".
        environment={name: cfn_string(value) for name, value in variables.items()},
        timeout_seconds=float(resolver.resolve(properties.get("Timeout", DEFAULT_TIMEOUT_SECONDS))),
        memory_mb=int(resolver.resolve(properties.get("MemorySize", DEFAULT_MEMORY_MB))),
        package_type=package_type,
        reserved_concurrency=None if reserved is None else int(reserved),
        async_retries=DEFAULT_ASYNC_RETRIES if retries is None else int(retries),
        dead_letter_queue=_dead_letter_queue(model, logical_id, properties.get("DeadLetterQueue")),
    )


def _image_code(resource: dict, properties: dict, base: Path, resolver: Resolver) -> tuple[Path, str]:
    """Code folder and handler of a container-image function, from CodeUri or the Dockerfile."""
    metadata = resource.get("Metadata") or {}
    code_uri = resolver.resolve(properties.get("CodeUri"))
    if isinstance(code_uri, str):
        code_dir = base / code_uri
        dockerfile = code_dir / metadata.get("Dockerfile", "Dockerfile")
    else:
        context = base / metadata.get("DockerContext", ".")
        dockerfile = context / metadata.get("Dockerfile", "Dockerfile")
        code_dir = dockerfile.parent
    command = resolver.resolve((properties.get("ImageConfig") or {}).get("Command"))
    if command:
        return code_dir, command[0]
    return code_dir, _dockerfile_command(dockerfile) or "app.lambda_handler"


def _dockerfile_command(dockerfile: Path) -> str | None:
    """The handler named by the Dockerfile's last `CMD ["module.function"]`, if readable."""
    if not dockerfile.is_file():
        return None
    commands = re.findall(r"^\s*CMD\s+(\[.*\])\s*$", dockerfile.read_text(encoding="utf-8"), re.MULTILINE)
    try:
        return json.loads(commands[-1])[0] if commands else None
    except (ValueError, IndexError):
        return None


def _layer_dirs(model: StackModel, logical_id: str, layers: list, layer_dirs: dict[str, Path]) -> list[Path]:
    dirs = []
    arns = {model.resolver.arn(layer_id): layer_id for layer_id in layer_dirs}
    for layer in layers:
        if isinstance(layer, dict) and layer.get("Ref") in layer_dirs:
            layer_id = layer["Ref"]
        else:
            layer_id = arns.get(model.resolver.resolve(layer))
        if layer_id is None:
            model.warnings.append(
                f"{logical_id}: layer {model.resolver.resolve(layer)} is not in the template; "
                "its packages must come from the local virtualenv")
            continue
        if not layer_dirs[layer_id].is_dir():
            model.warnings.append(f"{logical_id}: layer folder {layer_dirs[layer_id]} does not exist")
        dirs.append(layer_dirs[layer_id])
    return dirs


def _dead_letter_queue(model: StackModel, logical_id: str, config: Any) -> str | None:
    if not config:
        return None
    config = model.resolver.resolve(config)
    if config.get("Type") != "SQS":
        model.warnings.append(f"{logical_id}: DeadLetterQueue of type {config.get('Type')} is {NOT_EMULATED_NOTE}")
        return None
    return cfn_string(config["TargetArn"]).rsplit(":", 1)[-1]


def _read_events(model: StackModel, spec: FunctionSpec, events: dict, resources: dict, api_globals: dict) -> None:
    resolver = model.resolver
    for event_id, event in events.items():
        kind = event.get("Type")
        properties = event.get("Properties") or {}
        if kind == "Api":
            api_ref = properties.get("RestApiId")
            api_id = api_ref["Ref"] if isinstance(api_ref, dict) and "Ref" in api_ref else "ServerlessRestApi"
            api_properties = merge_globals(api_globals, (resources.get(api_id) or {}).get("Properties") or {})
            # SAM's implicit API is deployed to a stage called Prod.
            stage = cfn_string(resolver.resolve(api_properties.get("StageName", "Prod")))
            binary_types = tuple(cfn_string(t).replace("~1", "/")
                                 for t in resolver.resolve(api_properties.get("BinaryMediaTypes") or []))
            method = cfn_string(resolver.resolve(properties["Method"])).upper()
            path = cfn_string(resolver.resolve(properties["Path"]))
            api_auth = api_properties.get("Auth") or {}
            event_auth = properties.get("Auth") or {}
            authorizer = cfn_string(resolver.resolve(
                event_auth.get("Authorizer", api_auth.get("DefaultAuthorizer", "NONE"))))
            if authorizer not in ("AWS_IAM", "NONE"):
                model.warnings.append(f"{spec.logical_id} {method} {path}: authorizer {authorizer} is "
                                      f"{NOT_EMULATED_NOTE}; the route is open even with --auth")
                authorizer = "NONE"
            api_key_required = resolver.resolve(event_auth.get("ApiKeyRequired", api_auth.get("ApiKeyRequired", False)))
            model.routes.append(ApiRoute(
                function=spec.logical_id,
                method=method,
                path=path,
                stage=stage,
                binary_media_types=binary_types,
                authorizer=authorizer,
                api_key_required=str(api_key_required).lower() == "true",
            ))
        elif kind == "S3":
            bucket_ref = properties.get("Bucket")
            if not (isinstance(bucket_ref, dict) and bucket_ref.get("Ref") in resources):
                raise TemplateError(f"{spec.logical_id}.{event_id}: an S3 event's Bucket must be "
                                    "!Ref to a bucket in the template")
            names = resolver.resolve(properties["Events"])
            rules = resolver.resolve(((properties.get("Filter") or {}).get("S3Key") or {}).get("Rules") or [])
            # S3 accepts the rule names in either case (prefix/Prefix).
            rule_values = {rule["Name"].lower(): cfn_string(rule["Value"]) for rule in rules}
            model.s3_subscriptions.append(S3Subscription(
                function=spec.logical_id,
                event_id=event_id,
                bucket=resolver.physical_name(bucket_ref["Ref"]),
                events=tuple([names] if isinstance(names, str) else names),
                prefix=rule_values.get("prefix", ""),
                suffix=rule_values.get("suffix", ""),
            ))
        elif kind == "ScheduleV2":
            raw = resolver.resolve(properties.get("Input"))
            model.schedules.append(Schedule(
                function=spec.logical_id, event_id=event_id,
                expression=cfn_string(resolver.resolve(properties.get("ScheduleExpression"))),
                enabled=cfn_string(resolver.resolve(properties.get("State", "ENABLED"))) == "ENABLED",
                input=json.loads(raw) if isinstance(raw, str) else (raw or {})))
        else:
            model.warnings.append(f"{spec.logical_id}.{event_id}: event type {kind} is {NOT_EMULATED_NOTE}")
