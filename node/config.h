/*
 * config.h — freshetd's configuration: one table of keys (name, type,
 * bounds, default, where it lands), read from an INI file with inih and
 * overridden from the command line, validated once with messages that name
 * the key and the allowed values (CONTRIBUTING.md, "Logging, config, metrics").
 * docs/config.md documents every key; docs/examples/node.conf is a
 * commented example.  Private to node/ (the daemon and its tests).
 *
 * File layout:
 *   [node]    id, dc, cluster, listen, advertise, admin, data_dir, log_level,
 *             backend, max_frame_mb, gpu_device, gpu_budget_mb, canary,
 *             baseline
 *   [publish] queue_max, retry_after_ms, max_rows
 *   [gossip]  digest_interval_ms, full_interval_ms, pull_timeout_ms,
 *             max_inflight_mb, max_pull_mb, link_mbit, wan_mbit,
 *             reconnect_min_ms,
 *             reconnect_max_ms
 *   [store]   undo_kb_per_shard, index_cap, snapshot_interval_s
 *   [zookeeper]  hosts, session_timeout_ms, candidate
 *   [baseline]   lag_ms, buffer_mb
 *   [peers]   peer = ID@HOST:PORT        (repeatable; the static peer list)
 *   [model NAME]  shards (1..1048576, required), priority (0..1000000,
 *                 default 0), table = NAME:ROWS:DIM[:f32|f16] (repeatable,
 *                 at least one); one section per model.  inih keeps 49
 *                 bytes of a section header, so NAME is at most 43 bytes
 *                 in a file.
 * Lines are at most 198 bytes (inih's line buffer); longer ones are an
 * error, never silently cut.
 * Command line: --SECTION.KEY=VALUE (or --SECTION.KEY VALUE) overrides the
 * file for the scalar sections, e.g. --node.id=3 --node.listen=127.0.0.1:7003.
 *
 * Threads: any thread; the functions touch only their arguments and the
 * calling thread's error detail (fr_errmsg).
 */
#ifndef FRESHET_NODE_CONFIG_H
#define FRESHET_NODE_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/common.h"
#include "shard/shard.h"

#define CONFIG_ADDR_MAX 255
#define CONFIG_PATH_MAX 4095
#define CONFIG_PEERS_MAX 1024
#define CONFIG_MODELS_MAX 64
#define CONFIG_ZK_HOSTS_MAX 1023

struct node_config_addr {
	char host[CONFIG_ADDR_MAX + 1];   /* numeric IPv4/IPv6 or a name */
	uint16_t port;                    /* 1..65535 */
};

struct node_config_peer {
	uint32_t id;
	struct node_config_addr addr;
};

struct node_config {
	/* [node] */
	uint32_t node_id;                 /* required, 1..4294967294 */
	char dc[64];                      /* default "dc1" */
	char cluster[64];                 /* default "freshet" */
	struct node_config_addr listen;        /* required */
	struct node_config_addr advertise;     /* optional: what peers dial */
	struct node_config_addr admin;         /* required */
	char data_dir[CONFIG_PATH_MAX + 1];  /* required */
	enum fr_log_level log_level;      /* default info */
	char backend[8];                  /* auto|cpu|cuda, default auto */
	uint32_t max_frame_mb;            /* 1..1024, default 64 */
	uint32_t gpu_device;              /* 0..255, default 0 */
	uint32_t gpu_budget_mb;           /* 0 (no limit)..16777216, default 0 */
	char canary[512];                 /* model names, comma-separated */
	char baseline[512];               /* model names, comma-separated */
	/* [publish] */
	uint32_t publish_queue_max;       /* 1..1000000, default 1024 */
	uint32_t retry_after_ms;          /* 1..60000, default 50 */
	uint32_t publish_max_rows;        /* 1..10000000, default 1000000 */
	/* [gossip] */
	uint32_t digest_interval_ms;      /* 10..60000, default 200 */
	uint32_t full_interval_ms;        /* 100..3600000, default 5000 */
	uint32_t pull_timeout_ms;         /* 50..600000, default 2000 */
	uint32_t max_inflight_mb;         /* 1..4096, default 64 */
	uint32_t max_pull_mb;             /* 1..1024, default 16 */
	uint32_t link_mbit;               /* 0 (unlimited)..1000000, default 0 */
	uint32_t wan_mbit;                /* 0 (unlimited)..1000000, default 0 */
	uint32_t reconnect_min_ms;        /* 10..60000, default 100 */
	uint32_t reconnect_max_ms;        /* 100..600000, default 5000 */
	/* [store] */
	uint32_t undo_kb_per_shard;       /* 0..1048576, default 1024 */
	uint32_t index_cap;               /* 16..16777216, default 65536 */
	uint32_t snapshot_interval_s;     /* 0 (never, only at exit)..86400, default 60 */
	/* [zookeeper] */
	char zk_hosts[CONFIG_ZK_HOSTS_MAX + 1];   /* "" = static peers */
	uint32_t zk_session_timeout_ms;   /* 1000..120000, default 6000 */
	char zk_candidate[4];             /* yes|no, default yes */
	/* [baseline] */
	uint32_t baseline_lag_ms;         /* 1..86400000, default 300000 */
	uint32_t baseline_buffer_mb;      /* 1..1048576, default 256 */
	/* [peers] */
	uint32_t npeers;
	struct node_config_peer peers[CONFIG_PEERS_MAX];
	/* [model NAME] */
	uint32_t nmodels;
	struct shard_model_def models[CONFIG_MODELS_MAX];
};

/* Defaults for every key (required ones left empty/zero).  Zeroes the
 * whole struct first, so equal configs compare equal with memcmp. */
void node_config_defaults(struct node_config *c);

/* Parse an INI file into c (on top of what c holds).  Unknown sections or
 * keys, bad values, a scalar key given twice, duplicate models/peers/
 * tables, over-long lines: FR_ERR_INVAL with a detail
 * "FILE:LINE: [section] key: <what was wrong>, expected <allowed>".
 * A missing/unreadable file: FR_ERR_IO naming the path and errno text.
 * Only the first error is reported; on any error c is left unchanged.
 * Borrows path. */
enum fr_err node_config_load_file(struct node_config *c, const char *path);

/* Apply one command-line override "section.key=value" (a leading "--" is
 * allowed) for a key of [node], [publish], [gossip] or [store]; peers and
 * models are file-only.  Same parsing and bounds as the file, message
 * style "--section.key: ...".  On error c is left unchanged. */
enum fr_err node_config_set(struct node_config *c, const char *assignment);

/* Whole-config checks after loading: required keys present (node.id,
 * node.listen, node.admin, node.data_dir), every key within its bounds
 * (also for fields set by code), reconnect_min <= max, digest_interval <=
 * full_interval, listen != admin, peer ids unique and != node.id, peer
 * addresses unique and != listen, every model has shards and a table and
 * passes shard_model_validate.  FR_ERR_INVAL with a detail
 * "[section] key: <what was wrong>, expected <allowed>". */
enum fr_err node_config_validate(const struct node_config *c);

/* Print the key table (section, key, type, range, default, meaning) as
 * --help shows it.  out is borrowed. */
void node_config_print_help(FILE *out);

/* Write the effective configuration as INI (for --check-config and
 * /status): every key, defaults included; a required key that is unset is
 * written as a comment.  Reloading the output gives the same config. */
void node_config_print(FILE *out, const struct node_config *c);

/* Parse "HOST:PORT" or "[V6]:PORT" (host stored without the brackets;
 * IPv4 and IPv6 literals are checked, names are not resolved).
 * FR_ERR_INVAL with a detail; *out is written only on success. */
enum fr_err node_config_parse_addr(const char *s, struct node_config_addr *out);
/* Check a ZooKeeper connect string: one or more HOST:PORT separated by
 * commas (each as node_config_parse_addr takes it), then optionally a chroot
 * "/a/b" of [A-Za-z0-9_.-] segments; "" (no ZooKeeper) is allowed.
 * FR_ERR_INVAL with a detail naming the bad part. */
enum fr_err node_config_check_zk_hosts(const char *s);
/* Parse "NAME:ROWS:DIM[:f32|f16]" into a table definition (dtype f32 when
 * left out).  FR_ERR_INVAL with a detail; *out written only on success. */
enum fr_err node_config_parse_table(const char *s, struct shard_table_def *out);
/* Is name an item of a comma-separated list (node.canary, node.baseline)? */
bool node_config_list_has(const char *list, const char *name);

#endif /* FRESHET_NODE_CONFIG_H */
