/* Tracer settings from the standard OTEL_* environment variables, and the exported resource. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "otlp_internal.h"
#include "sluice/log.h"

void sl_otlp_options_default(struct sl_otlp_options *o) {
    *o = (struct sl_otlp_options){
        .sampler = SL_OTLP_SAMPLER_PARENTBASED_TRACEIDRATIO,
        .sampler_ratio = 1.0,
        .max_queue_size = 2048,
        .max_batch_size = 512,
        .schedule_delay_ms = 5000,
        .export_timeout_ms = 10000,
        .batch_timeout_ms = 30000,
        .shutdown_timeout_ms = 5000,
    };
}

/* The value of `name` in envp, or NULL when unset or empty (empty means unset, as elsewhere). */
static const char *env_get(char *const *envp, const char *name) {
    size_t len = strlen(name);
    for (char *const *e = envp; e && *e; e++) {
        if (strncmp(*e, name, len) == 0 && (*e)[len] == '=') {
            return (*e)[len + 1] ? *e + len + 1 : NULL;
        }
    }
    return NULL;
}

static void env_u32(char *const *envp, const char *name, uint32_t min, uint32_t *out) {
    const char *v = env_get(envp, name);
    if (!v) {
        return;
    }
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || *end || v[0] == '-' || x < min || x > UINT32_MAX) {
        SL_WARN("%s=%s is not a whole number >= %u; using %u", name, v, min, *out);
        return;
    }
    *out = (uint32_t)x;
}

static const struct {
    const char *name;
    enum sl_otlp_sampler sampler;
} samplers[] = {
    {"always_on", SL_OTLP_SAMPLER_ALWAYS_ON},
    {"always_off", SL_OTLP_SAMPLER_ALWAYS_OFF},
    {"traceidratio", SL_OTLP_SAMPLER_TRACEIDRATIO},
    {"parentbased_always_on", SL_OTLP_SAMPLER_PARENTBASED_ALWAYS_ON},
    {"parentbased_always_off", SL_OTLP_SAMPLER_PARENTBASED_ALWAYS_OFF},
    {"parentbased_traceidratio", SL_OTLP_SAMPLER_PARENTBASED_TRACEIDRATIO},
};

void sl_otlp_options_from_env(struct sl_otlp_options *o, char *const *envp,
                              const char *service_default) {
    sl_otlp_options_default(o);
    o->service_default = service_default;
    o->endpoint = env_get(envp, "SLUICE_OTLP_ENDPOINT");
    const char *disabled = env_get(envp, "OTEL_SDK_DISABLED");
    if (disabled && strcasecmp(disabled, "true") == 0) {
        o->endpoint = NULL;
    }
    o->service_name = env_get(envp, "OTEL_SERVICE_NAME");
    o->resource_attributes = env_get(envp, "OTEL_RESOURCE_ATTRIBUTES");

    const char *sampler = env_get(envp, "OTEL_TRACES_SAMPLER");
    if (sampler) {
        size_t i;
        for (i = 0; i < sizeof samplers / sizeof samplers[0]; i++) {
            if (strcasecmp(sampler, samplers[i].name) == 0) {
                o->sampler = samplers[i].sampler;
                break;
            }
        }
        if (i == sizeof samplers / sizeof samplers[0]) {
            SL_WARN("OTEL_TRACES_SAMPLER=%s is not supported; using parentbased_traceidratio",
                    sampler);
        }
    }
    const char *arg = env_get(envp, "OTEL_TRACES_SAMPLER_ARG");
    if (arg) {
        char *end;
        double r = strtod(arg, &end);
        if (*end || !isfinite(r) || r < 0.0 || r > 1.0) {
            SL_WARN("OTEL_TRACES_SAMPLER_ARG=%s is not a ratio in [0, 1]; using 1.0", arg);
        } else {
            o->sampler_ratio = r;
        }
    }

    env_u32(envp, "OTEL_BSP_MAX_QUEUE_SIZE", 1, &o->max_queue_size);
    env_u32(envp, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 1, &o->max_batch_size);
    env_u32(envp, "OTEL_BSP_SCHEDULE_DELAY", 1, &o->schedule_delay_ms);
    env_u32(envp, "OTEL_BSP_EXPORT_TIMEOUT", 1, &o->batch_timeout_ms);
    env_u32(envp, "OTEL_EXPORTER_OTLP_TIMEOUT", 1, &o->export_timeout_ms);
    env_u32(envp, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", 1, &o->export_timeout_ms);
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Trims blanks off [p, p+len), percent-decodes it into a heap string; NULL on a bad escape. */
static char *decode(const char *p, size_t len, int *err) {
    while (len && (*p == ' ' || *p == '\t')) {
        p++;
        len--;
    }
    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) {
        len--;
    }
    char *out = malloc(len + 1);
    if (!out) {
        *err = -ENOMEM;
        return NULL;
    }
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] != '%') {
            out[o++] = p[i];
            continue;
        }
        if (len - i < 3 || hexval(p[i + 1]) < 0 || hexval(p[i + 2]) < 0) {
            free(out);
            *err = -EINVAL;
            return NULL;
        }
        out[o++] = (char)(hexval(p[i + 1]) * 16 + hexval(p[i + 2]));
        i += 2;
    }
    out[o] = '\0';
    return out;
}

static void kv_free(struct sl_otlp_kv *kv, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].value);
    }
}

int sl_otlp_resource_parse(const char *s, struct sl_otlp_resource *res) {
    struct sl_otlp_kv got[SL_OTLP_MAX_RESOURCE_ATTRS];
    size_t n = 0;
    int err = 0;
    const char *p = s;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t blank = strspn(p, " \t");
        if (blank >= len) {
            /* an empty member ("a=1,,b=2" or a trailing comma) */
        } else if (!eq || res->n + n >= SL_OTLP_MAX_RESOURCE_ATTRS) {
            err = -EINVAL;
            break;
        } else {
            char *k = decode(p, (size_t)(eq - p), &err);
            char *v = k ? decode(eq + 1, len - (size_t)(eq - p) - 1, &err) : NULL;
            if (!k || !v || !k[0]) {
                free(k);
                free(v);
                if (!err) {
                    err = -EINVAL;
                }
                break;
            }
            got[n++] = (struct sl_otlp_kv){.key = k, .value = v};
        }
        if (!end) {
            break;
        }
        p = end + 1;
    }
    if (err) {
        kv_free(got, n);
        return err;
    }
    memcpy(res->items + res->n, got, n * sizeof got[0]);
    res->n += n;
    return 0;
}

static int push(struct sl_otlp_resource *res, const char *k, const char *v) {
    if (res->n >= SL_OTLP_MAX_RESOURCE_ATTRS) {
        return -EINVAL;
    }
    char *kk = strdup(k), *vv = strdup(v);
    if (!kk || !vv) {
        free(kk);
        free(vv);
        return -ENOMEM;
    }
    res->items[res->n++] = (struct sl_otlp_kv){.key = kk, .value = vv};
    return 0;
}

int sl_otlp_resource_build(const struct sl_otlp_options *o, struct sl_otlp_resource *res) {
    struct sl_otlp_resource parsed = {.n = 0};
    res->n = 0;
    if (o->resource_attributes) {
        int rc = sl_otlp_resource_parse(o->resource_attributes, &parsed);
        if (rc == -ENOMEM) {
            return rc;
        }
        if (rc) {
            SL_WARN("OTEL_RESOURCE_ATTRIBUTES is not k=v,k=v with percent-encoding; ignored");
            parsed.n = 0;
        }
    }
    const char *service = o->service_name;
    for (size_t i = 0; !service && i < parsed.n; i++) {
        if (strcmp(parsed.items[i].key, "service.name") == 0) {
            service = parsed.items[i].value;
        }
    }
    if (!service) {
        service = o->service_default ? o->service_default : "unknown_service";
    }
    int rc = push(res, "service.name", service);
    for (size_t i = 0; rc == 0 && i < parsed.n; i++) {
        if (strcmp(parsed.items[i].key, "service.name") != 0) {
            rc = push(res, parsed.items[i].key, parsed.items[i].value);
        }
    }
    if (rc == 0) {
        rc = push(res, "telemetry.sdk.name", "sluice");
    }
    if (rc == 0) {
        rc = push(res, "telemetry.sdk.language", "c");
    }
    sl_otlp_resource_free(&parsed);
    if (rc) {
        sl_otlp_resource_free(res);
    }
    return rc;
}

void sl_otlp_resource_free(struct sl_otlp_resource *res) {
    kv_free(res->items, res->n);
    res->n = 0;
}
