/* tests/unit/test_admit.c: the admission decision (worker/admit.c) over a real arena: lists,
 * mapping, prices, ancestors' and model limits with rollback on refusal, credit gates, the
 * token correction and cost at the end, and ModelFailover's backup models. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/clock.h"
#include "common/keyhash.h"
#include "shm/accounts.h"
#include "shm/arena.h"
#include "worker/admit.h"

#include "arena_fixture.h"

#define USD 1000000000ll

typedef struct fixture {
    tg_test_arena_t arena; /* tests/unit/arena_fixture.h */
    tg_admit_ctx_t ctx;
} fixture_t;

enum { ROOT = 0, OWNER = 1, CHILD = 2, POOR = 3, FREE_OWNER = 4, FREE_CHILD = 5 };

static void mkacct(fixture_t *f, uint32_t slot, uint64_t id, uint64_t parent, uint32_t parent_slot, uint64_t owner,
                 void (*more)(tg_account_settings_t *))
{
    tg_account_settings_t st;
    memset(&st, 0, sizeof(st));
    st.id = id;
    st.parent_id = parent;
    st.owner_id = owner;
    st.level = 1;
    st.flags = TG_ACCT_ENABLED | (id == 1 ? TG_ACCT_ROOT | TG_ACCT_OWNER : 0);
    st.up_id = parent;
    st.up_slot = parent ? parent_slot : TG_SLOT_NONE;
    char key[32];
    snprintf(key, sizeof(key), "sk-admit-%llu", (unsigned long long)id);
    tg_key_hash(key, strlen(key), st.key_hash);
    if (more)
        more(&st);
    assert_int_equal(tg_account_publish(&f->arena.a, slot, &st), 0);
}

static void owner_more(tg_account_settings_t *st)
{
    st->rpm = 5; /* caps its whole subtree */
}

static json_t *g_child_ml;
static void child_more(tg_account_settings_t *st)
{
    st->rpm = 100;
    st->tpm = 1000000;
    st->rates_ppm = 2000000; /* Rates 2 */
    st->src.allow_ips = "10.0.0.0/8, ::1";
    st->src.model_mapper = "fast=gpt-4o-mini, house=house-model";
    st->src.allow_models = "gpt-4o*, o3-*, house-model";
    st->src.model_limits = g_child_ml;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (!f || tg_test_arena_open(&f->arena, "admit", (tg_arena_sizes_t){64, 8, 1024}) != 0)
        return -1;
    char *err = NULL;
    g_child_ml = json_pack("{s:{s:i}}", "gpt-4o*", "rpm", 3);
    mkacct(f, ROOT, 1, 0, 0, 1, NULL);
    mkacct(f, OWNER, 2, 1, ROOT, 2, owner_more);
    mkacct(f, CHILD, 3, 2, OWNER, 2, child_more);
    mkacct(f, POOR, 4, 1, ROOT, 4, NULL);
    mkacct(f, FREE_OWNER, 5, 1, ROOT, 5, NULL);
    mkacct(f, FREE_CHILD, 6, 5, FREE_OWNER, 5, NULL);
    json_decref(g_child_ml);
    atomic_store(&f->arena.a.accounts[ROOT].balance, INT64_MAX / 4);
    atomic_store(&f->arena.a.accounts[OWNER].balance, 100 * USD);
    atomic_store(&f->arena.a.accounts[CHILD].balance, 10 * USD);
    atomic_store(&f->arena.a.accounts[FREE_CHILD].balance, 10 * USD);
    tg_owner_conf_t o2 = TG_OWNER_CONF_UNSET;
    o2.prices = "{\"house-model\":{\"input\":1,\"output\":2}}";
    o2.model_limits = "{\"o3-mini\":{\"rpd\":1000}}";
    tg_owner_conf_t o5 = TG_OWNER_CONF_UNSET;
    o5.allow_unpriced = 1;
    o5.resources = "/v1/chat";
    if (tg_policy_set_owner(&f->arena.a, 2, &o2, &err) != 0 || tg_policy_set_owner(&f->arena.a, 5, &o5, &err) != 0 ||
        tg_policy_publish(&f->arena.a, &err) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    tg_admit_ctx_init(&f->ctx, &f->arena.a, "UTC");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    tg_admit_ctx_dispose(&f->ctx);
    tg_test_arena_close(&f->arena);
    free(f);
    return 0;
}

typedef struct call {
    tg_account_settings_t st;
    tg_admit_req_t in;
    uint8_t addr[16];
} call_t;

static void call_init(fixture_t *f, call_t *c, uint32_t slot, const char *model, const char *ip, uint64_t max_tokens)
{
    memset(c, 0, sizeof(*c));
    assert_int_equal(tg_account_read(&f->arena.a, slot, &c->st), 0);
    c->in.slot = slot;
    c->in.acct = &c->st;
    c->in.path = "/v1/chat/completions";
    c->in.path_len = strlen(c->in.path);
    c->in.model = model;
    c->in.model_len = strlen(model);
    c->in.body_len = 300; /* estimated as 100 prompt tokens */
    c->in.max_tokens = max_tokens;
    if (inet_pton(AF_INET, ip, c->addr) == 1)
        c->in.family = AF_INET;
    else if (inet_pton(AF_INET6, ip, c->addr) == 1)
        c->in.family = AF_INET6;
    c->in.addr = c->addr;
}

static int admit(fixture_t *f, uint32_t slot, const char *model, const char *ip, uint64_t max_tokens, tg_admit_t *adm,
                 tg_admit_refusal_t *why)
{
    call_t c;
    call_init(f, &c, slot, model, ip, max_tokens);
    return tg_admit(&f->ctx, &c.in, adm, why);
}

static void finish(fixture_t *f, tg_admit_t *adm, uint64_t prompt, uint64_t completion)
{
    tg_admit_finish(&f->ctx, adm, prompt, completion, 0);
    tg_credit_bill_t b = tg_admit_bill(adm);
    tg_credit_settle(&f->arena.a, &b.hold, b.cost, b.month, b.soft_limit);
}

static void test_root_and_prices(void **state)
{
    fixture_t *f = *state;
    tg_admit_t adm;
    tg_admit_refusal_t why;
    assert_int_equal(admit(f, ROOT, "gpt-4o-mini", "127.0.0.1", 200, &adm, &why), 0);
    assert_string_equal(adm.model, "gpt-4o-mini");
    assert_false(adm.mapped);
    assert_int_equal(adm.level, 1);
    assert_true(adm.est_tokens == 300);
    assert_true(adm.est_cost == 100 * 150 + 200 * 600); /* nano-dollars */
    assert_true(adm.req_view.limit == 0 && adm.tok_view.limit == 0); /* no limit applies */
    int64_t cost = tg_admit_finish(&f->ctx, &adm, 1000, 500, 0);
    assert_true(cost == 450000);
    assert_true(tg_admit_finish(&f->ctx, &adm, 1, 1, 0) == 450000); /* idempotent */
    tg_credit_bill_t b = tg_admit_bill(&adm);
    tg_credit_settle(&f->arena.a, &b.hold, b.cost, b.month, b.soft_limit);
    assert_true(atomic_load(&f->arena.a.accounts[ROOT].spent) == 450000);
    assert_true(atomic_load(&f->arena.a.accounts[ROOT].reserved) == 0);

    assert_int_equal(admit(f, ROOT, "llama-3-70b", "127.0.0.1", 0, &adm, &why), -1);
    assert_int_equal(why.status, 400);
    assert_string_equal(why.code, "model_not_priced");
    /* a request naming no model (an endpoint where it is optional) is billed 0 */
    assert_int_equal(admit(f, ROOT, "", "127.0.0.1", 0, &adm, &why), 0);
    assert_false(adm.priced);
    finish(f, &adm, 10, 0);
    assert_true(adm.cost == 0);

    char d[32];
    tg_admit_dollars(d, 1234);
    assert_string_equal(d, "0.000001234");
    tg_admit_dollars(d, 12 * USD + 5);
    assert_string_equal(d, "12.000000005");
    tg_admit_dollars(d, -1234);
    assert_string_equal(d, "-0.000001234");
    tg_admit_dollars(d, INT64_MIN);
    assert_string_equal(d, "-9223372036.854775808");
}

static void test_lists_and_mapping(void **state)
{
    fixture_t *f = *state;
    tg_admit_t adm;
    tg_admit_refusal_t why;
    assert_int_equal(admit(f, CHILD, "gpt-4o-mini", "11.0.0.1", 0, &adm, &why), -1);
    assert_int_equal(why.status, 403);
    assert_string_equal(why.code, "ip_not_allowed");
    assert_int_equal(admit(f, CHILD, "claude-3-5-haiku-latest", "10.1.1.1", 0, &adm, &why), -1);
    assert_string_equal(why.code, "model_not_allowed");
    /* ModelMapper: "fast" is gpt-4o-mini, billed at Rates 2 */
    assert_int_equal(admit(f, CHILD, "fast", "::1", 100, &adm, &why), 0);
    assert_string_equal(adm.model, "gpt-4o-mini");
    assert_true(adm.mapped && adm.model_len == 11);
    assert_true(adm.est_cost == 2 * (100 * 150 + 100 * 600));
    assert_true(atomic_load(&f->arena.a.accounts[CHILD].reserved) == adm.est_cost);
    assert_true(adm.req_view.limit == 3 && adm.req_view.remaining == 2); /* the tightest: ModelLimits rpm 3 */
    finish(f, &adm, 50, 50);
    assert_true(adm.cost == 2 * (50 * 150 + 50 * 600));
    assert_true(atomic_load(&f->arena.a.accounts[CHILD].reserved) == 0);
    assert_true(atomic_load(&f->arena.a.accounts[CHILD].spent) == adm.cost);
    /* the owner's PRICES serve the owner's accounts */
    assert_int_equal(admit(f, CHILD, "house", "10.0.0.1", 10, &adm, &why), 0);
    assert_true(adm.priced && adm.price.input == 1000000);
    finish(f, &adm, 0, 0);
    /* Resources of the owner (FREE_OWNER allows /v1/chat only) and ALLOW_UNPRICED */
    call_t c;
    call_init(f, &c, FREE_CHILD, "anything-goes", "10.0.0.1", 0);
    assert_int_equal(tg_admit(&f->ctx, &c.in, &adm, &why), 0);
    assert_false(adm.priced);
    finish(f, &adm, 100, 100);
    assert_true(adm.cost == 0);
    c.in.path = "/v1/embeddings";
    c.in.path_len = strlen(c.in.path);
    assert_int_equal(tg_admit(&f->ctx, &c.in, &adm, &why), -1);
    assert_string_equal(why.code, "path_not_allowed");
}

static uint64_t tat(fixture_t *f, uint32_t slot, int which)
{
    return atomic_load(&f->arena.a.accounts[slot].tat[which]);
}

/* A request refused by a later limit gives back what the earlier ones took. */
static void test_limits_roll_back(void **state)
{
    fixture_t *f = *state;
    tg_admit_t adm;
    tg_admit_refusal_t why;
    for (int i = 0; i < 3; i++) { /* ModelLimits gpt-4o*: rpm 3 */
        assert_int_equal(admit(f, CHILD, "gpt-4o", "10.0.0.1", 10, &adm, &why), 0);
        finish(f, &adm, 10, 10);
    }
    uint64_t own = tat(f, CHILD, TG_TAT_RPM), parent = tat(f, OWNER, TG_TAT_RPM), tok = tat(f, CHILD, TG_TAT_TPM);
    assert_int_equal(admit(f, CHILD, "gpt-4o", "10.0.0.1", 10, &adm, &why), -1);
    assert_int_equal(why.status, 429);
    assert_string_equal(why.code, "rate_limit_exceeded");
    assert_true(why.retry_after_s >= 1 && why.retry_after_s <= 20);
    assert_true(why.view.limit == 3 && why.view.remaining == 0);
    assert_true(tat(f, CHILD, TG_TAT_RPM) == own && tat(f, OWNER, TG_TAT_RPM) == parent);
    assert_true(tat(f, CHILD, TG_TAT_TPM) <= tok); /* the token take was given back too */
    assert_true(atomic_load(&f->arena.a.accounts[CHILD].reserved) == 0);
    /* another model: the parent's RPM 5 for its whole subtree stops the 6th */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(admit(f, CHILD, "o3-mini", "10.0.0.1", 10, &adm, &why), 0);
        finish(f, &adm, 10, 10);
    }
    own = tat(f, CHILD, TG_TAT_RPM);
    assert_int_equal(admit(f, CHILD, "o3-mini", "10.0.0.1", 10, &adm, &why), -1);
    assert_int_equal(why.status, 429);
    assert_non_null(strstr(why.message, "parent"));
    assert_true(tat(f, CHILD, TG_TAT_RPM) == own); /* its own RPM take was undone */
    /* the parent itself is limited by its own RPM as well */
    assert_int_equal(admit(f, OWNER, "o3-mini", "10.0.0.1", 10, &adm, &why), -1);
}

static void test_credit_gates(void **state)
{
    fixture_t *f = *state;
    tg_admit_t adm;
    tg_admit_refusal_t why;
    atomic_store(&f->arena.a.accounts[POOR].balance, USD / 2);
    assert_int_equal(admit(f, POOR, "gpt-4o-mini", "10.0.0.1", 10, &adm, &why), -1);
    assert_int_equal(why.status, 429);
    assert_string_equal(why.code, "insufficient_quota");
    atomic_store(&f->arena.a.accounts[POOR].balance, USD + USD / 2);
    /* an estimate above the balance ($0.60 per M output tokens x 10M = $6) */
    assert_int_equal(admit(f, POOR, "gpt-4o-mini", "10.0.0.1", 10000000, &adm, &why), -1);
    assert_string_equal(why.code, "insufficient_quota");
    assert_int_equal(admit(f, POOR, "gpt-4o-mini", "10.0.0.1", 1000, &adm, &why), 0);
    finish(f, &adm, 100, 100);
    /* HardLimit reached this month */
    tg_account_settings_t st;
    assert_int_equal(tg_account_read(&f->arena.a, POOR, &st), 0);
    st.hard_limit = 1000;
    assert_int_equal(tg_account_publish(&f->arena.a, POOR, &st), 0);
    assert_int_equal(admit(f, POOR, "gpt-4o-mini", "10.0.0.1", 1000, &adm, &why), -1);
    assert_non_null(strstr(why.message, "HardLimit"));
    /* a disabled policy (lists that would not compile) refuses */
    st.hard_limit = 0;
    st.src.allow_ips = "nonsense";
    assert_int_equal(tg_account_publish(&f->arena.a, POOR, &st), 0);
    assert_int_equal(admit(f, POOR, "gpt-4o-mini", "10.0.0.1", 1000, &adm, &why), -1);
    assert_int_equal(why.status, 403);
}

/* Token limits are charged by estimate and corrected to the real usage. */
static void test_token_correction(void **state)
{
    fixture_t *f = *state;
    tg_admit_t adm;
    tg_admit_refusal_t why;
    tg_rl_view_t v;
    assert_int_equal(admit(f, CHILD, "o3-mini", "10.0.0.1", 100000, &adm, &why), 0);
    assert_true(adm.est_tokens == 100100);
    assert_true(adm.tok_view.limit == 1000000 && adm.tok_view.remaining == 1000000 - 100100);
    tg_admit_finish(&f->ctx, &adm, 60, 40, 0);
    tg_gcra_view(&f->arena.a.accounts[CHILD].tat[TG_TAT_TPM], tg_mono_ns(), TG_NS_PER_MIN, 1000000, &v);
    assert_true(v.remaining >= 1000000 - 101); /* 100 real tokens left charged (and time has passed) */
    tg_credit_bill_t b = tg_admit_bill(&adm);
    tg_credit_settle(&f->arena.a, &b.hold, b.cost, b.month, b.soft_limit);
    /* the owner's MODEL_LIMITS o3-mini rpd 1000 counts the request, per day */
    const uint8_t *sec = tg_policy_owner_section(&f->ctx.policy, 2);
    const tg_mlimit_t *ml = tg_psec_model_limit(sec, "o3-mini", 7);
    assert_non_null(ml);
    assert_true(tg_day_count(&f->arena.a.mlim[ml->state].day[TG_DAY_RPD], f->ctx.cal.day) == 1);
}

/* MODEL_FAILOVER: the chain is followed past backups the caller may not use or that have no
 * price; the backup's level and price replace the request's; seen models end the chain. */
static void test_model_failover(void **state)
{
    fixture_t *f = *state;
    char *err = NULL;
    tg_owner_conf_t o2 = TG_OWNER_CONF_UNSET;
    o2.prices = "{\"house-model\":{\"input\":1,\"output\":2},\"gpt-5-secret\":{\"input\":9,\"output\":9}}";
    o2.level_mapper = "house-model=7";
    o2.model_failover = "gpt-4o-mini=llama-x, llama-x=house-model, house-model=gpt-4o-mini, o3-mini=gpt-5-secret, "
                        "gpt-5-secret=gpt-4o";
    if (tg_policy_set_owner(&f->arena.a, 2, &o2, &err) != 0 || tg_policy_publish(&f->arena.a, &err) != 0)
        fail_msg("%s", err);
    tg_admit_t adm;
    tg_admit_refusal_t why;
    int32_t level = 0;
    assert_int_equal(admit(f, CHILD, "gpt-4o-mini", "10.1.2.3", 100, &adm, &why), 0);
    const char *seen[2] = {"gpt-4o-mini", NULL};
    /* llama-x has no price (and CHILD may not use it): its own backup, house-model, at level 7 */
    assert_int_equal(tg_admit_failover(&f->ctx, 2, CHILD, 1, &adm, seen, 1, &level), 0);
    assert_string_equal(adm.model, "house-model");
    assert_true(adm.mapped && adm.priced);
    assert_true(adm.price.input == 1000000 && adm.price.output == 2000000);
    assert_int_equal(level, 7);
    /* house-model's backup is gpt-4o-mini, already tried: the chain ends */
    seen[1] = "house-model";
    assert_int_equal(tg_admit_failover(&f->ctx, 2, CHILD, 1, &adm, seen, 2, &level), -1);
    finish(f, &adm, 10, 10);
    assert_true(adm.cost == (10 * 1000000 + 10 * 2000000) * 2 / 1000); /* Rates 2, pico to nano */

    /* gpt-5-secret is priced but outside CHILD's AllowModels: passed over for gpt-4o (level 1) */
    assert_int_equal(admit(f, CHILD, "o3-mini", "10.1.2.3", 100, &adm, &why), 0);
    assert_int_equal(tg_admit_failover(&f->ctx, 2, CHILD, 1, &adm, NULL, 0, &level), 0);
    assert_string_equal(adm.model, "gpt-4o");
    assert_int_equal(level, 1);
    finish(f, &adm, 0, 0);
    /* an owner without MODEL_FAILOVER has no backup */
    assert_int_equal(admit(f, FREE_CHILD, "gpt-4o-mini", "127.0.0.1", 100, &adm, &why), 0);
    assert_int_equal(tg_admit_failover(&f->ctx, 5, FREE_CHILD, 1, &adm, NULL, 0, &level), -1);
    finish(f, &adm, 0, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_root_and_prices, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lists_and_mapping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits_roll_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_credit_gates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_correction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_model_failover, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
