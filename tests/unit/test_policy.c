/* tests/unit/test_policy.c: account policy blobs in the policy heap (compile, publish, read,
 * de-duplication, ModelLimits states, failure closed, writer rebuild), the owner-level snapshot
 * (defaults, owners, prices, swap while other processes read) and the price table (shm/policy.c). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/keyhash.h"
#include "shm/accounts.h"
#include "shm/arena.h"
#include "shm/matcher.h"
#include "shm/policy.h"

#include "arena_fixture.h"

typedef tg_test_arena_t fixture_t; /* tests/unit/arena_fixture.h */

static int setup_n(void **state, uint32_t accounts)
{
    return tg_test_arena_setup(state, "policy", (tg_arena_sizes_t){accounts, 8, 1024});
}

static int setup(void **state)
{
    return setup_n(state, 64);
}

static int setup_big(void **state)
{
    return setup_n(state, 1024);
}

static void settings(tg_account_settings_t *st, uint64_t id)
{
    memset(st, 0, sizeof(*st));
    st->id = id;
    st->owner_id = 1;
    st->level = 1;
    st->flags = TG_ACCT_ENABLED;
    char key[32];
    snprintf(key, sizeof(key), "sk-Xvs-policy-%llu", (unsigned long long)id);
    tg_key_hash(key, strlen(key), st->key_hash);
    snprintf(st->name, sizeof(st->name), "acct%llu", (unsigned long long)id);
}

/* Reads slot SLOT's blob into BUF; returns its length (0: none). */
static int blob_of(tg_arena_t *a, uint32_t slot, uint8_t *buf, size_t cap, tg_account_settings_t *out)
{
    for (;;) {
        assert_int_equal(tg_account_read(a, slot, out), 0);
        int n = tg_policy_blob_copy(a, &out->policy, buf, cap);
        if (n != -1)
            return n;
    }
}

static int ip_ok(const uint8_t *sec, const char *ip)
{
    uint8_t addr[16];
    if (inet_pton(AF_INET, ip, addr) == 1)
        return tg_psec_ip_allowed(sec, AF_INET, addr);
    assert_int_equal(inet_pton(AF_INET6, ip, addr), 1);
    return tg_psec_ip_allowed(sec, AF_INET6, addr);
}

static void test_account_blob(void **state)
{
    fixture_t *f = *state;
    tg_account_settings_t st, out;
    settings(&st, 10);
    json_t *ml = json_pack("{s:{s:i, s:i}}", "gpt-4o*", "rpm", 5, "tpm", 1000);
    st.src = (tg_account_src_t){"10.0.0.0/8, 2001:db8::/32", "gpt-4o*, claude-*", "/v1/chat, /v1/messages",
                                "gpt4=gpt-4o, fast=gpt-4o-mini", "gpt-4o*=2", ml};
    assert_int_equal(tg_account_publish(&f->a, 3, &st), 0);
    json_decref(ml);
    uint8_t buf[4096];
    int n = blob_of(&f->a, 3, buf, sizeof(buf), &out);
    assert_true(n > 0);
    assert_true(out.flags & TG_ACCT_POLICY);
    assert_false(out.flags & TG_ACCT_POLICY_BAD);
    assert_true(ip_ok(buf, "10.1.2.3") && ip_ok(buf, "2001:db8::5"));
    assert_false(ip_ok(buf, "11.1.2.3") || ip_ok(buf, "::1"));
    assert_true(tg_psec_model_allowed(buf, "gpt-4o-mini", 11) && tg_psec_model_allowed(buf, "claude-3-5-haiku", 16));
    assert_false(tg_psec_model_allowed(buf, "o3-mini", 7));
    assert_true(tg_psec_path_allowed(buf, "/v1/chat/completions", 20) && tg_psec_path_allowed(buf, "/v1/messages", 12));
    assert_false(tg_psec_path_allowed(buf, "/v1/embeddings", 14));
    const char *dst;
    size_t dn;
    assert_true(tg_psec_map_model(buf, "fast", 4, &dst, &dn));
    assert_true(dn == 11 && memcmp(dst, "gpt-4o-mini", 11) == 0);
    assert_false(tg_psec_map_model(buf, "gpt-4o", 6, &dst, &dn));
    int32_t level = 0;
    assert_true(tg_psec_map_level(buf, "gpt-4o-mini", 11, &level) && level == 2);
    const tg_mlimit_t *m = tg_psec_model_limit(buf, "gpt-4o-2024-08-06", 17);
    assert_non_null(m);
    assert_true(m->lim[TG_ML_RPM] == 5 && m->lim[TG_ML_TPM] == 1000 && m->lim[TG_ML_RPD] == 0);
    assert_true(m->state < f->a.hdr->mlim_slots);
    assert_null(tg_psec_model_limit(buf, "claude-3", 8));

    /* every list unrestricted: no blob at all */
    settings(&st, 11);
    st.src = (tg_account_src_t){"", "*", NULL, NULL, NULL, NULL};
    assert_int_equal(tg_account_publish(&f->a, 4, &st), 0);
    assert_int_equal(blob_of(&f->a, 4, buf, sizeof(buf), &out), 0);
    assert_false(out.flags & TG_ACCT_POLICY);

    /* "-*": AllowIPs loopback only, AllowModels nothing */
    settings(&st, 12);
    st.src = (tg_account_src_t){"-*", "-*", NULL, NULL, NULL, NULL};
    assert_int_equal(tg_account_publish(&f->a, 5, &st), 0);
    assert_true(blob_of(&f->a, 5, buf, sizeof(buf), &out) > 0);
    assert_true(ip_ok(buf, "127.0.0.1") && ip_ok(buf, "::1"));
    assert_false(ip_ok(buf, "10.0.0.1"));
    assert_false(tg_psec_model_allowed(buf, "gpt-4o", 6));
}

static void test_dedupe_and_free(void **state)
{
    fixture_t *f = *state;
    tg_account_settings_t st, out1, out2;
    uint8_t buf[4096];
    tg_account_src_t same = {"192.168.0.0/16", "gpt-4o*", NULL, "a=b", NULL, NULL};
    settings(&st, 20);
    st.src = same;
    assert_int_equal(tg_account_publish(&f->a, 1, &st), 0);
    settings(&st, 21);
    st.src = same;
    assert_int_equal(tg_account_publish(&f->a, 2, &st), 0);
    blob_of(&f->a, 1, buf, sizeof(buf), &out1);
    blob_of(&f->a, 2, buf, sizeof(buf), &out2);
    assert_true(out1.policy.gen == out2.policy.gen && out1.policy.off16 == out2.policy.off16); /* stored once */
    uint64_t top = atomic_load(&f->a.hdr->heap_top);

    /* republishing the same lists changes nothing */
    settings(&st, 21);
    st.src = same;
    assert_int_equal(tg_account_publish(&f->a, 2, &st), 0);
    blob_of(&f->a, 2, buf, sizeof(buf), &out2);
    assert_true(out1.policy.gen == out2.policy.gen);
    assert_true(atomic_load(&f->a.hdr->heap_top) == top);

    /* one of them changes: the other keeps the shared blob */
    settings(&st, 21);
    st.src = (tg_account_src_t){"192.168.0.0/16", "claude-*", NULL, "a=b", NULL, NULL};
    assert_int_equal(tg_account_publish(&f->a, 2, &st), 0);
    blob_of(&f->a, 2, buf, sizeof(buf), &out2);
    assert_true(out2.policy.gen != out1.policy.gen);
    assert_true(blob_of(&f->a, 1, buf, sizeof(buf), &out1) > 0);
    assert_true(tg_psec_model_allowed(buf, "gpt-4o", 6));

    /* the last reference goes: the block is free and its gen is void */
    tg_policy_ref_t gone = out1.policy;
    tg_account_unpublish(&f->a, 1);
    assert_int_equal(tg_policy_blob_copy(&f->a, &gone, buf, sizeof(buf)), -1);
    /* and it is reused for the next blob of that size */
    settings(&st, 22);
    st.src = (tg_account_src_t){"192.168.0.0/16", "gpt-4o*", NULL, "a=c", NULL, NULL};
    assert_int_equal(tg_account_publish(&f->a, 3, &st), 0);
    tg_account_settings_t out3;
    blob_of(&f->a, 3, buf, sizeof(buf), &out3);
    assert_true(out3.policy.off16 == gone.off16 && out3.policy.gen != gone.gen);
}

static uint32_t state_of(tg_arena_t *a, uint32_t slot, const char *model)
{
    uint8_t buf[4096];
    tg_account_settings_t out;
    assert_true(blob_of(a, slot, buf, sizeof(buf), &out) > 0);
    const tg_mlimit_t *m = tg_psec_model_limit(buf, model, strlen(model));
    return m ? m->state : TG_MLIM_NONE;
}

/* A ModelLimits entry keeps its limiter state while its pattern stays. */
static void test_model_limit_states(void **state)
{
    fixture_t *f = *state;
    tg_account_settings_t st;
    json_t *ml = json_pack("{s:{s:i}}", "m1", "rpm", 5);
    settings(&st, 30);
    st.src.model_limits = ml;
    assert_int_equal(tg_account_publish(&f->a, 7, &st), 0);
    uint32_t s1 = state_of(&f->a, 7, "m1");
    assert_true(s1 != TG_MLIM_NONE);
    atomic_store(&f->a.mlim[s1].tat[TG_TAT_RPM], 12345);
    json_object_set_new(ml, "m2", json_pack("{s:i}", "tpd", 9));
    json_object_set_new(json_object_get(ml, "m1"), "rpm", json_integer(6));
    assert_int_equal(tg_account_publish(&f->a, 7, &st), 0);
    assert_true(state_of(&f->a, 7, "m1") == s1); /* same pattern: same state, charges kept */
    assert_true(atomic_load(&f->a.mlim[s1].tat[TG_TAT_RPM]) == 12345);
    uint32_t s2 = state_of(&f->a, 7, "m2");
    assert_true(s2 != s1 && s2 != TG_MLIM_NONE);
    /* another account gets its own states for the same patterns */
    settings(&st, 31);
    st.src.model_limits = ml;
    assert_int_equal(tg_account_publish(&f->a, 8, &st), 0);
    assert_true(state_of(&f->a, 8, "m1") != s1);
    /* m1 goes away: its state returns to the pool */
    json_object_del(ml, "m1");
    settings(&st, 30);
    st.src.model_limits = ml;
    assert_int_equal(tg_account_publish(&f->a, 7, &st), 0);
    assert_true(state_of(&f->a, 7, "m1") == TG_MLIM_NONE);
    assert_true(state_of(&f->a, 7, "m2") == s2);
    json_decref(ml);
}

/* Lists that cannot be compiled never let calls through unrestricted. */
static void test_bad_lists_fail_closed(void **state)
{
    fixture_t *f = *state;
    tg_account_settings_t st, out;
    settings(&st, 40);
    st.src.allow_ips = "10.0.0.0/8, not-an-address";
    assert_int_equal(tg_account_publish(&f->a, 9, &st), 0);
    assert_int_equal(tg_account_read(&f->a, 9, &out), 0);
    assert_true(out.flags & TG_ACCT_POLICY_BAD);
    char *err = NULL;
    assert_int_equal(tg_policy_account_check(&st.src, &err), -1);
    assert_non_null(strstr(err, "AllowIPs"));
    free(err);
    tg_account_src_t ok = {NULL, NULL, "chat", NULL, NULL, NULL};
    assert_int_equal(tg_policy_account_check(&ok, &err), -1); /* a resource must be a path */
    free(err);
    json_t *ml = json_pack("{s:{s:i}}", "m", "rpz", 1);
    tg_account_src_t bad_ml = {NULL, NULL, NULL, NULL, NULL, ml};
    assert_int_equal(tg_policy_account_check(&bad_ml, &err), -1);
    assert_non_null(strstr(err, "rpz"));
    free(err);
    json_decref(ml);
    tg_account_src_t bad_lm = {NULL, NULL, NULL, NULL, "gpt*=two", NULL};
    assert_int_equal(tg_policy_account_check(&bad_lm, &err), -1);
    free(err);
    /* fixed, it is published normally */
    st.src.allow_ips = "10.0.0.0/8";
    assert_int_equal(tg_account_publish(&f->a, 9, &st), 0);
    assert_int_equal(tg_account_read(&f->a, 9, &out), 0);
    assert_false(out.flags & TG_ACCT_POLICY_BAD);
    assert_true(out.flags & TG_ACCT_POLICY);
}

/* A heap that fills up refuses further blobs (those accounts are refused, never unrestricted). */
static void test_heap_full(void **state)
{
    fixture_t *f = *state;
    size_t cap = 40000;
    char *list = malloc(cap);
    tg_account_settings_t st, out;
    int bad = 0, good = 0;
    for (uint32_t slot = 0; slot < 700; slot++) {
        size_t n = 0;
        for (int i = 0; i < 2500; i++) /* about 20 KiB compiled: 32 KiB blocks */
            n += (size_t)snprintf(list + n, cap - n, "%u.%u.%u.%u,", 10 + slot / 250, slot % 250, i / 250, i % 250);
        settings(&st, 100 + slot);
        st.src.allow_ips = list;
        assert_int_equal(tg_account_publish(&f->a, slot, &st), 0);
        assert_int_equal(tg_account_read(&f->a, slot, &out), 0);
        if (out.flags & TG_ACCT_POLICY_BAD)
            bad++;
        else
            good++;
    }
    if (!(bad > 0 && good > 400))
        fail_msg("%d accounts got a blob, %d did not", good, bad);
    assert_true(atomic_load(&f->a.hdr->heap_top) <= f->a.hdr->heap_bytes);
    /* freeing some makes room again */
    for (uint32_t slot = 0; slot < 50; slot++)
        tg_account_unpublish(&f->a, slot);
    settings(&st, 5000);
    st.src.allow_ips = list;
    assert_int_equal(tg_account_publish(&f->a, 0, &st), 0);
    assert_int_equal(tg_account_read(&f->a, 0, &out), 0);
    assert_false(out.flags & TG_ACCT_POLICY_BAD);
    free(list);
}

/* A new persister (a fresh writer) finds what the arena holds: no overlap, de-duplication and
 * ModelLimits states carry on. */
static void test_writer_rebuild(void **state)
{
    fixture_t *f = *state;
    tg_account_settings_t st, out;
    uint8_t buf[4096];
    json_t *ml = json_pack("{s:{s:i}}", "m", "rpm", 3);
    for (uint32_t i = 0; i < 10; i++) {
        char ips[32];
        snprintf(ips, sizeof(ips), "10.0.%u.0/24", i);
        settings(&st, 50 + i);
        st.src.allow_ips = ips;
        st.src.model_limits = i == 0 ? ml : NULL;
        assert_int_equal(tg_account_publish(&f->a, i, &st), 0);
    }
    uint32_t s0 = state_of(&f->a, 0, "m");
    tg_account_unpublish(&f->a, 5); /* a hole */
    int created = -1;
    assert_int_equal(tg_test_arena_reopen(f, &created), 0);
    assert_int_equal(created, 0);
    /* same lists as slot 3: found, not stored again */
    tg_account_settings_t o3;
    blob_of(&f->a, 3, buf, sizeof(buf), &o3);
    settings(&st, 70);
    st.src.allow_ips = "10.0.3.0/24";
    assert_int_equal(tg_account_publish(&f->a, 20, &st), 0);
    blob_of(&f->a, 20, buf, sizeof(buf), &out);
    assert_true(out.policy.gen == o3.policy.gen);
    /* new blobs do not overwrite old ones */
    for (uint32_t i = 0; i < 10; i++) {
        char ips[32];
        snprintf(ips, sizeof(ips), "172.16.%u.0/24", i);
        settings(&st, 80 + i);
        st.src.allow_ips = ips;
        assert_int_equal(tg_account_publish(&f->a, 30 + i, &st), 0);
    }
    for (uint32_t i = 0; i < 10; i++) {
        if (i == 5)
            continue;
        assert_true(blob_of(&f->a, i, buf, sizeof(buf), &out) > 0);
        char ip[32];
        snprintf(ip, sizeof(ip), "10.0.%u.9", i);
        assert_true(ip_ok(buf, ip));
    }
    /* slot 0 republished with its ModelLimits: the same state */
    settings(&st, 50);
    st.src.allow_ips = "10.0.0.0/24";
    st.src.model_limits = ml;
    assert_int_equal(tg_account_publish(&f->a, 0, &st), 0);
    assert_true(state_of(&f->a, 0, "m") == s0);
    json_decref(ml);
}

static void test_snapshot(void **state)
{
    fixture_t *f = *state;
    tg_policy_view_t v = {0};
    assert_int_equal(tg_policy_view_refresh(&v, &f->a), 0);
    assert_null(tg_policy_owner_section(&v, 1)); /* nothing published yet */
    char *err = NULL;
    tg_owner_conf_t def = TG_OWNER_CONF_UNSET;
    def.model_mapper = "old-*=gpt-4o";
    assert_int_equal(tg_policy_set_defaults(&f->a, NULL, 0, &def, &err), 0);
    tg_owner_conf_t o7 = TG_OWNER_CONF_UNSET;
    o7.model_mapper = "gpt4=gpt-4o";
    o7.level_mapper = "gpt-4o*=3";
    o7.switch_over = "1=2, 2=3, 3=1";
    o7.resources = "/v1/chat";
    o7.model_limits = "{\"gpt-4o*\":{\"rpm\":100}}";
    o7.prices = "{\"gpt-4o\":{\"input\":5,\"output\":20}, \"house-model\":{\"input\":1,\"output\":2,\"cached\":0.5}}";
    o7.allow_unpriced = 1;
    o7.min_balance = 5000000000ll;
    o7.default_completion_tokens = 100;
    assert_int_equal(tg_policy_set_owner(&f->a, 7, &o7, &err), 0);
    tg_owner_conf_t bad = TG_OWNER_CONF_UNSET;
    bad.prices = "{\"x\":{\"input\":\"cheap\"}}";
    assert_int_equal(tg_policy_set_owner(&f->a, 8, &bad, &err), -1);
    assert_non_null(strstr(err, "PRICES"));
    free(err);
    err = NULL;
    assert_int_equal(tg_policy_publish(&f->a, &err), 0);
    assert_int_equal(tg_policy_view_refresh(&v, &f->a), 1);
    assert_int_equal(tg_policy_view_refresh(&v, &f->a), 0);

    const uint8_t *d = tg_policy_defaults_section(&v), *s7 = tg_policy_owner_section(&v, 7);
    assert_true(d && s7 && d != s7);
    assert_true(tg_policy_owner_section(&v, 9) == d); /* no config of its own */
    const char *dst;
    size_t dn;
    assert_true(tg_psec_map_model(d, "old-x", 5, &dst, &dn) && dn == 6);
    assert_false(tg_psec_map_model(d, "gpt4", 4, &dst, &dn));
    assert_true(tg_psec_map_model(s7, "gpt4", 4, &dst, &dn) && dn == 6 && memcmp(dst, "gpt-4o", 6) == 0);
    assert_false(tg_psec_map_model(s7, "old-x", 5, &dst, &dn)); /* the owner's mapper replaces the default */
    int32_t lvl;
    assert_true(tg_psec_map_level(s7, "gpt-4o-mini", 11, &lvl) && lvl == 3);
    assert_int_equal(tg_psec_switch_over(s7, 2), 3);
    assert_int_equal(tg_psec_switch_over(s7, 3), 1);
    assert_int_equal(tg_psec_switch_over(s7, 4), 0);
    assert_true(tg_psec_path_allowed(s7, "/v1/chat/completions", 20) && !tg_psec_path_allowed(s7, "/v1/embeddings", 14));
    assert_true(tg_psec_path_allowed(d, "/v1/embeddings", 14));
    /* prices: the owner's entries, then the defaults' */
    const tg_price_t *p = tg_psec_price(s7, "gpt-4o", 6);
    assert_true(p && p->input == 5000000 && p->output == 20000000 && p->cached == 5000000);
    assert_true((p = tg_psec_price(s7, "house-model", 11)) && p->cached == 500000);
    assert_null(tg_psec_price(s7, "gpt-4o-mini", 11));
    assert_true((p = tg_psec_price(d, "gpt-4o-mini", 11)) && p->input == 150000 && p->output == 600000 && p->cached == 75000);
    assert_true((p = tg_psec_price(d, "gpt-4o-mini-2024-07-18", 22)) && p->input == 150000);
    assert_true((p = tg_psec_price(d, "claude-3-5-sonnet-20241022", 26)) && p->output == 15000000);
    assert_null(tg_psec_price(d, "llama-3", 7));
    assert_true(tg_psec(s7)->flags & TG_PSEC_ALLOW_UNPRICED);
    assert_false(tg_psec(d)->flags & TG_PSEC_ALLOW_UNPRICED);
    assert_true(tg_psec(s7)->min_balance == 5000000000ll && tg_psec(d)->min_balance == TG_DEFAULT_MIN_BALANCE);
    assert_true(tg_psec(s7)->default_completion_tokens == 100 && tg_psec(d)->default_completion_tokens == 4096);
    const tg_mlimit_t *m = tg_psec_model_limit(s7, "gpt-4o", 6);
    assert_true(m && m->lim[TG_ML_RPM] == 100 && m->state != TG_MLIM_NONE);
    uint32_t st7 = m->state;

    /* republishing keeps the owner's MODEL_LIMITS state; removing the owner falls back to defaults */
    o7.model_mapper = "gpt4=gpt-4o-mini";
    assert_int_equal(tg_policy_set_owner(&f->a, 7, &o7, &err), 0);
    assert_int_equal(tg_policy_publish(&f->a, &err), 0);
    assert_int_equal(tg_policy_view_refresh(&v, &f->a), 1);
    s7 = tg_policy_owner_section(&v, 7);
    assert_true(tg_psec_map_model(s7, "gpt4", 4, &dst, &dn) && dn == 11);
    assert_true(tg_psec_model_limit(s7, "gpt-4o", 6)->state == st7);
    assert_int_equal(tg_policy_set_owner(&f->a, 7, NULL, &err), 0);
    assert_int_equal(tg_policy_publish(&f->a, &err), 0);
    assert_int_equal(tg_policy_view_refresh(&v, &f->a), 1);
    assert_true(tg_policy_owner_section(&v, 7) == tg_policy_defaults_section(&v));
    tg_policy_view_dispose(&v);
}

static int parse_gen(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 1; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

/* Snapshots swapped while another process reads: it always sees one generation whole. */
static void test_snapshot_swap_while_reading(void **state)
{
    fixture_t *f = *state;
    char *err = NULL, mm[64], lm[64];
    tg_owner_conf_t c = TG_OWNER_CONF_UNSET;
    snprintf(mm, sizeof(mm), "m=v1");
    snprintf(lm, sizeof(lm), "m=1");
    c.model_mapper = mm;
    c.level_mapper = lm;
    assert_int_equal(tg_policy_set_owner(&f->a, 7, &c, &err), 0);
    assert_int_equal(tg_policy_publish(&f->a, &err), 0);
    int fds[2];
    pid_t pid;
    assert_int_equal(pipe(fds), 0);
    int go[2];
    assert_int_equal(pipe(go), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        close(go[0]);
        tg_policy_view_t v = {0};
        int seen = 0, last = 0, bad = 0;
        if (write(go[1], "x", 1) != 1)
            _exit(2);
        for (long i = 0; i < 50000000 && last < 300; i++) {
            if (tg_policy_view_refresh(&v, &f->a) != 1)
                continue;
            const uint8_t *s = tg_policy_owner_section(&v, 7);
            const char *dst;
            size_t dn;
            int32_t lvl = 0;
            if (!tg_psec_map_model(s, "m", 1, &dst, &dn) || !tg_psec_map_level(s, "m", 1, &lvl) || parse_gen(dst, dn) != lvl ||
                lvl < last)
                bad++;
            last = lvl;
            seen++;
        }
        int msg[2] = {seen, bad};
        if (write(fds[1], msg, sizeof(msg)) != sizeof(msg))
            _exit(2);
        _exit(0);
    }
    close(fds[1]);
    close(go[1]);
    char x;
    assert_int_equal(read(go[0], &x, 1), 1);
    close(go[0]);
    for (int g = 2; g <= 300; g++) {
        snprintf(mm, sizeof(mm), "m=v%d", g);
        snprintf(lm, sizeof(lm), "m=%d", g);
        assert_int_equal(tg_policy_set_owner(&f->a, 7, &c, &err), 0);
        assert_int_equal(tg_policy_publish(&f->a, &err), 0);
        if (g % 4 == 0)
            usleep(100);
    }
    int msg[2] = {0, 0};
    assert_int_equal(read(fds[0], msg, sizeof(msg)), (ssize_t)sizeof(msg));
    close(fds[0]);
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(msg[1], 0);
    assert_true(msg[0] >= 2);
}

/* An account's blob replaced while another process reads it: old or new, never a mix. */
static void test_blob_swap_while_reading(void **state)
{
    fixture_t *f = *state;
    tg_account_settings_t st;
    char mm[64], lm[64];
    settings(&st, 90);
    snprintf(mm, sizeof(mm), "m=v1");
    snprintf(lm, sizeof(lm), "m=1");
    st.src.model_mapper = mm;
    st.src.level_mapper = lm;
    assert_int_equal(tg_account_publish(&f->a, 2, &st), 0);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        uint8_t buf[4096];
        int seen = 0, bad = 0, last = 0;
        for (int i = 0; i < 300000 && last < 500; i++) {
            tg_account_settings_t out;
            if (tg_account_read(&f->a, 2, &out) != 0) {
                bad++;
                continue;
            }
            if (tg_policy_blob_copy(&f->a, &out.policy, buf, sizeof(buf)) <= 0)
                continue; /* replaced meanwhile: a real reader reads the slot again */
            const char *dst;
            size_t dn;
            int32_t lvl = 0;
            if (!tg_psec_map_model(buf, "m", 1, &dst, &dn) || !tg_psec_map_level(buf, "m", 1, &lvl) || parse_gen(dst, dn) != lvl)
                bad++;
            last = lvl;
            seen++;
        }
        int msg[2] = {seen, bad};
        if (write(fds[1], msg, sizeof(msg)) != sizeof(msg))
            _exit(2);
        _exit(0);
    }
    close(fds[1]);
    for (int g = 2; g <= 500; g++) {
        snprintf(mm, sizeof(mm), "m=v%d", g);
        snprintf(lm, sizeof(lm), "m=%d", g);
        assert_int_equal(tg_account_publish(&f->a, 2, &st), 0);
    }
    int msg[2];
    assert_int_equal(read(fds[0], msg, sizeof(msg)), (ssize_t)sizeof(msg));
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(msg[1], 0);
    assert_true(msg[0] > 0);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    char *buf = malloc(1 << 20);
    *len = fread(buf, 1, 1 << 20, fp);
    fclose(fp);
    return buf;
}

static void test_prices_table(void **state)
{
    size_t len;
    const char *builtin = tg_policy_builtin_prices(&len);
    assert_true(len > 100);
    /* the binary carries conf/prices.yaml as it is */
    const char *src = getenv("TG_SOURCE_DIR");
    if (src) {
        char path[512];
        snprintf(path, sizeof(path), "%s/conf/prices.yaml", src);
        size_t flen = 0;
        char *file = slurp(path, &flen);
        assert_non_null(file);
        assert_true(flen == len && memcmp(file, builtin, len) == 0);
        free(file);
    }
    uint32_t dct = 0;
    char *err = NULL;
    json_t *p = tg_prices_yaml_parse(builtin, len, &dct, &err);
    assert_non_null(p);
    assert_int_equal(dct, 4096);
    static const char *const models[] = {"gpt-4o", "gpt-4o-mini", "o3-mini", "claude-3-5-sonnet*", "claude-3-5-haiku*",
                                         "gemini-1.5-pro*", "gemini-1.5-flash*", "deepseek-chat", "deepseek-reasoner"};
    for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++)
        assert_non_null(json_object_get(p, models[i]));
    json_decref(p);

    static const char *const bad[] = {"prices: [1, 2]", "nothing: here", "prices:\n  m: {input: cheap, output: 1}",
                                      "prices:\n  m: {input: -1, output: 1}", "prices:\n  m: {output: 1}",
                                      "prices:\n  m: {input: 1, output: 1, extra: 2}", "default_completion_tokens: 0\nprices: {}",
                                      "prices: {m: {input: 1, output: 1}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err = NULL;
        p = tg_prices_yaml_parse(bad[i], strlen(bad[i]), &dct, &err);
        if (p)
            fail_msg("accepted: %s", bad[i]);
        assert_non_null(err);
        free(err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_account_blob, setup, tg_test_arena_teardown),
        cmocka_unit_test_setup_teardown(test_dedupe_and_free, setup, tg_test_arena_teardown),
        cmocka_unit_test_setup_teardown(test_model_limit_states, setup, tg_test_arena_teardown),
        cmocka_unit_test_setup_teardown(test_bad_lists_fail_closed, setup, tg_test_arena_teardown),
        cmocka_unit_test_setup_teardown(test_heap_full, setup_big, tg_test_arena_teardown),
        cmocka_unit_test_setup_teardown(test_writer_rebuild, setup, tg_test_arena_teardown),
        cmocka_unit_test_setup_teardown(test_snapshot, setup, tg_test_arena_teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_swap_while_reading, setup, tg_test_arena_teardown),
        cmocka_unit_test_setup_teardown(test_blob_swap_while_reading, setup, tg_test_arena_teardown),
        cmocka_unit_test(test_prices_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
