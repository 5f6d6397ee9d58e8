/* JSON-lines logger on stderr. */
#include "sluice/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "sluice/buf.h"
#include "sluice/fileio.h"
#include "sluice/time.h"

/* Process-wide logger settings (see log.h): written once by sl_log_init, then only read. */
static struct {
    const char *service;
    enum sl_log_level min_level;
} logger = {.service = "sluice", .min_level = SL_LOG_INFO};

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void sl_log_init(const char *service, enum sl_log_level min_level) {
    logger.service = service ? service : "sluice";
    logger.min_level = min_level;
}

int sl_log_level_parse(const char *s, enum sl_log_level *out) {
    if (!strcasecmp(s, "debug"))
        *out = SL_LOG_DEBUG;
    else if (!strcasecmp(s, "info"))
        *out = SL_LOG_INFO;
    else if (!strcasecmp(s, "warn") || !strcasecmp(s, "warning"))
        *out = SL_LOG_WARN;
    else if (!strcasecmp(s, "error"))
        *out = SL_LOG_ERROR;
    else
        return -EINVAL;
    return 0;
}

const char *sl_log_level_name(enum sl_log_level level) {
    return level <= SL_LOG_ERROR ? level_names[level] : "unknown";
}

int sl_log_every_take(struct sl_log_every *l, uint64_t now_ns, uint64_t *held) {
    if (l->next_ns && now_ns < l->next_ns) {
        l->held++;
        return 0;
    }
    *held = l->held;
    l->held = 0;
    l->next_ns = now_ns + l->period_ns;
    if (!l->next_ns)
        l->next_ns = 1;
    return 1;
}

int sl_log_enabled(enum sl_log_level level) {
    return level >= logger.min_level;
}

/* Appends a JSON-escaped copy of s to out[*pos..cap), always leaving room to close the line. */
static void put_escaped(char *out, size_t *pos, size_t cap, const char *s, size_t n) {
    for (size_t i = 0; i < n && *pos + 8 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            out[(*pos)++] = '\\';
            out[(*pos)++] = (char)c;
        } else if (c == '\n') {
            out[(*pos)++] = '\\';
            out[(*pos)++] = 'n';
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(out + *pos, "\\u00", 4);
            sl_hex_encode(out + *pos + 4, &c, 1);
            *pos += 6;
        } else {
            out[(*pos)++] = (char)c;
        }
    }
}

static void put_raw(char *out, size_t *pos, size_t cap, const char *s) {
    size_t n = strlen(s);
    if (*pos + n + 8 > cap)
        n = cap > *pos + 8 ? cap - *pos - 8 : 0;
    memcpy(out + *pos, s, n);
    *pos += n;
}

static void put_field(char *out, size_t *pos, size_t cap, const char *key, const char *val) {
    put_raw(out, pos, cap, ",\"");
    put_raw(out, pos, cap, key);
    put_raw(out, pos, cap, "\":\"");
    put_escaped(out, pos, cap, val, strlen(val));
    put_raw(out, pos, cap, "\"");
}

void sl_vlog(enum sl_log_level level, const struct sl_log_ctx *ctx, const char *fmt, va_list ap) {
    if (!sl_log_enabled(level))
        return;
    char msg[4096];
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    if (n < 0)
        return;
    size_t mlen = (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1;

    char ts[32];
    if (sl_time_format_iso8601(sl_time_now_ms(), ts, sizeof ts) < 0)
        ts[0] = '\0';

    char line[8192];
    size_t pos = 0, cap = sizeof line;
    put_raw(line, &pos, cap, "{\"ts\":\"");
    put_raw(line, &pos, cap, ts);
    put_raw(line, &pos, cap, "\",\"level\":\"");
    put_raw(line, &pos, cap, sl_log_level_name(level));
    put_raw(line, &pos, cap, "\"");
    put_field(line, &pos, cap, "service", logger.service);
    put_raw(line, &pos, cap, ",\"msg\":\"");
    put_escaped(line, &pos, cap - 256, msg, mlen); /* keep room for the ids */
    put_raw(line, &pos, cap, "\"");
    if (ctx && ctx->request_id)
        put_field(line, &pos, cap, "request_id", ctx->request_id);
    if (ctx && ctx->trace_id)
        put_field(line, &pos, cap, "trace_id", ctx->trace_id);
    line[pos++] = '}';
    line[pos++] = '\n';
    /* One write(2) carries the whole line in all but a short write, so lines from several
     * threads do not interleave; a logger has nowhere to report its own failure. */
    (void)sl_fileio_write_all(STDERR_FILENO, line, pos);
}

void sl_log(enum sl_log_level level, const struct sl_log_ctx *ctx, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sl_vlog(level, ctx, fmt, ap);
    va_end(ap);
}
