/* Unit tests for the gateway's in-flight table and its request objects' references. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "inflight.h"
#include "sluice/buf.h"
#include "sluice/error.h"

static void set_id(struct gw_req *r, const char *id) {
    snprintf(r->id, sizeof r->id, "%s", id);
}

static void test_add_find_remove(void **state) {
    (void)state;
    struct gw_inflight t;
    assert_int_equal(gw_inflight_init(&t, 4), 0);
    struct gw_req a = {0}, b = {0};
    set_id(&a, "2f1c6d3e-0000-4000-8000-000000000001");
    set_id(&b, "2f1c6d3e-0000-4000-8000-000000000002");
    assert_int_equal(gw_inflight_add(&t, &a), 0);
    assert_int_equal(gw_inflight_add(&t, &b), 0);
    assert_int_equal(t.count, 2);
    assert_ptr_equal(gw_inflight_find(&t, a.id, strlen(a.id)), &a);
    assert_ptr_equal(gw_inflight_find(&t, b.id, strlen(b.id)), &b);
    /* A prefix of an id is another id. */
    assert_null(gw_inflight_find(&t, a.id, strlen(a.id) - 1));
    assert_null(gw_inflight_find(&t, "nope", 4));

    gw_inflight_remove(&t, &a);
    assert_int_equal(t.count, 1);
    assert_null(gw_inflight_find(&t, a.id, strlen(a.id)));
    assert_ptr_equal(gw_inflight_find(&t, b.id, strlen(b.id)), &b);
    /* Removing what is not there changes nothing. */
    gw_inflight_remove(&t, &a);
    assert_int_equal(t.count, 1);
    gw_inflight_remove(&t, &b);
    assert_int_equal(t.count, 0);
    gw_inflight_free(&t);
}

static void test_full_table_refuses_and_frees_a_place_on_remove(void **state) {
    (void)state;
    struct gw_inflight t;
    assert_int_equal(gw_inflight_init(&t, 3), 0);
    struct gw_req r[4] = {0};
    for (int i = 0; i < 4; i++) {
        char id[32];
        snprintf(id, sizeof id, "req-%d", i);
        set_id(&r[i], id);
    }
    for (int i = 0; i < 3; i++)
        assert_int_equal(gw_inflight_add(&t, &r[i]), 0);
    assert_int_equal(gw_inflight_add(&t, &r[3]), SL_ERR_TOO_LARGE);
    assert_null(gw_inflight_find(&t, r[3].id, strlen(r[3].id)));
    gw_inflight_remove(&t, &r[1]);
    assert_int_equal(gw_inflight_add(&t, &r[3]), 0);
    assert_ptr_equal(gw_inflight_find(&t, r[3].id, strlen(r[3].id)), &r[3]);
    gw_inflight_free(&t);
}

/* Ids that land in one bucket share a chain: each is still found, and any one leaves it. */
static void test_colliding_ids_share_a_chain(void **state) {
    (void)state;
    struct gw_inflight t;
    assert_int_equal(gw_inflight_init(&t, 8), 0);
    struct gw_req r[3] = {0};
    size_t bucket = 0, found = 0;
    for (int i = 0; found < 3 && i < 100000; i++) {
        char id[32];
        int n = snprintf(id, sizeof id, "id-%d", i);
        size_t b = (size_t)sl_fnv1a(id, (size_t)n) & t.mask;
        if (found == 0)
            bucket = b;
        if (b == bucket)
            set_id(&r[found++], id);
    }
    assert_int_equal(found, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(gw_inflight_add(&t, &r[i]), 0);
    for (int i = 0; i < 3; i++)
        assert_ptr_equal(gw_inflight_find(&t, r[i].id, strlen(r[i].id)), &r[i]);
    gw_inflight_remove(&t, &r[1]); /* the middle of the chain */
    assert_null(gw_inflight_find(&t, r[1].id, strlen(r[1].id)));
    assert_ptr_equal(gw_inflight_find(&t, r[0].id, strlen(r[0].id)), &r[0]);
    assert_ptr_equal(gw_inflight_find(&t, r[2].id, strlen(r[2].id)), &r[2]);
    gw_inflight_remove(&t, &r[2]); /* the head */
    gw_inflight_remove(&t, &r[0]); /* the tail */
    assert_int_equal(t.count, 0);
    assert_null(t.buckets[bucket]);
    gw_inflight_free(&t);
}

static int idle_calls;

static void on_idle(struct gw_gateway *g) {
    (void)g;
    idle_calls++;
}

static void test_last_reference_recycles_and_tells_a_stopped_gateway(void **state) {
    (void)state;
    struct gw_gateway g = {0};
    struct gw_req *r = gw_req_new(&g);
    assert_non_null(r);
    assert_ptr_equal(r->g, &g);
    assert_int_equal(r->refs, 1);
    assert_int_equal(g.live_reqs, 1);
    r->refs++; /* say, a delivery report */
    gw_req_unref(r);
    assert_int_equal(g.live_reqs, 1);
    assert_int_equal(g.nfree_reqs, 0);
    g.on_idle = on_idle;
    gw_req_unref(r);
    assert_int_equal(g.live_reqs, 0);
    assert_int_equal(g.nfree_reqs, 1);
    assert_int_equal(idle_calls, 1);
    /* The next request reuses the object, cleared. */
    struct gw_req *again = gw_req_new(&g);
    assert_ptr_equal(again, r);
    assert_int_equal(g.nfree_reqs, 0);
    assert_int_equal(again->state, GW_REQ_PIPELINE);
    gw_req_unref(again);
    assert_int_equal(idle_calls, 2);
    gw_req_free_list(&g);
    assert_int_equal(g.nfree_reqs, 0);
    assert_null(g.free_reqs);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_find_remove),
        cmocka_unit_test(test_full_table_refuses_and_frees_a_place_on_remove),
        cmocka_unit_test(test_colliding_ids_share_a_chain),
        cmocka_unit_test(test_last_reference_recycles_and_tells_a_stopped_gateway),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
