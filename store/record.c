/* JSON record field helpers (record.h). */
#include "store/record.h"

uint64_t tg_rec_u64(const json_t *obj, const char *name, uint64_t def)
{
    json_t *v = json_object_get(obj, name);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return def;
    return (uint64_t)json_integer_value(v);
}

int64_t tg_rec_i64(const json_t *obj, const char *name, int64_t def)
{
    json_t *v = json_object_get(obj, name);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

double tg_rec_f64(const json_t *obj, const char *name, double def)
{
    json_t *v = json_object_get(obj, name);
    return json_is_number(v) ? json_number_value(v) : def;
}

int tg_rec_bool(const json_t *obj, const char *name, int def)
{
    json_t *v = json_object_get(obj, name);
    return json_is_boolean(v) ? json_is_true(v) : def;
}

const char *tg_rec_str(const json_t *obj, const char *name, const char *def)
{
    json_t *v = json_object_get(obj, name);
    return json_is_string(v) ? json_string_value(v) : def;
}

int tg_rec_id_matches(const json_t *rec, uint64_t id)
{
    return json_is_object(rec) && tg_rec_u64(rec, "ID", 0) == id;
}

int tg_rec_add_i64(json_t *obj, const char *name, int64_t delta)
{
    return json_object_set_new(obj, name, json_integer((json_int_t)(tg_rec_i64(obj, name, 0) + delta)));
}

double tg_nanos_to_dollars(int64_t nanos)
{
    return (double)nanos / (double)TG_NANOS_PER_DOLLAR;
}
