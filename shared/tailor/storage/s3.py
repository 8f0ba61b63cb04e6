"""Objects in S3: the one adapter that knows S3's call shapes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
from botocore.exceptions import ClientError

from tailor.storage.aws import BOTO_CONFIG


class ObjectStore:
    """One S3 bucket."""

    def __init__(self, bucket: str, client: Any = None):
        self.bucket = bucket
        self.client = client or boto3.client("s3", config=BOTO_CONFIG)

    def put(self, key: str, body: bytes, content_type: str = "application/octet-stream") -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)

    def put_json(self, key: str, value: Any) -> None:
        self.put(key, json.dumps(value, ensure_ascii=False, default=str).encode(), "application/json")

    def get(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                raise KeyError(key) from exc
            raise

    def get_json(self, key: str) -> Any:
        return json.loads(self.get(key))

    def size(self, key: str) -> int | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404", "NotFound"):
                return None
            raise

    def keys(self, prefix: str) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield obj["Key"]

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    # The bucket is versioned: an overwrite or a plain delete keeps the old bytes as a
    # noncurrent version. These two really remove data (privacy erase, consumed uploads);
    # on a bucket without versioning they behave like put and delete.
    def versions(self, key: str) -> list[dict]:
        """Every version and delete marker of exactly `key`: [{"VersionId", "IsLatest"}]."""
        found = []
        paginator = self.client.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=key):
            for entry in page.get("Versions", []) + page.get("DeleteMarkers", []):
                if entry["Key"] == key:
                    found.append({"VersionId": entry.get("VersionId"), "IsLatest": entry.get("IsLatest", False)})
        return found

    def _delete_versions(self, key: str, version_ids: list) -> int:
        for version_id in version_ids:
            if version_id in (None, "null"):
                self.client.delete_object(Bucket=self.bucket, Key=key)
            else:
                self.client.delete_object(Bucket=self.bucket, Key=key, VersionId=version_id)
        return len(version_ids)

    def replace(self, key: str, body: bytes, content_type: str = "application/octet-stream") -> int:
        """Put `body` and delete every older version of the key; returns how many were deleted."""
        written = self.client.put_object(Bucket=self.bucket, Key=key, Body=body,
                                         ContentType=content_type).get("VersionId")
        if written in (None, "null"):  # versioning off: the put replaced the only copy
            return 0
        older = [v["VersionId"] for v in self.versions(key) if v["VersionId"] != written]
        return self._delete_versions(key, older)

    def purge(self, key: str) -> int:
        """Delete every version (and delete marker) of the key; returns how many were deleted."""
        found = [v["VersionId"] for v in self.versions(key)]
        return self._delete_versions(key, found) if found else 0

    def purge_many(self, keys: list[str]) -> int:
        """`purge` of many keys: one version listing of their common prefix and DeleteObjects of up
        to 1,000 versions per call, rather than a listing and a delete per version of each key
        (compaction consumes every buffer object of an hour at once)."""
        import os

        wanted = set(keys)
        if not wanted:
            return 0
        versions = []
        paginator = self.client.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=os.path.commonprefix(sorted(wanted))):
            for entry in page.get("Versions", []) + page.get("DeleteMarkers", []):
                if entry["Key"] in wanted:
                    version = entry.get("VersionId")
                    versions.append({"Key": entry["Key"], **({"VersionId": version} if version not in (None, "null") else {})})
        for start in range(0, len(versions), 1000):
            answer = self.client.delete_objects(Bucket=self.bucket,
                                                Delete={"Objects": versions[start:start + 1000], "Quiet": True})
            if answer.get("Errors"):
                error = answer["Errors"][0]
                raise RuntimeError(f"could not delete {len(answer['Errors'])} object version(s), "
                                   f"e.g. {error.get('Key')}: {error.get('Message')}")
        return len(versions)

    def presign_get(self, key: str, *, expires_in: int) -> str:
        return self.client.generate_presigned_url("get_object", Params={"Bucket": self.bucket, "Key": key},
                                                  ExpiresIn=expires_in, HttpMethod="GET")

    def presign_put(self, key: str, *, expires_in: int, content_type: str) -> str:
        # Content-Type is signed, so the uploader must send exactly this header. That also keeps
        # clients from sending form-encoded bodies (which some S3 emulators store as empty).
        return self.client.generate_presigned_url(
            "put_object",
            Params={"Bucket": self.bucket, "Key": key, "ContentType": content_type},
            ExpiresIn=expires_in,
            HttpMethod="PUT",
        )
