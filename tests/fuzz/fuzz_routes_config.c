/*
 * libFuzzer target: the routes-file parser and the settings parser. The input is parsed as a
 * routes document; what is accepted is matched against paths taken from the input, and every
 * match must point inside the route table and the path. The input is also read as environment
 * lines ("NAME=value") for a settings table holding every type, and as one host:port.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/buf.h"
#include "sluice/config.h"
#include "sluice/routes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fz_settings {
    char *s;
    int64_t i;
    uint64_t z;
    bool b;
    int64_t d;
    int e;
    struct sl_config_hostport hp;
    struct sl_config_list l;
    char *secret;
};

static const char *const fz_choices[] = {"debug", "info", "warn", NULL};

#define O(f) offsetof(struct fz_settings, f)
static const struct sl_config_option fz_table[] = {
    {.name = "s", .env = "F_S", .type = SL_CONFIG_STRING, .offset = O(s), .def = "x"},
    {.name = "i", .env = "F_I", .type = SL_CONFIG_INT64, .offset = O(i), .min = -5, .max = 1000},
    {.name = "z", .env = "F_Z", .type = SL_CONFIG_SIZE, .offset = O(z), .umin = 1, .umax = 1 << 30},
    {.name = "b", .env = "F_B", .type = SL_CONFIG_BOOL, .offset = O(b), .def = "false"},
    {.name = "d", .env = "F_D", .type = SL_CONFIG_DURATION, .offset = O(d), .max = 3600000},
    {.name = "e", .env = "F_E", .type = SL_CONFIG_ENUM, .offset = O(e), .choices = fz_choices},
    {.name = "hp", .env = "F_HP", .type = SL_CONFIG_HOSTPORT, .offset = O(hp)},
    {.name = "l", .env = "F_L", .type = SL_CONFIG_LIST, .offset = O(l)},
    {.name = "k", .env = "F_K", .type = SL_CONFIG_STRING, .offset = O(secret), .secret = true},
};
#define FZ_N (sizeof(fz_table) / sizeof(fz_table[0]))

static void fuzz_routes(const char *in, size_t size) {
    struct sl_routes *r = NULL;
    struct sl_buf err;
    sl_buf_init(&err, 1 << 20);
    if (sl_routes_parse(in, size, &r, &err) != 0) {
        if (r || err.len == 0) /* nothing allocated, and every refusal says why */
            abort();
        sl_buf_free(&err);
        return;
    }
    /* Paths to match: every '/'-started run of the input up to a quote or line end. */
    for (size_t i = 0; i < size; i++) {
        if (in[i] != '/')
            continue;
        size_t j = i;
        while (j < size && in[j] != '"' && in[j] != '\n' && in[j] != '?')
            j++;
        static const char *const methods[] = {"GET", "POST", "DELETE"};
        for (size_t k = 0; k < 3; k++) {
            struct sl_route_match m;
            if (sl_routes_match(r, methods[k], strlen(methods[k]), in + i, j - i, &m) != 1)
                continue;
            if (m.route < r->routes || m.route >= r->routes + r->n ||
                m.nparams > SL_ROUTES_MAX_PARAMS)
                abort();
            for (size_t p = 0; p < m.nparams; p++)
                if (m.params[p].value.p < in + i ||
                    m.params[p].value.p + m.params[p].value.len > in + j)
                    abort();
        }
        (void)sl_routes_path_is_clean(in + i, j - i);
    }
    sl_routes_free(r);
    sl_buf_free(&err);
}

static void fuzz_config(const char *in, size_t size) {
    /* Lines become the environment; NULs end a line too (an environment string cannot hold one). */
    char *copy = malloc(size + 1);
    char *envp[33];
    size_t n = 0;
    memcpy(copy, in, size);
    copy[size] = '\0';
    for (char *p = copy; n < 32 && p < copy + size;) {
        char *e = p + strcspn(p, "\n");
        int last = *e == '\0';
        *e = '\0';
        envp[n++] = p;
        if (last && e >= copy + size)
            break;
        p = e + 1;
    }
    envp[n] = NULL;
    struct fz_settings s;
    struct sl_buf err;
    sl_buf_init(&err, 1 << 20);
    int rc = sl_config_load(fz_table, FZ_N, &s, envp, &err);
    if (rc == 0) {
        struct sl_buf out;
        sl_buf_init(&out, 1 << 20);
        for (size_t i = 0; i < FZ_N; i++) {
            sl_buf_reset(&out);
            (void)sl_config_format_value(&fz_table[i], &s, &out);
        }
        sl_buf_free(&out);
        sl_config_free(fz_table, FZ_N, &s);
    } else if (rc != -ENOMEM && err.len == 0) {
        abort();
    }
    sl_buf_free(&err);
    char host[SL_CONFIG_HOST_MAX];
    int port;
    if (n && sl_config_parse_hostport(envp[0], host, sizeof host, &port) == 0 &&
        (port < 0 || port > 65535 || strlen(host) >= sizeof host))
        abort();
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_routes((const char *)data, size);
    fuzz_config((const char *)data, size);
    return 0;
}
