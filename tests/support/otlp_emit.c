/* Emits spans through the OTLP tracer for tests/integration/test_otlp.py (settings from env). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sluice/otlp.h"
#include "sluice/time.h"

extern char **environ;

static void hex(const uint8_t *b, size_t n, char *out) {
    for (size_t i = 0; i < n; i++) {
        snprintf(out + 2 * i, 3, "%02x", b[i]);
    }
}

static void print_id(const char *name, const struct sl_otlp_span *s, bool last) {
    char id[17];
    hex(s->ctx.span_id, 8, id);
    printf("\"%s\":\"%s\"%s", name, id, last ? "" : ",");
}

/*
 * One request as the services will trace it: the gateway's server span with its WAF, publish
 * and wait children; the worker's consumer span (child of and linked to the publish span) with
 * a crashed and a successful handler attempt and the reply produce. Prints the ids as JSON.
 */
static int emit_tree(struct sl_otlp_tracer *t, const char *traceparent) {
    struct sl_trace_ctx remote, *parent = NULL;
    if (traceparent) {
        if (sl_trace_parse(traceparent, strlen(traceparent), &remote) != 0) {
            fprintf(stderr, "bad traceparent\n");
            return 2;
        }
        parent = &remote;
    }
    struct sl_otlp_span server, waf, publish, wait, consumer, attempt1, attempt2, reply;
    sl_otlp_span_start(t, &server, "POST /items/{id}", SL_OTLP_KIND_SERVER, parent, NULL);
    sl_otlp_span_set_str(&server, "http.request.method", "POST");
    sl_otlp_span_set_str(&server, "url.path", "/items/42");
    sl_otlp_span_set_str(&server, "http.route", "/items/{id}");

    sl_otlp_span_start(t, &waf, "waf", SL_OTLP_KIND_INTERNAL, &server.ctx, NULL);
    sl_otlp_span_set_str(&waf, "sluice.waf.action", "ALLOW");
    sl_otlp_span_end(t, &waf, 0);

    sl_otlp_span_start(t, &publish, "sluice.requests publish", SL_OTLP_KIND_PRODUCER, &server.ctx,
                       NULL);
    sl_otlp_span_set_str(&publish, "messaging.system", "kafka");
    sl_otlp_span_set_str(&publish, "messaging.destination.name", "sluice.requests");
    sl_otlp_span_set_int(&publish, "messaging.kafka.partition", 3);
    sl_otlp_span_set_int(&publish, "messaging.kafka.offset", 1234);
    sl_otlp_span_end(t, &publish, 0);

    sl_otlp_span_start(t, &wait, "wait reply", SL_OTLP_KIND_INTERNAL, &server.ctx, NULL);

    sl_otlp_span_start(t, &consumer, "sluice.requests process", SL_OTLP_KIND_CONSUMER, &publish.ctx,
                       NULL);
    sl_otlp_span_set_str(&consumer, "messaging.system", "kafka");
    sl_otlp_span_add_link(&consumer, &publish.ctx);

    sl_otlp_span_start(t, &attempt1, "handler echo", SL_OTLP_KIND_INTERNAL, &consumer.ctx, NULL);
    sl_otlp_span_set_int(&attempt1, "sluice.attempt", 1);
    int e = sl_otlp_span_add_event(&attempt1, "exception", 0);
    sl_otlp_event_set_str(&attempt1, e, "exception.type", "SIGSEGV");
    sl_otlp_event_set_str(&attempt1, e, "exception.message", "handler crashed");
    sl_otlp_span_set_status(&attempt1, SL_OTLP_STATUS_ERROR, "handler crashed");
    sl_otlp_span_end(t, &attempt1, 0);

    sl_otlp_span_start(t, &attempt2, "handler echo", SL_OTLP_KIND_INTERNAL, &consumer.ctx, NULL);
    sl_otlp_span_set_int(&attempt2, "sluice.attempt", 2);
    sl_otlp_span_set_status(&attempt2, SL_OTLP_STATUS_OK, NULL);
    sl_otlp_span_end(t, &attempt2, 0);

    sl_otlp_span_start(t, &reply, "sluice.replies publish", SL_OTLP_KIND_PRODUCER, &consumer.ctx,
                       NULL);
    sl_otlp_span_set_str(&reply, "messaging.destination.name", "sluice.replies");
    sl_otlp_span_end(t, &reply, 0);
    sl_otlp_span_end(t, &consumer, 0);
    sl_otlp_span_end(t, &wait, 0);

    sl_otlp_span_set_int(&server, "http.response.status_code", 200);
    sl_otlp_span_set_double(&server, "sluice.ratio", 0.5);
    sl_otlp_span_set_bool(&server, "sluice.cached", false);
    sl_otlp_span_end(t, &server, 0);

    char tid[33];
    sl_trace_id_hex(&server.ctx, tid);
    printf("{\"trace_id\":\"%s\",\"flags\":%u,", tid, server.ctx.flags);
    print_id("server", &server, false);
    print_id("waf", &waf, false);
    print_id("publish", &publish, false);
    print_id("wait", &wait, false);
    print_id("consumer", &consumer, false);
    print_id("attempt1", &attempt1, false);
    print_id("attempt2", &attempt2, false);
    print_id("reply", &reply, true);
    printf("}\n");
    return 0;
}

static void print_stats(struct sl_otlp_tracer *t, uint64_t emitted, uint64_t max_end_ns) {
    struct sl_otlp_stats st;
    sl_otlp_tracer_stats(t, &st);
    printf("{\"emitted\":%llu,\"exported\":%llu,\"failed\":%llu,\"dropped\":%llu,\"queued\":%llu,"
           "\"max_end_ns\":%llu}\n",
           (unsigned long long)emitted, (unsigned long long)st.exported,
           (unsigned long long)st.failed, (unsigned long long)st.dropped,
           (unsigned long long)st.queued, (unsigned long long)max_end_ns);
    fflush(stdout);
}

/* Emits `rate` spans a second for `seconds`, printing the tracer's counters every 100 ms. */
static int emit_stream(struct sl_otlp_tracer *t, double seconds, unsigned rate) {
    struct sl_trace_rand r;
    sl_trace_rand_init(&r);
    uint64_t start = sl_time_mono_ns(), next_print = start, emitted = 0, max_end = 0;
    uint64_t step = 1000000000ULL / rate;
    for (;;) {
        uint64_t now = sl_time_mono_ns();
        if (now - start >= (uint64_t)(seconds * 1e9)) {
            break;
        }
        if (now >= next_print) {
            print_stats(t, emitted, max_end);
            next_print += 100000000ULL;
        }
        while (emitted * step <= now - start) {
            struct sl_otlp_span s;
            uint64_t t0 = sl_time_mono_ns();
            sl_otlp_span_start(t, &s, "stream", SL_OTLP_KIND_INTERNAL, NULL, &r);
            sl_otlp_span_set_int(&s, "sluice.seq", (int64_t)emitted);
            sl_otlp_span_end(t, &s, 0);
            uint64_t took = sl_time_mono_ns() - t0;
            max_end = took > max_end ? took : max_end;
            emitted++;
        }
        struct timespec pause = {.tv_nsec = 1000000};
        nanosleep(&pause, NULL);
    }
    print_stats(t, emitted, max_end);
    sl_otlp_tracer_flush(t, 5000);
    print_stats(t, emitted, max_end);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: otlp_emit tree [traceparent] | stream <seconds> <rate>\n");
        return 2;
    }
    struct sl_otlp_tracer *t = NULL;
    int rc = sl_otlp_tracer_new_from_env(environ, "otlp-emit", NULL, &t);
    if (rc != 0) {
        fprintf(stderr, "tracer: %s\n", strerror(-rc));
        return 1;
    }
    if (strcmp(argv[1], "tree") == 0) {
        rc = emit_tree(t, argc > 2 ? argv[2] : NULL);
        sl_otlp_tracer_flush(t, 5000);
    } else if (strcmp(argv[1], "stream") == 0 && argc == 4) {
        rc = emit_stream(t, strtod(argv[2], NULL), (unsigned)strtoul(argv[3], NULL, 10));
    } else {
        rc = 2;
    }
    fflush(stdout);
    sl_otlp_tracer_free(t);
    return rc;
}
