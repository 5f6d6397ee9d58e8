/* S3 over libcurl: SigV4 by CURLOPT_AWS_SIGV4 plus what libcurl 7.88 leaves to the caller. */
#include "sluice/s3.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "sluice/error.h"

#define S3_BODY_MAX (1u << 20)

struct sl_s3_client {
    char *bucket;
    char *region;
    char *base; /* scheme://host[:port] the bucket is addressed at, without a trailing '/' */
    bool path_style;
    char *userpwd; /* access:secret */
    char *token;   /* NULL without a session token */
    char *sigv4;   /* aws:amz:<region>:s3 */
    long timeout_ms;
    long connect_timeout_ms;
};

int sl_s3_uri_encode(struct sl_buf *out, const char *s, bool keep_slash) {
    static const char upper[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char ch = *p;
        bool plain = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                     (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' || ch == '~' ||
                     (keep_slash && ch == '/');
        int rc;
        if (plain) {
            rc = sl_buf_append(out, p, 1);
        } else {
            char esc[3] = {'%', upper[ch >> 4], upper[ch & 15]};
            rc = sl_buf_append(out, esc, 3);
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

static char *env_or(const char *v, const char *name) {
    if (!v)
        v = getenv(name);
    return v && *v ? strdup(v) : NULL;
}

void sl_s3_client_free(struct sl_s3_client *c) {
    if (!c)
        return;
    free(c->bucket);
    free(c->region);
    free(c->base);
    if (c->userpwd) {
        /* The secret is in here: do not leave it in freed memory. */
        memset(c->userpwd, 0, strlen(c->userpwd));
        free(c->userpwd);
    }
    free(c->token);
    free(c->sigv4);
    free(c);
}

const char *sl_s3_client_bucket(const struct sl_s3_client *c) {
    return c->bucket;
}

int sl_s3_client_new(const struct sl_s3_config *cfg, const char *bucket, struct sl_s3_client **out,
                     struct sl_buf *err) {
    static int curl_ready;
    if (!curl_ready) {
        /* Thread-safe in libcurl >= 7.84; the first client is made before any thread runs. */
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return -ENOMEM;
        curl_ready = 1;
    }
    char *access = env_or(cfg->access_key, "AWS_ACCESS_KEY_ID");
    char *secret = env_or(cfg->secret_key, "AWS_SECRET_ACCESS_KEY");
    struct sl_s3_client *c = calloc(1, sizeof *c);
    int rc = 0;
    if (!c) {
        rc = -ENOMEM;
    } else if (!access || !secret) {
        sl_buf_printf(err, "S3 credentials missing: set AWS_ACCESS_KEY_ID and "
                           "AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for a role)\n");
        rc = SL_ERR_CONFIG;
    } else if (strchr(access, ':')) {
        sl_buf_printf(err, "AWS_ACCESS_KEY_ID must not contain ':'\n");
        rc = SL_ERR_CONFIG;
    }
    if (rc == 0) {
        const char *region = cfg->region && *cfg->region ? cfg->region : "us-east-1";
        c->bucket = strdup(bucket);
        c->region = strdup(region);
        c->path_style = cfg->path_style;
        c->token = env_or(cfg->session_token, "AWS_SESSION_TOKEN");
        c->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 30000;
        c->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 5000;
        struct sl_buf b = {0};
        sl_buf_init(&b, 4096);
        const char *ep = cfg->endpoint && *cfg->endpoint ? cfg->endpoint : NULL;
        const char *scheme = "https://", *host;
        char awshost[128];
        if (ep) {
            const char *sep = strstr(ep, "://");
            if (!sep) {
                sl_buf_printf(err, "SLUICE_S3_ENDPOINT: %s has no scheme (http:// or https://)\n",
                              ep);
                rc = SL_ERR_CONFIG;
            }
            scheme = NULL;
            host = sep ? sep + 3 : ep;
            if (rc == 0 && sl_buf_append(&b, ep, (size_t)(host - ep)) < 0)
                rc = -ENOMEM;
        } else {
            snprintf(awshost, sizeof awshost, "s3.%s.amazonaws.com", region);
            host = awshost;
            sl_buf_append_str(&b, scheme);
        }
        if (rc == 0) {
            if (!c->path_style)
                sl_buf_printf(&b, "%s.", bucket);
            size_t hl = strlen(host);
            while (hl > 0 && host[hl - 1] == '/')
                hl--;
            if (sl_buf_append(&b, host, hl) < 0)
                rc = -ENOMEM;
        }
        c->base = b.data ? strdup(b.data) : NULL;
        sl_buf_free(&b);
        size_t ul = strlen(access) + strlen(secret) + 2;
        c->userpwd = malloc(ul);
        if (c->userpwd)
            snprintf(c->userpwd, ul, "%s:%s", access, secret);
        size_t sl = strlen(region) + 16;
        c->sigv4 = malloc(sl);
        if (c->sigv4)
            snprintf(c->sigv4, sl, "aws:amz:%s:s3", region);
        if (rc == 0 && (!c->bucket || !c->region || !c->base || !c->userpwd || !c->sigv4))
            rc = -ENOMEM;
    }
    if (secret) {
        memset(secret, 0, strlen(secret));
        free(secret);
    }
    free(access);
    if (rc < 0) {
        sl_s3_client_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

/* ---- one request ------------------------------------------------------------------------ */

struct transfer {
    const atomic_bool *cancel;
    bool cancelled;
    struct sl_buf *body;
};

static size_t on_body(char *p, size_t size, size_t n, void *data) {
    struct transfer *t = data;
    size_t len = size * n;
    /* Past the cap the rest is dropped: only error messages and small configs are read. */
    if (t->body->len + len <= S3_BODY_MAX)
        (void)sl_buf_append(t->body, p, len);
    return len;
}

static int on_progress(void *data, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
    (void)dltotal;
    (void)dlnow;
    struct transfer *t = data;
    if (!t->cancel || !atomic_load(t->cancel))
        return 0;
    if (ultotal > 0 && ulnow >= ultotal)
        return 0; /* fully sent: the server may store it whatever we do, so hear the answer */
    t->cancelled = true;
    return 1;
}

static void digest(const EVP_MD *md, const void *p, size_t n, unsigned char *out,
                   unsigned *outlen) {
    EVP_Digest(p ? p : "", n, out, outlen, md, NULL);
}

/* <Code>X</Code> and <Message>Y</Message> of an S3 error body. */
static void xml_field(const struct sl_buf *b, const char *tag, char *out, size_t len) {
    out[0] = '\0';
    if (!b->data)
        return;
    char open[32], close[32];
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    const char *s = strstr(b->data, open);
    if (!s)
        return;
    s += strlen(open);
    const char *e = strstr(s, close);
    if (!e)
        return;
    size_t n = (size_t)(e - s);
    if (n >= len)
        n = len - 1;
    memcpy(out, s, n);
    out[n] = '\0';
}

int sl_s3_request(struct sl_s3_client *c, const struct sl_s3_request *req,
                  struct sl_s3_response *res) {
    *res = (struct sl_s3_response){0};
    sl_buf_init(&res->body, S3_BODY_MAX + 1);
    struct sl_buf url = {0};
    sl_buf_init(&url, 16384);
    int rc = sl_buf_append_str(&url, c->base);
    if (rc == 0 && c->path_style)
        rc = sl_buf_printf(&url, "/%s", c->bucket);
    if (rc == 0)
        rc = sl_buf_append_str(&url, "/");
    if (rc == 0 && req->key)
        rc = sl_s3_uri_encode(&url, req->key, true);
    if (rc == 0 && req->query)
        rc = sl_buf_printf(&url, "?%s=", req->query);
    if (rc < 0) {
        sl_buf_free(&url);
        return rc;
    }

    unsigned char sha[EVP_MAX_MD_SIZE], md5[EVP_MAX_MD_SIZE];
    unsigned shalen = 0, md5len = 0;
    digest(EVP_sha256(), req->body, req->len, sha, &shalen);
    char shahex[2 * EVP_MAX_MD_SIZE + 1];
    sl_hex_encode(shahex, sha, shalen);
    shahex[2 * shalen] = '\0';
    char line[512];
    struct curl_slist *h = NULL;
    snprintf(line, sizeof line, "x-amz-content-sha256: %s", shahex);
    h = curl_slist_append(h, line);
    bool put = strcmp(req->method, "PUT") == 0;
    if (put) {
        digest(EVP_md5(), req->body, req->len, md5, &md5len);
        unsigned char b64[64];
        EVP_EncodeBlock(b64, md5, (int)md5len);
        snprintf(line, sizeof line, "Content-MD5: %s", (const char *)b64);
        h = curl_slist_append(h, line);
        snprintf(line, sizeof line, "Content-Type: %s",
                 req->content_type ? req->content_type : "application/octet-stream");
        h = curl_slist_append(h, line);
    }
    if (c->token) {
        struct sl_buf t = {0};
        sl_buf_init(&t, 8192);
        sl_buf_printf(&t, "X-Amz-Security-Token: %s", c->token);
        if (t.data)
            h = curl_slist_append(h, t.data);
        sl_buf_free(&t);
    }
    /* No "Expect:" line to drop 100-continue: libcurl 7.88 signs an empty header it then does
     * not send, and the signature no longer matches. */
    for (const char *const *x = req->headers; x && *x; x++)
        h = curl_slist_append(h, *x);

    struct transfer t = {.cancel = req->cancel, .body = &res->body};
    CURL *e = curl_easy_init();
    if (!e || !h) {
        curl_slist_free_all(h);
        curl_easy_cleanup(e);
        sl_buf_free(&url);
        return -ENOMEM;
    }
    curl_easy_setopt(e, CURLOPT_URL, url.data);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_AWS_SIGV4, c->sigv4);
    curl_easy_setopt(e, CURLOPT_USERPWD, c->userpwd);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(e, CURLOPT_XFERINFODATA, &t);
    if (put) {
        /* The body as POSTFIELDS: libcurl hashes it for the signature, the same bytes as the
         * x-amz-content-sha256 header above. */
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "PUT");
    } else if (strcmp(req->method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (strcmp(req->method, "GET") != 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
    }
    CURLcode cc = curl_easy_perform(e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &res->status);
    curl_easy_cleanup(e);
    curl_slist_free_all(h);
    sl_buf_free(&url);

    if (cc != CURLE_OK) {
        res->curl_error = (int)cc;
        res->cancelled = t.cancelled;
        snprintf(res->error_text, sizeof res->error_text, "%s", curl_easy_strerror(cc));
        if (t.cancelled)
            return SL_ERR_CLOSED;
        return cc == CURLE_OPERATION_TIMEDOUT ? SL_ERR_TIMEOUT : -EIO;
    }
    if (res->status >= 200 && res->status < 300)
        return 0;
    xml_field(&res->body, "Code", res->code, sizeof res->code);
    xml_field(&res->body, "Message", res->message, sizeof res->message);
    return SL_ERR_PARSE;
}
