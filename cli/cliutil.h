/*
 * cliutil.h — what freshet's command-line programs share (`freshet` in
 * cli/, `freshet-witness` in witness/), built as the static library
 * freshet_cliutil: the exit codes, the wording of usage errors and of bad
 * options, option parsing (getopt_long with --help, the ZooKeeper options
 * --zk/--cluster/--timeout, unsigned and double values), connecting to
 * ZooKeeper, and printing a JSON line.
 *
 * The text rules themselves (names, decimals, HOST:PORT, showing untrusted
 * bytes) are common/'s (fr_name_check, fr_parse_u64, fr_parse_hostport,
 * fr_show); this file only turns their details into a program's messages.
 * Not here: any one command's options or output.
 *
 * Every message goes to standard error as "PROG[ CMD]: ...", PROG being
 * what cli_set_prog() set ("freshet" by default) and CMD the subcommand
 * the caller names (NULL or "" for a program without subcommands).
 * Single-threaded: these are called from main()'s thread only.
 */
#ifndef FRESHET_CLI_CLIUTIL_H
#define FRESHET_CLI_CLIUTIL_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

#define CLI_EXIT_RUNTIME 1     /* could not connect, or refused */
#define CLI_EXIT_USAGE 2       /* bad option or input; nothing was sent */
#define CLI_EXIT_UNHEALTHY 3   /* done, but something is flagged */

#define CLI_ZK_ENV "FRESHET_ZK"
#define CLI_CLUSTER_DEFAULT "freshet"
#define CLI_ZK_TIMEOUT_DEFAULT 5000

/* The program name every message starts with (borrowed; a literal).
 * Call once, first thing in main(). */
void cli_set_prog(const char *prog);

/* "PROG[ CMD]: <message>\n" on stderr. */
void cli_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* "PROG[ CMD]: <message>\n(see 'PROG[ CMD] --help')" on stderr; returns
 * CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* getopt_long's '?' (unknown option) and ':' (missing value) answers,
 * worded once; argv[optind - 1] is the option.  Returns CLI_EXIT_USAGE. */
int cli_bad_option(const char *cmd, int c, char **argv);
/* The detail of the last failure (fr_errmsg), else err's static text. */
const char *cli_errtext(enum fr_err err);

/* An unsigned decimal option value in 0..max (fr_parse_u64's rule and
 * words, naming opt): 0, or CLI_EXIT_USAGE printed. */
int cli_parse_uint_opt(const char *cmd, const char *opt, const char *s,
		       uint64_t max, uint64_t *out);
/* A finite decimal number (strtod in the C locale, all of s): 0, or
 * CLI_EXIT_USAGE printed. */
int cli_parse_double_opt(const char *cmd, const char *opt, const char *s,
			 double *out);
/* A required name option: "OPT is required" when s is NULL, else
 * fr_name_check's rule (1..max bytes of FR_NAME_CHARS): 0, or
 * CLI_EXIT_USAGE printed. */
int cli_name_opt(const char *cmd, const char *opt, const char *s,
		 size_t max);
/* true when s is 1..max bytes of printable ASCII (free text: a reason,
 * an idempotency key; not a name). */
bool cli_text_ok(const char *s, size_t max);

/* --zk, --cluster and --timeout, as every ZooKeeper command reads them. */
struct cli_zk_opts {
	const char *hosts;      /* --zk, else $FRESHET_ZK (borrowed) */
	const char *cluster;    /* --cluster, else "freshet" */
	uint64_t timeout_ms;    /* --timeout, else 5000 */
};

/* Their --help lines, for the commands' help texts (options at column
 * 2, their text at column 22). */
#define CLI_ZK_HELP                                                          \
	"  --zk HOSTS          ZooKeeper, HOST:PORT[,HOST:PORT...][/CHROOT]\n"  \
	"                      (default: $FRESHET_ZK)\n"                         \
	"  --cluster NAME      cluster name (default freshet)\n"                \
	"  --timeout MS        how long to wait for the ZooKeeper session\n"    \
	"                      (default 5000)\n"

/* The long options for cli_zk_opts (values 'z', 'c', 'T') and --help
 * ('h'), to start a command's option table with. */
#define CLI_ZK_LONGOPTS                                       \
	{ "zk", required_argument, NULL, 'z' },               \
	{ "cluster", required_argument, NULL, 'c' },          \
	{ "timeout", required_argument, NULL, 'T' },          \
	{ "help", no_argument, NULL, 'h' }

void cli_zk_defaults(struct cli_zk_opts *z);
/* After option parsing: --zk present and not too long, cluster a name,
 * timeout > 0: 0, or CLI_EXIT_USAGE printed. */
int cli_zk_check(const char *cmd, const struct cli_zk_opts *z);

struct topo_admin;
struct topo_member;
struct topo_model_status;
/* Connect to ZooKeeper within timeout_ms.  On failure, with rc not NULL,
 * say why and set *rc (CLI_EXIT_USAGE when the client refused the hosts
 * string, CLI_EXIT_RUNTIME otherwise); with rc NULL print nothing (the
 * detail is in fr_errmsg()).  The caller closes the result. */
struct topo_admin *cli_zk_connect(const char *cmd,
				  const struct cli_zk_opts *z,
				  uint64_t timeout_ms, int *rc);

/* The member's published status for model (borrowed from m), NULL when
 * it publishes none. */
const struct topo_model_status *
cli_member_model(const struct topo_member *m, const char *model);

/*
 * Option parsing: getopt_long over a command's table, answering what
 * every command answers the same way.
 *
 *     struct cli_getopt g;
 *     cli_getopt_init(&g, cmd, argc, argv, opts, help, &z);
 *     while ((ch = cli_getopt_next(&g, &rc)) != CLI_OPT_END) {
 *             switch (ch) {
 *             case CLI_OPT_STOP: return rc;
 *             case 'j': json = true; break;
 *             }
 *     }
 *     if ((rc = cli_getopt_no_args(&g)))
 *             return rc;
 *
 * cli_getopt_next returns the next option the caller handles (its val),
 * CLI_OPT_END after the last, or CLI_OPT_STOP with *rc the command's exit
 * code: 0 after --help ('h') printed help on stdout, CLI_EXIT_USAGE after
 * an unknown option, a missing value or a bad ZooKeeper option (printed).
 * With zk not NULL, 'z', 'c' and 'T' fill it (cli_getopt_init sets its
 * defaults first).  Everything is borrowed for the parse.
 */
#define CLI_OPT_END (-1)
#define CLI_OPT_STOP (-2)

struct cli_getopt {
	const char *cmd;
	int argc;
	char **argv;
	const struct option *opts;
	const char *help;
	struct cli_zk_opts *zk;
};

void cli_getopt_init(struct cli_getopt *g, const char *cmd, int argc,
		     char **argv, const struct option *opts,
		     const char *help, struct cli_zk_opts *zk);
int cli_getopt_next(struct cli_getopt *g, int *rc);
/* After the options: no argument left (0), else "unexpected argument"
 * (CLI_EXIT_USAGE printed).  cli_getopt_args_from is the same from
 * argv[first] (a command that took positional arguments). */
int cli_getopt_no_args(const struct cli_getopt *g);
int cli_getopt_args_from(const struct cli_getopt *g, int first);

/* JSON (jansson's json_t, opaque here). */
struct json_t;
/* A u64 as a JSON integer when it fits json_int_t, else as a decimal
 * string; a new reference, NULL when out of memory. */
struct json_t *cli_json_u64(uint64_t v);
/* Print root as one compact line on stdout and flush (root is taken, NULL
 * allowed): 0, or CLI_EXIT_RUNTIME with "cannot write the JSON output". */
int cli_print_json_line(const char *cmd, struct json_t *root);

#endif /* FRESHET_CLI_CLIUTIL_H */
