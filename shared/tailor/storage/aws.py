"""boto3 settings every adapter shares."""

from __future__ import annotations

from botocore.config import Config

# Standard retry mode backs off on throttling (SlowDown, ProvisionedThroughputExceeded).
BOTO_CONFIG = Config(retries={"mode": "standard", "max_attempts": 8}, signature_version="s3v4")
