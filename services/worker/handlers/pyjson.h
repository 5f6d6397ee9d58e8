/* Python's json.loads and json.dumps, as the echo handler needs them, for a request body. */
#ifndef SLUICE_WORKER_PYJSON_H
#define SLUICE_WORKER_PYJSON_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/buf.h"

/*
 * Nesting Python keeps: its default recursion limit. json.loads fails a little earlier (the
 * frames below it count too, so where exactly depends on the caller's stack); Sluice keeps
 * every level up to this one and answers deeper documents as Python's RecursionError.
 */
#define WK_PYJSON_MAX_DEPTH 1000
/* sys.get_int_max_str_digits(): a longer integer literal makes json.loads raise ValueError. */
#define WK_PYJSON_MAX_INT_DIGITS 4300

/* What json.loads(body) does: return a value, raise JSONDecodeError, or raise another error. */
enum wk_pyjson_outcome {
    WK_PYJSON_VALUE,     /* a value: wk_pyjson_dump prints it */
    WK_PYJSON_NOT_JSON,  /* JSONDecodeError: the caller uses the body as a string */
    WK_PYJSON_EXCEPTION, /* RecursionError or ValueError: error_type and error say which */
};

/*
 * A parsed body: the values as a flat tree of spans into the body (numbers keep the text they
 * were written with, strings are decoded when printed), built without recursion. The body is
 * borrowed and must outlive the document. wk_pyjson_parse fills it; wk_pyjson_free releases it
 * (also after a failed parse).
 */
struct wk_pyjson {
    const unsigned char *src;
    struct wk_pyjson_node *nodes;
    uint32_t n, cap;
    enum wk_pyjson_outcome outcome;
    const char *error_type;
    char error[160];
};

/*
 * json.loads(body.decode("utf-8", "replace")): the whole body must be one JSON value with only
 * space, tab, CR and LF around it, NaN/Infinity/-Infinity allowed, control characters refused
 * in strings, lone surrogate escapes kept. Returns 0 (see doc->outcome) or -ENOMEM /
 * SL_ERR_TOO_LARGE (a body of 4 GiB or more).
 */
int wk_pyjson_parse(struct wk_pyjson *doc, const char *body, size_t n);

/*
 * Appends json.dumps(value) of a document whose outcome is WK_PYJSON_VALUE: ", " and ": ",
 * ensure_ascii escapes, a repeated key at its first position with its last value, numbers as
 * written (Python reads them back to the same values). Returns 0 or the buffer's error.
 */
int wk_pyjson_dump(const struct wk_pyjson *doc, struct sl_buf *b);

void wk_pyjson_free(struct wk_pyjson *doc);

/*
 * Appends json.dumps(s.decode("utf-8", "replace")): quotes, ensure_ascii escapes (\uXXXX,
 * surrogate pairs above U+FFFF), each maximal invalid UTF-8 subsequence as \ufffd the way
 * Python's decoder replaces it. At most 6 output bytes per input byte, plus the quotes.
 */
int wk_pyjson_dump_string(struct sl_buf *b, const char *s, size_t n);

#endif
