/* Unit tests for the gateway index: the setting, a StatefulSet pod name, or 0. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "settings.h"

static int32_t index_of(int64_t setting, const char *hostname, const char **source) {
    struct gw_settings s;
    memset(&s, 0, sizeof s);
    s.gateway_index = setting;
    return gw_settings_index(&s, hostname, source);
}

static void test_the_setting_wins_over_the_hostname(void **state) {
    (void)state;
    const char *source;
    assert_int_equal(index_of(3, "sluice-gateway-7", &source), 3);
    assert_string_equal(source, "SLUICE_GATEWAY_INDEX");
}

static void test_a_statefulset_pod_name_gives_its_ordinal(void **state) {
    (void)state;
    const char *source;
    static const struct {
        const char *host;
        int32_t index;
    } ok[] = {{"sluice-gateway-0", 0},
              {"sluice-gateway-2", 2},
              {"gw-10", 10},
              {"a-1-2", 2},
              {"g-100000", 100000}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_int_equal(index_of(-1, ok[i].host, &source), ok[i].index);
        assert_string_equal(source, "the StatefulSet ordinal in HOSTNAME");
    }
}

static void test_other_hostnames_give_zero_and_say_why(void **state) {
    (void)state;
    const char *source;
    /* A leading zero, no name, no ordinal, letters or dots, too long, out of range. */
    static const char *const not_pods[] = {
        "web-01", "-1",     "web-",
        "web",    "Web-1",  "web-1.example.com",
        "web--1", "web-1a", "g-100001",
        "laptop", "",       "a2345678901234567890123456789012345678901234567890123456789012-1"};
    for (size_t i = 0; i < sizeof not_pods / sizeof not_pods[0]; i++) {
        assert_int_equal(index_of(-1, not_pods[i], &source), 0);
        assert_non_null(strstr(source, "not a StatefulSet pod name"));
    }
    assert_int_equal(index_of(-1, NULL, &source), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_setting_wins_over_the_hostname),
        cmocka_unit_test(test_a_statefulset_pod_name_gives_its_ordinal),
        cmocka_unit_test(test_other_hostnames_give_zero_and_say_why),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
