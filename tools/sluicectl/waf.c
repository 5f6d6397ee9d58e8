/* sluicectl waf: `check` loads web ACL documents as the gateway does and prints every error with
 * its JSON path; `eval` runs raw HTTP requests through one and prints each verdict. */
#include "waf.h"

#include <arpa/inet.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "args.h"
#include "sluice/buf.h"
#include "sluice/error.h"
#include "sluice/http.h"
#include "sluice/waf.h"

#define CTL_WAF_MAX_INPUT (64u << 20)
#define MAX_HEADERS       256

static int open_waf(const char *path, struct sl_waf **w, struct sl_buf *err) {
    struct sl_waf_opts o = {.acl_file = strcmp(path, "@default") ? path : NULL};
    return sl_waf_open(&o, w, err);
}

static int cmd_check(const struct ctl_args *a, const struct ctl_env *env) {
    (void)env;
    int rc = CTL_EXIT_OK;
    for (int i = 0; i < a->npos; i++) {
        const char *path = a->pos[i];
        struct sl_buf err;
        sl_buf_init(&err, 1 << 20);
        struct sl_waf *w = NULL;
        int r = open_waf(path, &w, &err);
        if (r < 0) {
            fputs(err.data ? err.data : sl_strerror(r), stderr);
            fprintf(stderr, "%s: invalid\n", path);
            rc = CTL_EXIT_ERROR;
        } else {
            printf("%s: ok: web ACL %s, %zu rules\n", path, sl_waf_name(w), sl_waf_rule_count(w));
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

static void print_verdict(size_t n, const struct sl_http_request *r, const struct sl_waf_verdict *v,
                          bool json) {
    if (json) {
        cJSON *o = cJSON_CreateObject();
        char *method = strndup(r->method.p, r->method.len);
        char *target = strndup(r->url.p, r->url.len);
        cJSON_AddNumberToObject(o, "n", (double)n);
        cJSON_AddStringToObject(o, "method", method ? method : "");
        cJSON_AddStringToObject(o, "target", target ? target : "");
        cJSON_AddStringToObject(o, "action", sl_waf_action_name(v->action));
        cJSON_AddStringToObject(o, "rule", v->rule);
        if (v->group_rule)
            cJSON_AddStringToObject(o, "group_rule", v->group_rule);
        else
            cJSON_AddNullToObject(o, "group_rule");
        cJSON *labels = cJSON_AddArrayToObject(o, "labels");
        for (size_t i = 0; i < v->nlabels; i++)
            cJSON_AddItemToArray(labels, cJSON_CreateString(v->labels[i]));
        if (v->action == SL_WAF_BLOCK)
            cJSON_AddNumberToObject(o, "status", v->custom_status ? v->custom_status : 403);
        char *line = cJSON_PrintUnformatted(o);
        if (line)
            printf("%s\n", line);
        free(line);
        free(method);
        free(target);
        cJSON_Delete(o);
        return;
    }
    printf("%zu\t%.*s %.*s\t%s\t%s%s%s\t", n, (int)r->method.len, r->method.p, (int)r->url.len,
           r->url.p, sl_waf_action_name(v->action), v->rule, v->group_rule ? "/" : "",
           v->group_rule ? v->group_rule : "");
    for (size_t i = 0; i < v->nlabels; i++)
        printf("%s%s", i ? "," : "", v->labels[i]);
    if (v->action == SL_WAF_BLOCK)
        printf("\t%d", v->custom_status ? v->custom_status : 403);
    putchar('\n');
}

static int eval_stream(struct sl_waf *w, FILE *f, const char *ip, bool json, size_t *count) {
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
        print_verdict(++*count, &r, &v, json);
    }
    sl_buf_free(&in);
    return 0;
}

static int cmd_eval(const struct ctl_args *a, const struct ctl_env *env) {
    (void)env;
    const char *ip = ctl_arg(a, "--ip");
    if (!ip)
        ip = "127.0.0.1";
    unsigned char probe[16];
    if (inet_pton(AF_INET, ip, probe) != 1 && inet_pton(AF_INET6, ip, probe) != 1)
        return ctl_usage_error("waf", "eval", "--ip: '%s' is not an IPv4 or IPv6 address", ip);
    bool json = ctl_flag(a, "--json");
    struct sl_buf err;
    sl_buf_init(&err, 1 << 20);
    struct sl_waf *w = NULL;
    int r = open_waf(a->pos[0], &w, &err);
    if (r < 0) {
        fputs(err.data ? err.data : sl_strerror(r), stderr);
        sl_buf_free(&err);
        return CTL_EXIT_ERROR;
    }
    sl_buf_free(&err);
    int rc = CTL_EXIT_OK;
    size_t count = 0;
    if (a->npos < 2 && eval_stream(w, stdin, ip, json, &count) < 0)
        rc = ctl_op_error("waf", "eval", "cannot read standard input");
    for (int k = 1; k < a->npos; k++) {
        const char *path = a->pos[k];
        FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
        if (!f || eval_stream(w, f, ip, json, &count) < 0)
            rc = ctl_op_error("waf", "eval", "cannot read %s", path);
        if (f && f != stdin)
            fclose(f);
    }
    sl_waf_free(w);
    return rc;
}

static const struct ctl_opt eval_opts[] = {
    {"--ip", CTL_OPT_VALUE, "ADDR", "the client address the rules see (default 127.0.0.1)"},
    {"--json", CTL_OPT_FLAG, NULL, "one JSON object per request and line"},
};

static const struct ctl_cmd cmds[] = {
    {.name = "check",
     .positionals = "ACL.json...",
     .min_pos = 1,
     .max_pos = CTL_ARGS_MAX_POS,
     .summary = "validate web ACL documents; every error with its JSON path",
     .description =
         "Loads each web ACL document as the gateway does (WAFv2 JSON, a {\"WebACL\": ...}\n"
         "export, or a bare Rules list) and prints every error with its JSON path.\n"
         "Exit 1 if any is invalid. ACL.json may be @default: the web ACL the gateway\n"
         "uses when SLUICE_WAF_ACL_FILE is unset.",
     .run = cmd_check},
    {.name = "eval",
     .positionals = "ACL.json [REQ...]",
     .min_pos = 1,
     .max_pos = CTL_ARGS_MAX_POS,
     .summary = "run raw HTTP requests through a web ACL; print each verdict",
     .description =
         "Reads raw HTTP/1.1 requests (several per file, bodies by Content-Length) from\n"
         "the files, or standard input when none is given ('-' is standard input too),\n"
         "and prints per request: number, method and target, action, terminating rule\n"
         "(group/rule), labels, and the status of a block; tab-separated, or --json.",
     .opts = eval_opts,
     .nopts = sizeof eval_opts / sizeof eval_opts[0],
     .run = cmd_eval},
};

static const struct ctl_group_def group = {
    .name = "waf",
    .description = "Check a WAFv2 web ACL and evaluate requests against it, as the gateway would.",
    .cmds = cmds,
    .ncmds = sizeof cmds / sizeof cmds[0],
};

int ctl_waf_main(int argc, char **argv, const struct ctl_env *env) {
    return ctl_group_run(&group, argc, argv, env);
}
