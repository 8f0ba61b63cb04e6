"""Resolve CloudFormation intrinsic functions the way a local deployment would.

The local stack never talks to CloudFormation, yet it needs the values CloudFormation would
compute: physical names of buckets, tables and functions, and the environment variables of each
function (`STATE_TABLE: !Ref StateTable`, `DATA_BUCKET: !Sub tailor-${Stage}-...`). This module
computes them for a fixed, fake deployment: account 123456789012, region us-east-1, stack
`tailor-local`, parameters at their defaults except the overrides given (the stage).

Supported: Ref, Fn::Sub (string and list forms, `${!Literal}` escapes), Fn::GetAtt (fake ARNs
and the usual attributes), Fn::Join, Fn::Select, Fn::Split, Fn::FindInMap, Fn::If with
Conditions (Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition), and AWS::NoValue.
Anything else raises TemplateError naming the function, rather than passing a dict through
to a handler's environment.
"""

from __future__ import annotations

import re
from typing import Any

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
STACK_NAME = "tailor-local"


class TemplateError(ValueError):
    """The template uses something the local stack cannot resolve or run."""


# Which property carries the explicit physical name, per resource type.
NAME_PROPERTIES = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::Serverless::SimpleTable": "TableName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::KinesisFirehose::DeliveryStream": "DeliveryStreamName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::Serverless::Function": "FunctionName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Serverless::LayerVersion": "LayerName",
    "AWS::Lambda::LayerVersion": "LayerName",
    "AWS::Serverless::Api": "Name",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::IAM::Role": "RoleName",
}

# Sentinel for `!Ref AWS::NoValue`: the enclosing key or list item disappears.
_NO_VALUE = object()

_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def cfn_string(value: Any) -> str:
    """Render a scalar the way CloudFormation does when it needs a string (true, not True)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class Resolver:
    """Evaluates intrinsic functions against one fake deployment of one template."""

    def __init__(
        self,
        template: dict,
        parameter_overrides: dict[str, Any] | None = None,
        *,
        account_id: str = ACCOUNT_ID,
        region: str = REGION,
        stack_name: str = STACK_NAME,
    ) -> None:
        self.template = template
        self.resources: dict[str, dict] = template.get("Resources") or {}
        self.account_id = account_id
        self.region = region
        self.stack_name = stack_name
        self.parameters = self._parameter_values(parameter_overrides or {})
        self._condition_cache: dict[str, bool] = {}
        self._name_cache: dict[str, str] = {}

    # -- parameters and conditions ------------------------------------------------------

    def _parameter_values(self, overrides: dict[str, Any]) -> dict[str, str]:
        declared = self.template.get("Parameters") or {}
        unknown = set(overrides) - set(declared)
        if unknown:
            raise TemplateError(f"parameter override(s) {sorted(unknown)} not declared in the template")
        values = {}
        for name, spec in declared.items():
            if name in overrides:
                values[name] = cfn_string(overrides[name])
            elif "Default" in (spec or {}):
                # CloudFormation hands every parameter to intrinsics as a string.
                values[name] = cfn_string(spec["Default"])
            else:
                raise TemplateError(f"parameter {name} has no Default; the local stack cannot ask for it")
        return values

    def condition(self, name: str) -> bool:
        if name not in self._condition_cache:
            conditions = self.template.get("Conditions") or {}
            if name not in conditions:
                raise TemplateError(f"unknown condition {name!r}")
            self._condition_cache[name] = self._evaluate_condition(conditions[name])
        return self._condition_cache[name]

    def _evaluate_condition(self, node: Any) -> bool:
        if isinstance(node, dict) and len(node) == 1:
            (function, args), = node.items()
            if function == "Condition":
                return self.condition(args)
            if function == "Fn::Equals":
                left, right = (self.resolve(arg) for arg in args)
                return cfn_string(left) == cfn_string(right)
            if function == "Fn::Not":
                return not self._evaluate_condition(args[0])
            if function == "Fn::And":
                return all(self._evaluate_condition(arg) for arg in args)
            if function == "Fn::Or":
                return any(self._evaluate_condition(arg) for arg in args)
        raise TemplateError(f"unsupported condition expression {node!r}")

    def resource_enabled(self, logical_id: str) -> bool:
        """False for a resource whose `Condition:` is false: CloudFormation would not create it."""
        condition = self.resources[logical_id].get("Condition")
        return condition is None or self.condition(condition)

    # -- names and attributes ----------------------------------------------------------

    def physical_name(self, logical_id: str) -> str:
        """The resource's explicit name if it declares one, else `<stack>-<LogicalId>`.

        CloudFormation appends a random suffix to generated names; a fixed name keeps local runs
        reproducible. Bucket names must be lower case, so generated bucket names are lowered
        (CloudFormation lowers them too).
        """
        if logical_id not in self._name_cache:
            resource = self._resource(logical_id)
            kind = resource.get("Type", "")
            properties = resource.get("Properties") or {}
            explicit = properties.get(NAME_PROPERTIES.get(kind, ""))
            if explicit is not None:
                name = cfn_string(self.resolve(explicit))
            else:
                name = f"{self.stack_name}-{logical_id}"
                if kind == "AWS::S3::Bucket":
                    name = name.lower()
                if kind == "AWS::SQS::Queue" and self.resolve(properties.get("FifoQueue", False)) in (True, "true"):
                    name += ".fifo"
            self._name_cache[logical_id] = name
        return self._name_cache[logical_id]

    def arn(self, logical_id: str) -> str:
        kind = self._resource(logical_id).get("Type", "")
        name = self.physical_name(logical_id)
        account, region = self.account_id, self.region
        if kind == "AWS::S3::Bucket":
            return f"arn:aws:s3:::{name}"
        if kind in ("AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable"):
            return f"arn:aws:dynamodb:{region}:{account}:table/{name}"
        if kind in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            return f"arn:aws:lambda:{region}:{account}:function:{name}"
        if kind in ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion"):
            return f"arn:aws:lambda:{region}:{account}:layer:{name}:1"
        if kind == "AWS::IAM::Role":
            return f"arn:aws:iam::{account}:role/{name}"
        if kind == "AWS::KinesisFirehose::DeliveryStream":
            return f"arn:aws:firehose:{region}:{account}:deliverystream/{name}"
        if kind == "AWS::Logs::LogGroup":
            return f"arn:aws:logs:{region}:{account}:log-group:{name}:*"
        # AWS::SQS::Queue, AWS::SNS::Topic and the rest follow service:region:account:name.
        service = kind.split("::")[1].lower() if kind.count("::") == 2 else "cloudformation"
        return f"arn:aws:{service}:{region}:{account}:{name}"

    def queue_url(self, logical_id: str, endpoint: str = "https://sqs.us-east-1.amazonaws.com") -> str:
        return f"{endpoint.rstrip('/')}/{self.account_id}/{self.physical_name(logical_id)}"

    def ref(self, name: str) -> Any:
        pseudo = {
            "AWS::AccountId": self.account_id,
            "AWS::Region": self.region,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{self.region}:{self.account_id}:stack/{self.stack_name}/local",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NotificationARNs": [],
        }
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        kind = self._resource(name).get("Type", "")
        if kind == "AWS::SQS::Queue":
            return self.queue_url(name)
        if kind in ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion", "AWS::SNS::Topic"):
            return self.arn(name)
        if kind == "AWS::Serverless::Api":
            return "local"  # the REST API id; nothing local depends on its value
        return self.physical_name(name)

    def get_att(self, logical_id: str, attribute: str) -> str:
        kind = self._resource(logical_id).get("Type", "")
        name = self.physical_name(logical_id)
        if attribute == "Arn":
            return self.arn(logical_id)
        special = {
            ("AWS::S3::Bucket", "DomainName"): f"{name}.s3.amazonaws.com",
            ("AWS::S3::Bucket", "RegionalDomainName"): f"{name}.s3.{self.region}.amazonaws.com",
            ("AWS::DynamoDB::Table", "StreamArn"): f"{self.arn(logical_id)}/stream/local",
            ("AWS::SQS::Queue", "QueueName"): name,
            ("AWS::SQS::Queue", "QueueUrl"): self.queue_url(logical_id),
            ("AWS::IAM::Role", "RoleId"): f"AROA{logical_id.upper()}",
        }
        if (kind, attribute) in special:
            return special[(kind, attribute)]
        raise TemplateError(f"Fn::GetAtt {logical_id}.{attribute} is not supported by the local stack")

    def _resource(self, logical_id: str) -> dict:
        if logical_id == "ServerlessRestApi":  # SAM's implicit API, never declared in Resources
            return {"Type": "AWS::Serverless::Api", "Properties": {}}
        if logical_id not in self.resources:
            raise TemplateError(f"reference to unknown parameter or resource {logical_id!r}")
        return self.resources[logical_id]

    # -- the evaluator -----------------------------------------------------------------

    def resolve(self, node: Any) -> Any:
        """Return `node` with every intrinsic function replaced by its value."""
        value = self._resolve(node)
        return None if value is _NO_VALUE else value

    def _resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            items = [self._resolve(item) for item in node]
            return [item for item in items if item is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, args), = node.items()
            if key == "Ref":
                return self.ref(args)
            if key.startswith("Fn::"):
                return self._function(key, args)
        resolved = {key: self._resolve(value) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value is not _NO_VALUE}

    def _function(self, function: str, args: Any) -> Any:
        if function == "Fn::Sub":
            return self._sub(args)
        if function == "Fn::GetAtt":
            if isinstance(args, str):
                args = args.split(".", 1)
            logical_id, attribute = (self.resolve(arg) for arg in args)
            return self.get_att(logical_id, attribute)
        if function == "Fn::Join":
            delimiter, items = args
            return cfn_string(delimiter).join(cfn_string(item) for item in self._resolve(items))
        if function == "Fn::Select":
            index, items = args
            return self._resolve(items)[int(self.resolve(index))]
        if function == "Fn::Split":
            delimiter, text = args
            return cfn_string(self.resolve(text)).split(delimiter)
        if function == "Fn::If":
            condition, when_true, when_false = args
            return self._resolve(when_true if self.condition(condition) else when_false)
        if function == "Fn::FindInMap":
            mapping, top, second = (self.resolve(arg) for arg in args)
            try:
                return self._resolve(self.template["Mappings"][mapping][top][second])
            except KeyError as exc:
                raise TemplateError(f"Fn::FindInMap {mapping}/{top}/{second} not found") from exc
        raise TemplateError(f"{function} is not supported by the local stack")

    def _sub(self, args: Any) -> str:
        if isinstance(args, list):
            text, variables = args[0], {k: self.resolve(v) for k, v in (args[1] or {}).items()}
        else:
            text, variables = args, {}

        def substitute(match: re.Match) -> str:
            expression = match.group(1)
            if expression.startswith("!"):  # ${!Name} is the literal text ${Name}
                return "${" + expression[1:] + "}"
            if expression in variables:
                return cfn_string(variables[expression])
            if "." in expression and not expression.startswith("AWS::"):
                logical_id, attribute = expression.split(".", 1)
                return self.get_att(logical_id, attribute)
            return cfn_string(self.ref(expression))

        return _SUB_VARIABLE.sub(substitute, text)
