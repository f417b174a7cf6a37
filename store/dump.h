/* Offline and live reading of the store for operators and tests: `tollgate admin usage` prints
 * every stored usage record as one JSON line. Opens the database read-only, so it works while the
 * persister runs (it then sees what the persister has committed). */
#ifndef TG_STORE_DUMP_H
#define TG_STORE_DUMP_H

#include <stdio.h>

/** Prints the usage records under DATA_DIR/db to OUT as JSON lines. 0, or -1 with *ERR. */
int tg_store_dump_usage(const char *data_dir, FILE *out, char **err);

#endif
