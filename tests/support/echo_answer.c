/* Runs the worker's echo handler on bodies read from files and prints each answer. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers/handlers.h"
#include "sluice/buf.h"

/*
 * Usage: echo_answer METHOD PATH STAGE REQUEST_ID [-q NAME=VALUE]... [--] BODY_FILE...
 * For each file, one line "STATUS<TAB>Name: value<TAB>..." and one line with the body (the
 * echo handler writes ensure_ascii JSON, so a body is one line). The differential test
 * (tests/integration/test_echo_oracle.py) compares these answers with the Python handler's.
 */

#define MAX_QUERY 64

static int read_file(const char *path, struct sl_buf *out) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    char chunk[65536];
    size_t n;
    int rc = 0;
    sl_buf_reset(out);
    while (rc == 0 && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        rc = sl_buf_append(out, chunk, n);
    fclose(f);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s METHOD PATH STAGE REQUEST_ID [-q NAME=VALUE]... FILE...\n",
                argv[0]);
        return 2;
    }
    struct sl_envelope_field fields[MAX_QUERY];
    struct sl_str values[MAX_QUERY];
    size_t nq = 0;
    int i = 5;
    for (; i + 1 < argc && !strcmp(argv[i], "-q") && nq < MAX_QUERY; i += 2) {
        const char *eq = strchr(argv[i + 1], '=');
        size_t nlen = eq ? (size_t)(eq - argv[i + 1]) : strlen(argv[i + 1]);
        values[nq] = eq ? (struct sl_str){eq + 1, strlen(eq + 1)} : (struct sl_str){"", 0};
        fields[nq] = (struct sl_envelope_field){{argv[i + 1], nlen}, &values[nq], 1};
        nq++;
    }
    if (i < argc && !strcmp(argv[i], "--"))
        i++;
    struct sl_buf body;
    sl_buf_init(&body, (size_t)16 << 20);
    struct wk_response out;
    /* Sized as the worker's child sizes it, so a body that would overflow it fails here too. */
    struct sl_envelope_limits lim = sl_envelope_limits_default((size_t)10 << 20);
    wk_response_init(&out, wk_echo_body_max(lim.max_input + strlen(argv[3])));
    int code = 0;
    for (; i < argc; i++) {
        if (read_file(argv[i], &body) < 0) {
            fprintf(stderr, "%s: cannot read\n", argv[i]);
            code = 1;
            break;
        }
        struct sl_envelope_request req = {
            .id = {argv[4], strlen(argv[4])},
            .method = {argv[1], strlen(argv[1])},
            .path = {argv[2], strlen(argv[2])},
            .query = {fields, nq},
            .stage = {argv[3], strlen(argv[3])},
            .body = {body.data ? body.data : "", body.len},
        };
        wk_response_reset(&out);
        /* A fixed clock: the test ignores the timestamp. */
        int rc = wk_echo_handle(&req, INT64_C(1795827723) * 1000000, &out);
        if (rc < 0) {
            printf("ERROR %d\n\n", rc);
            continue;
        }
        printf("%u", out.status);
        for (size_t h = 0; h < out.nheaders; h++)
            printf("\t%.*s: %.*s", (int)out.name_len[h], out.strings.data + out.name_off[h],
                   (int)out.value_len[h], out.strings.data + out.value_off[h]);
        printf("\n");
        fwrite(out.body.data, 1, out.body.len, stdout);
        printf("\n");
    }
    wk_response_free(&out);
    sl_buf_free(&body);
    return code;
}
