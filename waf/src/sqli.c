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
    P("=n&c$"), P("=s&c$"),  P("F($"),   P("F(n$"),   P("F(s$"),   P("Q&n$"),   P("Q&s$"),
    P("Q)c$"),  P("Q=n$"),   P("Q=s$"),  P("Qc$"),    P("Q&b&"),   P("Q&n&"),   P("Q&s&"),
    P("Q)&"),   P("Q=n&"),   P("Q=s&"),  P("Qos&"),   P("^Tkb&"),  P("^n)&"),   P("(F("),
    P(";T("),   P("F(("),    P("Q&("),   P("Q&=("),   P("Q&b("),   P("Q&f("),   P("Q=("),
    P("Q=f("),  P("QG("),    P("QU("),   P("Qof("),   P("^Tf("),   P("^n&("),   P("^n&f("),
    P("^n)U("), P("^nG("),   P("^nU("),  P("F(b)"),   P("F(n)"),   P("F(s)"),   P("Q))"),
    P("T*"),    P(";Tb,"),   P("F(b,"),  P("F(n,"),   P("^Tn,"),   P("Q&n;"),   P("Q);"),
    P("Q=n;"),  P("^Tbkb;"), P("^Tkb;"), P("Q&b="),   P("Q&n="),   P("Q&s="),   P("QN="),
    P("Qon="),  P("Qos="),   P("^&n="),  P("^Tbkb="), P("^kbkb="), P("^n&b="),  P("^n&n="),
    P("^n&s="), P(";F"),     P("Q&F"),   P("Q;F"),    P("Q=F"),    P("QF"),     P("Qo(F"),
    P("QoF"),   P("TF"),     P("^n&F"),  P("^n;F"),   P("^noF"),   P("^TokbG"), P("Q&N"),
    P("^n&N"),  P("F(T"),    P("Q&T"),   P("Q;T"),    P("QT"),     P("QUT"),    P("Qo(T"),
    P("U(T"),   P("UT"),     P("^(T"),   P("^n&T"),   P("^n)UT"),  P("^n;T"),   P("^nUT"),
    P("k(T"),   P("Q)U"),    P(";W"),    P("Q&W"),    P("Q;W"),    P("QW"),     P("^W"),
    P("^n&W"),  P("^n;W"),   P("&X"),    P("(X"),     P(",X"),     P("=X"),     P("Q&X"),
    P("ToX"),   P("kX"),     P("oX"),    P("&btb"),   P("QGb"),    P("^Tb,b"),  P("Q&bc"),
    P("Q&nc"),  P("Q&sc"),   P("Q;c"),   P("Q=nc"),   P("Q=sc"),   P("^Tbkbc"), P("^Tkbc"),
    P("^n&nc"), P(";Tf"),    P("F(f"),   P("^T(f"),   P("^nGf"),   P(";Tbk"),   P(";Tk"),
    P("QGk"),   P("QUk"),    P("Wk"),    P("^Tbkbk"), P("^Tkbk"),  P("^Tnk"),   P("^Tok"),
    P("^nksk"), P("&ntn"),   P("&s=n"),  P(";Tn"),    P("QGn"),    P("^nGn"),   P(";To"),
    P("F(no"),  P("Q&bo"),   P("Q&no"),  P("Q&so"),   P("QUo"),    P("Qoso"),   P("Xo"),
    P("&n=s"),  P("&sts"),   P("QGs"),   P("Ws"),     P(";Tv"),    P("F(v"),    P("Q&v"),
    P("^Tv"),   P("^n&v"),
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

/* Tries the patterns of a table (sorted by final class) that end in class `last`. */
static bool range_matches(struct judge *j, const struct pattern *tab, size_t count, char last) {
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (tab[mid].cls[tab[mid].len - 1] < last)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t k = lo; k < count && tab[k].cls[tab[k].len - 1] == last; k++)
        if (suffix_matches(j, &tab[k]))
            return true;
    return false;
}

static bool table_matches(struct judge *j, const struct pattern *tab, size_t count) {
    char last = win_at(j, 0)->cls;
    /* A '*' in a pattern is the '*' operator, an 'o' token. */
    return range_matches(j, tab, count, last) || (last == 'o' && range_matches(j, tab, count, '*'));
}

static void check(struct judge *j) {
    j->hit = j->hit ||
             table_matches(j, patterns_low, sizeof patterns_low / sizeof patterns_low[0]) ||
             (j->high &&
              table_matches(j, patterns_high, sizeof patterns_high / sizeof patterns_high[0]));
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
        } else if ((t.cls == 'f' || t.cls == 'F') && !call) {
            t.cls = 'b';
        } else if (t.cls == 'b' && call && t.len <= 32) {
            /* Unknown name called like a function: database functions are numerous. */
            t.cls = 'f';
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
        }
        break;
    default:
        break;
    }
    t.len = lx->i - st;
    push(j, t);
    return true;
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
    return j.hit;
}

bool sl_waf_sqli(const char *s, size_t n, bool high_sensitivity) {
    const unsigned char *u = (const unsigned char *)s;
    if (s == NULL || n == 0)
        return false;
    return run(u, n, 0, high_sensitivity) || run(u, n, '\'', high_sensitivity) ||
           run(u, n, '"', high_sensitivity);
}
