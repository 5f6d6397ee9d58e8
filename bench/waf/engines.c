/* Runs the same raw HTTP requests through Sluice's WAF and through libmodsecurity3 + OWASP CRS:
 * verdicts per request (bench/waf-corpus) or the time per request and pass (bench/waf). */
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

/*
 * The timed work, the same for both engines: raw request bytes in, verdict out. Each parses the
 * bytes with the same lenient reader (ModSecurity has no HTTP parser of its own; its connector
 * hands it the server's parse), then evaluates with logging off.
 */
static int sluice_eval_raw(struct sl_waf *w, const struct rec *x) {
    struct sl_http_request r;
    struct sl_http_header hs[MAX_HEADERS];
    const char *p = x->raw;
    if (!sl_waf_read_raw_request(&p, x->raw + x->len, true, &r, hs, MAX_HEADERS))
        return -1;
    struct sl_waf_verdict v;
    sl_waf_evaluate(w, &r, "198.51.100.7", &v);
    return (int)v.action;
}

static int modsec_eval_raw(ModSecurity *ms, RulesSet *rules, const struct rec *x) {
    struct sl_http_request r;
    struct sl_http_header hs[MAX_HEADERS];
    const char *p = x->raw;
    if (!sl_waf_read_raw_request(&p, x->raw + x->len, true, &r, hs, MAX_HEADERS))
        return -1;
    /* ModSecurity takes the method and URI as C strings. */
    char method[32], uri[16384];
    snprintf(method, sizeof method, "%.*s", (int)r.method.len, r.method.p);
    snprintf(uri, sizeof uri, "%.*s", (int)r.url.len, r.url.p);
    Transaction *t = msc_new_transaction(ms, rules, NULL);
    msc_process_connection(t, "198.51.100.7", 40000, "127.0.0.1", 80);
    msc_process_uri(t, uri, method, "1.1");
    for (size_t i = 0; i < r.nheaders; i++)
        msc_add_n_request_header(t, (const unsigned char *)hs[i].name.p, hs[i].name.len,
                                 (const unsigned char *)hs[i].value.p, hs[i].value.len);
    msc_process_request_headers(t);
    ModSecurityIntervention it = {.status = 200};
    int status = 0;
    if (msc_intervention(t, &it))
        status = it.status;
    if (!status) {
        msc_append_request_body(t, (const unsigned char *)r.body, r.body_len);
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

/* The thread's CPU time, not the wall clock: on a shared, loaded machine a wall-clock region
 * includes the time other processes ran, and the longer region (ModSecurity's) more of it. */
static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: engines verdicts|time|time-sluice|time-modsec ACL.json|@default "
                        "MODSEC.conf REQUESTS [passes]\n");
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
    if (!strcmp(argv[1], "verdicts"))
        msc_set_log_cb(ms, on_log); /* the timed modes log nothing */
    RulesSet *rules = msc_create_rules_set();
    const char *merr = NULL;
    /* "-": no rules (time-sluice needs none, and CRS takes seconds to load). */
    if (strcmp(argv[3], "-") && msc_rules_add_file(rules, argv[3], &merr) < 0) {
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
        /* One engine per process ("time-sluice", "time-modsec"; "time" runs both, one after
         * the other), so neither warms the caches the other one is timed with. */
        bool sluice = strcmp(argv[1], "time-modsec") != 0;
        bool modsec = strcmp(argv[1], "time-sluice") != 0;
        size_t passes = argc > 5 ? strtoul(argv[5], NULL, 10) : 2;
        if (passes < 1)
            passes = 1;
        double *ts = calloc(n * passes, sizeof *ts), *tm = calloc(n * passes, sizeof *tm);
        int *vs = calloc(n, sizeof *vs), *vm = calloc(n, sizeof *vm);
        for (size_t pass = 0; pass < passes && sluice; pass++)
            for (size_t i = 0; i < n; i++) {
                double t0 = now_us();
                vs[i] = sluice_eval_raw(w, &recs[i]);
                ts[pass * n + i] = now_us() - t0;
            }
        for (size_t pass = 0; pass < passes && modsec; pass++)
            for (size_t i = 0; i < n; i++) {
                double t0 = now_us();
                vm[i] = modsec_eval_raw(ms, rules, &recs[i]);
                tm[pass * n + i] = now_us() - t0;
            }
        /* Per request: index, Sluice's verdict, its time per pass, ModSecurity's status, its
         * time per pass (µs). The caller computes percentiles per request class. */
        for (size_t i = 0; i < n; i++) {
            printf("%zu\t%s", i, sluice ? sl_waf_action_name((enum sl_waf_action)vs[i]) : "-");
            for (size_t pass = 0; pass < passes; pass++)
                printf("\t%.3f", ts[pass * n + i]);
            printf("\t%d", vm[i]);
            for (size_t pass = 0; pass < passes; pass++)
                printf("\t%.3f", tm[pass * n + i]);
            putchar('\n');
        }
        free(ts);
        free(tm);
        free(vs);
        free(vm);
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
