/*
 * config.c — freshetd's configuration: the key table, the INI loader, the
 * command-line override, the whole-config checks and the printers.
 *
 * Every scalar key lives in one table (section, name, type, bounds,
 * default, where it lands, help), and everything else — defaults, parsing,
 * --help, node_config_print, the range checks in node_config_validate — is driven
 * from it, so a key is added in one place.  Two kinds of entry do not fit a
 * single field: `peer` and `table` are repeatable and append to arrays.
 *
 * inih does the INI syntax; we hand it our own line reader.  Debian's
 * libinih is built without INI_HANDLER_LINENO, so the handler gets no line
 * number: the reader counts lines itself (the handler for a line always
 * runs before the next line is read).  The reader also notices section
 * headers, because inih tells the handler nothing about a section with no
 * keys in it, and duplicate or empty [model NAME] sections must be errors.
 * It refuses lines longer than inih's buffer (inih would split them and
 * parse the tail as a line of its own) and lines with NUL bytes (inih would
 * silently cut them).
 *
 * Not here: acting on the configuration (node/ wires it into the modules),
 * resolving host names, creating the data directory.
 *
 * Threads: config functions touch only their arguments and this thread's
 * error detail; any thread may call them.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "node/config.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* A detail is built from a location prefix and a message; fr_fail keeps at
 * most 512 bytes, so the pieces are bounded to fit. */
#define MSG_MAX 512

/* ========================================================================
 * The key table
 * ===================================================================== */
enum section {
	SEC_NODE,
	SEC_PUBLISH,
	SEC_GOSSIP,
	SEC_STORE,
	SEC_ZOOKEEPER,
	SEC_BASELINE,
	SEC_PEERS,
	SEC_MODEL,
	SEC__COUNT
};

static const char *const section_names[SEC__COUNT] = {
	[SEC_NODE] = "node",
	[SEC_PUBLISH] = "publish",
	[SEC_GOSSIP] = "gossip",
	[SEC_STORE] = "store",
	[SEC_ZOOKEEPER] = "zookeeper",
	[SEC_BASELINE] = "baseline",
	[SEC_PEERS] = "peers",
	[SEC_MODEL] = "model",
};

enum key_type {
	KT_U32,       /* decimal integer in [min, max] */
	KT_NAME,      /* [A-Za-z0-9_.-], 1..size-1 bytes */
	KT_NAMELIST,  /* comma-separated names (model names), may be empty */
	KT_ENUM,      /* one of choices[], stored as the string */
	KT_ADDR,      /* struct node_config_addr */
	KT_PATH,      /* a file system path, 1..size-1 bytes */
	KT_ZKHOSTS,   /* HOST:PORT[,HOST:PORT...][/chroot], or empty */
	KT_LOGLEVEL,  /* enum fr_log_level */
	KT_PEER,      /* repeatable: appends to peers[] */
	KT_TABLE,     /* repeatable: appends to the model's tables[] */
};

struct node_config_key {
	enum section section;
	const char *name;
	enum key_type type;
	uint32_t min, max;            /* KT_U32 */
	const char *const *choices;   /* KT_ENUM, NULL-terminated */
	/* Default in config-file syntax, parsed by the same code as the file;
	 * NULL: no default (required keys and the repeatable ones). */
	const char *def;
	bool required;
	/* Where the value lands: offsetof into struct node_config, or into struct
	 * shard_model_def for SEC_MODEL keys; size of the field. */
	size_t off, size;
	const char *help;
};

static const char *const backend_choices[] = { "auto", "cpu", "cuda", NULL };
static const char *const yesno_choices[] = { "yes", "no", NULL };
static const char *const log_level_names[] = {
	[FR_LOG_DEBUG] = "debug", [FR_LOG_INFO] = "info",
	[FR_LOG_WARN] = "warn", [FR_LOG_ERROR] = "error", [FR_LOG_OFF] = "off",
};

#define CFG(f) .off = offsetof(struct node_config, f),                          \
	.size = sizeof(((struct node_config *)0)->f)
#define MDL(f) .off = offsetof(struct shard_model_def, f),                   \
	.size = sizeof(((struct shard_model_def *)0)->f)
#define U32(sec, nm, lo, hi, dflt, field, text)                             \
	{ .section = sec, .name = nm, .type = KT_U32, .min = lo, .max = hi,  \
	  .def = dflt, field, .help = text }

static const struct node_config_key keys[] = {
	/* [node] */
	{ .section = SEC_NODE, .name = "id", .type = KT_U32, .min = 1,
	  .max = UINT32_MAX - 1, .required = true, CFG(node_id),
	  .help = "this node's id, unique in the cluster; the origin stamped on its writes" },
	{ .section = SEC_NODE, .name = "dc", .type = KT_NAME, .def = "dc1",
	  CFG(dc),
	  .help = "data centre; replicas pull inside their dc, leaders across dcs" },
	{ .section = SEC_NODE, .name = "cluster", .type = KT_NAME,
	  .def = "freshet", CFG(cluster),
	  .help = "cluster name (ZooKeeper root /freshet/<cluster>)" },
	{ .section = SEC_NODE, .name = "listen", .type = KT_ADDR,
	  .required = true, CFG(listen),
	  .help = "address for peers and clients (gossip, publish, lookup)" },
	{ .section = SEC_NODE, .name = "advertise", .type = KT_ADDR,
	  .def = "", CFG(advertise),
	  .help = "address other nodes dial, published in ZooKeeper; empty = node.listen" },
	{ .section = SEC_NODE, .name = "admin", .type = KT_ADDR,
	  .required = true, CFG(admin),
	  .help = "admin HTTP address (/healthz, /status, /metrics)" },
	{ .section = SEC_NODE, .name = "data_dir", .type = KT_PATH,
	  .required = true, CFG(data_dir),
	  .help = "directory holding this node's WAL and snapshots" },
	{ .section = SEC_NODE, .name = "log_level", .type = KT_LOGLEVEL,
	  .def = "info", CFG(log_level),
	  .help = "least severe log level written" },
	{ .section = SEC_NODE, .name = "backend", .type = KT_ENUM,
	  .choices = backend_choices, .def = "auto", CFG(backend),
	  .help = "table backend; auto picks cuda when a GPU is present, else cpu" },
	U32(SEC_NODE, "max_frame_mb", 1, 1024, "64", CFG(max_frame_mb),
	    "largest frame sent or accepted, MiB"),
	U32(SEC_NODE, "gpu_device", 0, 255, "0", CFG(gpu_device),
	    "CUDA device ordinal the cuda backend puts tables on"),
	U32(SEC_NODE, "gpu_budget_mb", 0, 16777216, "0", CFG(gpu_budget_mb),
	    "most table bytes the backend may hold, MiB (all models); 0 = what the device has free"),
	{ .section = SEC_NODE, .name = "canary", .type = KT_NAMELIST,
	  .def = "", CFG(canary),
	  .help = "models this node serves as their canary (comma-separated); ZooKeeper roles override" },
	{ .section = SEC_NODE, .name = "baseline", .type = KT_NAMELIST,
	  .def = "", CFG(baseline),
	  .help = "models this node serves as their baseline, lagging by baseline.lag_ms (comma-separated)" },
	/* [publish] */
	U32(SEC_PUBLISH, "queue_max", 1, 1000000, "1024",
	    CFG(publish_queue_max),
	    "publishes waiting to become durable; more are told to retry"),
	U32(SEC_PUBLISH, "retry_after_ms", 1, 60000, "50",
	    CFG(retry_after_ms),
	    "retry hint given to a publisher when the queue is full, ms"),
	U32(SEC_PUBLISH, "max_rows", 1, 10000000, "1000000",
	    CFG(publish_max_rows), "most rows in one publish request"),
	/* [gossip] */
	U32(SEC_GOSSIP, "digest_interval_ms", 10, 60000, "200",
	    CFG(digest_interval_ms),
	    "period of the heartbeat digest to each peer, ms"),
	U32(SEC_GOSSIP, "full_interval_ms", 100, 3600000, "5000",
	    CFG(full_interval_ms),
	    "period of the full digest (anti-entropy repair) to each peer, ms"),
	U32(SEC_GOSSIP, "pull_timeout_ms", 50, 600000, "2000",
	    CFG(pull_timeout_ms),
	    "a pull unanswered this long is retried elsewhere, ms"),
	U32(SEC_GOSSIP, "max_inflight_mb", 1, 4096, "64",
	    CFG(max_inflight_mb),
	    "bytes requested and not yet received, per peer, MiB"),
	U32(SEC_GOSSIP, "max_pull_mb", 1, 1024, "16", CFG(max_pull_mb),
	    "reply budget of one pull, MiB"),
	U32(SEC_GOSSIP, "link_mbit", 0, 1000000, "0", CFG(link_mbit),
	    "sending budget per peer link, Mbit/s; 0 = unlimited"),
	U32(SEC_GOSSIP, "wan_mbit", 0, 1000000, "0", CFG(wan_mbit),
	    "sending budget towards each other dc (all links to it together), Mbit/s; 0 = unlimited"),
	U32(SEC_GOSSIP, "reconnect_min_ms", 10, 60000, "100",
	    CFG(reconnect_min_ms),
	    "first delay before reconnecting to a peer, ms (doubles per try)"),
	U32(SEC_GOSSIP, "reconnect_max_ms", 100, 600000, "5000",
	    CFG(reconnect_max_ms), "largest reconnect delay, ms"),
	/* [store] */
	U32(SEC_STORE, "undo_kb_per_shard", 0, 1048576, "1024",
	    CFG(undo_kb_per_shard),
	    "undo ring per shard, KiB (how far a rollback reaches); 0 = no undo"),
	U32(SEC_STORE, "index_cap", 16, 16777216, "65536", CFG(index_cap),
	    "changed-rows index entries kept per (shard, origin)"),
	U32(SEC_STORE, "snapshot_interval_s", 0, 86400, "60",
	    CFG(snapshot_interval_s),
	    "seconds between snapshots; 0 = only at a clean exit"),
	/* [zookeeper] */
	{ .section = SEC_ZOOKEEPER, .name = "hosts", .type = KT_ZKHOSTS,
	  .def = "", CFG(zk_hosts),
	  .help = "ZooKeeper ensemble HOST:PORT[,HOST:PORT...][/chroot]; empty = static [peers]" },
	U32(SEC_ZOOKEEPER, "session_timeout_ms", 1000, 120000, "6000",
	    CFG(zk_session_timeout_ms),
	    "ZooKeeper session timeout asked for, ms; a leader cut off from ZooKeeper demotes itself after 2/3 of it"),
	{ .section = SEC_ZOOKEEPER, .name = "candidate", .type = KT_ENUM,
	  .choices = yesno_choices, .def = "yes", CFG(zk_candidate),
	  .help = "stand in this dc's leader election (yes|no)" },
	/* [baseline] */
	U32(SEC_BASELINE, "lag_ms", 1, 86400000, "300000", CFG(baseline_lag_ms),
	    "a baseline serves an update only once it is this old, ms"),
	U32(SEC_BASELINE, "buffer_mb", 1, 1048576, "256",
	    CFG(baseline_buffer_mb),
	    "rows a baseline holds back, MiB; past it the baseline catches up from its store"),
	/* [peers] */
	{ .section = SEC_PEERS, .name = "peer", .type = KT_PEER,
	  .min = 1, .max = UINT32_MAX - 1,
	  .help = "a static peer, ID@HOST:PORT; repeat the key for each peer" },
	/* [model NAME] */
	{ .section = SEC_MODEL, .name = "shards", .type = KT_U32, .min = 1,
	  .max = SHARD_SHARDS_MAX, .required = true, MDL(shards),
	  .help = "shards every table of the model is cut into (row % shards)" },
	{ .section = SEC_MODEL, .name = "priority", .type = KT_U32, .min = 0,
	  .max = 1000000, .def = "0", MDL(priority),
	  .help = "relative urgency; pulls for larger values go first" },
	{ .section = SEC_MODEL, .name = "table", .type = KT_TABLE,
	  .required = true,
	  .help = "a table, NAME:ROWS:DIM[:f32|f16] (f32 if left out); repeat for each" },
};

#define NKEYS ARRAY_SIZE(keys)

#undef U32
#undef CFG
#undef MDL

static void *key_field(const struct node_config_key *k, void *base)
{
	return (char *)base + k->off;
}

static const void *key_cfield(const struct node_config_key *k, const void *base)
{
	return (const char *)base + k->off;
}

static const struct node_config_key *key_find(enum section s, const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (keys[i].section == s && strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

/* "id, dc, cluster, ..." — the keys a section accepts, for messages. */
static void section_key_list(enum section s, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < NKEYS; i++) {
		int n;

		if (keys[i].section != s)
			continue;
		n = snprintf(buf + len, size - len, "%s%s", len ? ", " : "",
			     keys[i].name);
		if (n < 0 || (size_t)n >= size - len)
			break;
		len += (size_t)n;
	}
}

/* ========================================================================
 * Message helpers
 * ===================================================================== */

/* Untrusted bytes made printable for a message (common.h's rule), cut
 * past 64 shown bytes so one absurd value cannot crowd out the rest. */
struct shown {
	char s[256];
};

/* At most n bytes of s (up to its NUL), about max_out of them shown. */
static const char *show_n(struct shown *b, const char *s, size_t n,
			  size_t max_out)
{
	size_t cap = max_out + 4 < sizeof(b->s) ? max_out + 4 : sizeof(b->s);

	return fr_show_n(b->s, cap, s, strnlen(s, n));
}

static const char *show(struct shown *b, const char *s)
{
	return show_n(b, s, SIZE_MAX, 64);
}

/* Put `fmt...` in front of this thread's detail message.  fr_fail writes
 * the buffer fr_errmsg() points at, so the detail is copied first. */
static enum fr_err __attribute__((format(printf, 2, 3)))
fail_prefixed(enum fr_err err, const char *fmt, ...)
{
	char detail[MSG_MAX];
	char prefix[MSG_MAX];
	va_list ap;

	snprintf(detail, sizeof(detail), "%s", fr_errmsg());
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	return fr_fail(err, "%s%s", prefix, detail);
}

/* ========================================================================
 * Value parsers.  Each records a detail "'VALUE' <what is wrong>, expected
 * <what is allowed>" without a location; the caller puts the file/line or
 * --section.key in front.  None writes its output unless it succeeds.
 * ===================================================================== */

static enum fr_err parse_u64(const char *s, uint64_t min, uint64_t max,
			     uint64_t *out)
{
	/* Every config error is FR_ERR_INVAL; the detail says which. */
	return fr_parse_u64(NULL, s, min, max, out) ? FR_ERR_INVAL : FR_OK;
}

static enum fr_err parse_u32(const char *s, uint32_t min, uint32_t max,
			     uint32_t *out)
{
	uint64_t v;
	enum fr_err err = parse_u64(s, min, max, &v);

	if (!err)
		*out = (uint32_t)v;
	return err;
}

/* Names follow common.h's rule: they end up in ZooKeeper paths, file
 * names and log lines. */
static enum fr_err check_name(const char *s, size_t max_len)
{
	return fr_name_check(NULL, s, max_len);
}

/*
 * A path must survive being written back as INI by node_config_print: no
 * control bytes, no spaces at either end (inih strips them) and no
 * whitespace followed by ';' (inih starts an inline comment there).
 */
static enum fr_err check_path(const char *s, size_t max_len)
{
	static const char expected[] =
		"expected a path of 1..%zu bytes without control characters, surrounding spaces or ' ;'";
	struct shown b;
	size_t len = strnlen(s, max_len + 1);

	if (len == 0)
		return fr_fail(FR_ERR_INVAL, "path is empty, %s", expected);
	if (len > max_len)
		return fr_fail(FR_ERR_INVAL, "'%s' is too long, %s",
			       show(&b, s), expected);
	if (isspace((unsigned char)s[0]) || isspace((unsigned char)s[len - 1]))
		return fr_fail(FR_ERR_INVAL,
			       "'%s' starts or ends with a space, %s",
			       show(&b, s), expected);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f)
			return fr_fail(FR_ERR_INVAL,
				       "'%s' has control byte 0x%02x at %zu, %s",
				       show(&b, s), c, i, expected);
		if (c == ';' && i > 0 && isspace((unsigned char)s[i - 1]))
			return fr_fail(FR_ERR_INVAL,
				       "'%s' has ' ;' at %zu, %s",
				       show(&b, s), i - 1, expected);
	}
	return FR_OK;
}

static void choices_text(const char *const *choices, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; choices[i]; i++) {
		int n = snprintf(buf + len, size - len, "%s%s", i ? "|" : "",
				 choices[i]);

		if (n < 0 || (size_t)n >= size - len)
			break;
		len += (size_t)n;
	}
}

static enum fr_err parse_enum(const char *s, const char *const *choices,
			      size_t field_size)
{
	char text[128];
	struct shown b;

	for (size_t i = 0; choices[i]; i++)
		if (strcmp(s, choices[i]) == 0 &&
		    strlen(choices[i]) < field_size)
			return FR_OK;
	choices_text(choices, text, sizeof(text));
	return fr_fail(FR_ERR_INVAL, "'%s' is not allowed, expected one of %s",
		       show(&b, s), text);
}

enum fr_err node_config_parse_addr(const char *s, struct node_config_addr *out)
{
	struct node_config_addr a;

	memset(&a, 0, sizeof(a));
	if (fr_parse_hostport(NULL, s, a.host, sizeof(a.host), &a.port))
		return FR_ERR_INVAL;
	*out = a;
	return FR_OK;
}

/* "[::1]:7001" or "host:7001" — the form node_config_parse_addr reads. */
static const char *format_addr(const struct node_config_addr *a, char *buf,
			       size_t size)
{
	bool v6 = memchr(a->host, ':', strnlen(a->host, sizeof(a->host))) != NULL;

	snprintf(buf, size, "%s%.*s%s:%u", v6 ? "[" : "",
		 (int)strnlen(a->host, sizeof(a->host)), a->host,
		 v6 ? "]" : "", a->port);
	return buf;
}

#define PEER_EXPECTED "expected ID@HOST:PORT with ID in 1..4294967294"

static enum fr_err parse_peer(const char *s, struct node_config_peer *out)
{
	struct node_config_peer p;
	struct shown b;
	const char *at = strchr(s, '@');
	char id[32];
	size_t idlen;
	enum fr_err err;

	if (!at)
		return fr_fail(FR_ERR_INVAL, "'%s' has no '@', " PEER_EXPECTED,
			       show(&b, s));
	idlen = (size_t)(at - s);
	if (idlen >= sizeof(id))
		return fr_fail(FR_ERR_INVAL, "'%s' has an id too long, " PEER_EXPECTED,
			       show(&b, s));
	memcpy(id, s, idlen);
	id[idlen] = '\0';
	memset(&p, 0, sizeof(p));
	err = parse_u32(id, 1, UINT32_MAX - 1, &p.id);
	if (err)
		return fail_prefixed(err, "peer '%s': id ", show(&b, s));
	err = node_config_parse_addr(at + 1, &p.addr);
	if (err)
		return fail_prefixed(err, "peer '%s': address ", show(&b, s));
	*out = p;
	return FR_OK;
}

#define ZK_EXPECTED "expected HOST:PORT[,HOST:PORT...][/chroot]"

enum fr_err node_config_check_zk_hosts(const char *s)
{
	char buf[CONFIG_ZK_HOSTS_MAX + 1];
	const char *chroot;
	struct shown b;
	size_t len;

	if (!s)
		return fr_fail(FR_ERR_INVAL, "no value, " ZK_EXPECTED);
	len = strlen(s);
	if (len == 0)
		return FR_OK;
	if (len > CONFIG_ZK_HOSTS_MAX)
		return fr_fail(FR_ERR_INVAL, "longer than %d bytes, " ZK_EXPECTED,
			       CONFIG_ZK_HOSTS_MAX);
	/* The chroot starts at the first '/' that is not inside "[...]". */
	chroot = fr_strchr_unbracketed(s, '/');
	memcpy(buf, s, chroot ? (size_t)(chroot - s) : len);
	buf[chroot ? (size_t)(chroot - s) : len] = '\0';
	for (char *h = buf, *next; h; h = next) {
		struct node_config_addr a;

		next = strchr(h, ',');
		if (next)
			*next++ = '\0';
		if (node_config_parse_addr(h, &a) != FR_OK)
			return fr_fail(FR_ERR_INVAL, "server '%s': %s; " ZK_EXPECTED,
				       show(&b, h), fr_errmsg());
	}
	if (chroot) {
		const char *p = chroot;

		if (p[1] == '\0')
			return fr_fail(FR_ERR_INVAL, "chroot '/' is the root: leave it out, " ZK_EXPECTED);
		for (; *p; p++) {
			if (*p == '/') {
				if (p[1] == '/' || p[1] == '\0')
					return fr_fail(FR_ERR_INVAL, "chroot '%s': empty path segment, " ZK_EXPECTED,
						       show(&b, chroot));
			} else if (!fr_name_char((unsigned char)*p)) {
				return fr_fail(FR_ERR_INVAL, "chroot '%s': byte 0x%02x not in [A-Za-z0-9_.-/], " ZK_EXPECTED,
					       show(&b, chroot), (unsigned char)*p);
			}
		}
	}
	return FR_OK;
}

#define TABLE_EXPECTED "expected NAME:ROWS:DIM[:f32|f16]"

enum fr_err node_config_parse_table(const char *s, struct shard_table_def *out)
{
	struct shard_table_def t;
	struct shown b, bn;
	char buf[256];
	char *field[4];
	size_t nfield = 0;
	uint64_t dim;
	enum fr_err err;

	if (!s || !*s)
		return fr_fail(FR_ERR_INVAL, "table spec is empty, " TABLE_EXPECTED);
	if (strlen(s) >= sizeof(buf))
		return fr_fail(FR_ERR_INVAL,
			       "table spec '%s' is longer than %zu bytes, " TABLE_EXPECTED,
			       show(&b, s), sizeof(buf) - 1);
	strcpy(buf, s);
	for (char *p = buf;;) {
		char *colon = strchr(p, ':');

		if (nfield == ARRAY_SIZE(field))
			return fr_fail(FR_ERR_INVAL,
				       "table spec '%s' has more than 4 fields, " TABLE_EXPECTED,
				       show(&b, s));
		field[nfield++] = p;
		if (!colon)
			break;
		*colon = '\0';
		p = colon + 1;
	}
	if (nfield < 3)
		return fr_fail(FR_ERR_INVAL,
			       "table spec '%s' is missing %s, " TABLE_EXPECTED,
			       show(&b, s), nfield == 1 ? "ROWS and DIM" : "DIM");
	memset(&t, 0, sizeof(t));
	err = check_name(field[0], SHARD_NAME_MAX);
	if (err)
		return fail_prefixed(err, "table spec '%s': name ", show(&b, s));
	strcpy(t.name, field[0]);
	err = parse_u64(field[1], 1, UINT64_MAX, &t.rows);
	if (err)
		return fail_prefixed(err, "table '%s': ROWS ",
				     show(&bn, field[0]));
	err = parse_u64(field[2], 1, SHARD_DIM_MAX, &dim);
	if (err)
		return fail_prefixed(err, "table '%s': DIM ",
				     show(&bn, field[0]));
	t.dim = (uint32_t)dim;
	t.dtype = SHARD_F32;
	if (nfield == 4 && shard_dtype_parse(field[3], &t.dtype))
		return fr_fail(FR_ERR_INVAL,
			       "table '%s': dtype '%s' is unknown, expected f32 or f16",
			       show(&bn, field[0]), show(&b, field[3]));
	*out = t;
	return FR_OK;
}

/* "a,b, c": model names separated by commas (spaces around them are
 * allowed), each as check_name; empty is an empty list.  A name given
 * twice is an error. */
static enum fr_err check_namelist(const char *s, size_t max_len)
{
	const char *p = s;
	uint32_t item = 0;

	if (strlen(s) > max_len)
		return fr_fail(FR_ERR_INVAL, "list is longer than %zu bytes",
			       max_len);
	while (*p == ' ')
		p++;
	if (!*p)
		return FR_OK;
	for (;;) {
		char name[SHARD_NAME_MAX + 2];
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		enum fr_err err;

		item++;
		while (len && p[len - 1] == ' ')
			len--;
		if (len > SHARD_NAME_MAX)
			len = SHARD_NAME_MAX + 1;
		memcpy(name, p, len);
		name[len] = '\0';
		err = check_name(name, SHARD_NAME_MAX);
		if (err)
			return fail_prefixed(err, "item %u: ", item);
		for (const char *q = s; q < p;) {
			size_t ql;

			while (*q == ' ' || *q == ',')
				q++;
			ql = strcspn(q, ", ");
			if (q < p && ql == len && memcmp(q, name, len) == 0)
				return fr_fail(FR_ERR_INVAL,
					       "item %u: '%s' is listed twice",
					       item, name);
			q += ql;
		}
		if (!e)
			return FR_OK;
		p = e + 1;
		while (*p == ' ')
			p++;
	}
}

/* Is `name` one of the list's items (a KT_NAMELIST value)? */
bool node_config_list_has(const char *list, const char *name)
{
	size_t len = strlen(name);

	for (const char *p = list; *p;) {
		size_t ql;

		while (*p == ' ' || *p == ',')
			p++;
		ql = strcspn(p, ", ");
		if (ql == len && len && memcmp(p, name, len) == 0)
			return true;
		p += ql;
	}
	return false;
}

/* Parse a scalar key's value into `field` (k->size bytes).  The field is
 * written only when the whole value is good. */
static enum fr_err key_parse_field(const struct node_config_key *k,
				   const char *value, void *field)
{
	enum fr_err err = FR_OK;
	struct shown b;

	switch (k->type) {
	case KT_U32: {
		uint32_t v;

		assert(k->size == sizeof(v));
		err = parse_u32(value, k->min, k->max, &v);
		if (!err)
			memcpy(field, &v, sizeof(v));
		break;
	}
	case KT_NAME:
		err = check_name(value, k->size - 1);
		if (!err) {
			memset(field, 0, k->size);
			memcpy(field, value, strlen(value));
		}
		break;
	case KT_NAMELIST:
		err = check_namelist(value, k->size - 1);
		if (!err) {
			memset(field, 0, k->size);
			memcpy(field, value, strlen(value));
		}
		break;
	case KT_ENUM:
		err = parse_enum(value, k->choices, k->size);
		if (!err) {
			memset(field, 0, k->size);
			memcpy(field, value, strlen(value));
		}
		break;
	case KT_PATH:
		err = check_path(value, k->size - 1);
		if (!err) {
			memset(field, 0, k->size);
			memcpy(field, value, strlen(value));
		}
		break;
	case KT_ZKHOSTS:
		err = node_config_check_zk_hosts(value);
		if (!err) {
			memset(field, 0, k->size);
			memcpy(field, value, strlen(value));
		}
		break;
	case KT_ADDR: {
		struct node_config_addr a;

		assert(k->size == sizeof(a));
		if (!k->required && !*value) {   /* optional and unset */
			memset(field, 0, sizeof(a));
			break;
		}
		err = node_config_parse_addr(value, &a);
		if (!err)
			memcpy(field, &a, sizeof(a));
		break;
	}
	case KT_LOGLEVEL: {
		enum fr_log_level lv;

		assert(k->size == sizeof(lv));
		if (fr_log_level_parse(value, &lv))
			return fr_fail(FR_ERR_INVAL,
				       "'%s' is not a log level, expected debug, info, warn, error or off",
				       show(&b, value));
		memcpy(field, &lv, sizeof(lv));
		break;
	}
	case KT_PEER:
	case KT_TABLE:
		/* Repeatable keys append; they have no single field. */
		assert(!"key_parse on a repeatable key");
		err = FR_ERR_INVAL;
		break;
	}
	return err;
}

/* The same into the key's field in `base`: struct node_config, or struct
 * shard_model_def for model keys. */
static enum fr_err key_parse(const struct node_config_key *k, const char *value,
			     void *base)
{
	return key_parse_field(k, value, key_field(k, base));
}

/* ========================================================================
 * Defaults
 * ===================================================================== */

static void model_defaults(struct shard_model_def *m)
{
	for (size_t i = 0; i < NKEYS; i++) {
		enum fr_err err;

		if (keys[i].section != SEC_MODEL || !keys[i].def)
			continue;
		err = key_parse(&keys[i], keys[i].def, m);
		assert(err == FR_OK && "bad default in the key table");
		(void)err;
	}
}

void node_config_defaults(struct node_config *c)
{
	/* Zero everything, padding and string tails included, so two
	 * configs holding the same values compare equal with memcmp. */
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < NKEYS; i++) {
		enum fr_err err;

		if (keys[i].section == SEC_MODEL || !keys[i].def)
			continue;
		err = key_parse(&keys[i], keys[i].def, c);
		assert(err == FR_OK && "bad default in the key table");
		(void)err;
	}
}

/* ========================================================================
 * Sections
 * ===================================================================== */

/* Trim ASCII whitespace from both ends into dst (inih leaves a section
 * name as written between the brackets). */
static void trim_copy(char *dst, size_t size, const char *s, size_t n)
{
	while (n && isspace((unsigned char)*s)) {
		s++;
		n--;
	}
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	if (n >= size)
		n = size - 1;
	memcpy(dst, s, n);
	dst[n] = '\0';
}

/* Which section a (trimmed) header names; for "model NAME" *model points
 * at NAME.  false for an unknown section. */
static bool section_lookup(const char *sec, enum section *out,
			   const char **model)
{
	*model = NULL;
	for (int s = 0; s < SEC_MODEL; s++) {
		if (strcmp(sec, section_names[s]) == 0) {
			*out = (enum section)s;
			return true;
		}
	}
	if (strncmp(sec, "model", 5) == 0 &&
	    (sec[5] == '\0' || isspace((unsigned char)sec[5]))) {
		const char *n = sec + 5;

		while (isspace((unsigned char)*n))
			n++;
		*out = SEC_MODEL;
		*model = n;
		return true;
	}
	return false;
}

/* The sections a message offers, from section_names so that a new one
 * is never missing: "expected [node], [publish], ... or [model NAME]"
 * for a file, "node, publish, ... or baseline" for an override (which
 * cannot set peers or models).  Into the caller's buf; returns it. */
static const char *sections_text(char *buf, size_t cap, bool file)
{
	size_t o = 0;
	int n = file ? SEC_MODEL : SEC_PEERS;

	for (int i = 0; i < n && o < cap; i++)
		o += (size_t)snprintf(buf + o, cap - o, "%s%s%s%s",
				      i == 0 ? "" : i == n - 1 && !file ?
				      " or " : ", ", file ? "[" : "",
				      section_names[i], file ? "]" : "");
	if (file && o < cap)
		snprintf(buf + o, cap - o, " or [model NAME]");
	return buf;
}

#define SECTIONS_TEXT_MAX 160

/* ========================================================================
 * Loading a file
 * ===================================================================== */
struct load {
	const char *path;
	struct shown path_shown;
	FILE *f;
	char *line;                  /* getline's buffer */
	size_t cap;
	uint32_t lineno;             /* of the line inih is working on */
	bool key_seen;               /* a key since the last section header */
	bool failed;                 /* a detail is recorded; stop */
	uint32_t fail_line;          /* the line it is about */
	int read_errno;              /* getline failed with this, or 0 */
	int cur_model;               /* index in c->models, or -1 */
	struct node_config *c;            /* the copy being filled */
	/* Lines where things were given in this file, for "first on line N"
	 * (0: not in this file). */
	uint32_t key_line[NKEYS];
	uint32_t model_key_line[CONFIG_MODELS_MAX][NKEYS];
	uint32_t model_line[CONFIG_MODELS_MAX];
	uint32_t peer_line[CONFIG_PEERS_MAX];
	uint32_t table_line[CONFIG_MODELS_MAX][SHARD_TABLES_MAX];
};

/* Record the current detail with "FILE:LINE: " (and "[sec] key: " when
 * given) in front, and stop the parse. */
static enum fr_err __attribute__((format(printf, 3, 4)))
load_fail(struct load *ld, enum fr_err err, const char *fmt, ...)
{
	char where[MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(where, sizeof(where), fmt, ap);
	va_end(ap);
	ld->failed = true;
	ld->fail_line = ld->lineno;
	return fail_prefixed(err, "%s:%u: %s", ld->path_shown.s, ld->lineno,
			     where);
}

static enum fr_err open_model(struct load *ld, const char *name)
{
	struct node_config *c = ld->c;
	struct shard_model_def *m;
	struct shown b;
	enum fr_err err;

	if (!*name)
		return load_fail(ld, fr_fail(FR_ERR_INVAL,
				 "model section without a name, expected [model NAME]"),
				 "[model]: ");
	err = check_name(name, SHARD_NAME_MAX);
	if (err)
		return load_fail(ld, err, "[model %s]: model name ",
				 show(&b, name));
	for (uint32_t i = 0; i < c->nmodels; i++) {
		if (strcmp(c->models[i].name, name) != 0)
			continue;
		if (ld->model_line[i])
			fr_fail(FR_ERR_INVAL,
				"model defined twice (first on line %u), expected one section per model",
				ld->model_line[i]);
		else
			fr_fail(FR_ERR_INVAL,
				"model already defined, expected one section per model");
		return load_fail(ld, FR_ERR_INVAL, "[model %s]: ", name);
	}
	if (c->nmodels >= CONFIG_MODELS_MAX) {
		fr_fail(FR_ERR_INVAL, "too many models, expected at most %d",
			CONFIG_MODELS_MAX);
		return load_fail(ld, FR_ERR_INVAL, "[model %s]: ", name);
	}
	m = &c->models[c->nmodels];
	memset(m, 0, sizeof(*m));
	strcpy(m->name, name);
	model_defaults(m);
	ld->model_line[c->nmodels] = ld->lineno;
	ld->cur_model = (int)c->nmodels++;
	return FR_OK;
}

/* A section header line, found by the reader: "[...]" after optional
 * whitespace (and the BOM inih skips on line 1). */
static enum fr_err on_section(struct load *ld, const char *start)
{
	/* inih copies at most 49 bytes of a section name into a 50-byte
	 * buffer and drops the rest without a word. */
	enum { INIH_SECTION_MAX = 49 };
	const char *p = start + 1, *model;
	char sec[INIH_SECTION_MAX + 1], st[SECTIONS_TEXT_MAX];
	struct shown b;
	bool was_space = false;
	enum section s;

	/* Where inih's find_chars_or_comment stops: ']' or an inline
	 * comment (';' after whitespace). */
	while (*p && *p != ']' && !(was_space && *p == ';')) {
		was_space = isspace((unsigned char)*p);
		p++;
	}
	if (*p != ']') {
		fr_fail(FR_ERR_INVAL,
			"section header '%s' has no closing ']', expected [SECTION]",
			show_n(&b, start, strcspn(start, "\r\n"), 64));
		return load_fail(ld, FR_ERR_INVAL, "%s", "");
	}
	if ((size_t)(p - (start + 1)) > INIH_SECTION_MAX) {
		fr_fail(FR_ERR_INVAL,
			"section name '%s' is longer than %d bytes, expected a shorter name (model names in a file: at most %d bytes)",
			show_n(&b, start + 1, (size_t)(p - (start + 1)), 64),
			INIH_SECTION_MAX, INIH_SECTION_MAX - 6);
		return load_fail(ld, FR_ERR_INVAL, "%s", "");
	}
	trim_copy(sec, sizeof(sec), start + 1, (size_t)(p - (start + 1)));
	ld->cur_model = -1;
	if (!section_lookup(sec, &s, &model)) {
		fr_fail(FR_ERR_INVAL, "unknown section, expected %s",
			sections_text(st, sizeof(st), true));
		return load_fail(ld, FR_ERR_INVAL, "[%s]: ", show(&b, sec));
	}
	if (s == SEC_MODEL)
		return open_model(ld, model);
	return FR_OK;
}

/*
 * The fgets-style reader handed to inih: one whole line per call, counted.
 * Returning NULL ends the parse (EOF, a read error, or an error already
 * recorded — nothing after the first error is worth reading).
 */
static char *read_line(char *str, int num, void *stream)
{
	struct load *ld = stream;
	ssize_t n;
	const char *start;

	if (ld->failed)
		return NULL;
	errno = 0;
	n = getline(&ld->line, &ld->cap, ld->f);
	if (n < 0) {
		if (ferror(ld->f))
			ld->read_errno = errno ? errno : EIO;
		return NULL;
	}
	ld->lineno++;
	if (memchr(ld->line, '\0', (size_t)n)) {
		load_fail(ld, fr_fail(FR_ERR_INVAL,
				      "line has a NUL byte, expected text"),
			  "%s", "");
		return NULL;
	}
	/* inih needs room for the line, its newline and a NUL. */
	if (num < 3 || n > num - 1) {
		size_t len = (size_t)n - (ld->line[n - 1] == '\n');

		load_fail(ld, fr_fail(FR_ERR_INVAL,
				      "line is %zu bytes long, expected at most %d (inih's line buffer)",
				      len, num - 2),
			  "%s", "");
		return NULL;
	}
	memcpy(str, ld->line, (size_t)n + 1);

	/* Mirror inih's view of the line to spot section headers: an
	 * indented line right after a key is a continuation of its value
	 * (INI_ALLOW_MULTILINE), anything else starting with '[' is one. */
	start = str;
	if (ld->lineno == 1 && (unsigned char)start[0] == 0xEF &&
	    (unsigned char)start[1] == 0xBB && (unsigned char)start[2] == 0xBF)
		start += 3;
	while (isspace((unsigned char)*start))
		start++;
	if (*start == '[' &&
	    !(INI_ALLOW_MULTILINE && ld->key_seen && start > str)) {
		ld->key_seen = false;
		if (on_section(ld, start))
			return NULL;
	}
	return str;
}

static enum fr_err handle_peer(struct load *ld, const char *value)
{
	struct node_config *c = ld->c;
	struct node_config_peer p;
	enum fr_err err;

	err = parse_peer(value, &p);
	if (err)
		return load_fail(ld, err, "[peers] peer: ");
	for (uint32_t i = 0; i < c->npeers; i++) {
		if (c->peers[i].id != p.id)
			continue;
		if (ld->peer_line[i])
			fr_fail(FR_ERR_INVAL,
				"peer id %u listed twice (first on line %u), expected unique ids",
				p.id, ld->peer_line[i]);
		else
			fr_fail(FR_ERR_INVAL,
				"peer id %u already listed, expected unique ids",
				p.id);
		return load_fail(ld, FR_ERR_INVAL, "[peers] peer: ");
	}
	if (c->npeers >= CONFIG_PEERS_MAX) {
		fr_fail(FR_ERR_INVAL, "too many peers, expected at most %d",
			CONFIG_PEERS_MAX);
		return load_fail(ld, FR_ERR_INVAL, "[peers] peer: ");
	}
	ld->peer_line[c->npeers] = ld->lineno;
	memcpy(&c->peers[c->npeers++], &p, sizeof(p));
	return FR_OK;
}

static enum fr_err handle_table(struct load *ld, struct shard_model_def *m,
				const char *value)
{
	uint32_t mi = (uint32_t)ld->cur_model;
	struct shard_table_def t;
	enum fr_err err;

	err = node_config_parse_table(value, &t);
	if (err)
		return load_fail(ld, err, "[model %s] table: ", m->name);
	for (uint32_t i = 0; i < m->ntables; i++) {
		if (strcmp(m->tables[i].name, t.name) != 0)
			continue;
		if (ld->table_line[mi][i])
			fr_fail(FR_ERR_INVAL,
				"table '%s' defined twice (first on line %u), expected unique table names",
				t.name, ld->table_line[mi][i]);
		else
			fr_fail(FR_ERR_INVAL,
				"table '%s' defined twice, expected unique table names",
				t.name);
		return load_fail(ld, FR_ERR_INVAL, "[model %s] table: ",
				 m->name);
	}
	if (m->ntables >= SHARD_TABLES_MAX) {
		fr_fail(FR_ERR_INVAL, "too many tables, expected at most %d",
			SHARD_TABLES_MAX);
		return load_fail(ld, FR_ERR_INVAL, "[model %s] table: ",
				 m->name);
	}
	ld->table_line[mi][m->ntables] = ld->lineno;
	memcpy(&m->tables[m->ntables++], &t, sizeof(t));
	return FR_OK;
}

static enum fr_err handle_key(struct load *ld, const char *section,
			      const char *name, const char *value)
{
	char sec[64], list[MSG_MAX / 2], st[SECTIONS_TEXT_MAX];
	struct shown bs, bn;
	const struct node_config_key *k;
	const char *model;
	struct shard_model_def *m = NULL;
	uint32_t *seen;
	enum section s;
	enum fr_err err;

	trim_copy(sec, sizeof(sec), section, strlen(section));
	if (!*sec) {
		fr_fail(FR_ERR_INVAL,
			"key is outside any section, expected %s before it",
			sections_text(st, sizeof(st), true));
		return load_fail(ld, FR_ERR_INVAL, "%s: ", show(&bn, name));
	}
	/* on_section has vetted every header; this only fails if inih and
	 * the reader ever disagree on what a header is. */
	if (!section_lookup(sec, &s, &model) ||
	    (s == SEC_MODEL && (ld->cur_model < 0 ||
				strcmp(model, ld->c->models[ld->cur_model].name)))) {
		fr_fail(FR_ERR_INVAL, "unknown section, expected %s",
			sections_text(st, sizeof(st), true));
		return load_fail(ld, FR_ERR_INVAL, "[%s]: ", show(&bs, sec));
	}
	if (s == SEC_MODEL)
		m = &ld->c->models[ld->cur_model];
	k = key_find(s, name);
	if (!k) {
		section_key_list(s, list, sizeof(list));
		fr_fail(FR_ERR_INVAL, "unknown key, expected one of: %s", list);
		return load_fail(ld, FR_ERR_INVAL, "[%s] %s: ", show(&bs, sec),
				 show(&bn, name));
	}
	if (k->type == KT_PEER)
		return handle_peer(ld, value);
	if (k->type == KT_TABLE)
		return handle_table(ld, m, value);

	seen = m ? &ld->model_key_line[ld->cur_model][k - keys]
		 : &ld->key_line[k - keys];
	if (*seen) {
		fr_fail(FR_ERR_INVAL,
			"given twice (first on line %u), expected each key once",
			*seen);
		return load_fail(ld, FR_ERR_INVAL, "[%s] %s: ", show(&bs, sec),
				 k->name);
	}
	err = key_parse(k, value, m ? (void *)m : (void *)ld->c);
	if (err)
		return load_fail(ld, err, "[%s] %s: ", show(&bs, sec), k->name);
	*seen = ld->lineno;
	return FR_OK;
}

static int on_key(void *user, const char *section, const char *name,
		  const char *value)
{
	struct load *ld = user;

	ld->key_seen = true;
	if (ld->failed)
		return 0;
	return handle_key(ld, section, name, value) == FR_OK;
}

enum fr_err node_config_load_file(struct node_config *c, const char *path)
{
	struct load *ld;
	enum fr_err err = FR_OK;
	struct shown b;
	int rc;

	if (!c || !path)
		return fr_fail(FR_ERR_INVAL, "config file: no path given");
	ld = calloc(1, sizeof(*ld));
	if (!ld)
		return fr_fail(FR_ERR_NOMEM, "config file '%s': out of memory",
			       show_n(&b, path, SIZE_MAX, 200));
	/* Parse into a copy so a bad file leaves *c as it was. */
	ld->c = malloc(sizeof(*ld->c));
	if (!ld->c) {
		err = fr_fail(FR_ERR_NOMEM, "config file '%s': out of memory",
			      show_n(&b, path, SIZE_MAX, 200));
		goto out_free_ld;
	}
	memcpy(ld->c, c, sizeof(*c));
	ld->path = path;
	show_n(&ld->path_shown, path, SIZE_MAX, 200);
	ld->cur_model = -1;
	ld->f = fopen(path, "r");
	if (!ld->f) {
		err = fr_fail(FR_ERR_IO, "config file '%s': %s",
			      ld->path_shown.s, strerror(errno));
		goto out_free_copy;
	}
	rc = ini_parse_stream(read_line, ld, on_key, ld);
	if (ld->failed && !(rc > 0 && (uint32_t)rc < ld->fail_line)) {
		err = FR_ERR_INVAL;
	} else if (ld->read_errno) {
		err = fr_fail(FR_ERR_IO, "config file '%s': read failed: %s",
			      ld->path_shown.s, strerror(ld->read_errno));
	} else if (rc > 0) {
		/* inih's own complaint, about a line before any of ours: a
		 * line that is neither a comment, a [section] nor key =
		 * value.  Its count matches ours, since every line we hand
		 * it is whole. */
		err = fr_fail(FR_ERR_INVAL,
			      "%s:%d: syntax error, expected '[SECTION]', 'KEY = VALUE' or a comment",
			      ld->path_shown.s, rc);
	} else if (rc < 0) {
		err = fr_fail(FR_ERR_NOMEM, "config file '%s': inih failed (%d)",
			      ld->path_shown.s, rc);
	} else {
		memcpy(c, ld->c, sizeof(*c));
	}
	fclose(ld->f);
	free(ld->line);
out_free_copy:
	free(ld->c);
out_free_ld:
	free(ld);
	return err;
}

/* ========================================================================
 * Command-line overrides
 * ===================================================================== */
enum fr_err node_config_set(struct node_config *c, const char *assignment)
{
	char sec[64], name[64], list[MSG_MAX / 2], st[SECTIONS_TEXT_MAX];
	struct shown bk, bs;
	const char *eq, *dot, *model, *a = assignment;
	const struct node_config_key *k;
	enum section s;
	size_t klen;
	enum fr_err err;

	if (!c || !a)
		return fr_fail(FR_ERR_INVAL, "override: none given, expected --SECTION.KEY=VALUE");
	if (strncmp(a, "--", 2) == 0)
		a += 2;
	eq = strchr(a, '=');
	dot = strchr(a, '.');
	klen = eq ? (size_t)(eq - a) : strlen(a);
	if (!eq || !dot || dot > eq || dot == a || dot + 1 == eq)
		return fr_fail(FR_ERR_INVAL,
			       "--%s: expected --SECTION.KEY=VALUE",
			       show_n(&bk, a, klen, 64));
	if ((size_t)(dot - a) >= sizeof(sec) ||
	    (size_t)(eq - dot - 1) >= sizeof(name))
		return fr_fail(FR_ERR_INVAL, "--%s: unknown key, expected --SECTION.KEY=VALUE",
			       show_n(&bk, a, klen, 64));
	memcpy(sec, a, (size_t)(dot - a));
	sec[dot - a] = '\0';
	memcpy(name, dot + 1, (size_t)(eq - dot - 1));
	name[eq - dot - 1] = '\0';
	show_n(&bk, a, klen, 96);
	if (!section_lookup(sec, &s, &model))
		return fr_fail(FR_ERR_INVAL,
			       "--%s: unknown section '%s', expected %s",
			       bk.s, show(&bs, sec),
			       sections_text(st, sizeof(st), false));
	if (s == SEC_PEERS || s == SEC_MODEL)
		return fr_fail(FR_ERR_INVAL,
			       "--%s: peers and models are set in the config file only, expected a key of %s",
			       bk.s, sections_text(st, sizeof(st), false));
	k = key_find(s, name);
	if (!k) {
		section_key_list(s, list, sizeof(list));
		return fr_fail(FR_ERR_INVAL,
			       "--%s: unknown key, expected one of: %s", bk.s,
			       list);
	}
	err = key_parse(k, eq + 1, c);
	if (err)
		return fail_prefixed(err, "--%s.%s: ", section_names[s],
				     k->name);
	return FR_OK;
}

/* ========================================================================
 * Whole-config checks
 * ===================================================================== */

/* "integer 1..1024", "auto|cpu|cuda", ...: what a key accepts. */
static void key_type_text(const struct node_config_key *k, char *buf,
			  size_t size)
{
	switch (k->type) {
	case KT_U32:
		snprintf(buf, size, "integer %u..%u", k->min, k->max);
		break;
	case KT_NAME:
		snprintf(buf, size, "name, 1..%zu bytes [A-Za-z0-9_.-]",
			 k->size - 1);
		break;
	case KT_NAMELIST:
		snprintf(buf, size, "comma-separated model names, or empty");
		break;
	case KT_ENUM:
		choices_text(k->choices, buf, size);
		break;
	case KT_ADDR:
		snprintf(buf, size, "HOST:PORT or [IPV6]:PORT");
		break;
	case KT_PATH:
		snprintf(buf, size, "path");
		break;
	case KT_ZKHOSTS:
		snprintf(buf, size, "HOST:PORT[,HOST:PORT...][/chroot] or empty");
		break;
	case KT_LOGLEVEL:
		snprintf(buf, size, "debug|info|warn|error|off");
		break;
	case KT_PEER:
		snprintf(buf, size, "ID@HOST:PORT, repeatable");
		break;
	case KT_TABLE:
		snprintf(buf, size, "NAME:ROWS:DIM[:f32|f16], repeatable");
		break;
	}
}

/* A key's field as config-file text (what node_config_print writes and what
 * node_config_validate re-parses to check a struct filled by other means). */
static bool key_format(const struct node_config_key *k, const void *base,
		       char *buf, size_t size)
{
	const void *field = key_cfield(k, base);

	switch (k->type) {
	case KT_U32: {
		uint32_t v;

		memcpy(&v, field, sizeof(v));
		snprintf(buf, size, "%u", v);
		return !(k->required && v == 0);
	}
	case KT_NAME:
	case KT_NAMELIST:
	case KT_ENUM:
	case KT_PATH:
	case KT_ZKHOSTS:
		snprintf(buf, size, "%.*s", (int)strnlen(field, k->size),
			 (const char *)field);
		return !(k->required && !*buf);
	case KT_ADDR: {
		const struct node_config_addr *a = field;

		if (!k->required && a->port == 0 && !a->host[0]) {
			buf[0] = '\0';
			return true;
		}
		format_addr(a, buf, size);
		return !(k->required && a->port == 0 && !a->host[0]);
	}
	case KT_LOGLEVEL: {
		enum fr_log_level lv;

		memcpy(&lv, field, sizeof(lv));
		if ((unsigned)lv < ARRAY_SIZE(log_level_names))
			snprintf(buf, size, "%s", log_level_names[lv]);
		else
			snprintf(buf, size, "%d", (int)lv);
		return true;
	}
	case KT_PEER:
	case KT_TABLE:
		break;
	}
	buf[0] = '\0';
	return false;
}

/* Check one scalar field of a struct that may not have come through the
 * parsers: format it and parse it back into a scratch copy. */
static enum fr_err key_check(const struct node_config_key *k, const void *base,
			     const char *sec)
{
	/* Room for any one field; data_dir is the largest. */
	union {
		char path[CONFIG_PATH_MAX + 1];
		struct node_config_addr addr;
		uint32_t u32;
		enum fr_log_level level;
	} scratch;
	char text[CONFIG_PATH_MAX + 64], type[96];
	enum fr_err err;

	if (!key_format(k, base, text, sizeof(text))) {
		key_type_text(k, type, sizeof(type));
		return fr_fail(FR_ERR_INVAL,
			       "[%s] %s: required key is missing, expected %s",
			       sec, k->name, type);
	}
	if (k->type == KT_NAME || k->type == KT_NAMELIST ||
	    k->type == KT_ENUM || k->type == KT_PATH || k->type == KT_ZKHOSTS)
		if (strnlen(key_cfield(k, base), k->size) == k->size)
			return fr_fail(FR_ERR_INVAL,
				       "[%s] %s: value is not terminated, expected at most %zu bytes",
				       sec, k->name, k->size - 1);
	assert(k->size <= sizeof(scratch));
	err = key_parse_field(k, text, &scratch);
	if (err)
		return fail_prefixed(err, "[%s] %s: ", sec, k->name);
	return FR_OK;
}

static bool addr_equal(const struct node_config_addr *a,
		       const struct node_config_addr *b)
{
	return a->port == b->port &&
	       strncmp(a->host, b->host, sizeof(a->host)) == 0;
}

static enum fr_err validate_peers(const struct node_config *c)
{
	char abuf[CONFIG_ADDR_MAX + 16];
	struct shown b;
	enum fr_err err;

	if (c->npeers > CONFIG_PEERS_MAX)
		return fr_fail(FR_ERR_INVAL,
			       "[peers] peer: %u peers, expected at most %d",
			       c->npeers, CONFIG_PEERS_MAX);
	for (uint32_t i = 0; i < c->npeers; i++) {
		const struct node_config_peer *p = &c->peers[i];
		struct node_config_addr scratch;

		if (p->id < 1 || p->id > UINT32_MAX - 1)
			return fr_fail(FR_ERR_INVAL,
				       "[peers] peer: id %u is out of range, expected 1..4294967294",
				       p->id);
		if (p->id == c->node_id)
			return fr_fail(FR_ERR_INVAL,
				       "[peers] peer: id %u is this node's own [node] id, expected only other nodes",
				       p->id);
		if (strnlen(p->addr.host, sizeof(p->addr.host)) ==
		    sizeof(p->addr.host))
			return fr_fail(FR_ERR_INVAL,
				       "[peers] peer %u: host is not terminated, expected at most %d bytes",
				       p->id, CONFIG_ADDR_MAX);
		err = node_config_parse_addr(format_addr(&p->addr, abuf,
						    sizeof(abuf)), &scratch);
		if (err)
			return fail_prefixed(err, "[peers] peer %u: address ",
					     p->id);
		if (addr_equal(&p->addr, &c->listen))
			return fr_fail(FR_ERR_INVAL,
				       "[peers] peer %u: address %s is this node's [node] listen address, expected another node's",
				       p->id, show(&b, abuf));
		for (uint32_t j = 0; j < i; j++) {
			if (c->peers[j].id == p->id)
				return fr_fail(FR_ERR_INVAL,
					       "[peers] peer: id %u listed twice, expected unique ids",
					       p->id);
			if (addr_equal(&c->peers[j].addr, &p->addr))
				return fr_fail(FR_ERR_INVAL,
					       "[peers] peer %u: address %s is also peer %u's, expected one address per peer",
					       p->id, show(&b, abuf),
					       c->peers[j].id);
		}
	}
	return FR_OK;
}

static enum fr_err validate_models(const struct node_config *c)
{
	struct shown b;
	enum fr_err err;

	if (c->nmodels > CONFIG_MODELS_MAX)
		return fr_fail(FR_ERR_INVAL,
			       "[model]: %u models, expected at most %d",
			       c->nmodels, CONFIG_MODELS_MAX);
	for (uint32_t i = 0; i < c->nmodels; i++) {
		const struct shard_model_def *m = &c->models[i];
		const char *name = show_n(&b, m->name, sizeof(m->name), 64);

		for (uint32_t j = 0; j < i; j++)
			if (strncmp(c->models[j].name, m->name,
				    sizeof(m->name)) == 0)
				return fr_fail(FR_ERR_INVAL,
					       "[model %s]: model defined twice, expected one section per model",
					       name);
		if (m->shards == 0)
			return fr_fail(FR_ERR_INVAL,
				       "[model %s] shards: required key is missing, expected integer 1..%d",
				       name, SHARD_SHARDS_MAX);
		if (m->ntables == 0)
			return fr_fail(FR_ERR_INVAL,
				       "[model %s] table: required key is missing, expected at least one NAME:ROWS:DIM[:f32|f16]",
				       name);
		err = shard_model_validate(m);
		if (err)
			return fail_prefixed(FR_ERR_INVAL, "[model %s]: ",
					     name);
		for (size_t k = 0; k < NKEYS; k++) {
			char sec[80];

			if (keys[k].section != SEC_MODEL ||
			    keys[k].type == KT_TABLE)
				continue;
			snprintf(sec, sizeof(sec), "model %s", name);
			err = key_check(&keys[k], m, sec);
			if (err)
				return err;
		}
	}
	return FR_OK;
}

enum fr_err node_config_validate(const struct node_config *c)
{
	char abuf[CONFIG_ADDR_MAX + 16];
	struct shown b;
	enum fr_err err;

	if (!c)
		return fr_fail(FR_ERR_INVAL, "config: none given");
	for (size_t i = 0; i < NKEYS; i++) {
		const struct node_config_key *k = &keys[i];

		if (k->section == SEC_PEERS || k->section == SEC_MODEL)
			continue;
		err = key_check(k, c, section_names[k->section]);
		if (err)
			return err;
	}
	if (c->reconnect_min_ms > c->reconnect_max_ms)
		return fr_fail(FR_ERR_INVAL,
			       "[gossip] reconnect_min_ms: %u is greater than reconnect_max_ms (%u), expected reconnect_min_ms <= reconnect_max_ms",
			       c->reconnect_min_ms, c->reconnect_max_ms);
	if (c->digest_interval_ms > c->full_interval_ms)
		return fr_fail(FR_ERR_INVAL,
			       "[gossip] digest_interval_ms: %u is greater than full_interval_ms (%u), expected digest_interval_ms <= full_interval_ms",
			       c->digest_interval_ms, c->full_interval_ms);
	if (addr_equal(&c->listen, &c->admin))
		return fr_fail(FR_ERR_INVAL,
			       "[node] admin: %s is also the listen address, expected a different HOST:PORT",
			       show(&b, format_addr(&c->admin, abuf,
						    sizeof(abuf))));
	for (const char *p = c->canary; *p;) {
		char name[SHARD_NAME_MAX + 1];
		size_t ql;

		while (*p == ' ' || *p == ',')
			p++;
		ql = strcspn(p, ", ");
		if (ql && ql <= SHARD_NAME_MAX) {
			memcpy(name, p, ql);
			name[ql] = '\0';
			if (node_config_list_has(c->baseline, name))
				return fr_fail(FR_ERR_INVAL,
					       "[node] canary: model '%s' is also in node.baseline, expected one role per model",
					       name);
		}
		p += ql;
	}
	err = validate_peers(c);
	if (err)
		return err;
	return validate_models(c);
}

/* ========================================================================
 * Printing
 * ===================================================================== */
void node_config_print_help(FILE *out)
{
	enum section last = SEC__COUNT;
	char type[96];

	fprintf(out,
		"Configuration keys (file: [SECTION] KEY = VALUE; command line: --SECTION.KEY=VALUE):\n"
		"  %-28s %-36s %-11s %s\n", "KEY", "TYPE", "DEFAULT", "MEANING");
	for (size_t i = 0; i < NKEYS; i++) {
		const struct node_config_key *k = &keys[i];
		char name[64];

		if (k->section != last) {
			fprintf(out, "[%s%s]\n", section_names[k->section],
				k->section == SEC_MODEL ? " NAME" : "");
			last = k->section;
		}
		snprintf(name, sizeof(name), "%s.%s",
			 k->section == SEC_MODEL ? "model NAME"
						 : section_names[k->section],
			 k->name);
		key_type_text(k, type, sizeof(type));
		fprintf(out, "  %-28s %-36s %-11s %s\n", name, type,
			k->def ? k->def : k->required ? "(required)" : "-",
			k->help);
	}
	fprintf(out,
		"peers and models are set in the config file only; the rest may be overridden\n"
		"on the command line, which wins over the file.\n");
}

void node_config_print(FILE *out, const struct node_config *c)
{
	enum section last = SEC__COUNT;
	char text[CONFIG_PATH_MAX + 64];

	fprintf(out, "# freshetd effective configuration\n");
	for (size_t i = 0; i < NKEYS; i++) {
		const struct node_config_key *k = &keys[i];

		if (k->section == SEC_PEERS || k->section == SEC_MODEL)
			continue;
		if (k->section != last) {
			fprintf(out, "%s[%s]\n", last == SEC__COUNT ? "" : "\n",
				section_names[k->section]);
			last = k->section;
		}
		if (key_format(k, c, text, sizeof(text)))
			fprintf(out, "%s = %s\n", k->name, text);
		else
			fprintf(out, "; %s is not set (required)\n", k->name);
	}
	if (c->npeers) {
		fprintf(out, "\n[peers]\n");
		for (uint32_t i = 0; i < c->npeers && i < CONFIG_PEERS_MAX; i++)
			fprintf(out, "peer = %u@%s\n", c->peers[i].id,
				format_addr(&c->peers[i].addr, text,
					    sizeof(text)));
	}
	for (uint32_t i = 0; i < c->nmodels && i < CONFIG_MODELS_MAX; i++) {
		const struct shard_model_def *m = &c->models[i];
		struct shown b;

		fprintf(out, "\n[model %s]\n",
			show_n(&b, m->name, sizeof(m->name), 80));
		fprintf(out, "shards = %u\npriority = %u\n", m->shards,
			m->priority);
		for (uint32_t t = 0; t < m->ntables && t < SHARD_TABLES_MAX;
		     t++) {
			const struct shard_table_def *td = &m->tables[t];

			fprintf(out, "table = %s:%llu:%u:%s\n",
				show_n(&b, td->name, sizeof(td->name), 80),
				(unsigned long long)td->rows, td->dim,
				shard_dtype_name(td->dtype));
		}
	}
}
