/* sluicectl waf: `check` loads web ACL documents as the gateway does and prints every error with
 * its JSON path; `eval` runs raw HTTP requests through one and prints each verdict. */
#include "waf.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/buf.h"
#include "sluice/error.h"
#include "sluice/http.h"
#include "sluice/waf.h"

#define CTL_WAF_MAX_INPUT (64u << 20)
#define MAX_HEADERS       256

static void help(FILE *out) {
    fputs("Usage: sluicectl waf <command> [options]\n"
          "\n"
          "Commands:\n"
          "  check ACL.json...                validate web ACL documents (WAFv2 JSON, a\n"
          "                                   {\"WebACL\": ...} export, or a bare Rules list);\n"
          "                                   prints each error with its JSON path; exit 1 if\n"
          "                                   any is invalid\n"
          "  eval [--ip ADDR] ACL.json [REQ...]\n"
          "                                   read raw HTTP/1.1 requests (several per file,\n"
          "                                   bodies by Content-Length) from the files or stdin\n"
          "                                   and print, per request: number, method and target,\n"
          "                                   action, terminating rule (group/rule), labels\n"
          "\n"
          "ACL.json may be @default: the web ACL the gateway uses when SLUICE_WAF_ACL_FILE is "
          "unset.\n",
          out);
}

static int usage(const char *what, const char *arg) {
    fprintf(stderr, "sluicectl waf: %s%s%s%s\nRun 'sluicectl waf --help' for usage.\n", what,
            arg ? " '" : "", arg ? arg : "", arg ? "'" : "");
    return CTL_EXIT_USAGE;
}

static int open_waf(const char *path, struct sl_waf **w, struct sl_buf *err) {
    struct sl_waf_opts o = {.acl_file = strcmp(path, "@default") ? path : NULL};
    return sl_waf_open(&o, w, err);
}

static int cmd_check(int argc, char **argv) {
    if (argc < 1)
        return usage("check needs at least one ACL file", NULL);
    int rc = CTL_EXIT_OK;
    for (int i = 0; i < argc; i++) {
        struct sl_buf err;
        sl_buf_init(&err, 1 << 20);
        struct sl_waf *w = NULL;
        int r = open_waf(argv[i], &w, &err);
        if (r < 0) {
            fputs(err.data ? err.data : sl_strerror(r), stderr);
            fprintf(stderr, "%s: invalid\n", argv[i]);
            rc = CTL_EXIT_ERROR;
        } else {
            printf("%s: ok: web ACL %s, %zu rules\n", argv[i], sl_waf_name(w),
                   sl_waf_rule_count(w));
            sl_waf_free(w);
        }
        sl_buf_free(&err);
    }
    return rc;
}

static int read_all(FILE *f, struct sl_buf *out) {
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (sl_buf_append(out, chunk, n) < 0)
            return -1;
    return ferror(f) ? -1 : 0;
}

static void print_verdict(size_t n, const struct sl_http_request *r,
                          const struct sl_waf_verdict *v) {
    printf("%zu\t%.*s %.*s\t%s\t%s%s%s\t", n, (int)r->method.len, r->method.p, (int)r->url.len,
           r->url.p, sl_waf_action_name(v->action), v->rule, v->group_rule ? "/" : "",
           v->group_rule ? v->group_rule : "");
    for (size_t i = 0; i < v->nlabels; i++)
        printf("%s%s", i ? "," : "", v->labels[i]);
    if (v->action == SL_WAF_BLOCK)
        printf("\t%d", v->custom_status ? v->custom_status : 403);
    putchar('\n');
}

static int eval_stream(struct sl_waf *w, FILE *f, const char *ip, size_t *count) {
    struct sl_buf in;
    sl_buf_init(&in, CTL_WAF_MAX_INPUT);
    if (read_all(f, &in) < 0) {
        sl_buf_free(&in);
        return -1;
    }
    const char *p = in.data ? in.data : "", *end = p + in.len;
    static struct sl_http_header hs[MAX_HEADERS];
    struct sl_http_request r;
    while (sl_waf_read_raw_request(&p, end, false, &r, hs, MAX_HEADERS)) {
        struct sl_waf_verdict v;
        sl_waf_evaluate(w, &r, ip, &v);
        print_verdict(++*count, &r, &v);
    }
    sl_buf_free(&in);
    return 0;
}

static int cmd_eval(int argc, char **argv) {
    const char *ip = "127.0.0.1";
    int i = 0;
    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        if (!strcmp(argv[i], "--ip") && i + 1 < argc)
            ip = argv[++i];
        else
            return usage("unknown option", argv[i]);
    }
    if (i >= argc)
        return usage("eval needs an ACL file", NULL);
    struct sl_buf err;
    sl_buf_init(&err, 1 << 20);
    struct sl_waf *w = NULL;
    int r = open_waf(argv[i], &w, &err);
    if (r < 0) {
        fputs(err.data ? err.data : sl_strerror(r), stderr);
        sl_buf_free(&err);
        return CTL_EXIT_ERROR;
    }
    sl_buf_free(&err);
    int rc = CTL_EXIT_OK;
    size_t count = 0;
    if (i + 1 >= argc) {
        if (eval_stream(w, stdin, ip, &count) < 0)
            rc = CTL_EXIT_ERROR;
    }
    for (int k = i + 1; k < argc; k++) {
        FILE *f = strcmp(argv[k], "-") ? fopen(argv[k], "rb") : stdin;
        if (!f || eval_stream(w, f, ip, &count) < 0) {
            fprintf(stderr, "sluicectl waf: cannot read %s\n", argv[k]);
            rc = CTL_EXIT_ERROR;
        }
        if (f && f != stdin)
            fclose(f);
    }
    sl_waf_free(w);
    return rc;
}

int ctl_waf_main(int argc, char **argv, const struct ctl_env *env) {
    (void)env;
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        help(argc < 2 ? stderr : stdout);
        return argc < 2 ? CTL_EXIT_USAGE : CTL_EXIT_OK;
    }
    if (!strcmp(argv[1], "check"))
        return cmd_check(argc - 2, argv + 2);
    if (!strcmp(argv[1], "eval"))
        return cmd_eval(argc - 2, argv + 2);
    return usage("unknown command", argv[1]);
}
