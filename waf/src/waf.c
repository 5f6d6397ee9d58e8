/* The WAF object: the web ACL in force, its reload machinery, and the per-request verdict. */
#include "sluice/waf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sluice/error.h"
#include "sluice/filewatch.h"
#include "sluice/log.h"
#include "sluice/metrics.h"
#include "waf_internal.h"

#define POLL_INTERVAL_MS 1000
#define RETIRE_MS        (3600 * 1000) /* longer than any request can hold a verdict */
#define MAX_ACL_BYTES    (8u << 20)

/* A replaced ACL stays alive while verdicts may still point into it. */
struct retired {
    struct gw_waf_acl *acl;
    int64_t at_ms;
    struct retired *next;
};

struct sl_waf {
    struct gw_waf_acl *acl;
    struct retired *retired;
    struct gw_waf_scratch scr;
    int64_t (*clock_ms)(void *);
    void *clock_data;
    size_t rate_capacity;
    bool memo_off;
    bool forwarded_from_trusted_only;
    const struct sl_cidr *trusted_proxies;
    size_t ntrusted_proxies;
    struct sl_metric_family *rule_metrics;
    struct sl_metric *m_reload_ok, *m_reload_err;
    struct sl_metric *m_match_errors;
    uint64_t match_errors;
    int64_t match_error_logged_ms; /* the log line about them, at most one every 10 s */
    uint64_t match_errors_unlogged;

    char *path;                  /* NULL: the shipped default */
    uint64_t digest, bad_digest; /* content hashes: skip reloading what is in force or refused */
    bool have_bad;
    struct sl_filewatch *watch; /* NULL without a file or a loop */
    void (*close_cb)(void *);
    void *close_data;
};

static int64_t mono_ms(void *data) {
    (void)data;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int read_file(const char *path, struct sl_buf *out) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char chunk[65536];
    int rc = 0;
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            break;
        }
        if (n == 0)
            break;
        if ((rc = sl_buf_append(out, chunk, (size_t)n)) < 0)
            break;
    }
    close(fd);
    return rc;
}

static int compile(struct sl_waf *w, const char *json, size_t len, const char *what,
                   struct gw_waf_acl **out, struct sl_buf *err) {
    struct gw_waf_load_opts lo = {.rule_metrics = w->rule_metrics,
                                  .rate_capacity = w->rate_capacity,
                                  .memo_off = w->memo_off};
    struct sl_buf e;
    sl_buf_init(&e, 64 * 1024);
    int rc = gw_waf_acl_load(json, len, &lo, out, &e);
    if (rc < 0 && err) {
        /* Every line names the document first, then the JSON path. */
        const char *p = e.data ? e.data : "";
        while (*p) {
            const char *nl = strchr(p, '\n');
            size_t n = nl ? (size_t)(nl - p) : strlen(p);
            sl_buf_printf(err, "%s: %.*s\n", what, (int)n, p);
            p += n + (nl ? 1 : 0);
        }
    }
    sl_buf_free(&e);
    return rc;
}

/* Loads the document the object names into *out. */
static int load_doc(struct sl_waf *w, struct gw_waf_acl **out, uint64_t *digest,
                    struct sl_buf *err) {
    if (!w->path) {
        size_t len = 0;
        const char *json = gw_waf_data("default-acl.json", &len);
        *digest = 0;
        return compile(w, json, len, "default-acl.json (shipped)", out, err);
    }
    struct sl_buf doc;
    sl_buf_init(&doc, MAX_ACL_BYTES);
    int rc = read_file(w->path, &doc);
    if (rc < 0) {
        sl_buf_printf(err, "%s: cannot read: %s\n", w->path, sl_strerror(rc));
    } else {
        *digest = sl_fnv1a(doc.data ? doc.data : "", doc.len);
        rc = compile(w, doc.data ? doc.data : "", doc.len, w->path, out, err);
    }
    sl_buf_free(&doc);
    return rc;
}

static void retire_old(struct sl_waf *w, bool all) {
    int64_t now = mono_ms(NULL);
    struct retired **pp = &w->retired;
    while (*pp) {
        struct retired *r = *pp;
        if (all || now - r->at_ms > RETIRE_MS) {
            *pp = r->next;
            gw_waf_acl_free(r->acl);
            free(r);
        } else {
            pp = &r->next;
        }
    }
}

static void install(struct sl_waf *w, struct gw_waf_acl *acl) {
    if (w->acl) {
        gw_waf_acl_adopt_rates(acl, w->acl);
        struct retired *r = malloc(sizeof *r);
        if (r) {
            *r = (struct retired){.acl = w->acl, .at_ms = mono_ms(NULL), .next = w->retired};
            w->retired = r;
        } else {
            SL_WARN("waf: out of memory retiring the old web ACL; leaking it");
        }
    }
    w->acl = acl;
    retire_old(w, false);
}

static int reload(struct sl_waf *w, bool force) {
    struct sl_buf err;
    sl_buf_init(&err, 64 * 1024);
    struct gw_waf_acl *acl = NULL;
    uint64_t digest = 0;
    int rc = load_doc(w, &acl, &digest, &err);
    if (rc < 0) {
        if (force || !w->have_bad || w->bad_digest != digest) {
            if (w->m_reload_err)
                sl_counter_inc(w->m_reload_err);
            SL_ERROR("waf: web ACL rejected, keeping the one in force (%zu rules): %s",
                     w->acl ? w->acl->nrules : 0, err.data ? err.data : sl_strerror(rc));
        }
        w->have_bad = true;
        w->bad_digest = digest;
        sl_buf_free(&err);
        return rc;
    }
    sl_buf_free(&err);
    w->have_bad = false;
    if (!force && digest == w->digest) {
        gw_waf_acl_free(acl);
        return 0;
    }
    w->digest = digest;
    install(w, acl);
    if (w->m_reload_ok)
        sl_counter_inc(w->m_reload_ok);
    SL_INFO("waf: web ACL %s loaded from %s: %zu rules", acl->name,
            w->path ? w->path : "the shipped default", acl->nrules);
    return 0;
}

static void on_change(void *data) {
    reload(data, false);
}

static int make(const struct sl_waf_opts *o, struct sl_waf **out) {
    struct sl_waf *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    w->clock_ms = o && o->clock_ms ? o->clock_ms : mono_ms;
    w->clock_data = o ? o->clock_data : NULL;
    w->rate_capacity = o ? o->rate_capacity : 0;
    w->memo_off = o && o->memo_off;
    if (o && o->forwarded_from_trusted_only) {
        w->forwarded_from_trusted_only = true;
        w->trusted_proxies = o->trusted_proxies;
        w->ntrusted_proxies = o->ntrusted_proxies;
    }
    if (o && o->metrics) {
        /* Registered once per registry; a second WAF on the same registry goes without. */
        w->rule_metrics = sl_metrics_counter(o->metrics, "sluice_gateway_waf_requests_total",
                                             "Requests each WAF rule decided or counted, by "
                                             "rule (metric name) and action.",
                                             "rule,action");
        struct sl_metric_family *rl = sl_metrics_counter(
            o->metrics, "sluice_gateway_waf_reloads_total", "Web ACL reloads by result", "result");
        if (rl) {
            w->m_reload_ok = sl_metric_child1(rl, "ok");
            w->m_reload_err = sl_metric_child1(rl, "error");
        }
        struct sl_metric_family *me = sl_metrics_counter(
            o->metrics, "sluice_gateway_waf_match_errors_total",
            "Regex evaluations PCRE2 ended with an error (match or depth limit) instead of a "
            "verdict; the rule then decides as docs/waf.md says.",
            NULL);
        if (me)
            w->m_match_errors = sl_metric_get(me);
    }
    *out = w;
    return 0;
}

int sl_waf_open(const struct sl_waf_opts *o, struct sl_waf **out, struct sl_buf *err) {
    struct sl_waf *w;
    int rc = make(o, &w);
    if (rc < 0)
        return rc;
    if (o && o->acl_file && *o->acl_file) {
        if (!(w->path = strdup(o->acl_file))) {
            sl_waf_free(w);
            return -ENOMEM;
        }
    }
    struct gw_waf_acl *acl = NULL;
    if ((rc = load_doc(w, &acl, &w->digest, err)) < 0) {
        sl_waf_free(w);
        return rc;
    }
    w->acl = acl;
    if (o && o->loop && w->path &&
        (rc = sl_filewatch_start(o->loop, w->path, POLL_INTERVAL_MS, on_change, w, &w->watch)) <
            0) {
        sl_buf_printf(err, "SLUICE_WAF_ACL_FILE: cannot watch %s: %s\n", w->path, sl_strerror(rc));
        sl_waf_free(w);
        return rc;
    }
    *out = w;
    return 0;
}

int sl_waf_open_json(const struct sl_waf_opts *o, const char *json, size_t len, struct sl_waf **out,
                     struct sl_buf *err) {
    struct sl_waf *w;
    int rc = make(o, &w);
    if (rc < 0)
        return rc;
    if ((rc = compile(w, json, len, "web ACL", &w->acl, err)) < 0) {
        sl_waf_free(w);
        return rc;
    }
    *out = w;
    return 0;
}

int sl_waf_reload(struct sl_waf *w) {
    if (!w->path)
        return 0;
    if (w->watch)
        sl_filewatch_mark_seen(w->watch);
    return reload(w, true);
}

void sl_waf_free(struct sl_waf *w) {
    if (!w)
        return;
    gw_waf_acl_free(w->acl);
    retire_old(w, true);
    free(w->scr.a);
    free(w->scr.b);
    free(w->path);
    free(w);
}

static void on_watch_closed(void *data) {
    struct sl_waf *w = data;
    void (*cb)(void *) = w->close_cb;
    void *cb_data = w->close_data;
    sl_waf_free(w);
    if (cb)
        cb(cb_data);
}

void sl_waf_close(struct sl_waf *w, void (*cb)(void *data), void *data) {
    if (!w->watch) {
        sl_waf_free(w);
        if (cb)
            cb(data);
        return;
    }
    w->close_cb = cb;
    w->close_data = data;
    sl_filewatch_close(w->watch, on_watch_closed, w);
}

/* Counts the match errors of one evaluation and says so in the log, at most every 10 s: an
 * attacker who found a pattern's limit should not also get to flood the log. */
static void match_errors(struct sl_waf *w, const struct gw_waf_ctx *c) {
    w->match_errors += c->match_errors;
    if (w->m_match_errors)
        sl_counter_add(w->m_match_errors, c->match_errors);
    w->match_errors_unlogged += c->match_errors;
    int64_t now = mono_ms(NULL);
    if (w->match_error_logged_ms && now - w->match_error_logged_ms < 10000)
        return;
    char msg[128];
    gw_waf_match_error_text(c->match_error_rc, msg, sizeof msg);
    SL_WARN("waf: rule %s: a regex match stopped with \"%s\" (%" PRIu64
            " such errors since the last line); a rule it leaves undecided blocks or counts as "
            "if matched, an Allow rule does not allow",
            c->match_error_rule ? c->match_error_rule : "(scope-down)", msg,
            w->match_errors_unlogged);
    w->match_error_logged_ms = now;
    w->match_errors_unlogged = 0;
}

void sl_waf_evaluate(struct sl_waf *w, const struct sl_http_request *req, const char *client_ip,
                     struct sl_waf_verdict *out) {
    *out = (struct sl_waf_verdict){.action = SL_WAF_ALLOW, .rule = "Default_Action"};
    if (!w || !w->acl)
        return;
    struct gw_waf_ctx c = {
        .req = req, .client_ip = client_ip, .now_ms = w->clock_ms(w->clock_data), .scr = &w->scr};
    if (w->forwarded_from_trusted_only) {
        c.fwd_untrusted = true;
        for (size_t i = 0; i < w->ntrusted_proxies && c.fwd_untrusted; i++)
            c.fwd_untrusted = !sl_addr_in_cidr(&w->trusted_proxies[i], &req->peer);
    }
    struct gw_waf_result res;
    gw_waf_acl_eval(w->acl, &c, &res);
    gw_waf_ctx_release(&c);
    if (c.match_errors)
        match_errors(w, &c);
    out->action = res.action == GW_ACT_BLOCK ? SL_WAF_BLOCK : SL_WAF_ALLOW;
    if (res.rule) {
        out->rule = res.rule->name;
        out->group_rule = res.group_rule ? res.group_rule->name : NULL;
    }
    if (res.custom) {
        out->custom_status = res.custom->status;
        out->custom_body =
            (struct sl_str){res.custom->body ? res.custom->body : "", res.custom->body_len};
        out->custom_headers = res.custom->hh;
        out->ncustom_headers = res.custom->nhh;
    }
    for (size_t i = 0; i < c.nlabels && out->nlabels < SL_WAF_MAX_LABELS; i++)
        out->labels[out->nlabels++] = c.labels[i];
}

const char *sl_waf_action_name(enum sl_waf_action a) {
    static const char *const names[] = {"ALLOW", "BLOCK", "COUNT"};
    return a <= SL_WAF_COUNT ? names[a] : "ALLOW";
}

const char *sl_waf_name(const struct sl_waf *w) {
    return w && w->acl ? w->acl->name : "";
}

size_t sl_waf_rule_count(const struct sl_waf *w) {
    return w && w->acl ? w->acl->nrules : 0;
}

uint64_t sl_waf_match_errors(const struct sl_waf *w) {
    return w ? w->match_errors : 0;
}

uint64_t sl_waf_memo_hits(const struct sl_waf *w) {
    return w && w->acl && w->acl->memo ? w->acl->memo->hits : 0;
}
