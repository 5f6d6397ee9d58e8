/* libFuzzer target: the WAF's SQLi and XSS detectors on arbitrary bytes (bounds, termination). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/waf_detect.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* An exact-size heap copy, so ASan catches any read past s[n - 1]. */
    char *s = malloc(size > 0 ? size : 1);
    if (s == NULL)
        return 0;
    if (size > 0)
        memcpy(s, data, size);
    bool low = sl_waf_sqli(s, size, false);
    bool high = sl_waf_sqli(s, size, true);
    (void)sl_waf_xss(s, size);
    /* HIGH sensitivity only ever adds detections. */
    if (low && !high)
        abort();
    free(s);
    return 0;
}
