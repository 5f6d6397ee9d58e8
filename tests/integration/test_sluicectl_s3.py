"""sluicectl s3 setup against moto: the archive bucket's encryption, public access block and
lifecycle, read back through boto3; running it twice changes nothing; objects written
afterwards are SSE-KMS."""
import json
import os
import subprocess
import uuid

import boto3
import botocore.config


def aws(service, endpoint):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=botocore.config.Config(s3={"addressing_style": "path"}))


def run(build_dir, endpoint, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLUICE_", "AWS_"))}
    env.update({"SLUICE_S3_ENDPOINT": endpoint, "SLUICE_S3_PATH_STYLE": "true",
                "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    return subprocess.run([str(build_dir / "tools" / "sluicectl" / "sluicectl"), "s3", *args],
                          capture_output=True, text=True, env=env, timeout=60)


def test_setup_applies_kms_encryption_public_access_block_and_lifecycle_idempotently(
        build_dir, s3_endpoint):
    bucket = f"ctl-{uuid.uuid4().hex[:10]}"
    key_id = aws("kms", s3_endpoint).create_key(Description="archive")["KeyMetadata"]["KeyId"]
    first = run(build_dir, s3_endpoint, "setup", "--bucket", bucket, "--kms-key-id", key_id,
                "--create")
    assert first.returncode == 0, first.stderr
    assert first.stdout == (f"bucket\t{bucket}\tcreated\nencryption\taws:kms\n"
                            "public-access-block\tall blocked\n"
                            "lifecycle\tSTANDARD_IA after 30 days, expire after 90\n")
    again = run(build_dir, s3_endpoint, "setup", "--bucket", bucket, "--kms-key-id", key_id,
                "--create")
    assert again.returncode == 0, again.stderr
    assert "created" not in again.stdout

    s3 = aws("s3", s3_endpoint)
    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert rules == [{"ID": "DeleteOldLogs", "Filter": {"Prefix": ""}, "Status": "Enabled",
                      "Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}],
                      "Expiration": {"Days": 90}}]
    enc = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert enc[0]["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms",
                                                            "KMSMasterKeyID": key_id}
    assert enc[0]["BucketKeyEnabled"] is True
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert block == {"BlockPublicAcls": True, "IgnorePublicAcls": True,
                     "BlockPublicPolicy": True, "RestrictPublicBuckets": True}


def test_setup_with_sse_s3_sets_aes256(build_dir, s3_endpoint):
    bucket = f"ctl-{uuid.uuid4().hex[:10]}"
    r = run(build_dir, s3_endpoint, "setup", "--bucket", bucket, "--sse-s3", "--create")
    assert r.returncode == 0, r.stderr
    enc = aws("s3", s3_endpoint).get_bucket_encryption(Bucket=bucket)
    rule = enc["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}


def test_setup_of_a_missing_bucket_without_create_fails_clearly(build_dir, s3_endpoint):
    r = run(build_dir, s3_endpoint, "setup", "--bucket", f"ctl-{uuid.uuid4().hex[:10]}",
            "--sse-s3")
    assert r.returncode == 1
    assert "NoSuchBucket" in r.stderr


def test_setup_usage_errors_exit_2(build_dir, s3_endpoint):
    assert run(build_dir, s3_endpoint, "setup", "--bucket", "b").returncode == 2
    assert run(build_dir, s3_endpoint, "setup", "--sse-s3").returncode == 2
    assert run(build_dir, s3_endpoint, "frobnicate").returncode == 2


def test_policy_grants_put_object_under_the_prefix_and_kms_data_keys_only(build_dir, s3_endpoint):
    r = run(build_dir, s3_endpoint, "policy", "--bucket", "logs", "--prefix", "prod/",
            "--kms-key-arn", "arn:aws:kms:us-east-1:111122223333:key/k")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["Statement"] == [
        {"Sid": "ArchiveObjects", "Effect": "Allow", "Action": ["s3:PutObject"],
         "Resource": ["arn:aws:s3:::logs/prod/api-logs/*"]},
        {"Sid": "ArchiveEncryption", "Effect": "Allow",
         "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
         "Resource": ["arn:aws:kms:us-east-1:111122223333:key/k"]}]
