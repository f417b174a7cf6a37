/* Runs this worker already recorded (run_seen.h). */
#include "worker/run_seen.h"

#include <stdint.h>
#include <string.h>

#include "shm/usage.h"

#define SEEN_SLOTS 4096 /* a power of two; 256 KiB */

static char g_seen[SEEN_SLOTS][TG_RUN_ID_MAX];

int tg_run_seen_or_note(const char *id)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    char *slot = g_seen[h & (SEEN_SLOTS - 1)];
    if (strncmp(slot, id, TG_RUN_ID_MAX) == 0)
        return 1;
    strncpy(slot, id, TG_RUN_ID_MAX - 1);
    slot[TG_RUN_ID_MAX - 1] = '\0';
    return 0;
}
