/*
 * cli.h — what the `freshet` command's files share (main.c, status.c,
 * rollback.c):
 * exit codes, the usage-error and option-error wording, the ZooKeeper
 * options every ZooKeeper command takes, and small JSON and text helpers.
 * Private to cli/; nothing here is a library API.
 */
#ifndef FRESHET_CLI_H
#define FRESHET_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#define EXIT_UNHEALTHY 3     /* status: something is flagged */

#define CLI_ZK_ENV "FRESHET_ZK"
#define CLI_CLUSTER_DEFAULT "freshet"
#define CLI_ZK_TIMEOUT_DEFAULT 5000

/* "freshet CMD: <message>\n(see 'freshet CMD --help')" on stderr; returns
 * EXIT_USAGE. */
int usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* getopt_long's '?' and ':' answers, worded once. */
int bad_option(const char *cmd, int c, char **argv);
/* An unsigned decimal option value <= max; 0 or EXIT_USAGE (printed). */
int parse_uint_opt(const char *cmd, const char *opt, const char *s,
		   uint64_t max, uint64_t *out);

/* --zk, --cluster and --timeout, as every ZooKeeper command reads them. */
struct cli_zk_opts {
	const char *hosts;      /* --zk, else $FRESHET_ZK */
	const char *cluster;    /* --cluster, else "freshet" */
	uint64_t timeout_ms;    /* --timeout, else 5000 */
};

struct topo_admin;

void cli_zk_defaults(struct cli_zk_opts *z);
/* After option parsing: --zk present, cluster a name, timeout > 0;
 * 0 or EXIT_USAGE (printed). */
int cli_zk_check(const char *cmd, const struct cli_zk_opts *z);
/* --zk, --cluster, --timeout (ZK_LONGOPTS' 'z', 'c', 'T'): 1 when ch was
 * one of them (*rc set: 0, or EXIT_USAGE printed), 0 when not. */
int cli_zk_option(const char *cmd, int ch, struct cli_zk_opts *z, int *rc);
#define ZK_LONGOPTS                                           \
	{ "zk", required_argument, NULL, 'z' },               \
	{ "cluster", required_argument, NULL, 'c' },          \
	{ "timeout", required_argument, NULL, 'T' },          \
	{ "help", no_argument, NULL, 'h' }
/* Connect to ZooKeeper within timeout_ms or say why not; *rc (may be
 * NULL) is the exit code then (2 when the client refused the hosts
 * string, 1 otherwise). */
struct topo_admin *cli_zk_connect(const char *cmd,
				  const struct cli_zk_opts *z,
				  uint64_t timeout_ms, int *rc);

/* A u64 as a JSON integer when it fits json_int_t, else as a string. */
json_t *json_u64(uint64_t v);
/* Print root as one compact line on stdout (root is taken); 0 or
 * EXIT_RUNTIME. */
int print_json_line(const char *cmd, json_t *root);

/* Untrusted text made safe to print: at most cap-1 bytes, anything
 * outside printable ASCII replaced by '?'; returns buf. */
const char *cli_show(char *buf, size_t cap, const char *s);

int cmd_status(int argc, char **argv);
extern const char status_help[];

/* rollback.c: rollback, history, role (DESIGN §6, docs/cli.md). */
int cmd_rollback(int argc, char **argv);
int cmd_history(int argc, char **argv);
int cmd_role(int argc, char **argv);
extern const char rollback_help[];
extern const char history_help[];
extern const char role_help[];

#endif /* FRESHET_CLI_H */
