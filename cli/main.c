/*
 * main.c — the `freshet` command: publish rows to a node and look rows up,
 * on top of the C client library (client/client.h).  docs/cli.md is its
 * manual; `freshet help` prints the short form.
 *
 * publish reads and checks ALL of its input before it connects, so a bad
 * line N publishes nothing.  Exit codes: 0 done, 1 runtime failure (could
 * not connect, the node refused: its message is printed), 2 usage or
 * input error (nothing was sent).
 *
 * Not here: parsing of rows, ids and addresses (input.c, unit-tested), the
 * protocol (client/, proto/).  Commands for later issues (status,
 * rollback) will join the table below.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/input.h"
#include "client/client.h"
#include "proto/proto.h"

#ifndef FRESHET_VERSION
#define FRESHET_VERSION "0.0.0"
#endif

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

/* Bytes of a PUBLISH frame besides the rows: frame header, fixed header
 * and the three names at their largest (docs/wire.md §4.3). */
#define PUBLISH_OVERHEAD (SHARD_FRAME_HDR_BYTES + 24 + 64 + 64 + 64 + 8)

static const char publish_help[] =
	"usage: freshet publish --node HOST:PORT --model M --table T\n"
	"                       [--input FILE|-] [--binary] [--dim D]\n"
	"                       [--batch-rows N] [--key K] [--timeout MS]\n"
	"                       [--busy-retry MS] [--verbose]\n"
	"\n"
	"Publish rows to a node; print the version the node assigned (one\n"
	"line per batch).  All input is read and checked before connecting:\n"
	"a bad line publishes nothing.\n"
	"\n"
	"  --node HOST:PORT   the node ([ADDR]:PORT for IPv6)\n"
	"  --model M          model name\n"
	"  --table T          table name\n"
	"  --input FILE|-     rows to publish (default -, standard input)\n"
	"                     text: one row per line, ROW_ID V0 V1 ... V(dim-1)\n"
	"                     blank lines and lines starting with # are skipped\n"
	"  --binary           the input is the binary FRIN format (docs/cli.md)\n"
	"  --dim D            values per row (default: the table's, asked of\n"
	"                     the node; binary input: the file header's)\n"
	"  --batch-rows N     publish at most N rows per request (default: all\n"
	"                     in one; inputs over the 64 MiB frame need it)\n"
	"  --key K            idempotency key (1..64 printable characters); with\n"
	"                     several batches, batch i uses K#i\n"
	"  --timeout MS       connect and per-request timeout (default 10000)\n"
	"  --busy-retry MS    how long to retry while the node says BUSY\n"
	"                     (default 30000; 0: no retry)\n"
	"  --verbose          say what was sent on standard error\n"
	"\n"
	"A row id given twice: the last line wins (earlier ones are dropped\n"
	"before sending).  Exit: 0 published, 1 connection or node error,\n"
	"2 usage or input error.\n";

static const char lookup_help[] =
	"usage: freshet lookup --node HOST:PORT --model M --table T\n"
	"                      --ids ID[,ID...] [--json] [--timeout MS]\n"
	"\n"
	"Look rows up on a node.  Prints one line per row:\n"
	"  ROW_ID VERSION V0 V1 ... V(dim-1)\n"
	"(VERSION 0: the row was never written), or with --json one object:\n"
	"  {\"model\":M,\"table\":T,\"dim\":D,\"rows\":[{\"id\":..,\"version\":..,\n"
	"   \"origin\":..,\"values\":[..]}, ...]}\n"
	"\n"
	"  --node HOST:PORT   the node ([ADDR]:PORT for IPv6)\n"
	"  --model M, --table T\n"
	"  --ids 1,2,3        row ids, unsigned decimal, comma separated\n"
	"  --json             JSON output\n"
	"  --timeout MS       connect and request timeout (default 10000)\n"
	"\n"
	"Exit: 0 done, 1 connection or node error, 2 usage error.\n";

static const char main_help[] =
	"usage: freshet COMMAND [OPTIONS]\n"
	"\n"
	"Commands:\n"
	"  publish   publish rows to a node (freshet publish --help)\n"
	"  lookup    look rows up on a node (freshet lookup --help)\n"
	"  help [COMMAND]\n"
	"\n"
	"  --version  print the version\n"
	"  --help     this text\n"
	"\n"
	"Manual: docs/cli.md.\n";

/* Options shared by both commands. */
struct common_opts {
	const char *cmd;
	const char *node;
	char host[256];
	uint16_t port;
	const char *model, *table;
	int timeout_ms;
};

static int usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "freshet %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n(see 'freshet %s --help')\n", cmd);
	return EXIT_USAGE;
}

static bool name_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

/* Check what both commands need; exit code or 0. */
static int common_check(struct common_opts *o)
{
	if (!o->node)
		return usage_error(o->cmd, "--node HOST:PORT is required");
	if (cli_parse_hostport(o->node, o->host, sizeof(o->host), &o->port))
		return usage_error(o->cmd, "%s", fr_errmsg());
	if (!o->model)
		return usage_error(o->cmd, "--model is required");
	if (!name_ok(o->model, SHARD_NAME_MAX))
		return usage_error(o->cmd,
				   "--model '%s': expected 1..%d printable "
				   "ASCII characters",
				   o->model, SHARD_NAME_MAX);
	if (!o->table)
		return usage_error(o->cmd, "--table is required");
	if (!name_ok(o->table, SHARD_NAME_MAX))
		return usage_error(o->cmd,
				   "--table '%s': expected 1..%d printable "
				   "ASCII characters",
				   o->table, SHARD_NAME_MAX);
	return 0;
}

static int parse_ms(const char *cmd, const char *opt, const char *s,
		    uint64_t max, uint64_t *out)
{
	char what[48];

	snprintf(what, sizeof(what), "%s", opt);
	if (cli_parse_u64(what, s, max, out))
		return usage_error(cmd, "%s", fr_errmsg());
	return 0;
}

/* getopt_long's '?' and ':' answers, worded once. */
static int bad_option(const char *cmd, int c, char **argv)
{
	const char *arg = argv[optind - 1];

	if (c == ':')
		return usage_error(cmd, "option '%s' needs a value", arg);
	return usage_error(cmd, "unknown option '%s'", arg);
}

static struct fr_client *connect_node(const struct common_opts *o)
{
	enum fr_err err;
	struct fr_client *c;

	c = fr_client_connect(o->host, o->port, o->timeout_ms, &err);
	if (!c)
		fprintf(stderr, "freshet %s: cannot use node %s: %s: %s\n",
			o->cmd, o->node, fr_strerror(err), fr_errmsg());
	return c;
}

/* ========================================================================
 * publish
 * ===================================================================== */

static int cmd_publish(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "node", required_argument, NULL, 'n' },
		{ "model", required_argument, NULL, 'm' },
		{ "table", required_argument, NULL, 't' },
		{ "input", required_argument, NULL, 'i' },
		{ "binary", no_argument, NULL, 'b' },
		{ "dim", required_argument, NULL, 'd' },
		{ "batch-rows", required_argument, NULL, 'B' },
		{ "key", required_argument, NULL, 'k' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "busy-retry", required_argument, NULL, 'R' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct common_opts o = { .cmd = "publish" };
	const char *input = "-", *key = NULL;
	bool binary = false, verbose = false;
	uint64_t dim = 0, batch = 0, timeout = 0, busy = 30000, max_rows;
	struct cli_input in;
	struct fr_client *c = NULL;
	uint32_t nbatches, dropped;
	FILE *f;
	enum fr_err err;
	int ch, rc;

	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (ch) {
		case 'n': o.node = optarg; break;
		case 'm': o.model = optarg; break;
		case 't': o.table = optarg; break;
		case 'i': input = optarg; break;
		case 'b': binary = true; break;
		case 'k': key = optarg; break;
		case 'v': verbose = true; break;
		case 'd':
			if ((rc = parse_ms(o.cmd, "--dim", optarg, CLI_DIM_MAX,
					   &dim)))
				return rc;
			if (dim == 0)
				return usage_error(o.cmd,
						   "--dim 0: expected 1..%d",
						   CLI_DIM_MAX);
			break;
		case 'B':
			if ((rc = parse_ms(o.cmd, "--batch-rows", optarg,
					   UINT32_MAX, &batch)))
				return rc;
			if (batch == 0)
				return usage_error(o.cmd,
						   "--batch-rows 0: expected "
						   ">= 1");
			break;
		case 'T':
			if ((rc = parse_ms(o.cmd, "--timeout", optarg, INT32_MAX,
					   &timeout)))
				return rc;
			break;
		case 'R':
			if ((rc = parse_ms(o.cmd, "--busy-retry", optarg,
					   UINT32_MAX, &busy)))
				return rc;
			break;
		case 'h':
			fputs(publish_help, stdout);
			return 0;
		default:
			return bad_option(o.cmd, ch, argv);
		}
	}
	if (optind < argc)
		return usage_error(o.cmd, "unexpected argument '%s'",
				   argv[optind]);
	if ((rc = common_check(&o)))
		return rc;
	if (key && !name_ok(key, PROTO_KEY_MAX))
		return usage_error(o.cmd,
				   "--key '%s': expected 1..%d printable ASCII "
				   "characters",
				   key, PROTO_KEY_MAX);
	o.timeout_ms = (int)timeout;

	cli_input_init(&in);
	/* Without --dim, text input is checked against the table's own dim,
	 * which the node tells us (a one-row lookup), so even line 1 is
	 * checked against the schema and reported by number.  Nothing is
	 * published until all of the input has been read and checked. */
	if (dim == 0 && !binary) {
		struct fr_client_rows probe = { 0 };
		uint64_t row0 = 0;

		c = connect_node(&o);
		if (!c) {
			rc = EXIT_RUNTIME;
			goto out;
		}
		err = fr_client_lookup_rows(c, o.model, o.table, &row0, 1,
					    &probe);
		if (err) {
			fprintf(stderr,
				"freshet publish: node %s: model '%s' table "
				"'%s': %s: %s; nothing published\n",
				o.node, o.model, o.table, fr_strerror(err),
				fr_client_errmsg(c));
			rc = EXIT_RUNTIME;
			goto out;
		}
		dim = probe.dim;
		fr_client_rows_fini(&probe);
	}

	/* All of the input, checked, before anything is published. */
	if (strcmp(input, "-") == 0) {
		f = stdin;
	} else {
		f = fopen(input, binary ? "rb" : "r");
		if (!f) {
			fprintf(stderr, "freshet publish: --input '%s': %s\n",
				input, strerror(errno));
			rc = EXIT_USAGE;
			goto out;
		}
	}
	err = binary ? cli_input_read_binary(&in, f, (uint32_t)dim)
		     : cli_input_read_text(&in, f, (uint32_t)dim);
	if (f != stdin)
		fclose(f);
	if (err) {
		fprintf(stderr, "freshet publish: %s: %s; nothing published\n",
			strcmp(input, "-") ? input : "standard input",
			fr_errmsg());
		rc = EXIT_USAGE;
		goto out;
	}
	dropped = cli_input_dedup(&in);
	if (dropped)
		fprintf(stderr,
			"freshet publish: note: %u earlier occurrence%s of "
			"repeated row ids dropped (the last line wins)\n",
			dropped, dropped == 1 ? "" : "s");

	/* Every batch must fit one frame. */
	max_rows = (SHARD_FRAME_MAX_DEFAULT - PUBLISH_OVERHEAD) /
		   (8 + 4 * (uint64_t)in.dim);
	if (batch == 0)
		batch = in.n;
	if (batch > max_rows) {
		rc = usage_error(o.cmd,
				 "%llu rows of dim %u in one request exceed the "
				 "%u-byte frame limit: use --batch-rows %llu "
				 "or less",
				 (unsigned long long)batch, in.dim,
				 SHARD_FRAME_MAX_DEFAULT,
				 (unsigned long long)max_rows);
		goto out;
	}
	nbatches = (uint32_t)((in.n + batch - 1) / batch);
	if (key && nbatches > 1 &&
	    strlen(key) + 1 + (size_t)snprintf(NULL, 0, "%u", nbatches) >
		    PROTO_KEY_MAX) {
		rc = usage_error(o.cmd,
				 "--key '%s': with %u batches the keys K#i "
				 "would exceed %d characters",
				 key, nbatches, PROTO_KEY_MAX);
		goto out;
	}

	if (!c)
		c = connect_node(&o);
	if (!c) {
		rc = EXIT_RUNTIME;
		goto out;
	}
	fr_client_set_busy_retry(c, (uint32_t)busy);
	rc = 0;
	for (uint32_t b = 0; b < nbatches; b++) {
		uint64_t first = (uint64_t)b * batch, version;
		uint32_t n = (uint32_t)(in.n - first < batch ? in.n - first
							     : batch);
		uint32_t origin;
		char kbuf[PROTO_KEY_MAX + 1];
		const char *k = key;

		if (key && nbatches > 1) {
			snprintf(kbuf, sizeof(kbuf), "%s#%u", key, b + 1);
			k = kbuf;
		}
		err = fr_client_publish(c, o.model, o.table, in.rows + first,
					in.values + first * in.dim, n, in.dim,
					k, &version, &origin);
		if (err) {
			fprintf(stderr,
				"freshet publish: batch %u of %u (%u row%s) to "
				"node %s failed: %s: %s\n",
				b + 1, nbatches, n, n == 1 ? "" : "s", o.node,
				fr_strerror(err),
				fr_client_errmsg(c));
			if (b)
				fprintf(stderr,
					"freshet publish: batches 1..%u were "
					"published (versions above)\n",
					b);
			rc = EXIT_RUNTIME;
			break;
		}
		printf("%llu\n", (unsigned long long)version);
		fflush(stdout);
		if (verbose)
			fprintf(stderr,
				"freshet publish: batch %u/%u: %u row%s of dim "
				"%u -> version %llu (node %u)%s%s\n",
				b + 1, nbatches, n, n == 1 ? "" : "s", in.dim,
				(unsigned long long)version, origin,
				k ? ", key " : "", k ? k : "");
	}
out:
	fr_client_close(c);
	cli_input_fini(&in);
	return rc;
}

/* ========================================================================
 * lookup
 * ===================================================================== */

/* A u64 as a JSON integer when it fits json_int_t, else as a string. */
static json_t *json_u64(uint64_t v)
{
	char buf[24];

	if (v <= (uint64_t)INT64_MAX)
		return json_integer((json_int_t)v);
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	return json_string(buf);
}

static int print_json(const struct common_opts *o, const uint64_t *ids,
		      const struct fr_client_rows *r)
{
	json_t *root, *rows;
	int rc = EXIT_RUNTIME;

	root = json_pack("{s:s, s:s, s:I}", "model", o->model, "table",
			 o->table, "dim", (json_int_t)r->dim);
	rows = json_array();
	if (!root || !rows)
		goto out;
	for (uint32_t i = 0; i < r->n; i++) {
		json_t *vals = json_array(), *row;

		for (uint32_t j = 0; j < r->dim; j++) {
			float v = r->values[(size_t)i * r->dim + j];

			/* JSON has no NaN or infinity. */
			json_array_append_new(vals, isfinite(v)
							    ? json_real(v)
							    : json_null());
		}
		row = json_object();
		json_object_set_new(row, "id", json_u64(ids[i]));
		json_object_set_new(row, "version", json_u64(r->versions[i]));
		json_object_set_new(row, "origin",
				    json_integer(r->origins[i]));
		json_object_set_new(row, "values", vals);
		json_array_append_new(rows, row);
	}
	json_object_set_new(root, "rows", rows);
	rows = NULL;
	if (json_dumpf(root, stdout, JSON_COMPACT | JSON_REAL_PRECISION(9)) ==
	    0) {
		putchar('\n');
		rc = 0;
	}
out:
	json_decref(rows);
	json_decref(root);
	if (rc)
		fprintf(stderr, "freshet lookup: cannot build the JSON output\n");
	return rc;
}

static void print_text(const uint64_t *ids, const struct fr_client_rows *r)
{
	for (uint32_t i = 0; i < r->n; i++) {
		printf("%llu %llu", (unsigned long long)ids[i],
		       (unsigned long long)r->versions[i]);
		/* %.9g: enough digits to read back the same float32. */
		for (uint32_t j = 0; j < r->dim; j++)
			printf(" %.9g", r->values[(size_t)i * r->dim + j]);
		putchar('\n');
	}
}

static int cmd_lookup(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "node", required_argument, NULL, 'n' },
		{ "model", required_argument, NULL, 'm' },
		{ "table", required_argument, NULL, 't' },
		{ "ids", required_argument, NULL, 'I' },
		{ "json", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct common_opts o = { .cmd = "lookup" };
	struct fr_client_rows r = { 0 };
	const char *idstr = NULL;
	bool json = false;
	uint64_t timeout = 0, *ids = NULL;
	uint32_t n = 0;
	struct fr_client *c;
	enum fr_err err;
	int ch, rc;

	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (ch) {
		case 'n': o.node = optarg; break;
		case 'm': o.model = optarg; break;
		case 't': o.table = optarg; break;
		case 'I': idstr = optarg; break;
		case 'j': json = true; break;
		case 'T':
			if ((rc = parse_ms(o.cmd, "--timeout", optarg, INT32_MAX,
					   &timeout)))
				return rc;
			break;
		case 'h':
			fputs(lookup_help, stdout);
			return 0;
		default:
			return bad_option(o.cmd, ch, argv);
		}
	}
	if (optind < argc)
		return usage_error(o.cmd, "unexpected argument '%s'",
				   argv[optind]);
	if ((rc = common_check(&o)))
		return rc;
	if (!idstr)
		return usage_error(o.cmd, "--ids is required");
	if (cli_parse_ids(idstr, &ids, &n))
		return usage_error(o.cmd, "%s", fr_errmsg());
	o.timeout_ms = (int)timeout;

	c = connect_node(&o);
	if (!c) {
		free(ids);
		return EXIT_RUNTIME;
	}
	err = fr_client_lookup_rows(c, o.model, o.table, ids, n, &r);
	if (err) {
		fprintf(stderr, "freshet lookup: node %s: %s: %s\n", o.node,
			fr_strerror(err), fr_client_errmsg(c));
		rc = EXIT_RUNTIME;
	} else if (json) {
		rc = print_json(&o, ids, &r);
	} else {
		print_text(ids, &r);
		rc = 0;
	}
	fr_client_rows_fini(&r);
	fr_client_close(c);
	free(ids);
	return rc;
}

/* ========================================================================
 * main
 * ===================================================================== */

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;
	int rc;

	/* Let the library's details (fr_errmsg) carry the message; our own
	 * log lines would only repeat it. */
	fr_log_set_level(FR_LOG_WARN);
	if (!cmd) {
		fputs(main_help, stderr);
		return EXIT_USAGE;
	}
	if (strcmp(cmd, "publish") == 0) {
		rc = cmd_publish(argc - 1, argv + 1);
	} else if (strcmp(cmd, "lookup") == 0) {
		rc = cmd_lookup(argc - 1, argv + 1);
	} else if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 ||
		   strcmp(cmd, "-h") == 0) {
		const char *what = argc > 2 ? argv[2] : "";

		if (strcmp(what, "publish") == 0) {
			fputs(publish_help, stdout);
		} else if (strcmp(what, "lookup") == 0) {
			fputs(lookup_help, stdout);
		} else if (!*what) {
			fputs(main_help, stdout);
		} else {
			fprintf(stderr, "freshet help: no command '%s'\n",
				what);
			return EXIT_USAGE;
		}
		rc = 0;
	} else if (strcmp(cmd, "--version") == 0 ||
		   strcmp(cmd, "-V") == 0) {
		printf("freshet %s (protocol version %d)\n", FRESHET_VERSION,
		       PROTO_VERSION);
		rc = 0;
	} else {
		fprintf(stderr, "freshet: unknown command '%s'\n\n%s", cmd,
			main_help);
		rc = EXIT_USAGE;
	}
	if (fflush(stdout) != 0 && rc == 0) {
		fprintf(stderr, "freshet: cannot write the output\n");
		rc = EXIT_RUNTIME;
	}
	return rc;
}
