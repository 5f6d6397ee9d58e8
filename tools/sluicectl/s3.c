/* sluicectl s3 setup: the archive bucket's encryption, public access block and lifecycle. */
#include "s3.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "sluice/buf.h"
#include "sluice/error.h"
#include "sluice/s3.h"

#define S3_XMLNS "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\""

/* The archive bucket's lifecycle: infrequent access after 30 days, deleted after 90. */
#define LIFECYCLE_IA_DAYS     30
#define LIFECYCLE_EXPIRE_DAYS 90

/* One PUT of a bucket subresource; prints what failed. Returns 0 or a negative code. */
static int put_config(struct sl_s3_client *c, const char *query, const struct sl_buf *xml,
                      const char *what) {
    struct sl_s3_request req = {.method = "PUT",
                                .query = query,
                                .body = xml ? xml->data : NULL,
                                .len = xml ? xml->len : 0,
                                .content_type = "application/xml"};
    struct sl_s3_response res;
    int rc = sl_s3_request(c, &req, &res);
    if (rc < 0 && !(query == NULL && (res.status == 409) &&
                    strcmp(res.code, "BucketAlreadyOwnedByYou") == 0)) {
        if (res.curl_error)
            ctl_op_error("s3", "setup", "%s of s3://%s: %s", what, sl_s3_client_bucket(c),
                         res.error_text);
        else
            ctl_op_error("s3", "setup", "%s of s3://%s: HTTP %ld %s: %s", what,
                         sl_s3_client_bucket(c), res.status, res.code, res.message);
    } else {
        rc = 0;
    }
    sl_buf_free(&res.body);
    return rc;
}

static bool bucket_exists(struct sl_s3_client *c) {
    struct sl_s3_request req = {.method = "HEAD"};
    struct sl_s3_response res;
    int rc = sl_s3_request(c, &req, &res);
    sl_buf_free(&res.body);
    return rc == 0;
}

static int cmd_setup(const struct ctl_args *a, const struct ctl_env *env) {
    const char *bucket = ctl_arg(a, "--bucket"), *kms_key = ctl_arg(a, "--kms-key-id");
    bool sse_s3 = ctl_flag(a, "--sse-s3"), bucket_key = !ctl_flag(a, "--no-bucket-key"),
         create = ctl_flag(a, "--create");
    if (!bucket)
        return ctl_usage_error("s3", "setup", "--bucket is required");
    if (!kms_key == !sse_s3)
        return ctl_usage_error("s3", "setup", "choose the encryption: --kms-key-id ID or --sse-s3");
    if (!bucket_key && !kms_key)
        return ctl_usage_error("s3", "setup", "--no-bucket-key goes with --kms-key-id");
    if (kms_key && strpbrk(kms_key, "<&"))
        return ctl_usage_error("s3", "setup",
                               "--kms-key-id: '%s' holds characters a key id never has", kms_key);

    struct sl_s3_config cfg = {
        .endpoint = env->s3_endpoint, .region = env->s3_region, .path_style = env->s3_path_style};
    struct sl_s3_client *c = NULL;
    struct sl_buf err = {0};
    sl_buf_init(&err, 4096);
    if (sl_s3_client_new(&cfg, bucket, &c, &err) < 0) {
        fprintf(stderr, "sluicectl s3 setup: %s", err.data ? err.data : "out of memory\n");
        sl_buf_free(&err);
        return CTL_EXIT_ERROR;
    }
    sl_buf_free(&err);

    struct sl_buf xml = {0};
    sl_buf_init(&xml, 64 * 1024);
    int rc = 0;
    if (create && !bucket_exists(c)) {
        bool us_east_1 = !env->s3_region || !strcmp(env->s3_region, "us-east-1");
        if (!us_east_1)
            sl_buf_printf(&xml,
                          "<CreateBucketConfiguration " S3_XMLNS "><LocationConstraint>%s"
                          "</LocationConstraint></CreateBucketConfiguration>",
                          env->s3_region);
        rc = put_config(c, NULL, us_east_1 ? NULL : &xml, "creation");
        if (rc == 0)
            printf("bucket\t%s\tcreated\n", bucket);
    }

    sl_buf_reset(&xml);
    if (kms_key)
        sl_buf_printf(&xml,
                      "<ServerSideEncryptionConfiguration " S3_XMLNS
                      "><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms"
                      "</SSEAlgorithm><KMSMasterKeyID>%s</KMSMasterKeyID>"
                      "</ApplyServerSideEncryptionByDefault><BucketKeyEnabled>%s"
                      "</BucketKeyEnabled></Rule></ServerSideEncryptionConfiguration>",
                      kms_key, bucket_key ? "true" : "false");
    else
        sl_buf_printf(&xml, "<ServerSideEncryptionConfiguration " S3_XMLNS
                            "><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256"
                            "</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule>"
                            "</ServerSideEncryptionConfiguration>");
    if (rc == 0 && (rc = put_config(c, "encryption", &xml, "default encryption")) == 0)
        printf("encryption\t%s\n", kms_key ? "aws:kms" : "AES256");

    sl_buf_reset(&xml);
    sl_buf_printf(&xml, "<PublicAccessBlockConfiguration " S3_XMLNS
                        "><BlockPublicAcls>true</BlockPublicAcls><IgnorePublicAcls>true"
                        "</IgnorePublicAcls><BlockPublicPolicy>true</BlockPublicPolicy>"
                        "<RestrictPublicBuckets>true</RestrictPublicBuckets>"
                        "</PublicAccessBlockConfiguration>");
    if (rc == 0 && (rc = put_config(c, "publicAccessBlock", &xml, "public access block")) == 0)
        printf("public-access-block\tall blocked\n");

    sl_buf_reset(&xml);
    sl_buf_printf(&xml,
                  "<LifecycleConfiguration " S3_XMLNS
                  "><Rule><ID>DeleteOldLogs</ID><Filter><Prefix></Prefix></Filter><Status>"
                  "Enabled</Status><Transition><Days>%d</Days><StorageClass>STANDARD_IA"
                  "</StorageClass></Transition><Expiration><Days>%d</Days></Expiration></Rule>"
                  "</LifecycleConfiguration>",
                  LIFECYCLE_IA_DAYS, LIFECYCLE_EXPIRE_DAYS);
    if (rc == 0 && (rc = put_config(c, "lifecycle", &xml, "lifecycle")) == 0)
        printf("lifecycle\tSTANDARD_IA after %d days, expire after %d\n", LIFECYCLE_IA_DAYS,
               LIFECYCLE_EXPIRE_DAYS);
    sl_buf_free(&xml);
    sl_s3_client_free(c);
    return rc == 0 ? CTL_EXIT_OK : CTL_EXIT_ERROR;
}

/* The permissions sluice-archiver uses: PutObject under its prefix, and KMS data keys when the
 * bucket's default encryption is SSE-KMS. Nothing reads, lists or deletes. */
static int cmd_policy(const struct ctl_args *a, const struct ctl_env *env) {
    (void)env;
    const char *bucket = ctl_arg(a, "--bucket"), *prefix = ctl_arg(a, "--prefix"),
               *kms = ctl_arg(a, "--kms-key-arn");
    if (!prefix)
        prefix = "";
    if (!bucket)
        return ctl_usage_error("s3", "policy", "--bucket is required");
    if (strpbrk(bucket, "\"\\") || strpbrk(prefix, "\"\\") || (kms && strpbrk(kms, "\"\\")))
        return ctl_usage_error("s3", "policy", "names must not contain quotes or backslashes");
    size_t pl = strlen(prefix);
    while (pl > 0 && prefix[pl - 1] == '/')
        pl--;
    printf("{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n"
           "    {\n      \"Sid\": \"ArchiveObjects\",\n      \"Effect\": \"Allow\",\n"
           "      \"Action\": [\"s3:PutObject\"],\n"
           "      \"Resource\": [\"arn:aws:s3:::%s/%.*s%sapi-logs/*\"]\n    }%s\n",
           bucket, (int)pl, prefix, pl ? "/" : "", kms ? "," : "");
    if (kms)
        printf("    {\n      \"Sid\": \"ArchiveEncryption\",\n      \"Effect\": \"Allow\",\n"
               "      \"Action\": [\"kms:GenerateDataKey\", \"kms:Decrypt\"],\n"
               "      \"Resource\": [\"%s\"]\n    }\n",
               kms);
    printf("  ]\n}\n");
    return CTL_EXIT_OK;
}

static const struct ctl_opt setup_opts[] = {
    {"--bucket", CTL_OPT_VALUE, "NAME", "the archive bucket (required)"},
    {"--kms-key-id", CTL_OPT_VALUE, "ID", "default encryption SSE-KMS with this key (id or alias)"},
    {"--no-bucket-key", CTL_OPT_FLAG, NULL, "with --kms-key-id: no S3 bucket key"},
    {"--sse-s3", CTL_OPT_FLAG, NULL, "default encryption SSE-S3 (AES256) instead"},
    {"--create", CTL_OPT_FLAG, NULL, "create the bucket first when it does not exist"},
};
static const struct ctl_opt policy_opts[] = {
    {"--bucket", CTL_OPT_VALUE, "NAME", "the archive bucket (required)"},
    {"--prefix", CTL_OPT_VALUE, "P", "the prefix of the archive URL, s3://NAME/P"},
    {"--kms-key-arn", CTL_OPT_VALUE, "ARN", "the bucket's KMS key: allow its data keys too"},
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct ctl_cmd cmds[] = {
    {.name = "setup",
     .summary = "apply the archive bucket's encryption, public access block and lifecycle",
     .description =
         "Applies the archive bucket's settings; each is replaced whole, so running it again\n"
         "is safe:\n"
         "  default encryption  SSE-KMS with the key (and an S3 bucket key), or SSE-S3\n"
         "  public access       all four blocks on\n"
         "  lifecycle           rule DeleteOldLogs: STANDARD_IA after 30 days, expire after 90\n"
         "Choose one encryption: --kms-key-id ID [--no-bucket-key], or --sse-s3.",
     .opts = setup_opts,
     .nopts = N(setup_opts),
     .run = cmd_setup},
    {.name = "policy",
     .summary = "print the least-privilege IAM policy sluice-archiver needs",
     .description =
         "Prints the least-privilege IAM policy sluice-archiver needs: s3:PutObject under\n"
         "<prefix>/api-logs/, and kms:GenerateDataKey and kms:Decrypt on --kms-key-arn when\n"
         "the bucket is SSE-KMS. Nothing reads, lists or deletes. Works offline.",
     .opts = policy_opts,
     .nopts = N(policy_opts),
     .run = cmd_policy},
};

static const struct ctl_group_def group = {
    .name = "s3",
    .description =
        "Set up the archive bucket and print the policy the archiver needs. S3 is reached at\n"
        "SLUICE_S3_ENDPOINT (unset: AWS), signed for SLUICE_S3_REGION, with AWS_ACCESS_KEY_ID,\n"
        "AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN; SLUICE_S3_PATH_STYLE puts the bucket in\n"
        "the path.",
    .cmds = cmds,
    .ncmds = N(cmds),
};

int ctl_s3_main(int argc, char **argv, const struct ctl_env *env) {
    return ctl_group_run(&group, argc, argv, env);
}
