"""Create the template's buckets, tables, queues and delivery streams in the embedded moto server.

Only the properties that change what a handler observes are applied (keys and indexes,
versioning, CORS, TTL, queue attributes). Encryption, public-access blocks, lifecycle rules and
bucket policies have no observable local effect in moto and are skipped.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
from botocore.config import Config

from .intrinsics import ACCOUNT_ID, REGION, cfn_string
from .model import StackModel, StorageResource

# The queue that moto's S3 notifications feed; the local stack polls it to deliver S3 events.
S3_EVENTS_QUEUE = "tailor-local-s3-notifications"

_SIMPLE_TABLE_TYPES = {"String": "S", "Number": "N", "Binary": "B"}
_TABLE_ARGUMENTS = ("KeySchema", "AttributeDefinitions", "BillingMode", "ProvisionedThroughput",
                    "GlobalSecondaryIndexes", "LocalSecondaryIndexes", "StreamSpecification")
_QUEUE_ATTRIBUTES = ("DelaySeconds", "MaximumMessageSize", "MessageRetentionPeriod", "ReceiveMessageWaitTimeSeconds",
                     "VisibilityTimeout", "FifoQueue", "ContentBasedDeduplication", "SqsManagedSseEnabled")


def moto_client(service: str, moto_url: str):
    """A boto3 client bound to the embedded moto server, whatever the caller's environment says."""
    return boto3.session.Session().client(
        service,
        endpoint_url=moto_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 2, "mode": "standard"}),
    )


def provision(model: StackModel, moto_url: str) -> dict[str, str]:
    """Create every storage resource; return {queue name: queue URL} for the local queues."""
    s3 = moto_client("s3", moto_url)
    dynamodb = moto_client("dynamodb", moto_url)
    sqs = moto_client("sqs", moto_url)
    queue_urls = {queue.name: _create_queue(sqs, queue) for queue in model.queues}
    for bucket in model.buckets:
        _create_bucket(s3, bucket)
    for table in model.tables:
        _create_table(dynamodb, table)
    if model.delivery_streams:
        firehose = moto_client("firehose", moto_url)
        for stream in model.delivery_streams:
            _create_delivery_stream(firehose, stream)
    if model.s3_subscriptions:
        queue_urls[S3_EVENTS_QUEUE] = sqs.create_queue(QueueName=S3_EVENTS_QUEUE)["QueueUrl"]
        _subscribe_buckets(s3, model, f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{S3_EVENTS_QUEUE}")
    return queue_urls


def _create_bucket(s3, bucket: StorageResource) -> None:
    s3.create_bucket(Bucket=bucket.name)  # us-east-1 takes no LocationConstraint
    properties = bucket.properties
    versioning = (properties.get("VersioningConfiguration") or {}).get("Status")
    if versioning:
        s3.put_bucket_versioning(Bucket=bucket.name, VersioningConfiguration={"Status": versioning})
    cors_rules = (properties.get("CorsConfiguration") or {}).get("CorsRules")
    if cors_rules:
        # CloudFormation's CorsRule names differ from the S3 API's (MaxAge vs MaxAgeSeconds).
        renamed = {"MaxAge": "MaxAgeSeconds", "Id": "ID"}
        rules = [{renamed.get(key, key): value for key, value in rule.items()} for rule in cors_rules]
        s3.put_bucket_cors(Bucket=bucket.name, CORSConfiguration={"CORSRules": rules})


def _create_table(dynamodb, table: StorageResource) -> None:
    properties = table.properties
    if table.kind == "AWS::Serverless::SimpleTable":
        key = properties.get("PrimaryKey") or {"Name": "id", "Type": "String"}
        arguments: dict[str, Any] = {
            "KeySchema": [{"AttributeName": key["Name"], "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": key["Name"], "AttributeType": _SIMPLE_TABLE_TYPES[key["Type"]]}],
            "BillingMode": "PAY_PER_REQUEST",
        }
        if properties.get("ProvisionedThroughput"):
            arguments.update(BillingMode="PROVISIONED", ProvisionedThroughput=properties["ProvisionedThroughput"])
    else:
        arguments = {name: properties[name] for name in _TABLE_ARGUMENTS if name in properties}
        arguments.setdefault("BillingMode", "PROVISIONED")
    arguments = _numbers_as_ints(arguments)
    if arguments["BillingMode"] == "PROVISIONED":
        default_throughput = {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
        arguments.setdefault("ProvisionedThroughput", default_throughput)
        for index in arguments.get("GlobalSecondaryIndexes", []):
            index.setdefault("ProvisionedThroughput", default_throughput)
    dynamodb.create_table(TableName=table.name, **arguments)
    ttl = properties.get("TimeToLiveSpecification")
    if ttl and cfn_string(ttl.get("Enabled")) == "true":
        dynamodb.update_time_to_live(
            TableName=table.name,
            TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
        )


def _create_delivery_stream(firehose, stream: StorageResource) -> None:
    """moto writes each PutRecordBatch as one object under the prefix, uncompressed (Firehose
    itself buffers by time and size and gzips): readers accept both."""
    destination = stream.properties["ExtendedS3DestinationConfiguration"]
    firehose.create_delivery_stream(
        DeliveryStreamName=stream.name, DeliveryStreamType=stream.properties.get("DeliveryStreamType", "DirectPut"),
        ExtendedS3DestinationConfiguration={"BucketARN": destination["BucketARN"], "RoleARN": destination["RoleARN"],
                                            "Prefix": destination.get("Prefix", "")})


def _create_queue(sqs, queue: StorageResource) -> str:
    properties = queue.properties
    attributes = {name: cfn_string(properties[name]) for name in _QUEUE_ATTRIBUTES if name in properties}
    if "RedrivePolicy" in properties:
        attributes["RedrivePolicy"] = json.dumps(properties["RedrivePolicy"])
    return sqs.create_queue(QueueName=queue.name, Attributes=attributes)["QueueUrl"]


def _subscribe_buckets(s3, model: StackModel, queue_arn: str) -> None:
    """Point each subscribed bucket's notifications at the local queue.

    One unfiltered queue configuration per bucket, for the union of the event types the
    functions ask for: which function gets a record is decided when the record is delivered
    (S3Subscription.matches), from the template's own filters.
    """
    buckets: dict[str, set[str]] = {}
    for subscription in model.s3_subscriptions:
        buckets.setdefault(subscription.bucket, set()).update(subscription.events)
    for bucket, events in buckets.items():
        s3.put_bucket_notification_configuration(
            Bucket=bucket,
            NotificationConfiguration={"QueueConfigurations": [{"QueueArn": queue_arn, "Events": sorted(events)}]},
        )


def _numbers_as_ints(node: Any) -> Any:
    """Throughput numbers may arrive as strings from parameters; boto3 wants integers."""
    if isinstance(node, dict):
        return {key: (int(value) if key.endswith("CapacityUnits") else _numbers_as_ints(value))
                for key, value in node.items()}
    if isinstance(node, list):
        return [_numbers_as_ints(item) for item in node]
    return node
