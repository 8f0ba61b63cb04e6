"""template.yaml: the properties a user would be hurt by if they silently changed."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from infra.template import load_template

ROOT = Path(__file__).resolve().parents[2]

# SAM policy templates that cannot write anything.
READ_ONLY_POLICY_TEMPLATES = {"S3ReadPolicy", "DynamoDBReadPolicy", "SSMParameterReadPolicy"}
SERVING_FUNCTIONS = ["RecommendFunction"]


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template(ROOT / "template.yaml")


def _of_type(template: dict, resource_type: str) -> dict:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == resource_type}


def _functions(template: dict) -> dict:
    return _of_type(template, "AWS::Serverless::Function")


def _zip_functions(template: dict) -> dict:
    return {n: f for n, f in _functions(template).items() if f["Properties"].get("PackageType") != "Image"}


def _events(template: dict, event_type: str) -> list[tuple[str, dict]]:
    return [
        (name, event["Properties"])
        for name, function in _functions(template).items()
        for event in function["Properties"].get("Events", {}).values()
        if event["Type"] == event_type
    ]


def test_every_function_has_a_log_group_with_retention(template):
    log_groups = _of_type(template, "AWS::Logs::LogGroup").values()
    named = {g["Properties"]["LogGroupName"].get("Fn::Sub"): g["Properties"] for g in log_groups}
    for function in _functions(template):
        group = named.get(f"/aws/lambda/${{{function}}}")
        assert group is not None, f"{function} has no log group named /aws/lambda/<function name>"
        assert group.get("RetentionInDays") == {"Ref": "LogRetentionDays"}, f"{function}'s logs never expire"


def test_routes_are_explicit_versioned_and_unique(template):
    routes = [(props["Method"].upper(), props["Path"]) for _, props in _events(template, "Api")]
    assert routes, "the template declares no API routes"
    for method, path in routes:
        assert path.startswith("/v1/"), f"{method} {path} is outside the versioned API"
        assert "+}" not in path, f"{method} {path} is a greedy proxy route"
        assert method != "ANY", f"{path} accepts ANY method"
    duplicates = [route for route, count in Counter(routes).items() if count > 1]
    assert not duplicates, f"routes declared more than once: {duplicates}"


def test_every_api_event_belongs_to_the_declared_api(template):
    for function, props in _events(template, "Api"):
        assert props.get("RestApiId") == {"Ref": "TailorApi"}, f"{function} {props['Path']} creates an implicit API"


def test_serving_functions_cannot_write(template):
    functions = _functions(template)
    for name in SERVING_FUNCTIONS:
        for policy in functions[name]["Properties"].get("Policies", []):
            kind = next(iter(policy)) if isinstance(policy, dict) else policy
            assert kind in READ_ONLY_POLICY_TEMPLATES, f"{name} has a policy that may write: {policy}"


def test_data_bucket_blocks_public_access(template):
    block = template["Resources"]["DataBucket"]["Properties"]["PublicAccessBlockConfiguration"]
    for setting in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"):
        assert block.get(setting) is True, f"DataBucket {setting} is not enabled"


def test_data_bucket_refuses_plain_http(template):
    policies = [p["Properties"] for p in _of_type(template, "AWS::S3::BucketPolicy").values()
                if p["Properties"]["Bucket"] == {"Ref": "DataBucket"}]
    assert policies, "DataBucket has no bucket policy"
    statements = [s for p in policies for s in p["PolicyDocument"]["Statement"]]
    tls_only = [s for s in statements
                if s["Effect"] == "Deny" and s["Action"] in ("s3:*", ["s3:*"])
                and str(s["Condition"]["Bool"]["aws:SecureTransport"]).lower() == "false"]
    assert tls_only, "no statement denies requests without TLS"
    resources = tls_only[0]["Resource"]
    assert {"Fn::GetAtt": ["DataBucket", "Arn"]} in resources, "TLS rule does not cover the bucket itself"
    assert {"Fn::Sub": "${DataBucket.Arn}/*"} in resources, "TLS rule does not cover the objects"


def test_every_zip_function_takes_the_shared_layer(template):
    for name, function in _zip_functions(template).items():
        assert {"Ref": "SharedLayer"} in function["Properties"].get("Layers", []), f"{name} lacks SharedLayer"


def test_image_function_gets_no_zip_only_settings(template):
    # SAM copies Globals into every function, and an Image function with Runtime, Handler or
    # Layers fails to deploy.
    globals_function = template.get("Globals", {}).get("Function", {})
    for setting in ("Runtime", "Handler", "Layers"):
        assert setting not in globals_function, f"Globals.Function.{setting} would break TrainFunction"
    for name, function in _functions(template).items():
        if function["Properties"].get("PackageType") == "Image":
            assert not {"Runtime", "Handler", "Layers"} & set(function["Properties"]), name


def test_policies_and_environment_name_the_bucket_the_template_creates(template):
    # The bucket name is computed (not !Ref) to avoid a circular dependency, so it is repeated:
    # a typo in one copy would deploy fine and then fail every S3 call with AccessDenied.
    bucket_name = template["Resources"]["DataBucket"]["Properties"]["BucketName"]
    assert template["Globals"]["Function"]["Environment"]["Variables"]["DATA_BUCKET"] == bucket_name
    for name, function in _functions(template).items():
        s3_policies = [p for p in function["Properties"].get("Policies", [])
                       if isinstance(p, dict) and next(iter(p)).startswith("S3")]
        assert s3_policies, f"{name} has no S3 policy"
        for policy in s3_policies:
            assert next(iter(policy.values()))["BucketName"] == bucket_name, f"{name}: {policy}"


def test_s3_triggers_do_not_overlap(template):
    # S3 rejects notification rules whose prefixes overlap for the same event type.
    prefixes = []
    for name, props in _events(template, "S3"):
        assert props["Bucket"] == {"Ref": "DataBucket"}, name
        rules = {r["Name"]: r["Value"] for r in props["Filter"]["S3Key"]["Rules"]}
        prefixes.append(rules["prefix"])
    for i, first in enumerate(prefixes):
        for second in prefixes[i + 1:]:
            assert not (first.startswith(second) or second.startswith(first)), (first, second)


def test_outputs_name_what_users_and_tests_need(template):
    outputs = template["Outputs"]
    for name in ("ApiUrl", "DataBucketName", "StateTableName", "TrainFunctionName", "DeadLetterQueueUrl"):
        assert name in outputs, f"output {name} is missing"
