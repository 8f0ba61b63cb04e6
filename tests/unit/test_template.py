"""template.yaml: the properties a user would be hurt by if they silently changed."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from infra.template import load_template
from tests.fixtures.routes import WEBSITE_ROUTES

ROOT = Path(__file__).resolve().parents[2]

# Actions that cannot change anything.
READ_ONLY_ACTIONS = {"s3:GetObject", "s3:ListBucket", "s3:ListBucketVersions", "dynamodb:GetItem", "dynamodb:Query"}
SERVING_FUNCTIONS = ["RecommendFunction"]
# Who may change models/ and datasets/: training, the admin routes (promote is a pointer write,
# ingest writes datasets) and the privacy erase (ProfilesFunction rewrites a user out of both).
MODEL_WRITERS = {"TrainFunction", "IngestFunction", "ProfilesFunction"}
DATASET_WRITERS = {"IngestFunction", "ProfilesFunction"}


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


def _statements(function: dict) -> list[dict]:
    """The function's inline policy statements (SAM policy templates are not allowed for S3/DynamoDB)."""
    out = []
    for policy in function["Properties"].get("Policies", []):
        assert isinstance(policy, dict), policy
        if "Statement" in policy:
            out.extend(policy["Statement"])
        else:
            kind = next(iter(policy))
            assert kind == "LambdaInvokePolicy", f"broad policy template {kind}: name the actions and prefixes"
    return out


def _listify(value) -> list:
    return value if isinstance(value, list) else [value]


def _resource_text(resource) -> str:
    return resource["Fn::Sub"] if isinstance(resource, dict) and "Fn::Sub" in resource else str(resource)


def test_serving_functions_cannot_write(template):
    functions = _functions(template)
    for name in SERVING_FUNCTIONS:
        for statement in _statements(functions[name]):
            actions = set(_listify(statement["Action"]))
            assert actions <= READ_ONLY_ACTIONS, f"{name} may write: {actions - READ_ONLY_ACTIONS}"


def test_no_policy_grants_wildcards(template):
    for name, function in _functions(template).items():
        for statement in _statements(function):
            assert statement["Effect"] == "Allow", (name, statement)
            for action in _listify(statement["Action"]):
                assert "*" not in action, f"{name} grants {action}"
            for resource in _listify(statement["Resource"]):
                assert resource != "*", f"{name} grants {statement['Action']} on every resource"


def test_only_training_admin_and_erase_write_models_or_datasets(template):
    for name, function in _functions(template).items():
        for statement in _statements(function):
            writes = [a for a in _listify(statement["Action"]) if a.startswith("s3:") and a not in READ_ONLY_ACTIONS]
            if not writes:
                continue
            for resource in map(_resource_text, _listify(statement["Resource"])):
                key = resource.split("}/", 1)[1] if "}/" in resource else ""
                if key.startswith("models/"):
                    assert name in MODEL_WRITERS, f"{name} may write {key}"
                if key.startswith("datasets/"):
                    assert name in DATASET_WRITERS, f"{name} may write {key}"


def _leading_keys(statement: dict) -> list | None:
    return (statement.get("Condition") or {}).get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys")


def test_serving_functions_touch_only_their_own_table_items(template):
    functions = _functions(template)
    readable = {"SentimentFunction": [["MODEL#*"]], "RecommendFunction": [
        ["MODEL#*", "RECENT#*", "TRENDING#*", "PROMOTIONS", "EXPERIMENTS"]]}
    for name, writable in (("SentimentFunction", ["SENTIMENT#*"]), ("RecommendFunction", None)):
        table = [s for s in _statements(functions[name]) if any(a.startswith("dynamodb:") for a in _listify(s["Action"]))]
        for statement in table:
            keys = _leading_keys(statement)
            assert keys, f"{name} may reach every item of the table: {statement}"
            if set(_listify(statement["Action"])) - READ_ONLY_ACTIONS:
                assert keys == writable, f"{name} may write {keys}"
            else:
                assert keys in [*readable[name], writable], f"{name} reads {keys}"


def test_admin_routes_need_iam_and_website_routes_an_api_key_with_a_usage_plan(template):
    auth = template["Resources"]["TailorApi"]["Properties"]["Auth"]
    assert auth["DefaultAuthorizer"] == "AWS_IAM"
    plan = auth["UsagePlan"]
    assert plan["CreateUsagePlan"] == "PER_API"
    assert plan["Throttle"] == {"RateLimit": {"Ref": "ApiRateLimit"}, "BurstLimit": {"Ref": "ApiBurstLimit"}}
    assert plan["Quota"] == {"Limit": {"Ref": "ApiQuotaLimit"}, "Period": {"Ref": "ApiQuotaPeriod"}}
    seen = set()
    for _function, props in _events(template, "Api"):
        route = (props["Method"].upper(), props["Path"])
        seen.add(route)
        if route in WEBSITE_ROUTES:
            assert props.get("Auth") == {"Authorizer": "NONE", "ApiKeyRequired": True}, route
        else:
            assert "Auth" not in props, f"{route} overrides the API's IAM authorization"
    assert WEBSITE_ROUTES <= seen
    # What back-office roles attach: invoke this API's stage only.
    invoke = template["Resources"]["ApiInvokePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert invoke == [{"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": {"Fn::Sub": (
        "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${TailorApi}/${Stage}/*")}}]
    for output in ("ApiKeyId", "UsagePlanId", "ApiInvokePolicyArn"):
        assert output in template["Outputs"], output


def test_checkov_skips_are_justified(template):
    for name, resource in template["Resources"].items():
        for skip in ((resource.get("Metadata") or {}).get("checkov") or {}).get("skip", []):
            assert skip["id"].startswith("CKV"), (name, skip)
            assert len(skip.get("comment", "")) > 30, f"{name}: skip {skip['id']} has no real justification"


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
    bucket_arn = "arn:${AWS::Partition}:s3:::" + bucket_name["Fn::Sub"]
    for name, function in _functions(template).items():
        s3 = [s for s in _statements(function) if any(a.startswith("s3:") for a in _listify(s["Action"]))]
        assert s3, f"{name} has no S3 statement"
        for statement in s3:
            for resource in map(_resource_text, _listify(statement["Resource"])):
                assert resource == bucket_arn or resource.startswith(bucket_arn + "/"), f"{name}: {resource}"


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
