/* The Assistants runs this worker process has already put on a usage record (worker/run_usage.h),
 * so that polling a finished run, or listing a thread's old runs, does not push a record per run
 * per call: a run seen again by the same worker is left off the record. Only an optimisation:
 * the persister's markers (store/run_once.h) decide what is billed, across workers and restarts.
 * A fixed table (direct-mapped by a hash of the id, full ids compared), so an id pushed out by
 * another one is just recorded again and stored as a repeat. One per process; not thread-safe
 * (a worker runs one event loop). */
#ifndef TG_RUN_SEEN_H
#define TG_RUN_SEEN_H

/** 1 when this process already recorded run ID; otherwise notes it and returns 0. */
int tg_run_seen_or_note(const char *id);

#endif
