/* Runs the same raw HTTP requests through Sluice's WAF and through libmodsecurity3 + OWASP CRS:
 * verdicts per request (bench/waf-corpus) or the cost per request (bench/waf). */
#include <modsecurity/intervention.h>
#include <modsecurity/modsecurity.h>
#include <modsecurity/rules_set.h>
#include <modsecurity/transaction.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sluice/buf.h"
#include "sluice/http.h"
#include "sluice/waf.h"

#define MAX_HEADERS 128

/* Input: records "<length>\n<raw request bytes>", one request each. */
struct rec {
    char *raw;
    size_t len;
    struct sl_http_request r;
    struct sl_http_header hs[MAX_HEADERS];
    char method[32], uri[16384];
};

static void parse(struct rec *x) {
    const char *p = x->raw;
    struct sl_http_request *r = &x->r;
    if (!sl_waf_read_raw_request(&p, x->raw + x->len, true, r, x->hs, MAX_HEADERS)) {
        memset(r, 0, sizeof *r); /* an empty record: an empty request */
        r->method = r->query = (struct sl_str){"", 0};
        r->url = r->path = (struct sl_str){"/", 1};
        r->headers = x->hs;
        r->body = "";
    }
    snprintf(x->method, sizeof x->method, "%.*s", (int)r->method.len, r->method.p);
    snprintf(x->uri, sizeof x->uri, "%.*s", (int)r->url.len, r->url.p);
}

static struct rec *load(const char *path, size_t *count) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1024, n = 0;
    struct rec *v = calloc(cap, sizeof *v);
    unsigned long len;
    while (fscanf(f, "%lu", &len) == 1 && fgetc(f) == '\n') {
        if (n == cap)
            v = realloc(v, (cap *= 2) * sizeof *v);
        v[n].raw = malloc(len + 1);
        v[n].len = fread(v[n].raw, 1, len, f);
        v[n].raw[v[n].len] = '\0';
        n++;
    }
    fclose(f);
    for (size_t i = 0; i < n; i++) /* after the last realloc: a request points into its record */
        parse(&v[i]);
    *count = n;
    return v;
}

/* ---- ModSecurity ---------------------------------------------------------------------------- */

static char ids[4096]; /* the rule ids that logged for the current transaction */

static void on_log(void *data, const void *msg) {
    (void)data;
    const char *s = msg, *p = s;
    while ((p = strstr(p, "[id \""))) {
        p += 5;
        const char *e = strchr(p, '"');
        if (!e)
            break;
        size_t used = strlen(ids);
        snprintf(ids + used, sizeof ids - used, "%s%.*s", used ? "," : "", (int)(e - p), p);
    }
}

static int modsec_eval(ModSecurity *ms, RulesSet *rules, struct rec *x) {
    Transaction *t = msc_new_transaction(ms, rules, NULL);
    msc_process_connection(t, "198.51.100.7", 40000, "127.0.0.1", 80);
    msc_process_uri(t, x->uri, x->method, "1.1");
    for (size_t i = 0; i < x->r.nheaders; i++)
        msc_add_n_request_header(t, (const unsigned char *)x->hs[i].name.p, x->hs[i].name.len,
                                 (const unsigned char *)x->hs[i].value.p, x->hs[i].value.len);
    msc_process_request_headers(t);
    ModSecurityIntervention it = {.status = 200};
    int status = 0;
    if (msc_intervention(t, &it))
        status = it.status;
    if (!status) {
        msc_append_request_body(t, (const unsigned char *)x->r.body, x->r.body_len);
        msc_process_request_body(t);
        if (msc_intervention(t, &it))
            status = it.status;
    }
    free(it.url);
    free(it.log);
    msc_process_logging(t);
    msc_transaction_cleanup(t);
    return status;
}

static int64_t fake_now;
static int64_t clock_ms(void *data) {
    (void)data;
    return fake_now += 1000; /* one request a second: the rate rule never fires in a bench */
}

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: engines verdicts|time ACL.json|@default MODSEC.conf REQUESTS "
                        "[iterations]\n");
        return 2;
    }
    size_t n;
    struct rec *recs = load(argv[4], &n);
    if (!recs) {
        fprintf(stderr, "cannot read %s\n", argv[4]);
        return 1;
    }
    struct sl_buf err;
    sl_buf_init(&err, 1 << 20);
    struct sl_waf_opts o = {.acl_file = strcmp(argv[2], "@default") ? argv[2] : NULL,
                            .clock_ms = clock_ms};
    struct sl_waf *w;
    if (sl_waf_open(&o, &w, &err) < 0) {
        fputs(err.data, stderr);
        return 1;
    }
    ModSecurity *ms = msc_init();
    msc_set_log_cb(ms, on_log);
    RulesSet *rules = msc_create_rules_set();
    const char *merr = NULL;
    if (msc_rules_add_file(rules, argv[3], &merr) < 0) {
        fprintf(stderr, "modsecurity: %s\n", merr);
        return 1;
    }
    if (!strcmp(argv[1], "verdicts")) {
        for (size_t i = 0; i < n; i++) {
            struct sl_waf_verdict v;
            sl_waf_evaluate(w, &recs[i].r, "198.51.100.7", &v);
            ids[0] = '\0';
            int status = modsec_eval(ms, rules, &recs[i]);
            printf("%zu\t%s\t%s%s%s\t%d\t%s\n", i, sl_waf_action_name(v.action), v.rule,
                   v.group_rule ? "/" : "", v.group_rule ? v.group_rule : "", status, ids);
        }
    } else {
        /* "time-sluice" leaves ModSecurity out (profiling Sluice alone). */
        bool sluice_only = !strcmp(argv[1], "time-sluice");
        size_t iters = argc > 5 ? strtoul(argv[5], NULL, 10) : 2000;
        double *s = calloc(iters, sizeof *s), *m = calloc(iters, sizeof *m);
        for (size_t i = 0; i < n; i++) {
            struct sl_waf_verdict v;
            int status = 0;
            /* Each engine in its own loop: warm caches, as when it runs alone in a server. */
            for (size_t k = 0; k < iters; k++) {
                double t0 = now_us();
                sl_waf_evaluate(w, &recs[i].r, "198.51.100.7", &v);
                s[k] = now_us() - t0;
            }
            for (size_t k = 0; k < iters && !sluice_only; k++) {
                double t0 = now_us();
                ids[0] = '\0';
                status = modsec_eval(ms, rules, &recs[i]);
                m[k] = now_us() - t0;
            }
            qsort(s, iters, sizeof *s, cmp);
            qsort(m, iters, sizeof *m, cmp);
            printf("%zu\t%s\t%s\t%.2f\t%.2f\t%d\t%.1f\t%.1f\n", i, sl_waf_action_name(v.action),
                   v.group_rule ? v.group_rule : v.rule, s[iters / 2], s[iters * 99 / 100], status,
                   m[iters / 2], m[iters * 99 / 100]);
        }
        free(s);
        free(m);
    }
    msc_rules_cleanup(rules);
    msc_cleanup(ms);
    sl_waf_free(w);
    sl_buf_free(&err);
    for (size_t i = 0; i < n; i++)
        free(recs[i].raw);
    free(recs);
    return 0;
}
