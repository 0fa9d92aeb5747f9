"""The boto3 client of the project's Python scripts (s3-audit, empty-bucket,
faults-audit): path-style addressing and checksums only when required, as
picshelf's own client. Each script reads its request as JSON on stdin, so
credentials never appear in argv:
  {"endpoint", "region", "access_key_id", "secret_access_key", ...}
"""
import boto3
from botocore.config import Config


def client(req, retries=None):
    """An S3 client for the store `req` names; `retries` as botocore takes it."""
    return boto3.client(
        "s3",
        endpoint_url=req["endpoint"],
        region_name=req["region"],
        aws_access_key_id=req["access_key_id"],
        aws_secret_access_key=req["secret_access_key"],
        config=Config(
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries=retries,
        ),
    )
