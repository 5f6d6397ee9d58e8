/* SQL injection detection: a SQL lexer, token folding and a table of dangerous token shapes. */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "sluice/waf_detect.h"

/*
 * How it works. The value is lexed three times: as bare SQL (a numeric parameter), and as if it
 * had been pasted after an opening ' or " (a string parameter). In a quoted context the text up to
 * the first matching quote becomes the "breakout" token Q: whatever follows it is SQL the attacker
 * wrote. Each token gets a one-letter class; whitespace and comments are folded away (a comment
 * that ends the input is kept as 'c', since that is how a query tail gets cut off), multi-word
 * keywords are merged (UNION ALL, ORDER BY, WAITFOR DELAY), and unary signs are absorbed into the
 * number they precede. After every token the last few classes are compared with a table of
 * shapes an injection needs (close the string, then AND/OR and an operand; UNION SELECT; a stacked
 * statement; a comment right after the string...). Plain prose fails these shapes because words
 * are barewords ('b'), and a bareword right after the breakout (it's, O'Brien) is not SQL.
 * The weaker shapes HIGH adds need the next token not to be another word (see check), a quote
 * that reads as an inch mark or an opening quotation weakens the breakout (prose_quote), and a
 * JSON document is judged string by string (json_detect). tests/corpus/benign holds the ordinary
 * traffic these choices are measured on (bench/waf-corpus).
 *
 * Token classes:
 *   Q breakout string   s string       n number/literal   v @variable     b bareword
 *   f function call     F dangerous call or keyword (SLEEP(, BENCHMARK(, WAITFOR DELAY, INTO
 *   OUTFILE)            X system object (@@version, information_schema)
 *   T statement verb (SELECT, DROP...)  U UNION [ALL]  G clause (ORDER BY, GROUP BY, HAVING, LIMIT)
 *   k other keyword     & logical      = comparison     o operator      ( ) , ;    c final comment
 *   $ end of input; '^' in a pattern anchors it at the first token.
 */

#define WIN 8

struct tok {
    char cls;
    bool tauto; /* for '=': both sides were equal literals, a classic 1=1 */
    bool word;  /* 'f': a name no database defines, called like a function; 'o': a prose colon */
    bool ident; /* 'b': a quoted identifier (`name`, [name]), which prose never writes */
    size_t pos, len;
};

struct lexer {
    const unsigned char *s;
    size_t n, i;
    bool exec_comment; /* inside a MySQL executable comment slash-star-bang */
};

struct judge {
    struct tok win[WIN]; /* ring of the last folded tokens */
    size_t count;        /* folded tokens pushed so far */
    bool high;
    bool hit;
    const unsigned char *s;
    bool pending_comment; /* a comment was the last thing lexed */
    int high_pending;     /* a HIGH-only shape matched: tokens left to confirm or clear it */
    int ddl_pending;      /* 1: DROP TABLE or its kin, only a plain word clears it; -1: DROP
                           * and no object, the end clears it too ("create account") */
    bool prose_quote;     /* the breakout is more likely an inch mark or an opening quotation */
};

struct kw {
    const char *name;
    char cls;
};

/* Sorted (strcmp order, lower case) for binary search. */
static const struct kw keywords[] = {
    {"abs", 'f'},
    {"all", 'k'},
    {"alter", 'T'},
    {"and", '&'},
    {"as", 'k'},
    {"asc", 'k'},
    {"ascii", 'f'},
    {"benchmark", 'F'},
    {"between", '='},
    {"bin", 'f'},
    {"by", 'k'},
    {"case", 'k'},
    {"cast", 'f'},
    {"char", 'f'},
    {"char_length", 'f'},
    {"chr", 'f'},
    {"coalesce", 'f'},
    {"collate", 'G'},
    {"concat", 'f'},
    {"concat_ws", 'f'},
    {"conv", 'f'},
    {"convert", 'f'},
    {"count", 'f'},
    {"create", 'T'},
    {"current_user", 'n'},
    {"database", 'f'},
    {"dbms_pipe", 'P'},
    {"declare", 'T'},
    {"delete", 'T'},
    {"desc", 'k'},
    {"distinct", 'k'},
    {"distinctrow", 'k'},
    {"div", 'o'},
    {"drop", 'T'},
    {"else", 'k'},
    {"elt", 'f'},
    {"end", 'k'},
    {"exec", 'T'},
    {"execute", 'T'},
    {"exists", 'f'},
    {"extractvalue", 'F'},
    {"false", 'n'},
    {"floor", 'f'},
    {"from", 'k'},
    {"generate_series", 'F'},
    {"glob", '='},
    {"group", 'G'},
    {"group_concat", 'f'},
    {"having", 'G'},
    {"hex", 'f'},
    {"if", 'f'},
    {"ifnull", 'f'},
    {"iif", 'f'},
    {"ilike", '='},
    {"in", '='},
    {"information_schema", 'X'},
    {"insert", 'T'},
    {"instr", 'f'},
    {"into", 'k'},
    {"is", '='},
    {"isnull", 'f'},
    {"join", 'k'},
    {"left", 'f'},
    {"length", 'f'},
    {"like", '='},
    {"limit", 'G'},
    {"load_file", 'P'},
    {"lower", 'f'},
    {"make_set", 'f'},
    {"md5", 'f'},
    {"mid", 'f'},
    {"mod", 'o'},
    {"msysaccessobjects", 'X'},
    {"msysobjects", 'X'},
    {"name_const", 'F'},
    {"not", 'N'},
    {"null", 'n'},
    {"nullif", 'f'},
    {"offset", 'G'},
    {"or", '&'},
    {"ord", 'f'},
    {"order", 'G'},
    {"pg_catalog", 'X'},
    {"pg_read_file", 'P'},
    {"pg_sleep", 'P'},
    {"procedure", 'G'},
    {"rand", 'f'},
    {"randomblob", 'F'},
    {"regexp", '='},
    {"replace", 'f'},
    {"rlike", '='},
    {"select", 'T'},
    {"set", 'k'},
    {"sha1", 'f'},
    {"shutdown", 'T'},
    {"sleep", 'F'},
    {"sqlite_master", 'X'},
    {"substr", 'f'},
    {"substring", 'f'},
    {"sys_eval", 'P'},
    {"sys_exec", 'P'},
    {"sysobjects", 'X'},
    {"table", 'k'},
    {"then", 'k'},
    {"true", 'n'},
    {"truncate", 'T'},
    {"unhex", 'f'},
    {"union", 'U'},
    {"update", 'T'},
    {"updatexml", 'F'},
    {"upper", 'f'},
    {"user", 'f'},
    {"utl_http", 'P'},
    {"utl_inaddr", 'P'},
    {"values", 'k'},
    {"version", 'f'},
    {"waitfor", 'W'},
    {"when", 'k'},
    {"where", 'k'},
    {"xor", '&'},
    {"xp_cmdshell", 'P'},
};

/* A shape of token classes; len and the last class are checked first, so most fail at once. */
struct pattern {
    const char *cls;
    size_t len;
};

#define P(s)                                                                                       \
    { .cls = s, .len = sizeof(s) - 1 }

/*
 * Shapes that are SQL injection at LOW sensitivity. Each is matched against the suffix of the
 * folded token stream after every token (and after the final '$').
 */
static const struct pattern patterns_low[] = {
    P("^;T$"),   P("^X$"),   P("=n&c$"), P("=s&c$"),  P("F($"),   P("F(n$"),   P("F(s$"),
    P("Q&n$"),   P("Q&s$"),  P("Q)c$"),  P("Q=n$"),   P("Q=s$"),  P("Qc$"),    P("Q&b&"),
    P("Q&n&"),   P("Q&s&"),  P("Q)&"),   P("Q=n&"),   P("Q=s&"),  P("Qos&"),   P("^Tkb&"),
    P("^n)&"),   P("(F("),   P(";T("),   P("F(("),    P("Q&("),   P("Q&=("),   P("Q&b("),
    P("Q&f("),   P("Q=("),   P("Q=f("),  P("QG("),    P("QU("),   P("Qof("),   P("^Tf("),
    P("^n&("),   P("^n&f("), P("^n)U("), P("^nG("),   P("^nU("),  P("F(b)"),   P("F(n)"),
    P("F(s)"),   P("Q))"),   P("T*"),    P(";Tb,"),   P("F(b,"),  P("F(n,"),   P("^Tn,"),
    P("Q&n;"),   P("Q);"),   P("Q=n;"),  P("^Tbkb;"), P("^Tkb;"), P("Q&b="),   P("Q&n="),
    P("Q&s="),   P("QN="),   P("Qon="),  P("Qos="),   P("^&n="),  P("^Tbkb="), P("^kbkb="),
    P("^n&b="),  P("^n&n="), P("^n&s="), P(";F"),     P("Q&F"),   P("Q;F"),    P("Q=F"),
    P("QF"),     P("Qo(F"),  P("QoF"),   P("TF"),     P("^n&F"),  P("^n;F"),   P("^noF"),
    P("^TokbG"), P("Q&N"),   P("^n&N"),  P("F(T"),    P("Q&T"),   P("Q;T"),    P("QT"),
    P("QUT"),    P("Qo(T"),  P("U(T"),   P("UT"),     P("^(T"),   P("^n&T"),   P("^n)UT"),
    P("^n;T"),   P("^nUT"),  P("k(T"),   P("Q)U"),    P(";W"),    P("Q&W"),    P("Q;W"),
    P("QW"),     P("^W"),    P("^n&W"),  P("^n;W"),   P("&X"),    P("(X"),     P(",X"),
    P("=X"),     P("Q&X"),   P("ToX"),   P("kX"),     P("oX"),    P("&btb"),   P("QGb"),
    P("^Tb,b"),  P("Q&bc"),  P("Q&nc"),  P("Q&sc"),   P("Q;c"),   P("Q=nc"),   P("Q=sc"),
    P("^Tbkbc"), P("^Tkbc"), P("^n&nc"), P(";Tf"),    P("F(f"),   P("^T(f"),   P("^nGf"),
    P(";Tbk"),   P(";Tk"),   P("QGk"),   P("QUk"),    P("Wk"),    P("^Tbkbk"), P("^Tkbk"),
    P("^Tnk"),   P("^Tok"),  P("^nksk"), P("&ntn"),   P("&s=n"),  P(";Tn"),    P("QGn"),
    P("^nGn"),   P(";To"),   P("F(no"),  P("Q&bo"),   P("Q&no"),  P("Q&so"),   P("QUo"),
    P("Qoso"),   P("Xo"),    P("&n=s"),  P("&sts"),   P("QGs"),   P("Ws"),     P(";Tv"),
    P("F(v"),    P("Q&v"),   P("^Tv"),   P("^n&v"),
};

/* Extra shapes for HIGH sensitivity: fewer missed attacks, more false alarms. */
static const struct pattern patterns_high[] = {
    P("&n$"),   P("&nc$"), P("Q&b$"),  P("Q;$"),  P("^Tkb$"), P("^Tn$"), P("^n&n$"), P("^nc$"),
    P("^)&"),   P("F("),   P("Qf("),   P("Qo("),  P("^&("),   P("^&f("), P("^=("),   P("^nof("),
    P("^n)"),   P("Q;"),   P("^);"),   P("^n;"),  P("Q="),    P("^&b="), P("^F"),    P("^noF"),
    P("QG"),    P("^nG"),  P("QU"),    P("^)U"),  P("^nU"),   P("oX"),   P("&b=b"),  P("Q&b"),
    P("Q=b"),   P("^Tb"),  P("^Tbkb"), P("^n&b"), P("Qk"),    P("Uk"),   P("^Tk"),   P("Qon"),
    P("f(n,n"), P("Q&bo"), P("f(n)o"), P("Qos"),  P("^&s"),
};

static int lower(int c) {
    return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

static bool is_space(unsigned char c) {
    /* Every control byte and NUL is treated as a separator: databases and the decoders before
     * them disagree on which of these split tokens, so the safe reading is that all do. */
    return c <= 0x20 || c == 0x7f || c == 0xa0;
}

static bool is_word(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '$' || c >= 0x80;
}

static bool is_digit(unsigned char c) {
    return c >= '0' && c <= '9';
}

static bool is_hex(unsigned char c) {
    return is_digit(c) || (lower(c) >= 'a' && lower(c) <= 'f');
}

/* Case-insensitive compare of a word against a lower-case table name (strcmp order). */
static int word_cmp(const unsigned char *w, size_t len, const char *name) {
    size_t i = 0;
    for (; i < len && name[i] != '\0'; i++) {
        int a = lower(w[i]), b = (unsigned char)name[i];
        if (a != b)
            return a - b;
    }
    if (i < len)
        return 1;
    return name[i] == '\0' ? 0 : -1;
}

static char keyword_class(const unsigned char *w, size_t len) {
    size_t lo = 0, hi = sizeof keywords / sizeof keywords[0];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = word_cmp(w, len, keywords[mid].name);
        if (c == 0)
            return keywords[mid].cls;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return 'b';
}

static bool word_is(const unsigned char *s, const struct tok *t, const char *name) {
    return word_cmp(s + t->pos, t->len, name) == 0;
}

static struct tok *win_at(struct judge *j, size_t back) {
    return &j->win[(j->count - 1 - back) % WIN];
}

/* True when `pat` matches the suffix of the stream (with `^` meaning the stream's start). */
static bool suffix_matches(struct judge *j, const struct pattern *p) {
    const char *pat = p->cls;
    size_t m = p->len;
    bool anchored = pat[0] == '^';
    if (anchored) {
        pat++;
        m--;
    }
    if (m > j->count || m > WIN || (anchored && m != j->count))
        return false;
    for (size_t k = 0; k < m; k++) {
        const struct tok *t = win_at(j, m - 1 - k);
        char want = pat[k];
        if (want == '*') {
            if (t->cls != 'o' || j->s[t->pos] != '*')
                return false;
        } else if (want == 't') {
            if (t->cls != '=' || !t->tauto)
                return false;
        } else if (t->cls != want) {
            return false;
        }
    }
    return true;
}

/* Shapes that are SQL only when the breakout really ends a string: a comment or a statement
 * right after it ("admin'--", "x' select") read as prose after 4'10" or the 'select all' box. */
static bool needs_real_breakout(const struct judge *j, const struct pattern *p, bool high) {
    if (!j->prose_quote || p->cls[0] != 'Q')
        return false;
    return high || strcmp(p->cls, "Qc$") == 0 || strcmp(p->cls, "QT") == 0;
}

/* What CREATE, DROP, ALTER and TRUNCATE act on; "create account" and "drop shipping" are not. */
static const char *const ddl_objects[] = {
    "database", "function",  "index",   "procedure", "schema", "sequence",
    "table",    "temporary", "trigger", "user",      "view",
};

/* -1: the stream opens with a data-definition verb and no object (create account); 1: with
 * its object (DROP TABLE, CREATE FUNCTION), SQL whatever follows; 0: neither. */
static int ddl_statement(const struct judge *j) {
    if (j->count < 2 || j->count > WIN || j->win[0].cls != 'T')
        return 0;
    const struct tok *verb = &j->win[0], *obj = &j->win[1];
    if (!word_is(j->s, verb, "create") && !word_is(j->s, verb, "drop") &&
        !word_is(j->s, verb, "alter") && !word_is(j->s, verb, "truncate"))
        return 0;
    for (size_t k = 0; k < sizeof ddl_objects / sizeof ddl_objects[0]; k++)
        if (word_is(j->s, obj, ddl_objects[k]))
            return 1;
    return -1;
}

/* Tries the patterns of a table (sorted by final class) that end in class `last`. */
static bool range_matches(struct judge *j, const struct pattern *tab, size_t count, char last,
                          bool high) {
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (tab[mid].cls[tab[mid].len - 1] < last)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t k = lo; k < count && tab[k].cls[tab[k].len - 1] == last; k++)
        if (suffix_matches(j, &tab[k]) && !needs_real_breakout(j, &tab[k], high))
            return true;
    return false;
}

static bool table_matches(struct judge *j, const struct pattern *tab, size_t count, bool high) {
    char last = win_at(j, 0)->cls;
    /* A '*' in a pattern is the '*' operator, an 'o' token. */
    return range_matches(j, tab, count, last, high) ||
           (last == 'o' && range_matches(j, tab, count, '*', high));
}

/* A plain word, or a colon followed by a blank ("Exec summary: the..."), which SQL has no use for.
 */
static bool is_prose_word(const struct judge *j, const struct tok *t) {
    return t->cls == 'b' || (t->cls == 'f' && t->word) ||
           (t->cls == 'o' && j->s[t->pos] == ':' && t->len == 1 && t->word);
}

/*
 * A HIGH-only shape is weak evidence (a verb and a word, a breakout and a word): prose is made of
 * such pairs. It counts only when what follows is not more words, since SQL does not put a run
 * of plain words where prose does ("select the best one", "insert the batteries (AA)", "select
 * size 'M' if"); the end of the input confirms it.
 */
static void check(struct judge *j) {
    if (j->hit)
        return;
    if (j->high_pending > 0) {
        const struct tok *t = win_at(j, 0);
        bool prose = j->ddl_pending > 0
                         ? t->cls == 'b' && !t->ident
                         : is_prose_word(j, t) || (j->ddl_pending < 0 && t->cls == '$');
        if (prose) {
            j->high_pending = 0;
        } else if (t->cls == 's' && j->high_pending == 1) {
            j->high_pending = 2; /* a quoted word: the next token decides */
            return;
        } else {
            j->hit = true;
            return;
        }
    }
    j->hit = table_matches(j, patterns_low, sizeof patterns_low / sizeof patterns_low[0], false);
    if (!j->hit && j->high &&
        table_matches(j, patterns_high, sizeof patterns_high / sizeof patterns_high[0], true)) {
        /* A string really broken out of needs no confirmation; DROP TABLE and its kin only need
         * not to go on as prose ("drop table top for picnic"). */
        if (j->win[0].cls == 'Q' && !j->prose_quote && j->count <= WIN) {
            j->hit = true;
        } else {
            j->high_pending = 1;
            j->ddl_pending = ddl_statement(j);
        }
    }
}

static void push_raw(struct judge *j, struct tok t) {
    j->win[j->count % WIN] = t;
    j->count++;
    check(j);
}

static bool is_operand(char c) {
    return c == 'n' || c == 's' || c == 'v' || c == 'b' || c == ')' || c == 'Q' || c == 'X';
}

/* Folding: merges and drops that make evasive spellings look like the plain ones. */
static void push(struct judge *j, struct tok t) {
    j->pending_comment = false;
    if (j->count > 0) {
        struct tok *p = win_at(j, 0);
        /* UNION ALL / UNION DISTINCT, ORDER BY, GROUP BY, WAITFOR DELAY, INTO OUTFILE. */
        if ((p->cls == 'U' && t.cls == 'k' &&
             (word_is(j->s, &t, "all") || word_is(j->s, &t, "distinct") ||
              word_is(j->s, &t, "distinctrow"))) ||
            (p->cls == 'G' && t.cls == 'k' && word_is(j->s, &t, "by")))
            return;
        if (p->cls == 'W' && t.cls == 'b')
            return;
        if (p->cls == 'k' && word_is(j->s, p, "into") && t.cls == 'b' &&
            (word_is(j->s, &t, "outfile") || word_is(j->s, &t, "dumpfile"))) {
            p->cls = 'F';
            check(j);
            return;
        }
        /* Parentheses right after the breakout close the caller's own: ')) OR 1=1. */
        if (p->cls == 'Q' && t.cls == ')' && j->count == 1)
            return;
        /* NOT and unary ! in front of an operand change nothing about the shape. */
        if (p->cls == 'N' && t.cls != '&' && t.cls != '=') {
            j->count--;
            if (j->count == 0) {
                push_raw(j, t);
                return;
            }
            p = win_at(j, 0);
        }
        /* A sign before a number belongs to it: -1 UNION, 1 AND -1=-1. */
        if (t.cls == 'n' && p->cls == 'o' && p->len == 1 &&
            (j->s[p->pos] == '-' || j->s[p->pos] == '+' || j->s[p->pos] == '~')) {
            bool unary = j->count == 1;
            if (!unary) {
                char before = win_at(j, 1)->cls;
                unary = !is_operand(before) && before != 'Q';
            }
            if (unary)
                j->count--;
        }
        /* The AND of BETWEEN x AND y joins the bounds: "between 9 and 5" has no logic in it. */
        if (t.cls == '&' && p->cls == 'n' && j->count >= 2 && win_at(j, 1)->cls == '=' &&
            word_is(j->s, win_at(j, 1), "between"))
            t.cls = 'o';
        /* Literal = same literal: remember it so 1=1 is a tautology. */
        if (j->count >= 2 && (t.cls == 'n' || t.cls == 's' || t.cls == 'b') && p->cls == '=') {
            struct tok *l = win_at(j, 1);
            if (l->cls == t.cls && l->len == t.len &&
                memcmp(j->s + l->pos, j->s + t.pos, t.len) == 0)
                p->tauto = true;
        }
    }
    push_raw(j, t);
}

static void skip_comment_block(struct lexer *lx) {
    while (lx->i + 1 < lx->n && !(lx->s[lx->i] == '*' && lx->s[lx->i + 1] == '/'))
        lx->i++;
    lx->i = lx->i + 1 < lx->n ? lx->i + 2 : lx->n;
}

/* Reads a quoted string starting after the opening quote `q`; returns the content length. */
static size_t read_string(struct lexer *lx, unsigned char q, bool *closed) {
    size_t start = lx->i;
    *closed = false;
    while (lx->i < lx->n) {
        unsigned char c = lx->s[lx->i];
        if (c == '\\' && lx->i + 1 < lx->n) {
            lx->i += 2;
            continue;
        }
        if (c == q) {
            if (lx->i + 1 < lx->n && lx->s[lx->i + 1] == q) {
                lx->i += 2; /* '' is an escaped quote */
                continue;
            }
            size_t len = lx->i - start;
            lx->i++;
            *closed = true;
            return len;
        }
        lx->i++;
    }
    return lx->i - start;
}

static size_t next_significant(const struct lexer *lx, size_t i) {
    while (i < lx->n) {
        if (is_space(lx->s[i])) {
            i++;
        } else if (lx->s[i] == '/' && i + 1 < lx->n && lx->s[i + 1] == '*' &&
                   !(i + 2 < lx->n && lx->s[i + 2] == '!')) {
            i += 2;
            while (i + 1 < lx->n && !(lx->s[i] == '*' && lx->s[i + 1] == '/'))
                i++;
            i = i + 1 < lx->n ? i + 2 : lx->n;
        } else {
            break;
        }
    }
    return i;
}

/* Lexes one token (or skips one blank/comment); returns false at end of input. */
static bool lex_one(struct lexer *lx, struct judge *j) {
    const unsigned char *s = lx->s;
    size_t n = lx->n;
    if (lx->i >= n)
        return false;
    size_t st = lx->i;
    unsigned char c = s[st];
    struct tok t = {.cls = 'o', .pos = st, .len = 1};

    if (is_space(c)) {
        lx->i++;
        return true;
    }
    if (c == '/' && st + 1 < n && s[st + 1] == '*') {
        if (st + 2 < n && s[st + 2] == '!') {
            /* MySQL runs the inside of a slash-star-bang comment: lex it as code. Nobody writes
             * one in a form field, so its presence alone counts at either sensitivity. */
            lx->i = st + 3;
            while (lx->i < n && is_digit(s[lx->i]))
                lx->i++;
            lx->exec_comment = true;
            j->hit = true;
            return true;
        }
        lx->i = st + 2;
        skip_comment_block(lx);
        j->pending_comment = true;
        return true;
    }
    if (c == '*' && st + 1 < n && s[st + 1] == '/' && lx->exec_comment) {
        lx->exec_comment = false;
        lx->i = st + 2;
        return true;
    }
    if ((c == '-' && st + 1 < n && s[st + 1] == '-') || c == '#') {
        while (lx->i < n && s[lx->i] != '\n')
            lx->i++;
        j->pending_comment = true;
        return true;
    }
    if (c == '\'' || c == '"') {
        bool closed;
        lx->i = st + 1;
        read_string(lx, c, &closed);
        t.cls = 's';
        t.pos = st + 1;
        t.len = lx->i - st - 1 - (closed ? 1 : 0);
        push(j, t);
        return true;
    }
    if (c == '`' || c == '[') {
        /* Quoted identifiers. */
        unsigned char close = c == '`' ? '`' : ']';
        lx->i = st + 1;
        while (lx->i < n && s[lx->i] != close)
            lx->i++;
        if (lx->i < n)
            lx->i++;
        t.cls = 'b';
        t.ident = true;
        t.len = lx->i - st;
        push(j, t);
        return true;
    }
    if (is_digit(c) || (c == '.' && st + 1 < n && is_digit(s[st + 1]))) {
        size_t i = st;
        if (c == '0' && i + 1 < n && (lower(s[i + 1]) == 'x' || lower(s[i + 1]) == 'b')) {
            i += 2;
            while (i < n && is_hex(s[i]))
                i++;
        } else {
            while (i < n && (is_digit(s[i]) || s[i] == '.'))
                i++;
            if (i < n && lower(s[i]) == 'e' && i + 1 < n &&
                (is_digit(s[i + 1]) ||
                 ((s[i + 1] == '-' || s[i + 1] == '+') && i + 2 < n && is_digit(s[i + 2])))) {
                i += 2;
                while (i < n && is_digit(s[i]))
                    i++;
            }
        }
        /* "2nd", "5th", "3d": a digit run glued to letters is a word in prose, not a number;
         * but MySQL splits 1UNION into 1 UNION, so a glued keyword ends the number. */
        t.cls = 'n';
        if (i < n && is_word(s[i])) {
            size_t w = i;
            while (w < n && is_word(s[w]))
                w++;
            if (keyword_class(s + i, w - i) == 'b') {
                i = w;
                t.cls = 'b';
            }
        }
        t.len = i - st;
        lx->i = i;
        push(j, t);
        return true;
    }
    if (c == '@') {
        size_t i = st + 1;
        bool sys = i < n && s[i] == '@';
        if (sys)
            i++;
        while (i < n && (is_word(s[i]) || s[i] == '.'))
            i++;
        t.cls = sys ? 'X' : 'v';
        t.len = i - st;
        lx->i = i;
        if (t.len == 1)
            t.cls = 'o';
        push(j, t);
        return true;
    }
    if (is_word(c)) {
        size_t i = st;
        while (i < n && is_word(s[i]))
            i++;
        /* N'..', X'..', B'..', E'..': prefixed string literals. */
        if (i == st + 1 && i < n && s[i] == '\'' &&
            (lower(c) == 'n' || lower(c) == 'x' || lower(c) == 'b' || lower(c) == 'e')) {
            bool closed;
            lx->i = i + 1;
            read_string(lx, '\'', &closed);
            t.cls = 's';
            t.pos = i + 1;
            t.len = lx->i - i - 1 - (closed ? 1 : 0);
            push(j, t);
            return true;
        }
        t.len = i - st;
        t.cls = keyword_class(s + st, t.len);
        size_t nx = next_significant(lx, i);
        bool call = nx < n && s[nx] == '(';
        if (t.cls == 'P') {
            /* Names no prose contains: dangerous with or without the call. */
            t.cls = 'F';
        } else if (t.cls == 'F' && call && st > 0 && s[st - 1] == '.') {
            /* time.sleep(2), Thread.sleep(100): a method of some object in a code snippet. */
            t.cls = 'f';
        } else if ((t.cls == 'f' || t.cls == 'F') && !call) {
            t.cls = 'b';
        } else if (t.cls == 'b' && call && t.len <= 32) {
            /* Unknown name called like a function: database functions are numerous. */
            t.cls = 'f';
            t.word = true;
        }
        lx->i = i;
        push(j, t);
        return true;
    }
    /* Punctuation and operators. */
    lx->i = st + 1;
    unsigned char d = st + 1 < n ? s[st + 1] : 0;
    switch (c) {
    case '(':
    case ')':
    case ',':
    case ';':
        t.cls = (char)c;
        break;
    case '=':
        t.cls = '=';
        if (d == '=')
            lx->i++;
        break;
    case '<':
    case '>':
        t.cls = '=';
        if (d == '=' || d == '>' || (c == '<' && d == '<') || (c == '>' && d == '>')) {
            lx->i++;
            if (d == c)
                t.cls = 'o';
            if (c == '<' && d == '=' && st + 2 < n && s[st + 2] == '>')
                lx->i++;
        }
        break;
    case '!':
        if (d == '=') {
            t.cls = '=';
            lx->i++;
        } else {
            t.cls = 'N';
        }
        break;
    case '&':
    case '|':
        if (d == c) {
            t.cls = '&';
            lx->i++;
        }
        break;
    case ':':
        if (d == '=') {
            t.cls = '=';
            lx->i++;
        } else {
            t.word = d == 0 || is_space(d); /* a colon in a sentence */
        }
        break;
    default:
        break;
    }
    t.len = lx->i - st;
    push(j, t);
    return true;
}

/*
 * Whether the quote at s[q] reads as prose rather than as the end of a string: an inch or foot
 * mark after a number (27", 5'11", 16.4'), or an opening quotation mark (the 'where' field:
 * after a blank, before a letter).
 */
static bool prose_quote(const unsigned char *s, size_t n, size_t q) {
    unsigned char after = q + 1 < n ? s[q + 1] : ' ';
    if (q > 0 && is_digit(s[q - 1]))
        return !is_word(after) || is_digit(after);
    return q > 0 && is_space(s[q - 1]) &&
           ((after >= 'a' && after <= 'z') || (after >= 'A' && after <= 'Z'));
}

static bool run(const unsigned char *s, size_t n, unsigned char quote, bool high) {
    struct lexer lx = {.s = s, .n = n, .i = 0, .exec_comment = false};
    struct judge j = {.count = 0, .high = high, .hit = false, .s = s, .pending_comment = false};
    if (quote != 0) {
        /* The first quote ends the caller's string whether or not a backslash precedes it:
         * standard SQL has no backslash escape, and an application that escapes quotes by
         * prefixing a backslash is defeated by a value that brings its own (\' becomes \\'). */
        const unsigned char *q = memchr(s, quote, n);
        if (q == NULL)
            return false; /* the value never leaves the string: nothing to inject */
        lx.i = (size_t)(q - s) + 1;
        j.prose_quote = prose_quote(s, n, (size_t)(q - s));
        push(&j, (struct tok){.cls = 'Q', .pos = 0, .len = lx.i - 1});
    }
    while (!j.hit && lex_one(&lx, &j))
        ;
    if (j.hit)
        return true;
    if (j.pending_comment)
        push_raw(&j, (struct tok){.cls = 'c', .pos = n, .len = 0});
    if (!j.hit)
        push_raw(&j, (struct tok){.cls = '$', .pos = n, .len = 0});
    return j.hit || j.high_pending > 0;
}

static bool detect(const unsigned char *u, size_t n, bool high) {
    return run(u, n, 0, high) || run(u, n, '\'', high) || run(u, n, '"', high);
}

/* ---- JSON documents ------------------------------------------------------------------------ */

/*
 * A JSON body read as one string puts every value in the wrong place: the quote that opens a
 * value looks like the breakout, and the prose inside it like the SQL that follows. What the
 * application reads is each string on its own, with its escapes undone, so a value that is a
 * whole JSON document (an object or an array, nothing around it) is judged string by string:
 * keys and values alike. Anything that is not JSON all the way through is judged as text, so
 * wrapping a payload in braces gains nothing.
 */

#define JSON_DEPTH 64
#define JSON_STR   4096 /* longer strings with escapes are judged with their escapes in place */

static size_t json_space(const unsigned char *s, size_t n, size_t i) {
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

/* Reads the string whose opening quote is at s[i]; returns the index after its closing quote,
 * or 0 when it does not close. *escaped says whether it holds a backslash. */
static size_t json_string_end(const unsigned char *s, size_t n, size_t i, bool *escaped) {
    *escaped = false;
    for (i++; i < n; i++) {
        if (s[i] == '\\') {
            *escaped = true;
            i++;
        } else if (s[i] == '"') {
            return i + 1;
        } else if (s[i] < 0x20) {
            return 0;
        }
    }
    return 0;
}

static void put_utf8(unsigned char *out, size_t *o, unsigned long v) {
    if (v < 0x80) {
        out[(*o)++] = (unsigned char)v;
    } else if (v < 0x800) {
        out[(*o)++] = (unsigned char)(0xc0 | (v >> 6));
        out[(*o)++] = (unsigned char)(0x80 | (v & 0x3f));
    } else {
        out[(*o)++] = (unsigned char)(0xe0 | ((v >> 12) & 0x0f));
        out[(*o)++] = (unsigned char)(0x80 | ((v >> 6) & 0x3f));
        out[(*o)++] = (unsigned char)(0x80 | (v & 0x3f));
    }
}

/* Undoes the escapes of the string content s[0..n) into out (room for n bytes: no escape
 * decodes to more bytes than it takes); returns the decoded length. */
static size_t json_unescape(const unsigned char *s, size_t n, unsigned char *out) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\' || i + 1 >= n) {
            out[o++] = s[i];
            continue;
        }
        unsigned char e = s[++i];
        unsigned long v = 0;
        switch (e) {
        case 'b':
            out[o++] = '\b';
            break;
        case 'f':
            out[o++] = '\f';
            break;
        case 'n':
            out[o++] = '\n';
            break;
        case 'r':
            out[o++] = '\r';
            break;
        case 't':
            out[o++] = '\t';
            break;
        case 'u':
            if (i + 4 < n && is_hex(s[i + 1]) && is_hex(s[i + 2]) && is_hex(s[i + 3]) &&
                is_hex(s[i + 4])) {
                for (size_t k = 1; k <= 4; k++)
                    v = v * 16 + (unsigned long)(is_digit(s[i + k]) ? s[i + k] - '0'
                                                                    : lower(s[i + k]) - 'a' + 10);
                put_utf8(out, &o, v); /* at most 3 bytes for the 6 read */
                i += 4;
            } else {
                out[o++] = e;
            }
            break;
        default:
            out[o++] = e; /* \" \\ \/ and anything else stand for themselves */
            break;
        }
    }
    return o;
}

/* 1: a JSON document with an injection in a string; 0: a JSON document without one; -1: not a
 * JSON document. */
static int json_detect(const unsigned char *s, size_t n, bool high) {
    char stack[JSON_DEPTH];
    size_t depth = 0, i = json_space(s, n, 0);
    if (i >= n || (s[i] != '{' && s[i] != '['))
        return -1;
    while (i < n) {
        unsigned char c = s[i];
        if (c == '{' || c == '[') {
            if (depth == JSON_DEPTH)
                return -1;
            stack[depth++] = (char)(c == '{' ? '}' : ']');
            i++;
        } else if (c == '}' || c == ']') {
            if (depth == 0 || stack[depth - 1] != (char)c)
                return -1;
            depth--;
            i++;
            if (depth == 0)
                return json_space(s, n, i) == n ? 0 : -1;
        } else if (c == ',' || c == ':' || c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            i++;
        } else if (c == '"') {
            bool escaped;
            size_t end = json_string_end(s, n, i, &escaped);
            if (end == 0)
                return -1;
            const unsigned char *v = s + i + 1;
            size_t len = end - i - 2;
            bool hit;
            if (escaped && len <= JSON_STR) {
                unsigned char buf[JSON_STR];
                hit = detect(buf, json_unescape(v, len, buf), high);
            } else {
                hit = len > 0 && detect(v, len, high);
            }
            if (hit)
                return 1; /* whatever follows: a string the application reads is enough */
            i = end;
        } else if (c == '-' || is_digit(c)) {
            while (i < n && (is_digit(s[i]) || s[i] == '-' || s[i] == '+' || s[i] == '.' ||
                             lower(s[i]) == 'e'))
                i++;
        } else if (i + 4 <= n && (memcmp(s + i, "true", 4) == 0 || memcmp(s + i, "null", 4) == 0)) {
            i += 4;
        } else if (i + 5 <= n && memcmp(s + i, "false", 5) == 0) {
            i += 5;
        } else {
            return -1;
        }
    }
    return -1; /* unclosed */
}

bool sl_waf_sqli(const char *s, size_t n, bool high_sensitivity) {
    const unsigned char *u = (const unsigned char *)s;
    if (s == NULL || n == 0)
        return false;
    int json = json_detect(u, n, high_sensitivity);
    if (json >= 0)
        return json == 1;
    return detect(u, n, high_sensitivity);
}
