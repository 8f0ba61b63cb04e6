"""Storage: small adapters around boto3, the only place that knows S3, DynamoDB and Lambda call
shapes (`s3`, `dynamo`, `invoke`), the ports domain services are written against (`ports`) and
every key and prefix (`keys`). Domain services receive adapters in their constructor, so tests hand
them in-memory fakes (tests/fakes) or moto-backed clients without reloading modules.
"""
