/*
 * test_node_config.c — CUnit suite for freshetd's configuration
 * (node/config.c): defaults, a full file that survives node_config_print and a
 * reload unchanged, every class of error with a detail naming the file,
 * line, key and what is allowed, command-line overrides, and the example
 * file and docs staying in step with the key table.  Config files are
 * written by the tests into a temp dir under $FRESHET_TEST_TMP and removed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "node/config.h"
#include "testutil.h"
#include "unit_main.h"

#ifndef FRESHET_SOURCE_DIR
#define FRESHET_SOURCE_DIR "."
#endif

static char tmp_root[4096];
static unsigned file_seq;

/* Every needle (NULL-terminated list) is in the detail. */
static bool errmsg_has_all(const char *const *needles)
{
	bool ok = true;

	for (; *needles; needles++)
		ok = errmsg_has(*needles) && ok;
	return ok;
}

static int suite_init(void)
{
	const char *root = getenv("FRESHET_TEST_TMP");

	if (!root || !*root)
		root = "/tmp";
	(void)mkdir(root, 0755);
	snprintf(tmp_root, sizeof(tmp_root), "%s/cfgXXXXXX", root);
	return mkdtemp(tmp_root) ? 0 : -1;
}

static int suite_fini(void)
{
	char path[4200];

	for (unsigned i = 0; i < file_seq; i++) {
		snprintf(path, sizeof(path), "%s/c%u.conf", tmp_root, i);
		(void)unlink(path);
	}
	return rmdir(tmp_root) == 0 ? 0 : -1;
}

/* Write bytes to a fresh file in the temp dir; returns its path (static
 * buffer, valid until the next call). */
static const char *write_bytes(const char *data, size_t len)
{
	static char path[4200];
	FILE *f;

	snprintf(path, sizeof(path), "%s/c%u.conf", tmp_root, file_seq++);
	f = fopen(path, "wb");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(fwrite(data, 1, len, f), len);
	fclose(f);
	return path;
}

static const char *write_text(const char *text)
{
	return write_bytes(text, strlen(text));
}

static struct node_config *cfg_new(void)
{
	struct node_config *c = malloc(sizeof(*c));

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	node_config_defaults(c);
	return c;
}

/* The smallest valid [node] section. */
#define NODE_MIN                                                            \
	"[node]\n"                                                          \
	"id = 1\n"                                                          \
	"listen = 127.0.0.1:7001\n"                                         \
	"admin = 127.0.0.1:8001\n"                                          \
	"data_dir = /tmp/freshet-test/n1\n"

/* Load text on top of defaults; returns the code, leaves the detail. */
static enum fr_err load_text(const char *text, struct node_config *c)
{
	node_config_defaults(c);
	return node_config_load_file(c, write_text(text));
}

/* Load must fail with FR_ERR_INVAL and a detail holding every needle and
 * the file's path. */
static void expect_load_fail(const char *text, const char *const *needles)
{
	struct node_config *c = cfg_new();
	const char *path;
	enum fr_err err;

	path = write_text(text);
	err = node_config_load_file(c, path);
	CU_ASSERT_EQUAL(err, FR_ERR_INVAL);
	CU_ASSERT(errmsg_has(path));
	CU_ASSERT(errmsg_has_all(needles));
	free(c);
}

#define LOAD_FAILS(text, ...)                                               \
	expect_load_fail(text, (const char *const[]){ __VA_ARGS__, NULL })

/* The [node] section's scalars of c. */
static void expect_node(const struct node_config *c, uint32_t id,
			const char *dc,
			const char *cluster, const char *data_dir,
			enum fr_log_level level, const char *backend)
{
	CU_ASSERT_EQUAL(c->node_id, id);
	CU_ASSERT_STRING_EQUAL(c->dc, dc);
	CU_ASSERT_STRING_EQUAL(c->cluster, cluster);
	CU_ASSERT_STRING_EQUAL(c->data_dir, data_dir);
	CU_ASSERT_EQUAL(c->log_level, level);
	CU_ASSERT_STRING_EQUAL(c->backend, backend);
}

/* Model i of c: its name, shards, priority and (a fatal check) number of
 * tables. */
static void expect_model(const struct node_config *c, uint32_t i,
			 const char *name,
			 uint32_t shards, uint32_t priority, uint32_t ntables)
{
	CU_ASSERT_STRING_EQUAL(c->models[i].name, name);
	CU_ASSERT_EQUAL(c->models[i].shards, shards);
	CU_ASSERT_EQUAL(c->models[i].priority, priority);
	CU_ASSERT_EQUAL_FATAL(c->models[i].ntables, ntables);
}

/* ------------------------------------------------------------------------ */

static void test_defaults(void)
{
	struct node_config *c = cfg_new();

	expect_node(c, 0, "dc1", "freshet", "", FR_LOG_INFO, "auto");
	CU_ASSERT_EQUAL(c->listen.port, 0);
	CU_ASSERT_EQUAL(c->max_frame_mb, 64);
	CU_ASSERT_EQUAL(c->publish_queue_max, 1024);
	CU_ASSERT_EQUAL(c->retry_after_ms, 50);
	CU_ASSERT_EQUAL(c->publish_max_rows, 1000000);
	CU_ASSERT_EQUAL(c->digest_interval_ms, 200);
	CU_ASSERT_EQUAL(c->full_interval_ms, 5000);
	CU_ASSERT_EQUAL(c->pull_timeout_ms, 2000);
	CU_ASSERT_EQUAL(c->max_inflight_mb, 64);
	CU_ASSERT_EQUAL(c->max_pull_mb, 16);
	CU_ASSERT_EQUAL(c->link_mbit, 0);
	CU_ASSERT_EQUAL(c->reconnect_min_ms, 100);
	CU_ASSERT_EQUAL(c->reconnect_max_ms, 5000);
	CU_ASSERT_EQUAL(c->undo_kb_per_shard, 1024);
	CU_ASSERT_EQUAL(c->index_cap, 65536);
	CU_ASSERT_EQUAL(c->snapshot_interval_s, 60);
	CU_ASSERT_EQUAL(c->npeers, 0);
	CU_ASSERT_EQUAL(c->nmodels, 0);
	/* Defaults alone lack the required keys. */
	CU_ASSERT_EQUAL(node_config_validate(c), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("[node] id: required key is missing"));
	CU_ASSERT(errmsg_has("1..4294967294"));
	free(c);
}

/* A full configuration, every key away from its default. */
static const char full_text[] =
	"\xEF\xBB\xBF# UTF-8 BOM, then a comment\n"
	"[node]\n"
	"id = 4294967294\n"
	"dc = eu-west.1\n"
	"cluster = prod_A\n"
	"listen = [::1]:7001   ; inline comment\n"
	"admin = localhost:8001\n"
	"data_dir = /var/lib/freshet/node 1\n"
	"log_level = DEBUG\n"
	"backend = cpu\n"
	"max_frame_mb = 1024\n"
	"\n"
	"[ publish ]\n"
	"queue_max = 1\n"
	"retry_after_ms = 60000\n"
	"max_rows = 10000000\n"
	"[gossip]\n"
	"digest_interval_ms = 10\n"
	"full_interval_ms = 3600000\n"
	"pull_timeout_ms = 50\n"
	"max_inflight_mb : 4096\n"
	"max_pull_mb = 1\n"
	"link_mbit = 1000000\n"
	"reconnect_min_ms = 60000\n"
	"reconnect_max_ms = 600000\n"
	"[store]\n"
	"undo_kb_per_shard = 0\n"
	"index_cap = 16\n"
	"snapshot_interval_s = 86400\n"
	"[peers]\n"
	"peer = 1@10.0.0.1:7001\n"
	"peer = 2@[fe80::1%eth0]:65535\n"
	"peer = 3@node-3.example.com:1\n"
	"[model ctr]\n"
	"shards = 16\n"
	"priority = 1\n"
	"table = users:100000:64:f32\n"
	"table = items:50000:32:f16\n"
	"table = bias:7:1\n"
	"[model   rank.v2]\n"
	"shards = 1048576\n"
	"table = t:1000000000000000000:1:f16\n";

static void test_full_roundtrip(void)
{
	struct node_config *c = cfg_new(), *d = cfg_new();
	char *text = NULL, *text2 = NULL;
	size_t len = 0, len2 = 0;
	FILE *f;

	CU_ASSERT_EQUAL_FATAL(load_text(full_text, c), FR_OK);
	CU_ASSERT_EQUAL(node_config_validate(c), FR_OK);
	expect_node(c, 4294967294u, "eu-west.1", "prod_A",
		    "/var/lib/freshet/node 1", FR_LOG_DEBUG, "cpu");
	CU_ASSERT_STRING_EQUAL(c->listen.host, "::1");
	CU_ASSERT_EQUAL(c->listen.port, 7001);
	CU_ASSERT_STRING_EQUAL(c->admin.host, "localhost");
	CU_ASSERT_EQUAL(c->max_inflight_mb, 4096);
	CU_ASSERT_EQUAL(c->publish_queue_max, 1);
	CU_ASSERT_EQUAL(c->undo_kb_per_shard, 0);
	CU_ASSERT_EQUAL(c->snapshot_interval_s, 86400);
	CU_ASSERT_EQUAL_FATAL(c->npeers, 3);
	CU_ASSERT_EQUAL(c->peers[0].id, 1);
	CU_ASSERT_STRING_EQUAL(c->peers[1].addr.host, "fe80::1%eth0");
	CU_ASSERT_EQUAL(c->peers[1].addr.port, 65535);
	CU_ASSERT_STRING_EQUAL(c->peers[2].addr.host, "node-3.example.com");
	CU_ASSERT_EQUAL_FATAL(c->nmodels, 2);
	expect_model(c, 0, "ctr", 16, 1, 3);
	CU_ASSERT_STRING_EQUAL(c->models[0].tables[1].name, "items");
	CU_ASSERT_EQUAL(c->models[0].tables[1].rows, 50000);
	CU_ASSERT_EQUAL(c->models[0].tables[1].dim, 32);
	CU_ASSERT_EQUAL(c->models[0].tables[1].dtype, SHARD_F16);
	CU_ASSERT_EQUAL(c->models[0].tables[2].dtype, SHARD_F32);
	CU_ASSERT_STRING_EQUAL(c->models[1].name, "rank.v2");
	CU_ASSERT_EQUAL(c->models[1].priority, 0);
	CU_ASSERT_EQUAL(c->models[1].tables[0].rows, 1000000000000000000ull);

	/* Print, reload into fresh defaults: the same struct, byte for byte,
	 * and the same text when printed again. */
	f = open_memstream(&text, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	node_config_print(f, c);
	fclose(f);
	CU_ASSERT_EQUAL_FATAL(load_text(text, d), FR_OK);
	CU_ASSERT(memcmp(c, d, sizeof(*c)) == 0);
	f = open_memstream(&text2, &len2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	node_config_print(f, d);
	fclose(f);
	CU_ASSERT_STRING_EQUAL(text, text2);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "listen = [::1]:7001\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "log_level = debug\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "table = bias:7:1:f32\n"));
	free(text);
	free(text2);

	/* A config with required keys unset prints them as comments. */
	node_config_defaults(c);
	text = NULL;
	f = open_memstream(&text, &len);
	node_config_print(f, c);
	fclose(f);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "; id is not set (required)"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "; listen is not set (required)"));
	free(text);
	free(c);
	free(d);
}

static void test_number_errors(void)
{
	LOAD_FAILS(NODE_MIN "max_frame_mb = 2000\n", ":6: [node] max_frame_mb:",
		   "'2000' is out of range", "1..1024");
	LOAD_FAILS(NODE_MIN "max_frame_mb = 0\n", "max_frame_mb", "1..1024");
	LOAD_FAILS(NODE_MIN "max_frame_mb = lots\n", "[node] max_frame_mb:",
		   "'lots' is not a number", "1..1024");
	LOAD_FAILS(NODE_MIN "[gossip]\nlink_mbit = 12abc\n",
		   ":7: [gossip] link_mbit:", "'12abc' has trailing",
		   "0..1000000");
	LOAD_FAILS(NODE_MIN "[gossip]\nlink_mbit = 100 mbit\n",
		   "[gossip] link_mbit:", "trailing", "0..1000000");
	LOAD_FAILS(NODE_MIN "[store]\nindex_cap = -5\n",
		   "[store] index_cap:", "'-5' is negative", "16..16777216");
	LOAD_FAILS(NODE_MIN "[store]\nindex_cap = +20\n", "[store] index_cap:",
		   "not a number", "16..16777216");
	LOAD_FAILS(NODE_MIN "[store]\nindex_cap = 0x20\n", "[store] index_cap:",
		   "trailing", "16..16777216");
	LOAD_FAILS(NODE_MIN "[store]\nindex_cap =\n", "[store] index_cap:",
		   "value is empty", "16..16777216");
	LOAD_FAILS("[node]\nid = 99999999999999999999999\n", ":2: [node] id:",
		   "out of range", "1..4294967294");
	LOAD_FAILS("[node]\nid = 4294967295\n", "[node] id:", "out of range",
		   "1..4294967294");
	LOAD_FAILS(NODE_MIN "[model m]\nshards = 0\ntable = t:1:1\n",
		   "[model m] shards:", "out of range", "1..1048576");
	LOAD_FAILS(NODE_MIN "[model m]\npriority = high\n",
		   "[model m] priority:", "not a number", "0..1000000");
}

static void test_string_errors(void)
{
	LOAD_FAILS(NODE_MIN "dc = eu west\n", "[node] dc:", "byte 0x20",
		   "[A-Za-z0-9_.-]");
	LOAD_FAILS(NODE_MIN "cluster = "
		   "a123456789012345678901234567890123456789012345678901234567890123\n",
		   "[node] cluster:", "longer than 63 bytes");
	LOAD_FAILS(NODE_MIN "backend = gpu\n", "[node] backend:",
		   "'gpu' is not allowed", "auto|cpu|cuda");
	LOAD_FAILS(NODE_MIN "log_level = loud\n", "[node] log_level:",
		   "'loud' is not a log level", "debug, info, warn, error or off");
	LOAD_FAILS("[node]\ndata_dir = /a\x01" "b\n", "[node] data_dir:",
		   "control byte 0x01", "without control characters");
	LOAD_FAILS("[node]\ndc = a\x7f\n", "[node] dc:", "'a\\x7f'");
}

static void test_unknown_key_section(void)
{
	LOAD_FAILS(NODE_MIN "idd = 3\n", ":6: [node] idd: unknown key",
		   "expected one of: id, dc, cluster, listen, advertise, admin, data_dir, log_level, backend, max_frame_mb, gpu_device, gpu_budget_mb");
	LOAD_FAILS("[gossip]\nreconnect_ms = 3\n", "[gossip] reconnect_ms",
		   "unknown key", "reconnect_min_ms, reconnect_max_ms");
	LOAD_FAILS("[model m]\nshard = 3\n", "[model m] shard: unknown key",
		   "shards, priority, table");
	LOAD_FAILS("[peers]\npeers = 2@h:1\n", "[peers] peers: unknown key",
		   "expected one of: peer");
	/* An empty section is still an error: the reader sees headers. */
	LOAD_FAILS(NODE_MIN "[bogus]\n", ":6: [bogus]: unknown section",
		   "[node], [publish], [gossip], [store], [zookeeper], [baseline], [peers] or [model NAME]");
	LOAD_FAILS("[nodes]\nid = 1\n", ":1: [nodes]: unknown section");
	LOAD_FAILS("id = 1\n[node]\n", ":1: id: key is outside any section");
	LOAD_FAILS("[model]\nshards = 1\n", ":1: [model]: model section without a name");
	LOAD_FAILS("[model a/b]\n", "[model a/b]: model name", "byte 0x2f");
	/* inih keeps 49 bytes of a section name and drops the rest. */
	LOAD_FAILS("[model abcdefghijabcdefghijabcdefghijabcdefghijabcd]\n",
		   ":1:", "section name", "longer than 49 bytes");
}

static void test_syntax_errors(void)
{
	char longline[400];
	static const char nul_text[] = "[node]\nid = 1\0 2\n";

	LOAD_FAILS("[node]\nid = 1\n[node\n", ":3:", "no closing ']'");
	LOAD_FAILS("[node]\nid = 1\njust words\n", ":3: syntax error",
		   "KEY = VALUE");
	/* The first error wins, whoever found it. */
	LOAD_FAILS("[node]\njust words\nid = x\n", ":2: syntax error");
	LOAD_FAILS("[node]\nid = x\njust words\n", ":2: [node] id:");
	LOAD_FAILS("[node]\nid = 1\nid = 2\n", ":3: [node] id: given twice (first on line 2)");
	/* A continuation line (indented) repeats the key: refused too. */
	LOAD_FAILS("[node]\nid = 1\n   2\n", ":3: [node] id: given twice");
	snprintf(longline, sizeof(longline), "[node]\ndata_dir = /%0300d\n", 0);
	LOAD_FAILS(longline, ":2: line is 312 bytes long", "expected at most");
	{
		struct node_config *c = cfg_new();
		const char *path = write_bytes(nul_text, sizeof(nul_text) - 1);

		CU_ASSERT_EQUAL(node_config_load_file(c, path), FR_ERR_INVAL);
		CU_ASSERT(errmsg_has(":2: line has a NUL byte"));
		free(c);
	}
	/* Inline comments and continuation of a repeatable key work. */
	{
		struct node_config *c = cfg_new();

		CU_ASSERT_EQUAL(load_text("[peers]\npeer = 2@h:1 ; first\n"
					  "  3@h:2\n", c), FR_OK);
		CU_ASSERT_EQUAL(c->npeers, 2);
		CU_ASSERT_EQUAL(c->peers[1].id, 3);
		free(c);
	}
}

static void test_address_errors(void)
{
	struct node_config_addr a;

	CU_ASSERT_EQUAL(node_config_parse_addr("[2001:db8::7]:80", &a), FR_OK);
	CU_ASSERT_STRING_EQUAL(a.host, "2001:db8::7");
	CU_ASSERT_EQUAL(a.port, 80);
	CU_ASSERT_EQUAL(node_config_parse_addr("0.0.0.0:65535", &a), FR_OK);
	CU_ASSERT_EQUAL(node_config_parse_addr(NULL, &a), FR_ERR_INVAL);

	LOAD_FAILS("[node]\nlisten = 127.0.0.1\n", ":2: [node] listen:",
		   "'127.0.0.1' has no port", "HOST:PORT or [IPV6]:PORT");
	LOAD_FAILS("[node]\nlisten = ::1:80\n", "[node] listen:",
		   "needs brackets", "[IPV6]:PORT");
	LOAD_FAILS("[node]\nlisten = [zz::1]:80\n", "[node] listen:",
		   "invalid IPv6", "[IPV6]:PORT");
	LOAD_FAILS("[node]\nlisten = [::1]80\n", "[node] listen:",
		   "no ':PORT' after ']'");
	LOAD_FAILS("[node]\nlisten = [::1:80\n", "no closing ']'");
	LOAD_FAILS("[node]\nlisten = 300.1.1.1:80\n", "[node] listen:",
		   "invalid IPv4");
	LOAD_FAILS("[node]\nadmin = my host:80\n", "[node] admin:",
		   "byte 0x20 in the host");
	LOAD_FAILS("[node]\nadmin = :80\n", "[node] admin:", "empty host");
	/* Bad ports. */
	LOAD_FAILS("[node]\nlisten = 127.0.0.1:0\n", "[node] listen:",
		   "port is out of range", "PORT in 1..65535");
	LOAD_FAILS("[node]\nlisten = 127.0.0.1:65536\n", "[node] listen:",
		   "port is out of range", "1..65535");
	LOAD_FAILS("[node]\nlisten = h:99999999999999999999999\n",
		   "port is out of range");
	LOAD_FAILS("[node]\nlisten = 127.0.0.1:80x\n", "[node] listen:",
		   "port is not a number", "1..65535");
	LOAD_FAILS("[node]\nlisten = 127.0.0.1:-1\n", "[node] listen:",
		   "port is not a number", "1..65535");
	LOAD_FAILS("[node]\nlisten = 127.0.0.1:\n", "port is not a number");
}

static void test_peer_errors(void)
{
	struct node_config *c = cfg_new();

	LOAD_FAILS("[peers]\npeer = 2-127.0.0.1:7002\n", ":2: [peers] peer:",
		   "has no '@'", "ID@HOST:PORT");
	LOAD_FAILS("[peers]\npeer = x@127.0.0.1:7002\n", "[peers] peer:",
		   "id 'x' is not a number", "1..4294967294");
	LOAD_FAILS("[peers]\npeer = 0@127.0.0.1:7002\n", "[peers] peer:",
		   "'0' is out of range", "1..4294967294");
	LOAD_FAILS("[peers]\npeer = 2@127.0.0.1\n", "[peers] peer:",
		   "address '127.0.0.1' has no port");
	LOAD_FAILS("[peers]\npeer = 2@127.0.0.1:70000\n",
		   "port is out of range");
	/* Duplicate ids: at load, with both lines. */
	LOAD_FAILS("[peers]\npeer = 2@a:1\npeer = 3@b:1\npeer = 2@c:1\n",
		   ":4: [peers] peer:",
		   "peer id 2 listed twice (first on line 2)", "unique ids");
	/* ... and from node_config_validate for a struct built by hand. */
	CU_ASSERT_EQUAL(load_text(NODE_MIN "[peers]\npeer = 2@a:1\n"
				  "peer = 3@b:1\n", c), FR_OK);
	CU_ASSERT_EQUAL(node_config_validate(c), FR_OK);
	c->peers[1].id = 2;
	CU_ASSERT_EQUAL(node_config_validate(c), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("[peers] peer: id 2 listed twice"));
	c->peers[1].id = 3;
	c->peers[1].addr = c->peers[0].addr;
	CU_ASSERT_EQUAL(node_config_validate(c), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("[peers] peer 3: address a:1 is also peer 2's"));
	/* A peer with this node's id. */
	CU_ASSERT_EQUAL(load_text(NODE_MIN "[peers]\npeer = 1@a:1\n", c), FR_OK);
	CU_ASSERT_EQUAL(node_config_validate(c), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("[peers] peer: id 1 is this node's own [node] id"));
	/* A peer at this node's own listen address. */
	CU_ASSERT_EQUAL(load_text(NODE_MIN "[peers]\npeer = 5@127.0.0.1:7001\n",
				  c), FR_OK);
	CU_ASSERT_EQUAL(node_config_validate(c), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("[peers] peer 5: address 127.0.0.1:7001 is this node's [node] listen"));
	free(c);
}

static void test_table_errors(void)
{
	struct shard_table_def t;
	struct node_config *c = cfg_new();

	CU_ASSERT_EQUAL(node_config_parse_table("users:100000:64", &t), FR_OK);
	CU_ASSERT_STRING_EQUAL(t.name, "users");
	CU_ASSERT_EQUAL(t.rows, 100000);
	CU_ASSERT_EQUAL(t.dim, 64);
	CU_ASSERT_EQUAL(t.dtype, SHARD_F32);
	CU_ASSERT_EQUAL(node_config_parse_table("x:1:65536:f16", &t), FR_OK);
	CU_ASSERT_EQUAL(t.dtype, SHARD_F16);

#define MODEL_HDR NODE_MIN "[model ctr]\nshards = 4\n"
	LOAD_FAILS(MODEL_HDR "table = users:100\n", ":8: [model ctr] table:",
		   "'users:100' is missing DIM", "NAME:ROWS:DIM[:f32|f16]");
	LOAD_FAILS(MODEL_HDR "table = users\n", "is missing ROWS and DIM");
	LOAD_FAILS(MODEL_HDR "table = users:0:8\n", "[model ctr] table:",
		   "table 'users': ROWS '0' is out of range",
		   "1..18446744073709551615");
	LOAD_FAILS(MODEL_HDR "table = users:10:8:f64\n", "[model ctr] table:",
		   "dtype 'f64' is unknown", "f32 or f16");
	LOAD_FAILS(MODEL_HDR "table = users:10:0\n", "DIM '0' is out of range",
		   "1..65536");
	LOAD_FAILS(MODEL_HDR "table = users:10:65537\n", "1..65536");
	LOAD_FAILS(MODEL_HDR "table = users:10:8:f32:x\n", "more than 4 fields");
	LOAD_FAILS(MODEL_HDR "table = us ers:10:8\n", "name", "byte 0x20");
	LOAD_FAILS(MODEL_HDR "table = :10:8\n", "name is empty");
	LOAD_FAILS(MODEL_HDR "table = u:1:1\ntable = v:1:1\ntable = u:2:2\n",
		   ":10: [model ctr] table:",
		   "table 'u' defined twice (first on line 8)");
	/* Sizes that overflow are caught by shard_model_validate. */
	CU_ASSERT_EQUAL(load_text(MODEL_HDR "table = big:18446744073709551615:2\n",
				  c), FR_OK);
	CU_ASSERT_EQUAL(node_config_validate(c), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("[model ctr]: "));
	CU_ASSERT(errmsg_has("overflows"));
#undef MODEL_HDR
	free(c);
}

static void test_model_errors(void)
{
	struct node_config *c = cfg_new();

	LOAD_FAILS(NODE_MIN "[model ctr]\nshards = 1\ntable = t:1:1\n"
		   "[model b]\nshards = 1\ntable = t:1:1\n[model ctr]\n",
		   ":12: [model ctr]: model defined twice (first on line 6)");
	LOAD_FAILS(NODE_MIN "[model ctr]\nshards = 1\nshards = 2\n",
		   ":8: [model ctr] shards: given twice (first on line 7)");
	/* The same key in two models is fine. */
	CU_ASSERT_EQUAL(load_text(NODE_MIN "[model a]\nshards = 1\ntable = t:1:1\n"
				  "[model b]\nshards = 2\ntable = t:1:1\n", c),
			FR_OK);
	CU_ASSERT_EQUAL(node_config_validate(c), FR_OK);
	CU_ASSERT_EQUAL(c->models[1].shards, 2);
	/* Required keys of a model; an empty section is still a model. */
	CU_ASSERT_EQUAL(load_text(NODE_MIN "[model m]\n", c), FR_OK);
	CU_ASSERT_EQUAL(node_config_validate(c), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("[model m] shards: required key is missing, expected integer 1..1048576"));
	CU_ASSERT_EQUAL(load_text(NODE_MIN "[model m]\nshards = 2\n", c), FR_OK);
	CU_ASSERT_EQUAL(node_config_validate(c), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("[model m] table: required key is missing"));
	/* A model loaded earlier (another file) counts as a duplicate. */
	{
		const char *path = write_text("[model m]\nshards = 3\n");

		CU_ASSERT_EQUAL(node_config_load_file(c, path), FR_ERR_INVAL);
		CU_ASSERT(errmsg_has("[model m]: model already defined"));
	}
	free(c);
}

static void test_required_and_cross(void)
{
	static const struct {
		const char *text, *needle;
	} cases[] = {
		{ "[node]\nlisten = h:1\nadmin = h:2\ndata_dir = /d\n",
		  "[node] id: required key is missing, expected integer 1..4294967294" },
		{ "[node]\nid = 1\nadmin = h:2\ndata_dir = /d\n",
		  "[node] listen: required key is missing, expected HOST:PORT" },
		{ "[node]\nid = 1\nlisten = h:1\ndata_dir = /d\n",
		  "[node] admin: required key is missing" },
		{ "[node]\nid = 1\nlisten = h:1\nadmin = h:2\n",
		  "[node] data_dir: required key is missing, expected path" },
		{ "[node]\nid = 1\nlisten = h:1\nadmin = h:1\ndata_dir = /d\n",
		  "[node] admin: h:1 is also the listen address" },
		{ NODE_MIN "[gossip]\nreconnect_min_ms = 6000\n",
		  "[gossip] reconnect_min_ms: 6000 is greater than reconnect_max_ms (5000)" },
		{ NODE_MIN "[gossip]\ndigest_interval_ms = 6000\n",
		  "[gossip] digest_interval_ms: 6000 is greater than full_interval_ms (5000)" },
	};
	struct node_config *c = cfg_new();

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CU_ASSERT_EQUAL(load_text(cases[i].text, c), FR_OK);
		CU_ASSERT_EQUAL(node_config_validate(c), FR_ERR_INVAL);
		CU_ASSERT(errmsg_has(cases[i].needle));
	}
	/* A struct filled by hand is range-checked from the same table. */
	CU_ASSERT_EQUAL(load_text(NODE_MIN, c), FR_OK);
	CU_ASSERT_EQUAL(node_config_validate(c), FR_OK);
	c->max_pull_mb = 5000;
	CU_ASSERT_EQUAL(node_config_validate(c), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("[gossip] max_pull_mb: '5000' is out of range, expected an integer in 1..1024"));
	c->max_pull_mb = 16;
	memset(c->dc, 'x', sizeof(c->dc));
	CU_ASSERT_EQUAL(node_config_validate(c), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("[node] dc: value is not terminated"));
	strcpy(c->dc, "dc1");
	c->log_level = (enum fr_log_level)9;
	CU_ASSERT_EQUAL(node_config_validate(c), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("[node] log_level: '9' is not a log level"));
	c->log_level = FR_LOG_WARN;
	c->npeers = CONFIG_PEERS_MAX + 1;
	CU_ASSERT_EQUAL(node_config_validate(c), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("expected at most 1024"));
	c->npeers = 0;
	CU_ASSERT_EQUAL(node_config_validate(c), FR_OK);
	CU_ASSERT_EQUAL(node_config_validate(NULL), FR_ERR_INVAL);
	free(c);
}

static void test_missing_file(void)
{
	struct node_config *c = cfg_new();
	char path[4300];

	snprintf(path, sizeof(path), "%s/no-such-dir/node.conf", tmp_root);
	CU_ASSERT_EQUAL(node_config_load_file(c, path), FR_ERR_IO);
	CU_ASSERT(errmsg_has(path));
	CU_ASSERT(errmsg_has(strerror(ENOENT)));
	/* A directory opens but does not read. */
	CU_ASSERT_EQUAL(node_config_load_file(c, tmp_root), FR_ERR_IO);
	CU_ASSERT(errmsg_has(tmp_root));
	CU_ASSERT(errmsg_has(strerror(EISDIR)));
	CU_ASSERT_EQUAL(node_config_load_file(c, NULL), FR_ERR_INVAL);
	free(c);
}

static void test_bad_file_changes_nothing(void)
{
	struct node_config *c = cfg_new(), *before = cfg_new();

	CU_ASSERT_EQUAL_FATAL(load_text(NODE_MIN "[peers]\npeer = 2@a:1\n", c),
			      FR_OK);
	memcpy(before, c, sizeof(*c));
	CU_ASSERT_EQUAL(node_config_load_file(c, write_text(
		"[node]\ndc = other\n[peers]\npeer = 3@b:1\n[model m]\n"
		"shards = 1\ntable = t:1:1\n[store]\nindex_cap = 1\n")),
		FR_ERR_INVAL);
	CU_ASSERT(errmsg_has(":9: [store] index_cap:"));
	CU_ASSERT(memcmp(c, before, sizeof(*c)) == 0);
	free(c);
	free(before);
}

static void test_overrides(void)
{
	struct node_config *c = cfg_new(), *before = cfg_new();
	static const struct {
		const char *arg, *needle1, *needle2;
	} bad[] = {
		{ "node.id=0", "--node.id: '0' is out of range", "1..4294967294" },
		{ "--node.id=x1", "--node.id: 'x1' is not a number", "1..4294967294" },
		{ "node.id=7z", "--node.id: '7z' has trailing", "1..4294967294" },
		{ "node.id=-2", "--node.id: '-2' is negative", "1..4294967294" },
		{ "node.id= 3", "--node.id: ' 3' is not a number", "1..4294967294" },
		{ "node.listen=h", "--node.listen: 'h' has no port", "HOST:PORT" },
		{ "node.idd=3", "--node.idd: unknown key", "expected one of: id, dc" },
		{ "nodes.id=3", "--nodes.id: unknown section 'nodes'", "node, publish, gossip, store, zookeeper or baseline" },
		{ "peers.peer=2@h:1", "--peers.peer: peers and models are set in the config file only", "node, publish" },
		{ "model ctr.shards=2", "config file only", "gossip" },
		{ "node.id", "--node.id: expected --SECTION.KEY=VALUE", "=VALUE" },
		{ "nodeid=3", "--nodeid: expected --SECTION.KEY=VALUE", "SECTION" },
		{ ".id=3", "expected --SECTION.KEY=VALUE", "KEY" },
		{ "gossip.link_mbit=1000001", "--gossip.link_mbit:", "0..1000000" },
		{ "node.backend=tpu", "--node.backend: 'tpu' is not allowed", "auto|cpu|cuda" },
		{ "zookeeper.hosts=zk1", "--zookeeper.hosts: server 'zk1'", "HOST:PORT[,HOST:PORT...][/chroot]" },
		{ "zookeeper.hosts=a:1,,b:2", "server ''", "[/chroot]" },
		{ "zookeeper.hosts=a:1/", "chroot '/' is the root", "[/chroot]" },
		{ "zookeeper.hosts=a:1/x//y", "chroot '/x//y': empty path segment", "[/chroot]" },
		{ "zookeeper.hosts=a:1/x y", "chroot '/x y': byte 0x20", "[/chroot]" },
		{ "zookeeper.hosts=a:99999", "server 'a:99999'", "[/chroot]" },
		{ "zookeeper.session_timeout_ms=999", "--zookeeper.session_timeout_ms:", "1000..120000" },
		{ "zookeeper.candidate=maybe", "--zookeeper.candidate: 'maybe' is not allowed", "yes|no" },
		{ "gossip.wan_mbit=1000001", "--gossip.wan_mbit:", "0..1000000" },
	};

	CU_ASSERT_EQUAL_FATAL(load_text(NODE_MIN "[gossip]\nlink_mbit = 10\n",
					c), FR_OK);
	/* Overrides win over the file. */
	CU_ASSERT_EQUAL(node_config_set(c, "node.id=3"), FR_OK);
	CU_ASSERT_EQUAL(node_config_set(c, "--node.listen=[::]:7003"), FR_OK);
	CU_ASSERT_EQUAL(node_config_set(c, "gossip.link_mbit=0"), FR_OK);
	CU_ASSERT_EQUAL(node_config_set(c, "node.log_level=error"), FR_OK);
	CU_ASSERT_EQUAL(node_config_set(c, "node.data_dir=/x=y"), FR_OK);
	CU_ASSERT_EQUAL(node_config_set(c, "zookeeper.hosts=127.0.0.1:2181,[::1]:2182,zk.example.com:2181/a/b-c.d"), FR_OK);
	CU_ASSERT_STRING_EQUAL(c->zk_hosts, "127.0.0.1:2181,[::1]:2182,zk.example.com:2181/a/b-c.d");
	CU_ASSERT_EQUAL(node_config_set(c, "zookeeper.candidate=no"), FR_OK);
	CU_ASSERT_STRING_EQUAL(c->zk_candidate, "no");
	CU_ASSERT_EQUAL(node_config_set(c, "gossip.wan_mbit=100"), FR_OK);
	CU_ASSERT_EQUAL(c->wan_mbit, 100);
	CU_ASSERT_EQUAL(c->node_id, 3);
	CU_ASSERT_STRING_EQUAL(c->listen.host, "::");
	CU_ASSERT_EQUAL(c->listen.port, 7003);
	CU_ASSERT_EQUAL(c->link_mbit, 0);
	CU_ASSERT_EQUAL(c->log_level, FR_LOG_ERROR);
	CU_ASSERT_STRING_EQUAL(c->data_dir, "/x=y");
	CU_ASSERT_EQUAL(node_config_validate(c), FR_OK);
	/* Refused overrides name the key and the range, change nothing. */
	memcpy(before, c, sizeof(*c));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CU_ASSERT_EQUAL(node_config_set(c, bad[i].arg), FR_ERR_INVAL);
		CU_ASSERT(errmsg_has(bad[i].needle1));
		CU_ASSERT(errmsg_has(bad[i].needle2));
	}
	CU_ASSERT(memcmp(c, before, sizeof(*c)) == 0);
	CU_ASSERT_EQUAL(node_config_set(c, NULL), FR_ERR_INVAL);
	/* An override can break a cross-key rule: validate catches it. */
	CU_ASSERT_EQUAL(node_config_set(c, "node.admin=[::]:7003"), FR_OK);
	CU_ASSERT_EQUAL(node_config_validate(c), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("[node] admin: [::]:7003 is also the listen address"));
	free(c);
	free(before);
}

/* Mutated copies of a good file: every outcome is FR_OK or FR_ERR_INVAL
 * with a detail naming the file; nothing crashes (run under ASan). */
static void test_mutations(void)
{
	struct node_config *c = cfg_new();
	size_t n = sizeof(full_text) - 1;
	char *buf = malloc(n + 1);
	unsigned seed = 12345, ok = 0, bad = 0;
	static const char junk[] = "[]=:;#@% \t\n\r\x01\xff" "0-9az";

	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	for (int iter = 0; iter < 400; iter++) {
		const char *path;
		enum fr_err err;
		size_t len = n;

		memcpy(buf, full_text, n);
		for (int k = 0; k < 1 + iter % 4; k++) {
			seed = seed * 1103515245u + 12345u;
			buf[(seed >> 8) % n] = junk[(seed >> 20) % (sizeof(junk) - 1)];
		}
		if (iter % 5 == 0)
			len = (seed >> 4) % n;   /* truncated file */
		path = write_bytes(buf, len);
		node_config_defaults(c);
		err = node_config_load_file(c, path);
		CU_ASSERT(err == FR_OK || err == FR_ERR_INVAL);
		if (err) {
			CU_ASSERT_PTR_NOT_NULL(strstr(fr_errmsg(), path));
			bad++;
		} else {
			err = node_config_validate(c);
			CU_ASSERT(err == FR_OK || err == FR_ERR_INVAL);
			ok++;
		}
		/* Keep the temp dir small: reuse one file name. */
		(void)unlink(path);
		file_seq--;
	}
	CU_ASSERT(bad > 0);
	CU_ASSERT(ok > 0);
	free(buf);
	free(c);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, cap = 0, got;

	if (!f)
		return NULL;
	do {
		if (cap - len < 4096) {
			char *nb = realloc(buf, cap + 65536);

			if (!nb) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
			cap += 65536;
		}
		got = fread(buf + len, 1, cap - len - 1, f);
		len += got;
	} while (got > 0);
	buf[len] = '\0';
	fclose(f);
	return buf;
}

static void test_example_file(void)
{
	struct node_config *c = cfg_new();

	CU_ASSERT_EQUAL_FATAL(node_config_load_file(c, FRESHET_SOURCE_DIR
					       "/docs/examples/node.conf"),
			      FR_OK);
	CU_ASSERT_EQUAL(node_config_validate(c), FR_OK);
	CU_ASSERT_EQUAL(c->npeers, 2);
	CU_ASSERT_EQUAL_FATAL(c->nmodels, 1);
	expect_model(c, 0, "ctr", 16, 1, 2);
	CU_ASSERT_STRING_EQUAL(c->models[0].tables[0].name, "users");
	CU_ASSERT_EQUAL(c->models[0].tables[1].dtype, SHARD_F16);
	free(c);
}

/* Every key that node_config_print writes is documented in docs/config.md as
 * `section.key`, and listed by --help. */
static void test_docs_cover_keys(void)
{
	struct node_config *c = cfg_new();
	char *doc = slurp(FRESHET_SOURCE_DIR "/docs/config.md");
	char *text = NULL, *help = NULL, *save = NULL, section[64] = "";
	size_t len = 0, hlen = 0;
	unsigned nkeys = 0;
	FILE *f;

	CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
	CU_ASSERT_EQUAL_FATAL(load_text(full_text, c), FR_OK);
	f = open_memstream(&text, &len);
	node_config_print(f, c);
	fclose(f);
	f = open_memstream(&help, &hlen);
	node_config_print_help(f);
	fclose(f);
	for (char *line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char want[160], key[64];

		if (sscanf(line, "[%63[^]]]", section) == 1)
			continue;
		if (sscanf(line, "%63s =", key) != 1 || line[0] == '#')
			continue;
		if (strncmp(section, "model ", 6) == 0)
			snprintf(want, sizeof(want), "`model NAME.%s`", key);
		else
			snprintf(want, sizeof(want), "`%s.%s`", section, key);
		if (!strstr(doc, want))
			fprintf(stderr, "\n  docs/config.md lacks %s\n", want);
		CU_ASSERT_PTR_NOT_NULL(strstr(doc, want));
		snprintf(want, sizeof(want), " %s.%s ",
			 strncmp(section, "model ", 6) == 0 ? "model NAME"
							      : section, key);
		CU_ASSERT_PTR_NOT_NULL(strstr(help, want));
		nkeys++;
	}
	CU_ASSERT(nkeys >= 26);
	free(text);
	free(help);
	free(doc);
	free(c);
}

static const struct fr_unit_test tests[] = {
	{ "defaults", test_defaults },
	{ "full file round trip", test_full_roundtrip },
	{ "number errors", test_number_errors },
	{ "string errors", test_string_errors },
	{ "unknown key/section", test_unknown_key_section },
	{ "syntax errors", test_syntax_errors },
	{ "address errors", test_address_errors },
	{ "peer errors", test_peer_errors },
	{ "table errors", test_table_errors },
	{ "model errors", test_model_errors },
	{ "required and cross-key", test_required_and_cross },
	{ "missing file", test_missing_file },
	{ "bad file changes nothing", test_bad_file_changes_nothing },
	{ "overrides", test_overrides },
	{ "mutations", test_mutations },
	{ "example file", test_example_file },
	{ "docs cover keys", test_docs_cover_keys },
};

int main(void)
{
	return fr_unit_main("node_config", suite_init, suite_fini, tests,
			    FR_UNIT_COUNT(tests));
}
