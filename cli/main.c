/*
 * main.c — the `freshet` command: publish rows to a node and look rows up,
 * on top of the C client library (client/client.h), and keep the model
 * registry in ZooKeeper (model create/list/describe, through topology.h's
 * admin client).  docs/cli.md is its manual; `freshet help` prints the
 * short form.
 *
 * publish reads and checks ALL of its input before it connects, so a bad
 * line N publishes nothing (and is exit 2 even when the node is
 * unreachable); without --dim it then asks the node for the table's dim
 * and checks the input against it before sending anything.  model create
 * checks the whole definition before it connects, so a bad spec writes
 * nothing.  Exit codes: 0 done, 1 runtime failure (could not connect, the
 * node or ZooKeeper refused: the message is printed), 2 usage or input
 * error (nothing was sent), 3 (model list, status) done, but something is
 * flagged.
 *
 * Not here: parsing of rows, ids and table specs (input.c, unit-tested),
 * what every command shares (cliutil.c), the protocol (client/, proto/),
 * ZooKeeper (topology/), `freshet status` (status*.c), rollback, history
 * and role (rollback.c).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "cli/input.h"
#include "client/client.h"
#include "proto/proto.h"
#include "topology/topology.h"


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
	"a bad line publishes nothing (exit 2).\n"
	"\n"
	"  --node HOST:PORT   the node ([ADDR]:PORT for IPv6)\n"
	"  --model M          model name, 1..63 bytes of [A-Za-z0-9_.-]\n"
	"  --table T          table name, the same rule\n"
	"  --input FILE|-     rows to publish (default -, standard input)\n"
	"                     text: one row per line, ROW_ID V0 V1 ... V(dim-1)\n"
	"                     blank lines and lines starting with # are skipped\n"
	"  --binary           the input is the binary FRIN format (docs/cli.md)\n"
	"  --dim D            values per row (default: the table's, asked of\n"
	"                     the node once the input is checked: every line\n"
	"                     has as many as the first; binary input: the file\n"
	"                     header's)\n"
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
	"  model     create, list, describe models in ZooKeeper\n"
	"            (freshet model --help)\n"
	"  status    the cluster at a glance (freshet status --help)\n"
	"  rollback  roll a model back to a cut on every node\n"
	"            (freshet rollback --help)\n"
	"  history   a model's rollbacks and health changes\n"
	"            (freshet history --help)\n"
	"  role      set, clear or list per-model node roles\n"
	"            (freshet role --help)\n"
	"  help [COMMAND]\n"
	"\n"
	"  --version  print the version\n"
	"  --help     this text\n"
	"\n"
	"Manual: docs/cli.md.\n";

/* Options shared by publish and lookup. */
struct common_opts {
	const char *cmd;
	const char *node;
	char host[FR_HOST_MAX + 1];
	uint16_t port;
	const char *model, *table;
	uint64_t timeout_ms;       /* 0: the client's default */
};

#define NODE_LONGOPTS                                         \
	{ "node", required_argument, NULL, 'n' },             \
	{ "model", required_argument, NULL, 'm' },            \
	{ "table", required_argument, NULL, 't' },            \
	{ "timeout", required_argument, NULL, 'T' },          \
	{ "help", no_argument, NULL, 'h' }

/* cli_getopt_next, with NODE_LONGOPTS' options taken into o. */
static int node_getopt_next(struct cli_getopt *g, struct common_opts *o,
			    int *rc)
{
	int ch;

	for (;;) {
		switch ((ch = cli_getopt_next(g, rc))) {
		case 'n': o->node = optarg; break;
		case 'm': o->model = optarg; break;
		case 't': o->table = optarg; break;
		case 'T':
			if ((*rc = cli_parse_uint_opt(o->cmd, "--timeout",
						      optarg, INT32_MAX,
						      &o->timeout_ms)))
				return CLI_OPT_STOP;
			break;
		default:
			return ch;
		}
	}
}

/* Check what both commands need; exit code or 0. */
static int common_check(struct common_opts *o)
{
	int rc;

	if (!o->node)
		return cli_usage_error(o->cmd, "--node HOST:PORT is required");
	if (fr_parse_hostport("--node", o->node, o->host, sizeof(o->host),
			      &o->port))
		return cli_usage_error(o->cmd, "%s", fr_errmsg());
	if ((rc = cli_name_opt(o->cmd, "--model", o->model, SHARD_NAME_MAX)))
		return rc;
	return cli_name_opt(o->cmd, "--table", o->table, SHARD_NAME_MAX);
}

static struct fr_client *connect_node(const struct common_opts *o)
{
	enum fr_err err;
	struct fr_client *c;

	c = fr_client_connect(o->host, o->port, (int)o->timeout_ms, &err);
	if (!c)
		cli_error(o->cmd, "cannot use node %s: %s: %s", o->node,
			  fr_strerror(err), fr_errmsg());
	return c;
}

/* ========================================================================
 * publish
 * ===================================================================== */

/* Where the input comes from, for messages. */
static const char *input_name(const char *input)
{
	return strcmp(input, "-") ? input : "standard input";
}

/* All of the input (--input, binary or text), read and checked; 0 or
 * CLI_EXIT_USAGE (printed). */
static int publish_read(const char *input, bool binary, uint32_t dim,
			struct cli_input *in)
{
	enum fr_err err;
	FILE *f = stdin;

	if (strcmp(input, "-") != 0 && !(f = fopen(input, "rb"))) {
		cli_error("publish", "--input '%s': %s", input,
			  strerror(errno));
		return CLI_EXIT_USAGE;
	}
	err = binary ? cli_input_read_binary(in, f, dim)
		     : cli_input_read_text(in, f, dim);
	if (f != stdin)
		fclose(f);
	if (err) {
		cli_error("publish", "%s: %s; nothing published",
			  input_name(input), fr_errmsg());
		return CLI_EXIT_USAGE;
	}
	return 0;
}

/* Without --dim, text input took its dim from its first line: ask the
 * node for the table's (a one-row lookup) and check.  0, CLI_EXIT_USAGE
 * (the input does not fit the table) or CLI_EXIT_RUNTIME (printed). */
static int publish_check_dim(const struct common_opts *o,
			     struct fr_client *c, const struct cli_input *in,
			     const char *input)
{
	struct fr_client_rows probe = { 0 };
	uint64_t row0 = 0;
	enum fr_err err;

	if (!in->dim_line)
		return 0;     /* --dim given, or binary: the node checks */
	err = fr_client_lookup_rows(c, o->model, o->table, &row0, 1, &probe);
	if (err) {
		cli_error(o->cmd, "node %s: model '%s' table '%s': %s: %s; "
			  "nothing published", o->node, o->model, o->table,
			  fr_strerror(err), fr_client_errmsg(c));
		return CLI_EXIT_RUNTIME;
	}
	err = cli_input_check_dim(in, probe.dim, o->table);
	fr_client_rows_fini(&probe);
	if (err) {
		cli_error(o->cmd, "%s: %s; nothing published",
			  input_name(input), fr_errmsg());
		return CLI_EXIT_USAGE;
	}
	return 0;
}

static int cmd_publish(int argc, char **argv)
{
	static const struct option opts[] = {
		NODE_LONGOPTS,
		{ "input", required_argument, NULL, 'i' },
		{ "binary", no_argument, NULL, 'b' },
		{ "dim", required_argument, NULL, 'd' },
		{ "batch-rows", required_argument, NULL, 'B' },
		{ "key", required_argument, NULL, 'k' },
		{ "busy-retry", required_argument, NULL, 'R' },
		{ "verbose", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	struct common_opts o = { .cmd = "publish" };
	const char *input = "-", *key = NULL;
	bool binary = false, verbose = false;
	uint64_t dim = 0, batch = 0, busy = 30000, max_rows;
	struct cli_getopt g;
	struct cli_input in;
	struct fr_client *c = NULL;
	uint32_t nbatches, dropped;
	enum fr_err err;
	int ch, rc;

	cli_getopt_init(&g, o.cmd, argc, argv, opts, publish_help, NULL);
	while ((ch = node_getopt_next(&g, &o, &rc)) != CLI_OPT_END) {
		switch (ch) {
		case CLI_OPT_STOP: return rc;
		case 'i': input = optarg; break;
		case 'b': binary = true; break;
		case 'k': key = optarg; break;
		case 'v': verbose = true; break;
		case 'd':
			if ((rc = cli_parse_uint_opt(o.cmd, "--dim", optarg,
						     CLI_DIM_MAX, &dim)))
				return rc;
			if (dim == 0)
				return cli_usage_error(o.cmd, "--dim 0: "
						       "expected 1..%d",
						       CLI_DIM_MAX);
			break;
		case 'B':
			if ((rc = cli_parse_uint_opt(o.cmd, "--batch-rows",
						     optarg, UINT32_MAX,
						     &batch)))
				return rc;
			if (batch == 0)
				return cli_usage_error(o.cmd, "--batch-rows 0: "
						       "expected >= 1");
			break;
		case 'R':
			if ((rc = cli_parse_uint_opt(o.cmd, "--busy-retry",
						     optarg, UINT32_MAX,
						     &busy)))
				return rc;
			break;
		}
	}
	if ((rc = cli_getopt_no_args(&g)) || (rc = common_check(&o)))
		return rc;
	if (key && !cli_text_ok(key, PROTO_KEY_MAX))
		return cli_usage_error(o.cmd, "--key '%s': expected 1..%d "
				       "printable ASCII characters", key,
				       PROTO_KEY_MAX);

	/* All of the input, checked, before anything connects. */
	cli_input_init(&in);
	if ((rc = publish_read(input, binary, (uint32_t)dim, &in)))
		goto out;
	dropped = cli_input_dedup(&in);
	if (dropped)
		cli_error(o.cmd, "note: %u earlier occurrence%s of repeated "
			  "row ids dropped (the last line wins)", dropped,
			  dropped == 1 ? "" : "s");

	/* Every batch must fit one frame. */
	max_rows = (SHARD_FRAME_MAX_DEFAULT - PUBLISH_OVERHEAD) /
		   (8 + 4 * (uint64_t)in.dim);
	if (batch == 0)
		batch = in.n;
	if (batch > max_rows) {
		rc = cli_usage_error(o.cmd, "%llu rows of dim %u in one "
				     "request exceed the %u-byte frame limit: "
				     "use --batch-rows %llu or less",
				     (unsigned long long)batch, in.dim,
				     SHARD_FRAME_MAX_DEFAULT,
				     (unsigned long long)max_rows);
		goto out;
	}
	nbatches = (uint32_t)((in.n + batch - 1) / batch);
	if (key && nbatches > 1 &&
	    strlen(key) + 1 + (size_t)snprintf(NULL, 0, "%u", nbatches) >
		    PROTO_KEY_MAX) {
		rc = cli_usage_error(o.cmd, "--key '%s': with %u batches the "
				     "keys K#i would exceed %d characters",
				     key, nbatches, PROTO_KEY_MAX);
		goto out;
	}

	c = connect_node(&o);
	if (!c) {
		rc = CLI_EXIT_RUNTIME;
		goto out;
	}
	if ((rc = publish_check_dim(&o, c, &in, input)))
		goto out;
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
			cli_error(o.cmd, "batch %u of %u (%u row%s) to node %s "
				  "failed: %s: %s", b + 1, nbatches, n,
				  n == 1 ? "" : "s", o.node, fr_strerror(err),
				  fr_client_errmsg(c));
			if (b)
				cli_error(o.cmd, "batches 1..%u were published "
					  "(versions above)", b);
			rc = CLI_EXIT_RUNTIME;
			break;
		}
		printf("%llu\n", (unsigned long long)version);
		fflush(stdout);
		if (verbose)
			cli_error(o.cmd, "batch %u/%u: %u row%s of dim %u -> "
				  "version %llu (node %u)%s%s", b + 1, nbatches,
				  n, n == 1 ? "" : "s", in.dim,
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

static json_t *lookup_json(const struct common_opts *o, const uint64_t *ids,
			   const struct fr_client_rows *r)
{
	json_t *root, *rows;

	root = json_pack("{s:s, s:s, s:I, s:[]}", "model", o->model, "table",
			 o->table, "dim", (json_int_t)r->dim, "rows");
	rows = json_object_get(root, "rows");
	for (uint32_t i = 0; root && i < r->n; i++) {
		json_t *vals = json_array();

		for (uint32_t j = 0; j < r->dim; j++) {
			float v = r->values[(size_t)i * r->dim + j];

			/* JSON has no NaN or infinity. */
			json_array_append_new(vals, isfinite(v)
							    ? json_real(v)
							    : json_null());
		}
		json_array_append_new(rows, json_pack(
			"{s:o, s:o, s:I, s:o}", "id", cli_json_u64(ids[i]),
			"version", cli_json_u64(r->versions[i]),
			"origin", (json_int_t)r->origins[i], "values", vals));
	}
	return root;
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
		NODE_LONGOPTS,
		{ "ids", required_argument, NULL, 'I' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	struct common_opts o = { .cmd = "lookup" };
	struct fr_client_rows r = { 0 };
	const char *idstr = NULL;
	bool json = false;
	uint64_t *ids = NULL;
	uint32_t n = 0;
	struct cli_getopt g;
	struct fr_client *c;
	enum fr_err err;
	int ch, rc;

	cli_getopt_init(&g, o.cmd, argc, argv, opts, lookup_help, NULL);
	while ((ch = node_getopt_next(&g, &o, &rc)) != CLI_OPT_END) {
		switch (ch) {
		case CLI_OPT_STOP: return rc;
		case 'I': idstr = optarg; break;
		case 'j': json = true; break;
		}
	}
	if ((rc = cli_getopt_no_args(&g)) || (rc = common_check(&o)))
		return rc;
	if (!idstr)
		return cli_usage_error(o.cmd, "--ids is required");
	if (cli_parse_ids(idstr, &ids, &n))
		return cli_usage_error(o.cmd, "%s", fr_errmsg());

	c = connect_node(&o);
	if (!c) {
		free(ids);
		return CLI_EXIT_RUNTIME;
	}
	err = fr_client_lookup_rows(c, o.model, o.table, ids, n, &r);
	if (err) {
		cli_error(o.cmd, "node %s: %s: %s", o.node, fr_strerror(err),
			  fr_client_errmsg(c));
		rc = CLI_EXIT_RUNTIME;
	} else if (json) {
		rc = cli_print_json_line(o.cmd, lookup_json(&o, ids, &r));
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
 * model create | list | describe
 * ===================================================================== */

static const char model_help[] =
	"usage: freshet model create --zk HOSTS [--cluster NAME] --name M\n"
	"                            --table NAME:ROWS:DIM[:f32|f16] "
	"[--table ...]\n"
	"                            --shards N [--priority P] "
	"[--timeout MS]\n"
	"       freshet model list [--zk HOSTS] [--cluster NAME] [--json]\n"
	"       freshet model describe M [--zk HOSTS] [--cluster NAME] "
	"[--json]\n"
	"\n"
	"The model registry in ZooKeeper: /freshet/<cluster>/models/<M>.\n"
	"A definition is written once and never changed.\n"
	"\n"
	CLI_ZK_HELP
	"  --name M            model name, 1..63 bytes of [A-Za-z0-9_.-], not\n"
	"                      . or ..\n"
	"  --table SPEC        NAME:ROWS:DIM[:f32|f16] (dtype f32 when left\n"
	"                      out); give it once per table, 1..64 tables\n"
	"  --shards N          shards per table, 1..1048576\n"
	"  --priority P        larger is more urgent (default 0)\n"
	"  --json              list, describe: one JSON object\n"
	"\n"
	"Exit: 0 done, 1 ZooKeeper unreachable or refused (e.g. the model\n"
	"already exists, or is not there), 2 usage error (nothing written),\n"
	"3 list: listed, but some definitions are malformed (warned).\n";

static json_t *model_json(const struct shard_model_def *def)
{
	json_t *o, *tables;
	uint64_t total = 0;

	tables = json_array();
	for (uint32_t i = 0; tables && i < def->ntables; i++) {
		const struct shard_table_def *t = &def->tables[i];
		uint64_t bytes;

		if (!fr_mul_size(t->rows, shard_row_bytes(t), &bytes))
			bytes = UINT64_MAX;
		if (!fr_add_size(total, bytes, &total))
			total = UINT64_MAX;
		json_array_append_new(tables, json_pack(
			"{s:s,s:o,s:I,s:s,s:o}", "name", t->name,
			"rows", cli_json_u64(t->rows),
			"dim", (json_int_t)t->dim,
			"dtype", shard_dtype_name(t->dtype),
			"bytes", cli_json_u64(bytes)));
	}
	o = json_pack("{s:s,s:I,s:I,s:o,s:o}", "name", def->name,
		      "priority", (json_int_t)def->priority,
		      "shards", (json_int_t)def->shards,
		      "tables", tables, "bytes", cli_json_u64(total));
	return o;
}

/* One more --table spec into def: 0, or CLI_EXIT_USAGE (printed). */
static int add_table(const char *cmd, struct shard_model_def *def,
		     const char *spec)
{
	struct shard_table_def *t = &def->tables[def->ntables];
	char shown[80];

	if (def->ntables == SHARD_TABLES_MAX)
		return cli_usage_error(cmd, "more than %d --table options",
				       SHARD_TABLES_MAX);
	if (cli_parse_table(spec, t))
		return cli_usage_error(cmd, "%s", fr_errmsg());
	for (uint32_t i = 0; i < def->ntables; i++)
		if (strcmp(def->tables[i].name, t->name) == 0)
			return cli_usage_error(cmd, "--table '%s': table '%s' "
					       "is given twice, expected "
					       "unique names",
					       fr_show(shown, sizeof(shown),
						       spec), t->name);
	def->ntables++;
	return 0;
}

static int model_create(int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_ZK_LONGOPTS,
		{ "name", required_argument, NULL, 'n' },
		{ "table", required_argument, NULL, 't' },
		{ "shards", required_argument, NULL, 's' },
		{ "priority", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd = "model create";
	struct shard_model_def def;
	struct cli_zk_opts z;
	struct cli_getopt g;
	struct topo_admin *a;
	uint64_t shards = 0, prio = 0;
	const char *name = NULL;
	enum fr_err err;
	int ch, rc;

	memset(&def, 0, sizeof(def));
	cli_getopt_init(&g, cmd, argc, argv, opts, model_help, &z);
	while ((ch = cli_getopt_next(&g, &rc)) != CLI_OPT_END) {
		switch (ch) {
		case CLI_OPT_STOP: return rc;
		case 'n': name = optarg; break;
		case 't':
			if ((rc = add_table(cmd, &def, optarg)))
				return rc;
			break;
		case 's':
			if ((rc = cli_parse_uint_opt(cmd, "--shards", optarg,
						     SHARD_SHARDS_MAX,
						     &shards)))
				return rc;
			if (shards == 0)
				return cli_usage_error(cmd, "--shards 0: "
						       "expected 1..%d",
						       SHARD_SHARDS_MAX);
			break;
		case 'p':
			if ((rc = cli_parse_uint_opt(cmd, "--priority", optarg,
						     UINT32_MAX, &prio)))
				return rc;
			break;
		}
	}
	if ((rc = cli_getopt_no_args(&g)) || (rc = cli_zk_check(cmd, &z)) ||
	    (rc = cli_name_opt(cmd, "--name", name, SHARD_NAME_MAX)))
		return rc;
	if (def.ntables == 0)
		return cli_usage_error(cmd, "at least one --table "
				       "NAME:ROWS:DIM[:f32|f16] is required");
	if (shards == 0)
		return cli_usage_error(cmd, "--shards is required");
	snprintf(def.name, sizeof(def.name), "%s", name);
	def.shards = (uint32_t)shards;
	def.priority = (uint32_t)prio;
	if (shard_model_validate(&def))
		return cli_usage_error(cmd, "%s", fr_errmsg());

	a = cli_zk_connect(cmd, &z, z.timeout_ms, &rc);
	if (!a)
		return rc;
	err = topo_admin_model_create(a, &def);
	topo_admin_close(a);
	if (err == FR_ERR_EXISTS) {
		cli_error(cmd, "model %s already exists (definitions are "
			  "immutable)", def.name);
		return CLI_EXIT_RUNTIME;
	}
	if (err) {
		cli_error(cmd, "model %s not created: %s", def.name,
			  cli_errtext(err));
		return err == FR_ERR_INVAL ? CLI_EXIT_USAGE : CLI_EXIT_RUNTIME;
	}
	printf("created model %s (%u shard%s, %u table%s)\n", def.name,
	       def.shards, def.shards == 1 ? "" : "s", def.ntables,
	       def.ntables == 1 ? "" : "s");
	return 0;
}

/* "users:1000000:64:f32 items:5000:32:f16", the create spec form. */
static void print_tables_summary(const struct shard_model_def *def)
{
	for (uint32_t i = 0; i < def->ntables; i++)
		printf("%s%s:%llu:%u:%s", i ? " " : "", def->tables[i].name,
		       (unsigned long long)def->tables[i].rows,
		       def->tables[i].dim,
		       shard_dtype_name(def->tables[i].dtype));
}

/* What model list found for one child of models/. */
struct listed {
	enum { LISTED_OK, LISTED_GONE, LISTED_BAD } state;
	struct shard_model_def def;
	char why[512];          /* LISTED_BAD: names the path */
};

/* Read one listed model; FR_OK unless ZooKeeper itself failed. */
static enum fr_err list_one(struct topo_admin *a, const char *cluster,
			    const char *name, struct listed *l)
{
	char shown[80];
	enum fr_err err;

	err = topo_admin_model_get(a, name, &l->def);
	switch (err) {
	case FR_OK:
		l->state = LISTED_OK;
		return FR_OK;
	case FR_ERR_NOTFOUND:   /* deleted since the listing */
		l->state = LISTED_GONE;
		return FR_OK;
	case FR_ERR_INVAL:      /* a child name no model can have */
		l->state = LISTED_BAD;
		snprintf(l->why, sizeof(l->why), "/freshet/%s/models/%s: %s",
			 cluster, fr_show(shown, sizeof(shown), name),
			 fr_errmsg());
		return FR_OK;
	case FR_ERR_CORRUPT:
	case FR_ERR_TOOBIG:     /* the detail names the path */
		l->state = LISTED_BAD;
		snprintf(l->why, sizeof(l->why), "%s", fr_errmsg());
		return FR_OK;
	default:
		return err;
	}
}

/* The options of model list and describe: the ZooKeeper ones and
 * --json.  0 to go on, -1 when --help was printed, else the exit code
 * (printed). */
static int zk_json_opts(struct cli_getopt *g, const char *cmd, int argc,
			char **argv, struct cli_zk_opts *z, bool *json)
{
	static const struct option opts[] = {
		CLI_ZK_LONGOPTS,
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	int ch, rc;

	cli_getopt_init(g, cmd, argc, argv, opts, model_help, z);
	while ((ch = cli_getopt_next(g, &rc)) != CLI_OPT_END) {
		if (ch == CLI_OPT_STOP)
			return rc ? rc : -1;
		*json = true;   /* 'j', the only other option */
	}
	return 0;
}

static int model_list(int argc, char **argv)
{
	const char *cmd = "model list";
	struct listed *ls = NULL;
	struct cli_zk_opts z;
	struct cli_getopt g;
	struct topo_admin *a;
	char **names = NULL, shown[80];
	bool json = false;
	json_t *root, *jm, *jb;
	uint32_t n = 0, nok = 0, nbad = 0;
	int rc;

	if ((rc = zk_json_opts(&g, cmd, argc, argv, &z, &json)) ||
	    (rc = cli_getopt_no_args(&g)) || (rc = cli_zk_check(cmd, &z)))
		return rc < 0 ? 0 : rc;

	a = cli_zk_connect(cmd, &z, z.timeout_ms, &rc);
	if (!a)
		return rc;
	rc = CLI_EXIT_RUNTIME;
	if (topo_admin_model_list(a, &names, &n)) {
		cli_error(cmd, "%s", fr_errmsg());
		goto out;
	}
	ls = calloc(n ? n : 1, sizeof(*ls));
	if (!ls) {
		cli_error(cmd, "out of memory");
		goto out;
	}
	for (uint32_t i = 0; i < n; i++) {
		if (list_one(a, z.cluster, names[i], &ls[i])) {
			cli_error(cmd, "%s", fr_errmsg());
			goto out;
		}
		if (ls[i].state == LISTED_BAD) {
			cli_error(cmd, "warning: %s; skipped", ls[i].why);
			nbad++;
		}
		nok += ls[i].state == LISTED_OK;
	}

	if (json) {
		root = json_pack("{s:s,s:[],s:[]}", "cluster", z.cluster,
				 "models", "malformed");
		jm = json_object_get(root, "models");
		jb = json_object_get(root, "malformed");
		for (uint32_t i = 0; root && i < n; i++) {
			if (ls[i].state == LISTED_OK)
				json_array_append_new(jm,
						      model_json(&ls[i].def));
			else if (ls[i].state == LISTED_BAD)
				json_array_append_new(jb, json_pack(
					"{s:s,s:s}", "name",
					fr_show(shown, sizeof(shown),
						names[i]),
					"error", ls[i].why));
		}
		rc = cli_print_json_line(cmd, root);
	} else {
		if (nok + nbad)
			printf("  %-24s %10s %8s  %s\n", "MODEL", "PRIORITY",
			       "SHARDS", "TABLES (NAME:ROWS:DIM:DTYPE)");
		for (uint32_t i = 0; i < n; i++) {
			if (ls[i].state == LISTED_OK) {
				printf("  %-24s %10u %8u  ", ls[i].def.name,
				       ls[i].def.priority, ls[i].def.shards);
				print_tables_summary(&ls[i].def);
				putchar('\n');
			} else if (ls[i].state == LISTED_BAD) {
				printf("! %-24s malformed (see the warning "
				       "on standard error)\n",
				       fr_show(shown, sizeof(shown),
					       names[i]));
			}
		}
		rc = 0;
	}
	if (!rc && nbad)
		rc = CLI_EXIT_UNHEALTHY;
out:
	free(ls);
	free(names);
	topo_admin_close(a);
	return rc;
}

/* "1.5 GiB": sizes in binary units for people. */
static const char *human_bytes(uint64_t v, char *buf, size_t cap)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB",
					     "PiB", "EiB" };
	double d = (double)v;
	unsigned u = 0;

	while (d >= 1024 && u + 1 < sizeof(unit) / sizeof(unit[0])) {
		d /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, cap, "%llu B", (unsigned long long)v);
	else
		snprintf(buf, cap, "%.1f %s", d, unit[u]);
	return buf;
}

static int model_describe(int argc, char **argv)
{
	const char *cmd = "model describe", *name;
	struct shard_model_def def;
	struct cli_zk_opts z;
	struct cli_getopt g;
	struct topo_admin *a;
	uint64_t total = 0, bytes;
	bool json = false;
	char hb[32];
	enum fr_err err;
	int rc;

	if ((rc = zk_json_opts(&g, cmd, argc, argv, &z, &json)))
		return rc < 0 ? 0 : rc;
	if (optind >= argc)
		return cli_usage_error(cmd, "which model? (freshet model "
				       "describe M --zk HOSTS)");
	name = argv[optind];
	if ((rc = cli_getopt_args_from(&g, optind + 1)) ||
	    (rc = cli_name_opt(cmd, "model name", name, SHARD_NAME_MAX)) ||
	    (rc = cli_zk_check(cmd, &z)))
		return rc;

	a = cli_zk_connect(cmd, &z, z.timeout_ms, &rc);
	if (!a)
		return rc;
	err = topo_admin_model_get(a, name, &def);
	topo_admin_close(a);
	if (err) {
		cli_error(cmd, "%s", cli_errtext(err));
		return CLI_EXIT_RUNTIME;
	}
	if (json)
		return cli_print_json_line(cmd, model_json(&def));

	printf("model     %s\npriority  %u\nshards    %u\ntables    %u\n\n",
	       def.name, def.priority, def.shards, def.ntables);
	printf("%-24s %20s %6s %6s %20s\n", "TABLE", "ROWS", "DIM", "DTYPE",
	       "BYTES");
	for (uint32_t i = 0; i < def.ntables; i++) {
		const struct shard_table_def *t = &def.tables[i];

		if (!fr_mul_size(t->rows, shard_row_bytes(t), &bytes))
			bytes = UINT64_MAX;
		if (!fr_add_size(total, bytes, &total))
			total = UINT64_MAX;
		printf("%-24s %20llu %6u %6s %20llu\n", t->name,
		       (unsigned long long)t->rows, t->dim,
		       shard_dtype_name(t->dtype), (unsigned long long)bytes);
	}
	printf("%-24s %20s %6s %6s %20llu (%s)\n", "total", "", "", "",
	       (unsigned long long)total, human_bytes(total, hb, sizeof(hb)));
	return 0;
}

static int cmd_model(int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : NULL;

	if (!sub) {
		fputs(model_help, stderr);
		return CLI_EXIT_USAGE;
	}
	if (strcmp(sub, "create") == 0)
		return model_create(argc - 1, argv + 1);
	if (strcmp(sub, "list") == 0)
		return model_list(argc - 1, argv + 1);
	if (strcmp(sub, "describe") == 0)
		return model_describe(argc - 1, argv + 1);
	if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 ||
	    strcmp(sub, "help") == 0) {
		fputs(model_help, stdout);
		return 0;
	}
	return cli_usage_error("model", "unknown subcommand '%s', expected "
			       "create, list or describe", sub);
}

/* ========================================================================
 * main
 * ===================================================================== */

static const struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *help;
} commands[] = {
	{ "publish", cmd_publish, publish_help },
	{ "lookup", cmd_lookup, lookup_help },
	{ "model", cmd_model, model_help },
	{ "status", cmd_status, status_help },
	{ "rollback", cmd_rollback, rollback_help },
	{ "history", cmd_history, history_help },
	{ "role", cmd_role, role_help },
};

static const struct command *command_find(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;
	const struct command *c;
	int rc;

	/* Let the library's details (fr_errmsg) carry the message; our own
	 * log lines would only repeat it. */
	fr_log_set_level(FR_LOG_WARN);
	cli_set_prog("freshet");
	if (!cmd) {
		fputs(main_help, stderr);
		return CLI_EXIT_USAGE;
	}
	if ((c = command_find(cmd))) {
		rc = c->run(argc - 1, argv + 1);
	} else if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 ||
		   strcmp(cmd, "-h") == 0) {
		const char *what = argc > 2 ? argv[2] : "";

		if (!*what) {
			fputs(main_help, stdout);
		} else if ((c = command_find(what))) {
			fputs(c->help, stdout);
		} else {
			cli_error("help", "no command '%s'", what);
			return CLI_EXIT_USAGE;
		}
		rc = 0;
	} else if (strcmp(cmd, "--version") == 0 ||
		   strcmp(cmd, "-V") == 0) {
		printf("freshet %s (protocol version %d)\n", fr_version(),
		       PROTO_VERSION);
		rc = 0;
	} else {
		fprintf(stderr, "freshet: unknown command '%s'\n\n%s", cmd,
			main_help);
		rc = CLI_EXIT_USAGE;
	}
	if (fflush(stdout) != 0 && rc == 0) {
		cli_error(NULL, "cannot write the output");
		rc = CLI_EXIT_RUNTIME;
	}
	return rc;
}
