/*
 * cliutil.c — the command-line helpers `freshet` and `freshet-witness`
 * share (cliutil.h): message wording, option parsing, ZooKeeper options
 * and connection, JSON lines.
 *
 * Values are checked by common/'s text rules, so a name or a decimal the
 * programs accept is one the node accepts, worded the same way.  Not
 * here: what any command does with its options.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cliutil.h"
#include "topology/topology.h"

static const char *prog = "freshet";

void cli_set_prog(const char *p)
{
	prog = p;
}

/* "PROG[ CMD]" */
static void who(const char *cmd)
{
	if (cmd && *cmd)
		fprintf(stderr, "%s %s", prog, cmd);
	else
		fputs(prog, stderr);
}

/* "PROG[ CMD]: <message>" without the newline. */
static void vsay(const char *cmd, const char *fmt, va_list ap)
{
	who(cmd);
	fputs(": ", stderr);
	vfprintf(stderr, fmt, ap);
}

void cli_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(cmd, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(cmd, fmt, ap);
	va_end(ap);
	fputs("\n(see '", stderr);
	who(cmd);
	fputs(" --help')\n", stderr);
	return CLI_EXIT_USAGE;
}

int cli_bad_option(const char *cmd, int c, char **argv)
{
	const char *arg = argv[optind - 1];

	if (c == ':')
		return cli_usage_error(cmd, "option '%s' needs a value", arg);
	return cli_usage_error(cmd, "unknown option '%s'", arg);
}

const char *cli_errtext(enum fr_err err)
{
	return *fr_errmsg() ? fr_errmsg() : fr_strerror(err);
}

/* ========================================================================
 * Values
 * ===================================================================== */

int cli_parse_uint_opt(const char *cmd, const char *opt, const char *s,
		       uint64_t max, uint64_t *out)
{
	if (fr_parse_u64(opt, s, 0, max, out))
		return cli_usage_error(cmd, "%s", fr_errmsg());
	return 0;
}

int cli_parse_double_opt(const char *cmd, const char *opt, const char *s,
			 double *out)
{
	char b[48], *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (!*s || *end || errno || !isfinite(v))
		return cli_usage_error(cmd, "%s '%s': expected a finite decimal "
				       "number", opt, fr_show(b, sizeof(b), s));
	*out = v;
	return 0;
}

int cli_name_opt(const char *cmd, const char *opt, const char *s,
		 size_t max)
{
	if (!s)
		return cli_usage_error(cmd, "%s is required", opt);
	if (fr_name_check(opt, s, max))
		return cli_usage_error(cmd, "%s", fr_errmsg());
	return 0;
}

bool cli_text_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	return n > 0 && n <= max && fr_text_valid_n(s, n);
}

/* ========================================================================
 * ZooKeeper options
 * ===================================================================== */

void cli_zk_defaults(struct cli_zk_opts *z)
{
	const char *env = getenv(CLI_ZK_ENV);

	z->hosts = env && *env ? env : NULL;
	z->cluster = CLI_CLUSTER_DEFAULT;
	z->timeout_ms = CLI_ZK_TIMEOUT_DEFAULT;
}

int cli_zk_check(const char *cmd, const struct cli_zk_opts *z)
{
	if (!z->hosts)
		return cli_usage_error(cmd, "--zk HOSTS is required (or set "
				       "%s): HOST:PORT[,HOST:PORT...][/CHROOT]",
				       CLI_ZK_ENV);
	if (!*z->hosts)
		return cli_usage_error(cmd, "--zk is empty, expected "
				       "HOST:PORT[,HOST:PORT...][/CHROOT]");
	if (strlen(z->hosts) > TOPO_HOSTS_MAX)
		return cli_usage_error(cmd, "--zk is longer than %d bytes",
				       TOPO_HOSTS_MAX);
	if (fr_name_check("--cluster", z->cluster, TOPO_NAME_MAX))
		return cli_usage_error(cmd, "%s", fr_errmsg());
	if (z->timeout_ms == 0)
		return cli_usage_error(cmd, "--timeout 0: expected 1..%d ms",
				       INT32_MAX);
	return 0;
}

struct topo_admin *cli_zk_connect(const char *cmd,
				  const struct cli_zk_opts *z,
				  uint64_t timeout_ms, int *rc)
{
	struct topo_admin *a;
	enum fr_err err;

	a = topo_admin_connect(z->hosts, z->cluster, (uint32_t)timeout_ms,
			       &err);
	if (!a && rc) {
		cli_error(cmd, "%s", cli_errtext(err));
		*rc = err == FR_ERR_INVAL ? CLI_EXIT_USAGE : CLI_EXIT_RUNTIME;
	}
	return a;
}

const struct topo_model_status *
cli_member_model(const struct topo_member *m, const char *model)
{
	uint32_t n = m->nmodels < TOPO_MEMBER_MODELS_MAX ?
		     m->nmodels : TOPO_MEMBER_MODELS_MAX;

	for (uint32_t i = 0; i < n; i++)
		if (strcmp(m->models[i].model, model) == 0)
			return &m->models[i];
	return NULL;
}

/* ========================================================================
 * Option parsing
 * ===================================================================== */

void cli_getopt_init(struct cli_getopt *g, const char *cmd, int argc,
		     char **argv, const struct option *opts,
		     const char *help, struct cli_zk_opts *zk)
{
	g->cmd = cmd;
	g->argc = argc;
	g->argv = argv;
	g->opts = opts;
	g->help = help;
	g->zk = zk;
	if (zk)
		cli_zk_defaults(zk);
	optind = 1;
	opterr = 0;
}

int cli_getopt_next(struct cli_getopt *g, int *rc)
{
	int ch;

	*rc = 0;
	for (;;) {
		ch = getopt_long(g->argc, g->argv, ":", g->opts, NULL);
		switch (ch) {
		case -1:
			return CLI_OPT_END;
		case 'h':
			fputs(g->help, stdout);
			return CLI_OPT_STOP;
		case '?':
		case ':':
			*rc = cli_bad_option(g->cmd, ch, g->argv);
			return CLI_OPT_STOP;
		}
		if (!g->zk)
			return ch;
		switch (ch) {
		case 'z':
			g->zk->hosts = optarg;
			break;
		case 'c':
			g->zk->cluster = optarg;
			break;
		case 'T':
			*rc = cli_parse_uint_opt(g->cmd, "--timeout", optarg,
						 INT32_MAX, &g->zk->timeout_ms);
			if (*rc)
				return CLI_OPT_STOP;
			break;
		default:
			return ch;
		}
	}
}

int cli_getopt_args_from(const struct cli_getopt *g, int first)
{
	if (first < g->argc)
		return cli_usage_error(g->cmd, "unexpected argument '%s'",
				       g->argv[first]);
	return 0;
}

int cli_getopt_no_args(const struct cli_getopt *g)
{
	return cli_getopt_args_from(g, optind);
}

/* ========================================================================
 * JSON
 * ===================================================================== */

json_t *cli_json_u64(uint64_t v)
{
	char buf[24];

	if (v <= (uint64_t)INT64_MAX)
		return json_integer((json_int_t)v);
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	return json_string(buf);
}

int cli_print_json_line(const char *cmd, json_t *root)
{
	int rc = CLI_EXIT_RUNTIME;

	if (!root) {
		cli_error(cmd, "cannot build the JSON output");
		return rc;
	}
	if (json_dumpf(root, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER |
		       JSON_REAL_PRECISION(9)) == 0 &&
	    putchar('\n') != EOF && fflush(stdout) == 0)
		rc = 0;
	json_decref(root);
	if (rc)
		cli_error(cmd, "cannot write the JSON output");
	return rc;
}
