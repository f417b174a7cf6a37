/* Admission of a model call: lists, mapping, price, limits, credit (design in admit.h). */
#include "worker/admit.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/http.h"
#include "common/log.h"
#include "common/put.h"
#include "shm/matcher.h"
#include "worker/worker.h"

#define BLOB_RETRIES 1000 /* a blob replaced this many times in a row: give up (503) */

void tg_admit_ctx_init(tg_admit_ctx_t *c, tg_arena_t *arena, const char *timezone)
{
    memset(c, 0, sizeof(*c));
    c->arena = arena;
    const char *tz = getenv("TZ");
    if (timezone && *timezone && (!tz || strcmp(tz, timezone) != 0)) { /* day boundaries in the configured zone */
        setenv("TZ", timezone, 1);
        tzset();
    }
}

void tg_admit_ctx_dispose(tg_admit_ctx_t *c)
{
    tg_policy_view_dispose(&c->policy);
    for (int i = 0; i <= TG_ADMIT_WALK_MAX; i++)
        free(c->blob[i]);
    memset(c, 0, sizeof(*c));
}

tg_admit_ctx_t *tg_admit_worker(void)
{
    static tg_admit_ctx_t ctx;
    if (ctx.arena != tg_w->arena)
        tg_admit_ctx_init(&ctx, tg_w->arena, tg_w->cfg->timezone);
    return &ctx;
}

static int refuse(tg_admit_refusal_t *why, int status, const char *type, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int refuse(tg_admit_refusal_t *why, int status, const char *type, const char *code, const char *fmt, ...)
{
    memset(why, 0, sizeof(*why));
    why->status = status;
    why->type = type;
    why->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why->message, sizeof(why->message), fmt, ap);
    va_end(ap);
    return -1;
}

/* One account on the walk: the caller, then its ancestors. */
typedef struct level_info {
    uint32_t slot;
    uint32_t flags;
    uint32_t rpm, rph, rpd;
    uint64_t tpm, tph, tpd;
    tg_policy_ref_t policy;
    const uint8_t *blob; /* private copy, NULL when none */
} level_info_t;

/* Copies the blob of LV (re-reading the slot while the blob is being replaced). 0, or -1. */
static int load_blob(tg_admit_ctx_t *c, int i, level_info_t *lv)
{
    lv->blob = NULL;
    if (!(lv->flags & TG_ACCT_POLICY))
        return 0;
    for (int tries = 0; tries < BLOB_RETRIES; tries++) {
        if (lv->policy.len > c->blob_cap[i]) {
            uint8_t *p = realloc(c->blob[i], lv->policy.len);
            if (!p)
                return -1;
            c->blob[i] = p;
            c->blob_cap[i] = lv->policy.len;
        }
        int n = tg_policy_blob_copy(c->arena, &lv->policy, c->blob[i], c->blob_cap[i]);
        if (n > 0) {
            lv->blob = c->blob[i];
            return 0;
        }
        if (n == 0)
            return 0;
        if (n == -1) { /* replaced: read the slot again */
            tg_account_limits_t l;
            if (tg_account_read_limits(c->arena, lv->slot, &l) != 0)
                return -1;
            lv->flags = l.flags;
            lv->policy = l.policy;
            if (!(lv->flags & TG_ACCT_POLICY))
                return 0;
        }
    }
    return -1;
}

/* ---- the limiter log: every take, so a refusal can give them back ---- */

typedef struct take {
    _Atomic uint64_t *word;
    uint64_t period_ns; /* 0: day counter */
    uint64_t limit, cost;
} take_t;

#define MAX_TAKES ((TG_ADMIT_WALK_MAX + 3) * 6)

typedef struct takes {
    take_t v[MAX_TAKES];
    size_t n;
} takes_t;

static void undo_all(tg_admit_ctx_t *c, takes_t *t, uint64_t now_ns)
{
    while (t->n) {
        take_t *k = &t->v[--t->n];
        if (k->period_ns)
            tg_gcra_refund(k->word, now_ns, tg_gcra_inc(k->period_ns, k->limit, k->cost));
        else
            tg_day_adjust(k->word, c->cal.day, -(int64_t)k->cost);
    }
}

static void keep_tightest(tg_rl_view_t *best, const tg_rl_view_t *v)
{
    if (best->limit == 0 || v->remaining < best->remaining || (v->remaining == best->remaining && v->limit < best->limit))
        *best = *v;
}

typedef struct limits6 {
    uint64_t rpm, rph, rpd, tpm, tph, tpd;
} limits6_t;

/* Takes one request and EST tokens from the limits L whose state is TAT[]/DAY[]. 0, or -1 (WHY set). */
static int take_limits(tg_admit_ctx_t *c, const limits6_t *l, _Atomic uint64_t *tat, _Atomic uint64_t *day, uint64_t est,
                       uint64_t now_ns, uint64_t now_ms, takes_t *t, tg_admit_t *out, tg_admit_refusal_t *why,
                       const char *whose)
{
    struct {
        uint64_t limit;
        _Atomic uint64_t *word;
        uint64_t period;
        int tokens;
        const char *name;
    } spec[6] = {
        {l->rpm, &tat[TG_TAT_RPM], TG_NS_PER_MIN, 0, "RPM"},  {l->rph, &tat[TG_TAT_RPH], TG_NS_PER_HOUR, 0, "RPH"},
        {l->rpd, &day[TG_DAY_RPD], 0, 0, "RPD"},              {l->tpm, &tat[TG_TAT_TPM], TG_NS_PER_MIN, 1, "TPM"},
        {l->tph, &tat[TG_TAT_TPH], TG_NS_PER_HOUR, 1, "TPH"}, {l->tpd, &day[TG_DAY_TPD], 0, 1, "TPD"},
    };
    uint64_t day_left_ms = c->cal.end_ms > (int64_t)now_ms ? (uint64_t)(c->cal.end_ms - (int64_t)now_ms) : 0;
    for (int i = 0; i < 6; i++) {
        if (spec[i].limit == 0)
            continue;
        uint64_t cost = spec[i].tokens ? est : 1;
        tg_rl_view_t v;
        uint64_t wait_ms = 0;
        int refused;
        if (spec[i].period) {
            uint64_t wait = tg_gcra_take(spec[i].word, now_ns, spec[i].period, spec[i].limit, cost, &v);
            refused = wait != 0;
            wait_ms = (wait + 999999u) / 1000000u;
        } else {
            refused = tg_day_take(spec[i].word, c->cal.day, spec[i].limit, cost, &v) != 0;
            v.reset_ms = day_left_ms;
            wait_ms = day_left_ms;
        }
        if (refused) {
            refuse(why, 429, "rate_limit_error", "rate_limit_exceeded", "rate limit reached: %s %llu of %s; retry later",
                   spec[i].name, (unsigned long long)spec[i].limit, whose);
            why->retry_after_s = (uint32_t)((wait_ms + 999u) / 1000u);
            if (why->retry_after_s == 0)
                why->retry_after_s = 1;
            why->view = v;
            why->view.remaining = 0;
            why->view.reset_ms = wait_ms;
            why->view_tokens = spec[i].tokens;
            return -1;
        }
        t->v[t->n++] = (take_t){spec[i].word, spec[i].period, spec[i].limit, cost};
        keep_tightest(spec[i].tokens ? &out->tok_view : &out->req_view, &v);
        if (spec[i].tokens && out->n_charges < TG_ADMIT_CHARGES)
            out->charges[out->n_charges++] = (tg_admit_charge_t){spec[i].word, spec[i].period, spec[i].limit};
    }
    return 0;
}

static limits6_t mlimits(const tg_mlimit_t *m)
{
    return (limits6_t){m->lim[TG_ML_RPM], m->lim[TG_ML_RPH], m->lim[TG_ML_RPD],
                       m->lim[TG_ML_TPM], m->lim[TG_ML_TPH], m->lim[TG_ML_TPD]};
}

int tg_admit(tg_admit_ctx_t *c, const tg_admit_req_t *in, tg_admit_t *out, tg_admit_refusal_t *why)
{
    tg_arena_t *a = c->arena;
    const tg_account_settings_t *acct = in->acct;
    memset(out, 0, offsetof(tg_admit_t, charges));
    out->hold.lane = TG_LANE_NONE;
    out->slot = in->slot;
    uint64_t now_ms = tg_now_ms(), now_ns = tg_mono_ns();
    tg_cal_update(&c->cal, now_ms);
    tg_credit_maybe_reap(a, now_ms);
    tg_policy_view_refresh(&c->policy, a);

    if (acct->flags & TG_ACCT_POLICY_BAD)
        return refuse(why, 403, "permission_error", "account_policy_invalid",
                      "this account's lists could not be applied; ask its parent to fix them");
    const uint8_t *owner = tg_policy_owner_section(&c->policy, acct->owner_id);
    const uint8_t *defaults = tg_policy_defaults_section(&c->policy);
    if (!owner || !defaults)
        return refuse(why, 503, "server_error", "starting", "the gateway's policy is not published yet; retry shortly");

    /* the caller and its ancestors */
    level_info_t lv[TG_ADMIT_WALK_MAX + 1];
    int n = 0;
    lv[n++] = (level_info_t){in->slot, acct->flags, acct->rpm, acct->rph, acct->rpd, acct->tpm, acct->tph, acct->tpd,
                             acct->policy, NULL};
    uint32_t up = acct->up_slot;
    uint64_t up_id = acct->up_id;
    while (n <= TG_ADMIT_WALK_MAX && up != TG_SLOT_NONE && up_id != 0) {
        tg_account_limits_t l;
        if (tg_account_read_limits(a, up, &l) != 0 || l.id != up_id)
            break; /* the slot moved on (the ancestor was deleted): stop here */
        lv[n++] = (level_info_t){up, l.flags, l.rpm, l.rph, l.rpd, l.tpm, l.tph, l.tpd, l.policy, NULL};
        up = l.up_slot;
        up_id = l.up_id;
    }
    for (int i = 0; i < n; i++) {
        if (load_blob(c, i, &lv[i]) != 0)
            return refuse(why, 503, "server_error", "policy_busy", "the account's policy is being updated; retry shortly");
        if (i > 0 && (lv[i].flags & TG_ACCT_POLICY_BAD))
            return refuse(why, 403, "permission_error", "account_policy_invalid",
                          "an ancestor's lists could not be applied; ask its owner to fix them");
    }

    /* AllowIPs and Resources: the caller's and every ancestor's, then the owner's RESOURCES */
    for (int i = 0; i < n; i++) {
        if (!lv[i].blob)
            continue;
        int restricted = tg_psec(lv[i].blob)->mode[TG_SEC_IPS] != TG_LIST_ANY;
        if (restricted && (in->family == 0 || !tg_psec_ip_allowed(lv[i].blob, in->family, in->addr)))
            return refuse(why, 403, "permission_error", "ip_not_allowed", "this API key may not be used from this address");
        if (!tg_psec_path_allowed(lv[i].blob, in->path, in->path_len))
            return refuse(why, 403, "permission_error", "path_not_allowed", "this API key may not call %.*s",
                          (int)(in->path_len > 64 ? 64 : in->path_len), in->path);
    }
    if (!tg_psec_path_allowed(owner, in->path, in->path_len))
        return refuse(why, 403, "permission_error", "path_not_allowed", "%.*s is not enabled on this gateway",
                      (int)(in->path_len > 64 ? 64 : in->path_len), in->path);

    /* ModelMapper, then the owner's MODEL_MAPPER (api-compat 2.1). A request that names no model
     * (an endpoint where the model is optional) is not priced: it is billed 0. */
    const char *model = in->model;
    int named = in->model_len > 0;
    size_t mlen = in->model_len;
    const char *dst;
    size_t dn;
    if (named && ((lv[0].blob && tg_psec_map_model(lv[0].blob, model, mlen, &dst, &dn)) ||
                  tg_psec_map_model(owner, model, mlen, &dst, &dn))) {
        model = dst;
        mlen = dn;
        out->mapped = mlen != in->model_len || memcmp(model, in->model, mlen) != 0;
    }
    if ((named && mlen == 0) || mlen >= sizeof(out->model))
        return refuse(why, 400, "invalid_request_error", "invalid_request", "model: the mapped name is too long");
    memcpy(out->model, model, mlen);
    out->model[mlen] = '\0';
    out->model_len = mlen;
    model = out->model;

    /* AllowModels on the mapped model */
    for (int i = 0; named && i < n; i++)
        if (lv[i].blob && !tg_psec_model_allowed(lv[i].blob, model, mlen))
            return refuse(why, 403, "permission_error", "model_not_allowed", "this API key may not use the model %s", model);

    /* key-pool level: LevelMapper, LEVEL_MAPPER, the account's Level (the last alone for a request
     * that names no model: the mappers map model names) */
    int32_t level = acct->level;
    if (named && !(lv[0].blob && tg_psec_map_level(lv[0].blob, model, mlen, &level)))
        tg_psec_map_level(owner, model, mlen, &level);
    out->level = level;

    /* price */
    const tg_psec_t *oh = tg_psec(owner);
    const tg_price_t *price = named ? tg_psec_price(owner, model, mlen) : NULL;
    if (named && !price && owner != defaults)
        price = tg_psec_price(defaults, model, mlen);
    if (price) {
        out->priced = 1;
        out->price = *price;
    } else if (named && !(oh->flags & TG_PSEC_ALLOW_UNPRICED)) {
        return refuse(why, 400, "invalid_request_error", "model_not_priced",
                      "the model %s has no price on this gateway; ask the operator to add one", model);
    }

    /* the estimate */
    uint64_t completion = in->max_tokens ? in->max_tokens : oh->default_completion_tokens;
    uint64_t prompt = (in->body_len + 2) / 3;
    if (in->unmetered)
        prompt = completion = 0;
    out->est_tokens = prompt + completion;
    out->rates_ppm = acct->rates_ppm;
    out->factor_ppm = acct->factor_ppm;
    out->est_cost = out->priced ? tg_cost_nanos(&out->price, prompt, completion, 0, acct->rates_ppm, acct->factor_ppm) : 0;
    out->day = c->cal.day;
    out->month = c->cal.month;
    out->soft_limit = acct->soft_limit;

    /* rate limits: own, ancestors', ModelLimits, the owner's MODEL_LIMITS */
    takes_t takes;
    takes_t *t = &takes;
    t->n = 0;
    int rc = 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        if (!(lv[i].flags & TG_ACCT_LIMITED))
            continue;
        limits6_t l = {lv[i].rpm, lv[i].rph, lv[i].rpd, lv[i].tpm, lv[i].tph, lv[i].tpd};
        tg_account_t *s = &a->accounts[lv[i].slot];
        rc = take_limits(c, &l, s->tat, s->day, out->est_tokens, now_ns, now_ms, t, out, why,
                         i == 0 ? "this account" : "a parent account");
    }
    const tg_mlimit_t *ml;
    if (rc == 0 && lv[0].blob && (ml = tg_psec_model_limit(lv[0].blob, model, mlen)) && ml->state < a->hdr->mlim_slots) {
        limits6_t l = mlimits(ml);
        tg_mlim_state_t *s = &a->mlim[ml->state];
        rc = take_limits(c, &l, s->tat, s->day, out->est_tokens, now_ns, now_ms, t, out, why, "this account for the model");
    }
    if (rc == 0 && (ml = tg_psec_model_limit(owner, model, mlen)) && ml->state < a->hdr->mlim_slots) {
        limits6_t l = mlimits(ml);
        tg_mlim_state_t *s = &a->mlim[ml->state];
        rc = take_limits(c, &l, s->tat, s->day, out->est_tokens, now_ns, now_ms, t, out, why, "the gateway for the model");
    }
    if (rc != 0) {
        undo_all(c, t, now_ns);
        out->n_charges = 0;
        return -1;
    }

    /* credit; a call whose answer may bill a run needs some left (the run is billed after the fact) */
    if (in->billed_after && tg_credit_available(&a->accounts[in->slot]) <= 0) {
        undo_all(c, t, now_ns);
        out->n_charges = 0;
        return refuse(why, 429, "insufficient_quota", "insufficient_quota",
                      "insufficient balance: Assistants runs are billed from their usage and need credit left");
    }
    tg_flight_info_t flight = {in->request_id, acct->id, out->model, in->path, out->model_len,
                               in->path_len, prompt, completion, in->stream,
                               out->priced ? &out->price : NULL, acct->rates_ppm, acct->factor_ppm};
    tg_credit_terms_t terms = {(acct->flags & TG_ACCT_ROOT) ? 0 : oh->min_balance, acct->hard_limit, c->cal.month, now_ms,
                               in->request_id ? &flight : NULL};
    int cr = tg_credit_reserve(a, in->slot, out->est_cost, &terms, &out->hold);
    if (cr != TG_CREDIT_OK) {
        undo_all(c, t, now_ns);
        out->n_charges = 0;
        switch (cr) {
        case TG_CREDIT_MIN_BALANCE:
            return refuse(why, 429, "insufficient_quota", "insufficient_quota",
                          "insufficient balance: at least $%.2f is needed to call models", (double)terms.min_balance / 1e9);
        case TG_CREDIT_HARD_LIMIT:
            return refuse(why, 429, "insufficient_quota", "insufficient_quota", "this account reached its monthly HardLimit");
        case TG_CREDIT_NO_FUNDS:
            return refuse(why, 429, "insufficient_quota", "insufficient_quota",
                          "insufficient balance for this request (about $%.6f is reserved for it)", (double)out->est_cost / 1e9);
        default:
            return refuse(why, 503, "server_error", "server_busy", "too many requests in flight on this worker; retry shortly");
        }
    }
    return 0;
}

int64_t tg_admit_finish(tg_admit_ctx_t *c, tg_admit_t *adm, uint64_t prompt, uint64_t completion, uint64_t cached)
{
    if (adm->finished)
        return adm->cost;
    adm->finished = 1;
    uint64_t real = prompt + completion;
    int64_t delta = (int64_t)real - (int64_t)adm->est_tokens;
    uint64_t now_ns = tg_mono_ns();
    for (uint32_t i = 0; i < adm->n_charges && delta != 0; i++) {
        tg_admit_charge_t *ch = &adm->charges[i];
        if (ch->period_ns == 0) {
            tg_day_adjust(ch->word, adm->day, delta);
        } else {
            uint64_t inc = tg_gcra_inc(ch->period_ns, ch->limit, (uint64_t)(delta < 0 ? -delta : delta));
            if (delta < 0)
                tg_gcra_refund(ch->word, now_ns, inc);
            else
                tg_gcra_charge(ch->word, now_ns, ch->period_ns, inc);
        }
    }
    adm->cost = adm->priced ? tg_cost_nanos(&adm->price, prompt, completion, cached, adm->rates_ppm, adm->factor_ppm) : 0;
    (void)c;
    return adm->cost;
}

tg_credit_bill_t tg_admit_bill(const tg_admit_t *adm)
{
    tg_credit_bill_t b;
    memset(&b, 0, sizeof(b));
    b.hold = adm->hold;
    b.cost = adm->cost;
    b.month = adm->month;
    b.soft_limit = adm->soft_limit;
    return b;
}

int32_t tg_admit_switch_over(tg_admit_ctx_t *c, uint64_t owner_id, int32_t level)
{
    tg_policy_view_refresh(&c->policy, c->arena);
    const uint8_t *sec = tg_policy_owner_section(&c->policy, owner_id);
    return sec ? tg_psec_switch_over(sec, level) : 0;
}

/* The price of MODEL for owner section OWNER (then the defaults); NULL when unpriced. */
static const tg_price_t *price_of(tg_admit_ctx_t *c, const uint8_t *owner, const char *model, size_t n)
{
    const tg_price_t *p = tg_psec_price(owner, model, n);
    const uint8_t *defaults = tg_policy_defaults_section(&c->policy);
    if (!p && defaults && defaults != owner)
        p = tg_psec_price(defaults, model, n);
    return p;
}

int tg_admit_price_of(tg_admit_ctx_t *c, uint64_t owner_id, const char *model, size_t n, tg_price_t *price)
{
    tg_policy_view_refresh(&c->policy, c->arena);
    const uint8_t *owner = tg_policy_owner_section(&c->policy, owner_id);
    const tg_price_t *p = owner ? price_of(c, owner, model, n) : NULL;
    if (p)
        *price = *p;
    return p != NULL;
}

static int model_seen(const char *const *seen, size_t n_seen, const char *m, size_t n)
{
    for (size_t i = 0; i < n_seen; i++)
        if (strlen(seen[i]) == n && memcmp(seen[i], m, n) == 0)
            return 1;
    return 0;
}

int tg_admit_failover(tg_admit_ctx_t *c, uint64_t owner_id, uint32_t slot, int32_t acct_level, tg_admit_t *adm,
                      const char *const *seen, size_t n_seen, int32_t *level)
{
    tg_policy_view_refresh(&c->policy, c->arena);
    const uint8_t *owner = tg_policy_owner_section(&c->policy, owner_id);
    if (!owner || adm->model_len == 0)
        return -1;
    tg_account_limits_t l;
    if (tg_account_read_limits(c->arena, slot, &l) != 0)
        return -1;
    level_info_t me = {slot, l.flags, 0, 0, 0, 0, 0, 0, l.policy, NULL};
    if (load_blob(c, 0, &me) != 0)
        return -1;
    char cur[TG_MODEL_MAX];
    memcpy(cur, adm->model, adm->model_len + 1);
    size_t cur_len = adm->model_len;
    for (int hop = 0; hop < 8; hop++) { /* a chain: a=b, b=c; each model once */
        const char *dst;
        size_t dn;
        if (!tg_psec_failover(owner, cur, cur_len, &dst, &dn) || dn == 0 || dn >= TG_MODEL_MAX ||
            model_seen(seen, n_seen, dst, dn) || (dn == adm->model_len && memcmp(dst, adm->model, dn) == 0))
            return -1;
        memmove(cur, dst, dn);
        cur[dn] = '\0';
        cur_len = dn;
        const tg_price_t *price = price_of(c, owner, cur, cur_len);
        if ((me.blob && !tg_psec_model_allowed(me.blob, cur, cur_len)) ||
            (!price && !(tg_psec(owner)->flags & TG_PSEC_ALLOW_UNPRICED)))
            continue; /* not for this caller: its own backup, if any, is next */
        memcpy(adm->model, cur, cur_len + 1);
        adm->model_len = cur_len;
        adm->mapped = 1;
        adm->priced = price != NULL;
        if (price)
            adm->price = *price;
        tg_flight_model(c->arena, &adm->hold, cur, cur_len, price); /* an orphan is billed as this model */
        *level = acct_level;
        if (!(me.blob && tg_psec_map_level(me.blob, cur, cur_len, level)))
            tg_psec_map_level(owner, cur, cur_len, level);
        return 0;
    }
    return -1;
}

/* ---- HTTP glue ---- */

void tg_admit_peer(h2o_req_t *req, struct sockaddr_storage *ss, tg_admit_req_t *in)
{
    in->family = 0;
    in->addr = NULL;
    socklen_t len = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)ss);
    if (len == 0)
        return;
    if (ss->ss_family == AF_INET) {
        in->family = AF_INET;
        in->addr = (const uint8_t *)&((struct sockaddr_in *)ss)->sin_addr;
    } else if (ss->ss_family == AF_INET6) {
        in->family = AF_INET6;
        in->addr = ((struct sockaddr_in6 *)ss)->sin6_addr.s6_addr;
    }
}

uint64_t tg_admit_max_tokens(const char *body, size_t len)
{
    static const char *const keys[] = {"max_completion_tokens", "max_tokens", "max_output_tokens"};
    enum { N = sizeof(keys) / sizeof(keys[0]) };
    if (!memmem(body, len, "_tokens", 7)) /* the usual request sets none: no scan */
        return 0;
    tg_json_span_t spans[N];
    if (tg_json_get_many(body, len, keys, N, spans) <= 0)
        return 0;
    for (size_t i = 0; i < N; i++) {
        uint64_t v = 0;
        if (tg_json_span_u64(&spans[i], &v) == 1 && v > 0)
            return v;
    }
    return 0;
}

/* Adds header NAME with the LEN bytes at V, copied into the request's pool. */
static void add_header(h2o_req_t *req, const char *name, const char *v, size_t len)
{
    char *copy = h2o_mem_alloc_pool(&req->pool, len + 1);
    memcpy(copy, v, len);
    copy[len] = '\0';
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 0, NULL, copy, len);
}

static void add_header_u64(h2o_req_t *req, const char *name, uint64_t v)
{
    char buf[20];
    add_header(req, name, buf, (size_t)(tg_put_u64(buf, v) - buf));
}

static void view_headers(h2o_req_t *req, const tg_rl_view_t *v, int tokens)
{
    if (v->limit == 0)
        return;
    char d[32];
    add_header_u64(req, tokens ? "x-ratelimit-limit-tokens" : "x-ratelimit-limit-requests", v->limit);
    add_header_u64(req, tokens ? "x-ratelimit-remaining-tokens" : "x-ratelimit-remaining-requests", v->remaining);
    add_header(req, tokens ? "x-ratelimit-reset-tokens" : "x-ratelimit-reset-requests", d,
               (size_t)(tg_put_duration_ms(d, v->reset_ms) - d));
}

void tg_admit_headers(h2o_req_t *req, const tg_admit_t *adm)
{
    view_headers(req, &adm->req_view, 0);
    view_headers(req, &adm->tok_view, 1);
}

void tg_admit_refuse(h2o_req_t *req, const tg_admit_refusal_t *why)
{
    if (why->retry_after_s)
        add_header_u64(req, "retry-after", why->retry_after_s);
    view_headers(req, &why->view, why->view_tokens);
    tg_http_error(req, why->status, why->type, why->code, why->message);
}

h2o_iovec_t tg_admit_body(h2o_mem_pool_t *pool, h2o_iovec_t body, const tg_json_span_t *model, const tg_admit_t *adm)
{
    if (!adm->mapped)
        return body;
    char esc[TG_MODEL_MAX * 6 + 8];
    size_t en = tg_json_escape(esc, 0, sizeof(esc), adm->model, adm->model_len);
    size_t head = (size_t)(model->p - body.base), tail = body.len - head - model->len;
    char *p = h2o_mem_alloc_pool(pool, head + en + tail);
    memcpy(p, body.base, head);
    memcpy(p + head, esc, en);
    memcpy(p + head + en, model->p + model->len, tail);
    return h2o_iovec_init(p, head + en + tail);
}

size_t tg_admit_dollars(char *buf, int64_t nanos)
{
    char *p = buf;
    uint64_t v = (uint64_t)nanos;
    if (nanos < 0) {
        *p++ = '-';
        v = (uint64_t)0 - v;
    }
    p = tg_put_u64(p, v / 1000000000u);
    *p++ = '.';
    p = tg_put_u64_pad(p, v % 1000000000u, 9);
    *p = '\0';
    return (size_t)(p - buf);
}
