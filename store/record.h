/* Reading fields of the JSON records the store keeps (accounts, upstream keys), with the
 * conventions of docs/storage.md: integer ids and counters, money as integer nano-dollars. */
#ifndef TG_STORE_RECORD_H
#define TG_STORE_RECORD_H

#include <jansson.h>
#include <stdint.h>

#define TG_NANOS_PER_DOLLAR 1000000000LL

/** Integer field NAME of OBJ, or DEF when absent or not an integer (negative values read as DEF). */
uint64_t tg_rec_u64(const json_t *obj, const char *name, uint64_t def);
/** Signed integer field, or DEF. */
int64_t tg_rec_i64(const json_t *obj, const char *name, int64_t def);
/** Number field (integer or real), or DEF. */
double tg_rec_f64(const json_t *obj, const char *name, double def);
/** Boolean field, or DEF. */
int tg_rec_bool(const json_t *obj, const char *name, int def);
/** String field (borrowed from OBJ), or DEF. */
const char *tg_rec_str(const json_t *obj, const char *name, const char *def);
/** 1 when REC's ID field equals ID (a record is stored under its own id). */
int tg_rec_id_matches(const json_t *rec, uint64_t id);
/** Adds DELTA to integer field NAME (0 when absent). 0, or -1 when out of memory. */
int tg_rec_add_i64(json_t *obj, const char *name, int64_t delta);
/** Nano-dollars as the JSON APIs show them: dollars, a double. */
double tg_nanos_to_dollars(int64_t nanos);

#endif
