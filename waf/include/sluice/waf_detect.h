/* SQL injection and cross-site scripting detection for the WAF's SqliMatch / XssMatch statements.
 */
#ifndef SLUICE_WAF_DETECT_H
#define SLUICE_WAF_DETECT_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Both detectors are tokenizers, not regex lists: the input (already transformed by the rule's
 * TextTransformations) is lexed as it would be by the interpreter it targets (SQL in the
 * contexts a value can be injected into: bare, after a single quote, after a double quote;
 * HTML and the JavaScript/URL contexts HTML opens), and the token sequence is judged.
 * They allocate nothing, never read past s[n - 1], and run in time linear in n.
 * Thread-safe (no state).
 */

/*
 * True when `s` looks like SQL injection. `high_sensitivity` matches AWS WAF's
 * SensitivityLevel HIGH (more detections, more false positives); false is LOW, the default.
 */
bool sl_waf_sqli(const char *s, size_t n, bool high_sensitivity);

/* True when `s` looks like cross-site scripting (HTML/JS injection). */
bool sl_waf_xss(const char *s, size_t n);

#endif
