/*
 * node.h — freshetd's front door: make a node from a validated config,
 * run it until SIGTERM/SIGINT, free it.  The only node API that main.c
 * and tests use; everything else of node/ is private (node_int.h).
 *
 * A node owns a libevent loop and runs it on the calling thread; every
 * call here but node_metrics_families is made from that one thread.
 */
#ifndef FRESHET_NODE_H
#define FRESHET_NODE_H

#include "common/common.h"

struct node_config;
struct node;

/* Open the data dir, load snapshots and replay the WAL, open the
 * listeners.  cfg is borrowed and must outlive the node (node_config_validate
 * passed).  NULL with *err set (and a detail in fr_errmsg) on failure;
 * FR_ERR_INVAL means the config or a snapshot does not fit. */
struct node *node_new(const struct node_config *cfg, enum fr_err *err);
/* Run the loop until SIGTERM/SIGINT, then shut down in order (acks,
 * snapshot, WAL).  FR_OK on a clean exit. */
enum fr_err node_run(struct node *n);
/* Free everything; NULL does nothing. */
void node_free(struct node *n);

/* Every metric family a node exports at /metrics (docs/metrics.md lists
 * each); *n set to how many.  The table is static.  Any thread. */
const struct fr_prom_family *node_metrics_families(size_t *n);

#endif /* FRESHET_NODE_H */
