/* Driver for tests/support/waf_detect_corpus.py: runs the SQLi/XSS detectors over stdin inputs. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "sluice/waf_detect.h"

/*
 * Input: records "<length>\n<length bytes>" back to back. Output: one line per record,
 * "<sqli LOW> <sqli HIGH> <xss>" as 0/1, so the script can line verdicts up with its inputs.
 */
int main(void) {
    static char buf[1 << 20];
    for (;;) {
        size_t len = 0;
        int c;
        bool any = false;
        while ((c = getchar()) != EOF && c != '\n') {
            if (c < '0' || c > '9' || len > sizeof buf) {
                fputs("waf_detect_eval: bad record header\n", stderr);
                return 2;
            }
            len = len * 10 + (size_t)(c - '0');
            any = true;
        }
        if (!any)
            return 0;
        if (len > sizeof buf || fread(buf, 1, len, stdin) != len) {
            fputs("waf_detect_eval: short record\n", stderr);
            return 2;
        }
        printf("%d %d %d\n", sl_waf_sqli(buf, len, false), sl_waf_sqli(buf, len, true),
               sl_waf_xss(buf, len));
        fflush(stdout);
    }
}
