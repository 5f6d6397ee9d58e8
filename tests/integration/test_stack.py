"""The test stack is made of real components: each answers as the real thing would."""
import uuid

import boto3
import botocore.config
import botocore.exceptions
import pytest
import redis
from confluent_kafka.admin import AdminClient


def test_kafka_broker_answers_metadata_with_one_broker(kafka_bootstrap):
    md = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=10)
    assert len(md.brokers) == 1
    assert md.cluster_id


def test_redis_stores_and_expires_keys(redis_url):
    r = redis.Redis.from_url(redis_url)
    key = f"sluice-test-{uuid.uuid4()}"
    assert r.set(key, "v", px=60_000) is True
    assert r.get(key) == b"v"
    assert 0 < r.pttl(key) <= 60_000
    r.delete(key)


def _s3(endpoint, access_key, secret):
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=access_key, aws_secret_access_key=secret,
        config=botocore.config.Config(signature_version="s3v4", retries={"max_attempts": 1},
                                      s3={"addressing_style": "path"}))


def test_moto_s3_round_trips_an_object(s3_endpoint):
    s3 = _s3(s3_endpoint, "testing", "testing")
    bucket = f"sluice-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="a/b.txt", Body=b"payload")
    assert s3.get_object(Bucket=bucket, Key="a/b.txt")["Body"].read() == b"payload"


def test_sigv4_emulator_accepts_the_right_secret_and_rejects_a_wrong_one(s3v4):
    good = _s3(s3v4["endpoint"], s3v4["access_key"], s3v4["secret"])
    bucket = f"sig-{uuid.uuid4().hex[:12]}"
    good.create_bucket(Bucket=bucket)
    good.put_object(Bucket=bucket, Key="k", Body=b"signed")
    assert good.get_object(Bucket=bucket, Key="k")["Body"].read() == b"signed"

    bad = _s3(s3v4["endpoint"], s3v4["access_key"], s3v4["secret"] + "-wrong")
    with pytest.raises(botocore.exceptions.ClientError) as err:
        bad.put_object(Bucket=bucket, Key="k2", Body=b"forged")
    assert err.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(botocore.exceptions.ClientError):
        good.head_object(Bucket=bucket, Key="k2")
