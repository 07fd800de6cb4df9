/*
 * rollback.c — the SRE side of docs/design.md §6, three `freshet`
 * commands on topology.h's admin client:
 *
 *   rollback  file a rollback directive {T, R} for a model (after checking
 *             that it can work), optionally wait until every live node
 *             serving the model reports its epoch;
 *   history   a model's directives and health changes in time order;
 *   role      set, clear or list the per-model role overrides
 *             (models/<m>/roles) that make a node a canary or baseline.
 *
 * Cuts.  T and R are HLC versions (wall ms << 16 | logical).  A wall-clock
 * cut (-DURATION, @UNIXMS) and R itself take the largest logical part,
 * FR_HLC_MAKE(ms, 0xffff): every update stamped in that millisecond lies
 * at or before it.  `--to baseline` reads the cut the model's baseline
 * nodes publish in their member znodes (topo_model_status.cut) and takes
 * the lowest: the state every baseline has served.
 *
 * Checks before filing, in order; nothing is filed when one fails:
 *   on the command line (exit 2, before connecting): --to's form, cut 0,
 *     a cut that is not before now;
 *   in ZooKeeper (exit 1): the model exists, some live member serves it
 *     (publishes a models[] entry for it), the baseline cut (when asked
 *     for) exists and is in the past, and some serving node's undo
 *     horizon reaches back to T.
 * Members are ephemeral znodes, so "live" means "has a member znode now".
 *
 * Everything read from ZooKeeper is decoded and validated by topology/;
 * strings are still made printable (fr_show) before they reach a
 * terminal.  docs/cli.md is the manual and pins the output lines.
 *
 * Not here: the ZooKeeper client (topology/), what a node does with a
 * directive (node/rollback.c), the witness that files them by itself.
 */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli.h"
#include "cli/input.h"
#include "common/common.h"
#include "shard/shard.h"
#include "topology/topology.h"

#define WAIT_POLL_MS 100
#define WAIT_TIMEOUT_DEFAULT 60000
#define HLC_LOGICAL_MAX 0xffffu
#define HLC_MS_MAX ((UINT64_C(1) << (64 - FR_HLC_LOGICAL_BITS)) - 1)
#define REASON_DEFAULT "manual rollback"
#define UTC_CAP 40

const char rollback_help[] =
	"usage: freshet rollback --model M --to baseline|CUT [--zk HOSTS]\n"
	"                        [--cluster NAME] [--reason TEXT] [--yes]\n"
	"                        [--wait] [--wait-timeout MS] [--timeout MS]\n"
	"\n"
	"File a rollback directive for model M: every node serving M puts\n"
	"each row changed in (T, R] back to its value at T and then refuses\n"
	"versions in (T, R]; T is the cut given by --to, R is now.  Checked\n"
	"first (nothing is filed when a check fails): the model exists, a\n"
	"live node serves it, T is before now, and some node's undo ring\n"
	"reaches back to T.\n"
	"\n"
	"  --model M           the model\n"
	"  --to baseline       the cut the model's baseline node(s) serve\n"
	"                      (the lowest, if there are several)\n"
	"  --to VERSION        an HLC version, decimal (as publish prints)\n"
	"  --to -DURATION      that long ago: -1500ms, -30s, -5m, -2h, -1d\n"
	"  --to @UNIXMS        a wall-clock time, ms since 1970 (UTC)\n"
	"  --reason TEXT       why, kept in the directive (default \"manual\n"
	"                      rollback\"); printable ASCII, 1..255 bytes\n"
	"  --yes               file without asking; needed when standard\n"
	"                      input is not a terminal\n"
	"  --wait              then wait until every live node serving M has\n"
	"                      applied the directive, printing progress\n"
	"  --wait-timeout MS   how long --wait waits (default 60000; implies\n"
	"                      --wait)\n"
	CLI_ZK_HELP
	"\n"
	"Prints \"filed rollback epoch E for model M: (T, R]\"; with --wait\n"
	"finally \"every node (N) applied epoch E in S s\".\n"
	"\n"
	"Exit: 0 filed (with --wait: and applied everywhere), 1 ZooKeeper\n"
	"unreachable or refused, a check failed, not confirmed, or --wait\n"
	"timed out (the directive stays filed), 2 usage error (nothing\n"
	"filed).\n";

const char history_help[] =
	"usage: freshet history --model M [--zk HOSTS] [--cluster NAME]\n"
	"                       [--json] [--timeout MS]\n"
	"\n"
	"A model's rollback directives (epoch, when filed, the cut T and\n"
	"revoke-until R, who, why) and its health states (healthy, uncertain,\n"
	"corrupted: when, by whom, why), merged in time order, oldest first.\n"
	"\n"
	"  --model M           the model\n"
	"  --json              one JSON object per event and line\n"
	CLI_ZK_HELP
	"\n"
	"Exit: 0 done, 1 ZooKeeper unreachable or the model unknown,\n"
	"2 usage error, 3 shown, but some znodes are malformed (warned).\n";

const char role_help[] =
	"usage: freshet role --model M --node ID --set serving|canary|baseline\n"
	"       freshet role --model M --node ID --clear\n"
	"       freshet role --model M\n"
	"                    [--zk HOSTS] [--cluster NAME] [--timeout MS]\n"
	"\n"
	"Override a node's role for one model, remove the override, or list\n"
	"the overrides (with each node's role as it reports it now).  The\n"
	"overrides live in ZooKeeper (models/M/roles) and win over the\n"
	"node's configured role; nodes pick a change up by themselves.\n"
	"\n"
	"  --model M           the model\n"
	"  --node ID           the node id, 1..4294967295\n"
	"  --set ROLE          serving (the default role), canary (watched\n"
	"                      by the witness) or baseline (lags on purpose;\n"
	"                      the known-good reference)\n"
	"  --clear             remove the node's override\n"
	CLI_ZK_HELP
	"\n"
	"Exit: 0 done, 1 ZooKeeper unreachable or refused, or the model\n"
	"unknown, 2 usage error (nothing written).\n";

/* ========================================================================
 * Shared helpers
 * ===================================================================== */

/* "2025-11-25T06:13:20.123Z" for wall ms. */
static const char *utc_ms(uint64_t ms, char *buf, size_t cap)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	char day[32];

	if (ms / 1000 > (uint64_t)INT64_MAX / 2 || !gmtime_r(&secs, &tm) ||
	    !strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm))
		snprintf(buf, cap, "(ms %llu)", (unsigned long long)ms);
	else
		snprintf(buf, cap, "%s.%03uZ", day, (unsigned)(ms % 1000));
	return buf;
}

/* The wall-clock part of a version, as above. */
static const char *utc_ver(uint64_t v, char *buf, size_t cap)
{
	return utc_ms(FR_HLC_PHYS(v), buf, cap);
}

/* A session to ZooKeeper in which model exists (the caller closes it), or
 * NULL with *rc the exit code (the message printed): what every command
 * here does first. */
static struct topo_admin *model_connect(const char *cmd,
					const struct cli_zk_opts *z,
					const char *model, int *rc)
{
	struct shard_model_def def;
	struct topo_admin *a;
	enum fr_err err;

	a = cli_zk_connect(cmd, z, z->timeout_ms, rc);
	if (!a)
		return NULL;
	err = topo_admin_model_get(a, model, &def);
	if (err == FR_OK)
		return a;
	if (err == FR_ERR_NOTFOUND)
		cli_error(cmd, "unknown model %s: %s", model, cli_errtext(err));
	else
		cli_error(cmd, "model %s: %s", model, cli_errtext(err));
	topo_admin_close(a);
	*rc = CLI_EXIT_RUNTIME;
	return NULL;
}

/* What every command here takes: the ZooKeeper options and --model. */
#define MODEL_LONGOPTS                                        \
	CLI_ZK_LONGOPTS,                                      \
	{ "model", required_argument, NULL, 'm' }

/* cli_getopt_next, with --model ('m') taken into *model. */
static int model_getopt_next(struct cli_getopt *g, const char **model,
			     int *rc)
{
	int ch;

	while ((ch = cli_getopt_next(g, rc)) == 'm')
		*model = optarg;
	return ch;
}

/* After the options: no argument left, --model a name, the ZooKeeper
 * options valid.  0 or CLI_EXIT_USAGE (printed). */
static int model_cmd_check(const struct cli_getopt *g, const char *model)
{
	int rc;

	if ((rc = cli_getopt_no_args(g)) ||
	    (rc = cli_name_opt(g->cmd, "--model", model, SHARD_NAME_MAX)))
		return rc;
	return cli_zk_check(g->cmd, g->zk);
}

static void sleep_ms(uint64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000),
			       (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0)
		;
}

/* ========================================================================
 * freshet rollback
 * ===================================================================== */

/*
 * --to: "baseline" (*baseline set, *t untouched), a decimal version,
 * "-DURATION" (now_ms minus it) or "@UNIXMS".  FR_ERR_INVAL with the
 * detail naming the problem; the cut-versus-now check is the caller's.
 */
static enum fr_err parse_to(const char *s, uint64_t now_ms, uint64_t *t,
			    bool *baseline)
{
	static const struct { const char *unit; uint64_t ms; } units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "m", 60000 },
		{ "h", 3600000 }, { "d", 86400000 },
	};
	uint64_t v, ms;
	size_t n;

	*baseline = false;
	if (strcmp(s, "baseline") == 0) {
		*baseline = true;
		return FR_OK;
	}
	if (fr_dec_u64(s, strlen(s), &v)) {
		if (v == 0)
			return fr_fail(FR_ERR_INVAL, "--to '%s': cut 0 is "
				       "before every update, expected a "
				       "version >= 1", s);
		*t = v;
		return FR_OK;
	}
	if (s[0] == '@') {
		if (!fr_dec_u64(s + 1, strlen(s + 1), &v))
			goto bad_form;
		if (v == 0 || v > HLC_MS_MAX)
			return fr_fail(FR_ERR_INVAL, "--to '%s': UNIXMS must "
				       "be 1..%llu", s,
				       (unsigned long long)HLC_MS_MAX);
		*t = FR_HLC_MAKE(v, HLC_LOGICAL_MAX);
		return FR_OK;
	}
	if (s[0] != '-')
		goto bad_form;
	for (n = 1; s[n] >= '0' && s[n] <= '9'; n++)
		;
	if (n == 1 || !fr_dec_u64(s + 1, n - 1, &v))
		goto bad_form;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(s + n, units[i].unit) != 0)
			continue;
		if (v == 0)
			return fr_fail(FR_ERR_INVAL, "--to '%s': the "
				       "duration must be positive", s);
		if (v > UINT64_MAX / units[i].ms ||
		    v * units[i].ms >= now_ms)
			return fr_fail(FR_ERR_INVAL, "--to '%s': reaches "
				       "back before 1970", s);
		ms = now_ms - v * units[i].ms;
		*t = FR_HLC_MAKE(ms, HLC_LOGICAL_MAX);
		return FR_OK;
	}
	if (s[n])
		return fr_fail(FR_ERR_INVAL, "--to '%s': unit '%s' is "
			       "unknown, expected ms, s, m, h or d", s, s + n);
	return fr_fail(FR_ERR_INVAL, "--to '%s': the duration needs a unit "
		       "(ms, s, m, h or d)", s);
bad_form:
	return fr_fail(FR_ERR_INVAL, "--to '%s': expected baseline, a "
		       "version, -DURATION or @UNIXMS", s);
}

/* "$USER@hostname" ($LOGNAME, then the password entry, when $USER is not
 * set), printable and within TOPO_WHO_MAX. */
static void who_am_i(char *buf, size_t cap)
{
	const char *user = getenv("USER");
	char host[256] = "", u[64], h[64], pwbuf[1024];
	struct passwd pw, *found = NULL;

	if (!user || !*user)
		user = getenv("LOGNAME");
	if ((!user || !*user) &&
	    getpwuid_r(getuid(), &pw, pwbuf, sizeof(pwbuf), &found) == 0 &&
	    found && found->pw_name && *found->pw_name)
		user = found->pw_name;
	if (!user || !*user)
		user = "unknown";
	if (gethostname(host, sizeof(host) - 1) != 0 || !host[0])
		snprintf(host, sizeof(host), "unknown");
	snprintf(buf, cap, "%s@%s", fr_show(u, sizeof(u), user),
		 fr_show(h, sizeof(h), host));
}

/* Ask on the terminal; true when the answer is y or yes. */
static bool confirm(const char *model, uint64_t t, uint64_t now_ms)
{
	char line[64], ut[UTC_CAP], ur[UTC_CAP];

	fprintf(stderr, "Roll model %s back to cut %llu (%s)?\n"
		"Every update to it from then until now (%s) is revoked on "
		"every node. [y/N] ", model, (unsigned long long)t,
		utc_ver(t, ut, sizeof(ut)), utc_ms(now_ms, ur, sizeof(ur)));
	fflush(stderr);
	if (!fgets(line, sizeof(line), stdin))
		return false;
	line[strcspn(line, "\r\n")] = '\0';
	return strcmp(line, "y") == 0 || strcmp(line, "Y") == 0 ||
	       strcmp(line, "yes") == 0;
}

/*
 * The checks that need the members (see the top of the file).  *t is
 * resolved for --to baseline.  0, or CLI_EXIT_RUNTIME with the message
 * printed.
 */
static int check_members(const char *cmd, const char *model,
			 const struct topo_member *m, uint32_t n,
			 bool baseline, uint64_t now_ms, uint64_t *t)
{
	const struct topo_member *low = NULL, *base = NULL;
	char ut[UTC_CAP], uh[UTC_CAP];
	uint32_t serving = 0, short_ring = 0;

	for (uint32_t i = 0; i < n; i++) {
		const struct topo_model_status *s =
			cli_member_model(&m[i], model);

		if (!s)
			continue;
		serving++;
		if (baseline && strcmp(s->role, "baseline") == 0 &&
		    (!base || s->cut < cli_member_model(base, model)->cut))
			base = &m[i];
	}
	if (serving == 0) {
		cli_error(cmd, "no live node serves model %s (no member znode "
			  "has a status for it); nothing filed", model);
		return CLI_EXIT_RUNTIME;
	}
	if (baseline) {
		if (!base) {
			cli_error(cmd, "model %s has no live baseline node; "
				  "nothing filed", model);
			return CLI_EXIT_RUNTIME;
		}
		*t = cli_member_model(base, model)->cut;
		if (*t == 0) {
			cli_error(cmd, "baseline node %u reports cut 0 for "
				  "model %s (it has served nothing yet); "
				  "nothing filed", base->node_id, model);
			return CLI_EXIT_RUNTIME;
		}
		if (*t >= FR_HLC_MAKE(now_ms, HLC_LOGICAL_MAX)) {
			cli_error(cmd, "baseline node %u reports cut %llu "
				  "(%s), which is not before now (is its clock "
				  "ahead?); nothing filed", base->node_id,
				  (unsigned long long)*t,
				  utc_ver(*t, ut, sizeof(ut)));
			return CLI_EXIT_RUNTIME;
		}
	}
	for (uint32_t i = 0; i < n; i++) {
		const struct topo_model_status *s =
			cli_member_model(&m[i], model);

		if (!s || s->horizon <= *t)
			continue;
		short_ring++;
		if (!low || s->horizon < cli_member_model(low, model)->horizon)
			low = &m[i];
	}
	if (short_ring == serving) {
		uint64_t h = cli_member_model(low, model)->horizon;

		cli_error(cmd, "cut %llu is older than every node's undo ring "
			  "(oldest reach: %llu on node %u); no node could "
			  "restore it (cut %s, oldest reach %s); nothing "
			  "filed", (unsigned long long)*t,
			  (unsigned long long)h, low->node_id,
			  utc_ver(*t, ut, sizeof(ut)),
			  utc_ver(h, uh, sizeof(uh)));
		return CLI_EXIT_RUNTIME;
	}
	if (short_ring)
		cli_error(cmd, "note: %u of %u nodes serving model %s cannot "
			  "reach cut %llu from their undo rings; they will "
			  "repair with full transfers", short_ring, serving,
			  model, (unsigned long long)*t);
	return 0;
}

/* Count the live members serving M and those at epoch >= e. */
static void count_applied(const struct topo_member *m, uint32_t n,
			  const char *model, uint64_t e, uint32_t *total,
			  uint32_t *applied)
{
	*total = *applied = 0;
	for (uint32_t i = 0; i < n; i++) {
		const struct topo_model_status *s =
			cli_member_model(&m[i], model);

		if (!s)
			continue;
		(*total)++;
		*applied += s->epoch >= e;
	}
}

/*
 * --wait: poll the members every WAIT_POLL_MS until every live member
 * serving M reports epoch >= e.  The set is taken afresh each poll, so a
 * node that leaves stops counting (and one that joins must apply it
 * too); an empty set is not success.  A failed read closes the session
 * and the next poll opens a new one (an expired session never recovers).
 * 0, or CLI_EXIT_RUNTIME (timed out; printed).
 */
static int wait_applied(const char *cmd, struct topo_admin **ap,
			const struct cli_zk_opts *z, const char *model,
			uint64_t e, uint64_t filed_mono, uint64_t timeout_ms)
{
	struct topo_member *last = NULL;
	uint32_t nlast = 0, prev_total = UINT32_MAX, prev_applied = 0;
	uint64_t deadline = filed_mono + timeout_ms;
	char why[512] = "";

	for (;;) {
		struct topo_member *m = NULL;
		uint32_t n = 0, total, applied;
		uint64_t now = fr_mono_ms();

		/* A new session, bounded by what is left of the wait; not
		 * in the last moments, where it could only fail and hide
		 * the error that matters. */
		if (!*ap && deadline > now + WAIT_POLL_MS) {
			uint64_t left = deadline - now;

			*ap = cli_zk_connect(cmd, z, left < z->timeout_ms ?
					 left : z->timeout_ms, NULL);
			if (!*ap)
				snprintf(why, sizeof(why), "%s", fr_errmsg());
		}
		if (*ap && topo_admin_members(*ap, &m, &n, NULL) == FR_OK) {
			free(last);
			last = m;
			nlast = n;
			why[0] = '\0';
			count_applied(m, n, model, e, &total, &applied);
			now = fr_mono_ms();
			if (total && applied == total) {
				printf("every node (%u) applied epoch %llu "
				       "in %.3f s\n", total,
				       (unsigned long long)e,
				       (double)(now - filed_mono) / 1000.0);
				free(last);
				return 0;
			}
			if (total != prev_total || applied != prev_applied) {
				if (total)
					printf("  %u of %u nodes applied epoch "
					       "%llu (%.3f s)\n", applied,
					       total, (unsigned long long)e,
					       (double)(now - filed_mono) /
					       1000.0);
				else
					printf("  no live node serves model %s"
					       " now; waiting (%.3f s)\n",
					       model,
					       (double)(now - filed_mono) /
					       1000.0);
				fflush(stdout);
				prev_total = total;
				prev_applied = applied;
			}
		} else if (*ap) {
			snprintf(why, sizeof(why), "%s", fr_errmsg());
			topo_admin_close(*ap);
			*ap = NULL;
		}
		now = fr_mono_ms();
		if (now >= deadline)
			break;
		sleep_ms(deadline - now < WAIT_POLL_MS ? deadline - now :
			 WAIT_POLL_MS);
	}

	fprintf(stderr, "freshet %s: timed out after %llu ms waiting for "
		"epoch %llu of model %s (the directive stays filed)",
		cmd, (unsigned long long)timeout_ms, (unsigned long long)e,
		model);
	if (why[0])
		fprintf(stderr, "; last ZooKeeper error: %s", why);
	if (last) {
		uint32_t total, applied;
		bool first = true;

		count_applied(last, nlast, model, e, &total, &applied);
		fprintf(stderr, "; %u of %u nodes applied it", applied, total);
		for (uint32_t i = 0; i < nlast; i++) {
			const struct topo_model_status *s =
				cli_member_model(&last[i], model);
			char dc[TOPO_NAME_MAX + 1];

			if (!s || s->epoch >= e)
				continue;
			fprintf(stderr, "%s node %u (%s) at epoch %llu",
				first ? "; behind:" : ",", last[i].node_id,
				fr_show(dc, sizeof(dc), last[i].dc),
				(unsigned long long)s->epoch);
			first = false;
		}
	}
	fputc('\n', stderr);
	free(last);
	return CLI_EXIT_RUNTIME;
}

int cmd_rollback(int argc, char **argv)
{
	static const struct option opts[] = {
		MODEL_LONGOPTS,
		{ "to", required_argument, NULL, 't' },
		{ "reason", required_argument, NULL, 'r' },
		{ "wait", no_argument, NULL, 'w' },
		{ "wait-timeout", required_argument, NULL, 'W' },
		{ "yes", no_argument, NULL, 'y' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd = "rollback";
	const char *model = NULL, *to = NULL, *reason = REASON_DEFAULT;
	struct topo_member *members = NULL;
	struct cli_getopt g;
	struct cli_zk_opts z;
	struct topo_rollback d;
	struct topo_admin *a;
	uint64_t wait_timeout = WAIT_TIMEOUT_DEFAULT, now_ms, t = 0, epoch;
	uint64_t filed_mono;
	uint32_t nmembers = 0;
	bool wait = false, yes = false, baseline;
	char ut[UTC_CAP], ur[UTC_CAP];
	enum fr_err err;
	int ch, rc;

	cli_getopt_init(&g, cmd, argc, argv, opts, rollback_help, &z);
	while ((ch = model_getopt_next(&g, &model, &rc)) != CLI_OPT_END) {
		switch (ch) {
		case CLI_OPT_STOP: return rc;
		case 't': to = optarg; break;
		case 'r': reason = optarg; break;
		case 'w': wait = true; break;
		case 'y': yes = true; break;
		case 'W':
			if ((rc = cli_parse_uint_opt(cmd, "--wait-timeout",
						     optarg, INT32_MAX,
						     &wait_timeout)))
				return rc;
			if (wait_timeout == 0)
				return cli_usage_error(cmd, "--wait-timeout 0: "
						       "expected 1..%d ms",
						       INT32_MAX);
			wait = true;
			break;
		}
	}
	if ((rc = cli_getopt_no_args(&g)) ||
	    (rc = cli_name_opt(cmd, "--model", model, SHARD_NAME_MAX)))
		return rc;
	if (!to)
		return cli_usage_error(cmd, "--to is required: baseline, a "
				       "version, -DURATION or @UNIXMS");
	now_ms = fr_wall_ms(NULL);
	if (parse_to(to, now_ms, &t, &baseline))
		return cli_usage_error(cmd, "%s", fr_errmsg());
	/* R will be at least this; a cut at or past it revokes nothing. */
	if (!baseline && t >= FR_HLC_MAKE(now_ms, HLC_LOGICAL_MAX))
		return cli_usage_error(cmd, "--to '%s': cut %llu (%s) is in "
				       "the future; it must be before now "
				       "(%s)", to,
				       (unsigned long long)t,
				       utc_ver(t, ut, sizeof(ut)),
				       utc_ms(now_ms, ur, sizeof(ur)));
	if (!cli_text_ok(reason, TOPO_REASON_MAX))
		return cli_usage_error(cmd, "--reason: expected 1..%d "
				       "printable ASCII characters",
				       TOPO_REASON_MAX);
	if ((rc = cli_zk_check(cmd, &z)))
		return rc;
	if (!yes && !isatty(STDIN_FILENO))
		return cli_usage_error(cmd, "standard input is not a terminal, "
				       "so there is no one to confirm: pass "
				       "--yes to file the rollback without "
				       "asking");

	a = model_connect(cmd, &z, model, &rc);
	if (!a)
		return rc;
	rc = CLI_EXIT_RUNTIME;
	if ((err = topo_admin_members(a, &members, &nmembers, NULL))) {
		cli_error(cmd, "reading the members: %s", cli_errtext(err));
		goto out;
	}
	now_ms = fr_wall_ms(NULL);
	if ((rc = check_members(cmd, model, members, nmembers, baseline,
				now_ms, &t)))
		goto out;
	if (!yes && !confirm(model, t, fr_wall_ms(NULL))) {
		cli_error(cmd, "not confirmed; nothing filed");
		rc = CLI_EXIT_RUNTIME;
		goto out;
	}

	memset(&d, 0, sizeof(d));
	d.t = t;
	d.at_ms = fr_wall_ms(NULL);
	d.r = FR_HLC_MAKE(d.at_ms, HLC_LOGICAL_MAX);
	snprintf(d.reason, sizeof(d.reason), "%s", reason);
	who_am_i(d.who, sizeof(d.who));
	filed_mono = fr_mono_ms();
	err = topo_admin_rollback_file(a, model, &d, NULL, -1, &epoch);
	if (err) {
		cli_error(cmd, "filing the rollback of model %s: "
			  "%s", model, cli_errtext(err));
		rc = CLI_EXIT_RUNTIME;
		goto out;
	}
	printf("filed rollback epoch %llu for model %s: (%llu, %llu]\n"
	       "  from %s (exclusive) to %s, %.3f s of updates revoked\n",
	       (unsigned long long)epoch, model, (unsigned long long)d.t,
	       (unsigned long long)d.r, utc_ver(d.t, ut, sizeof(ut)),
	       utc_ver(d.r, ur, sizeof(ur)),
	       (double)(FR_HLC_PHYS(d.r) - FR_HLC_PHYS(d.t)) / 1000.0);
	fflush(stdout);
	rc = 0;
	if (wait)
		rc = wait_applied(cmd, &a, &z, model, epoch, filed_mono,
				  wait_timeout);
out:
	free(members);
	topo_admin_close(a);
	return rc;
}

/* ========================================================================
 * freshet history
 * ===================================================================== */

struct hist_event {
	uint64_t at_ms;
	int kind;          /* 0 state change (first at a tie), 1 directive */
	uint32_t ord;      /* oldest first within a kind */
	const struct topo_rollback *d;             /* kind 1 */
	const struct topo_health_change *h;        /* kind 0 */
	bool current;      /* kind 0: the model's state now */
};

static int hist_cmp(const void *pa, const void *pb)
{
	const struct hist_event *a = pa, *b = pb;

	if (a->at_ms != b->at_ms)
		return a->at_ms < b->at_ms ? -1 : 1;
	if (a->kind != b->kind)
		return a->kind - b->kind;
	return a->ord < b->ord ? -1 : a->ord > b->ord;
}

static json_t *hist_json(const char *model, const struct hist_event *e,
			 const struct topo_health *h)
{
	char ua[UTC_CAP], ut[UTC_CAP], ur[UTC_CAP];
	json_t *o;

	if (e->d) {
		const struct topo_rollback *d = e->d;

		return json_pack("{s:s,s:s,s:o,s:s,s:o,s:o,s:s,s:o,s:s,s:s,"
				 "s:s}", "event", "rollback", "model", model,
				 "at", cli_json_u64(d->at_ms), "at_utc",
				 utc_ms(d->at_ms, ua, sizeof(ua)),
				 "epoch", cli_json_u64(d->epoch),
				 "t", cli_json_u64(d->t), "t_utc",
				 utc_ver(d->t, ut, sizeof(ut)),
				 "r", cli_json_u64(d->r), "r_utc",
				 utc_ver(d->r, ur, sizeof(ur)),
				 "who", d->who, "reason", d->reason);
	}
	o = json_pack("{s:s,s:s,s:o,s:s,s:s,s:s,s:s,s:b}", "event", "state",
		      "model", model, "at", cli_json_u64(e->h->at_ms), "at_utc",
		      utc_ms(e->h->at_ms, ua, sizeof(ua)),
		      "state", topo_health_name(e->h->state),
		      "by", e->h->by, "why", e->h->why, "current", e->current);
	if (o && e->current)
		json_object_set_new(o, "epoch", cli_json_u64(h->epoch));
	return o;
}

static void hist_text(const struct hist_event *e)
{
	char ua[UTC_CAP], ut[UTC_CAP], ur[UTC_CAP];
	char who[TOPO_WHO_MAX + 1], why[TOPO_REASON_MAX + 1];

	if (e->d) {
		const struct topo_rollback *d = e->d;

		printf("%s  rollback epoch %llu  (%llu, %llu] = (%s, %s]  "
		       "by %s: %s\n", utc_ms(d->at_ms, ua, sizeof(ua)),
		       (unsigned long long)d->epoch, (unsigned long long)d->t,
		       (unsigned long long)d->r, utc_ver(d->t, ut, sizeof(ut)),
		       utc_ver(d->r, ur, sizeof(ur)),
		       fr_show(who, sizeof(who), d->who),
		       fr_show(why, sizeof(why), d->reason));
		return;
	}
	printf("%s  state %s%s  by %s: %s\n",
	       utc_ms(e->h->at_ms, ua, sizeof(ua)),
	       topo_health_name(e->h->state), e->current ? " (now)" : "",
	       fr_show(who, sizeof(who), e->h->by),
	       fr_show(why, sizeof(why), e->h->why));
}

int cmd_history(int argc, char **argv)
{
	static const struct option opts[] = {
		MODEL_LONGOPTS,
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd = "history", *model = NULL;
	struct topo_rollback *ds = NULL;
	struct topo_health_change cur;
	struct hist_event *ev = NULL;
	struct topo_health *h = NULL;
	struct cli_zk_opts z;
	struct topo_admin *a;
	uint32_t nd = 0, bad = 0, nev = 0;
	int32_t version = -1;
	bool json = false, state_bad = false;
	char ua[UTC_CAP];
	struct cli_getopt g;
	enum fr_err err;
	int ch, rc;

	cli_getopt_init(&g, cmd, argc, argv, opts, history_help, &z);
	while ((ch = model_getopt_next(&g, &model, &rc)) != CLI_OPT_END) {
		if (ch == CLI_OPT_STOP)
			return rc;
		json = true;   /* 'j', the only other option */
	}
	if ((rc = model_cmd_check(&g, model)))
		return rc;

	a = model_connect(cmd, &z, model, &rc);
	if (!a)
		return rc;
	rc = CLI_EXIT_RUNTIME;
	h = calloc(1, sizeof(*h));
	if (!h) {
		cli_error(cmd, "out of memory");
		goto out;
	}
	err = topo_admin_rollbacks(a, model, &ds, &nd, &bad);
	if (err) {
		cli_error(cmd, "%s%s",
			  err == FR_ERR_NOTFOUND ? "unknown model: " : "",
			  cli_errtext(err));
		goto out;
	}
	err = topo_admin_state_get(a, model, h, &version);
	if (err == FR_ERR_CORRUPT) {
		cli_error(cmd, "warning: %s; the health state "
			  "is left out", cli_errtext(err));
		state_bad = true;
		version = -1;
	} else if (err) {
		cli_error(cmd, "%s%s",
			  err == FR_ERR_NOTFOUND ? "unknown model: " : "",
			  cli_errtext(err));
		goto out;
	}
	if (bad)
		cli_error(cmd, "warning: %u malformed directive "
			  "znode%s under /freshet/%s/models/%s/rollbacks left "
			  "out", bad, bad == 1 ? "" : "s", z.cluster,
			  model);

	ev = calloc((size_t)nd + TOPO_HISTORY_MAX + 1, sizeof(*ev));
	if (!ev) {
		cli_error(cmd, "out of memory");
		goto out;
	}
	for (uint32_t i = 0; i < nd; i++)
		ev[nev++] = (struct hist_event){ .at_ms = ds[i].at_ms,
						 .kind = 1, .ord = i,
						 .d = &ds[i] };
	if (version >= 0) {
		uint32_t nh = h->nhistory < TOPO_HISTORY_MAX ?
			      h->nhistory : TOPO_HISTORY_MAX;

		/* history[] is newest first; ord counts oldest first. */
		for (uint32_t i = 0; i < nh; i++)
			ev[nev++] = (struct hist_event){
				.at_ms = h->history[i].at_ms, .kind = 0,
				.ord = nh - 1 - i, .h = &h->history[i] };
		memset(&cur, 0, sizeof(cur));
		cur.state = h->state;
		cur.at_ms = h->at_ms;
		snprintf(cur.by, sizeof(cur.by), "%s", h->by);
		snprintf(cur.why, sizeof(cur.why), "%s", h->why);
		ev[nev++] = (struct hist_event){ .at_ms = cur.at_ms,
						 .kind = 0, .ord = nh,
						 .h = &cur, .current = true };
	}
	qsort(ev, nev, sizeof(*ev), hist_cmp);

	rc = 0;
	if (json) {
		for (uint32_t i = 0; i < nev && !rc; i++)
			rc = cli_print_json_line(cmd, hist_json(model, &ev[i],
								h));
		if (rc)
			goto out;
	} else {
		if (version >= 0 && h->epoch)
			printf("model %s: state %s since %s (filed with "
			       "rollback epoch %llu)\n", model,
			       topo_health_name(h->state),
			       utc_ms(h->at_ms, ua, sizeof(ua)),
			       (unsigned long long)h->epoch);
		else if (version >= 0)
			printf("model %s: state %s since %s\n", model,
			       topo_health_name(h->state),
			       utc_ms(h->at_ms, ua, sizeof(ua)));
		else if (!state_bad)
			printf("model %s: state healthy (never set)\n",
			       model);
		if (nd)
			printf("model %s: %u rollback directive%s, newest "
			       "epoch %llu\n", model, nd, nd == 1 ? "" : "s",
			       (unsigned long long)ds[nd - 1].epoch);
		else
			printf("model %s: no rollback directives\n", model);
		for (uint32_t i = 0; i < nev; i++)
			hist_text(&ev[i]);
	}
	if (bad || state_bad)
		rc = CLI_EXIT_UNHEALTHY;
out:
	free(ev);
	free(h);
	free(ds);
	topo_admin_close(a);
	return rc;
}

/* ========================================================================
 * freshet role
 * ===================================================================== */

static const char *override_of(const struct topo_role_override *o,
			       uint32_t n, uint32_t node)
{
	for (uint32_t i = 0; i < n; i++)
		if (o[i].node_id == node)
			return o[i].role;
	return NULL;
}

static const struct topo_member *member_of(const struct topo_member *m,
					   uint32_t n, uint32_t node)
{
	for (uint32_t i = 0; i < n; i++)
		if (m[i].node_id == node)
			return &m[i];
	return NULL;
}

static void role_list(const char *model, const struct topo_role_override *o,
		      uint32_t n, const struct topo_member *m, uint32_t nm,
		      bool have_members)
{
	char role[TOPO_ROLE_MAX + 1], rep[TOPO_ROLE_MAX + 1];

	if (n == 0) {
		printf("model %s: no role overrides (every node takes its "
		       "configured role)\n", model);
		return;
	}
	printf("model %s: %u role override%s\n", model, n,
	       n == 1 ? "" : "s");
	printf("  %10s  %-9s %-5s %s\n", "NODE", "OVERRIDE", "LIVE",
	       "REPORTS");
	for (uint32_t i = 0; i < n; i++) {
		const struct topo_member *mm = member_of(m, nm, o[i].node_id);
		const struct topo_model_status *s =
			mm ? cli_member_model(mm, model) : NULL;

		printf("  %10u  %-9s %-5s %s\n", o[i].node_id,
		       fr_show(role, sizeof(role), o[i].role),
		       !have_members ? "?" : mm ? "yes" : "no",
		       s ? fr_show(rep, sizeof(rep), s->role) : "-");
	}
}

/* role's command line, checked. */
struct role_args {
	struct cli_zk_opts z;
	const char *model;
	const char *set;        /* --set ROLE, NULL if not given */
	bool clear;             /* --clear */
	uint32_t node;          /* --node ID, 0 if not given */
};

/* One option of role's own (getopt's val ch, optarg): 0 or
 * CLI_EXIT_USAGE (printed). */
static int role_option(int ch, struct role_args *ra)
{
	const char *cmd = "role";
	uint64_t node;
	int rc;

	if (ch == 'x') {
		ra->clear = true;
	} else if (ch == 's') {
		if (!topo_role_valid(optarg))
			return cli_usage_error(cmd, "--set '%s': expected "
					       "serving, canary or baseline",
					       optarg);
		ra->set = optarg;
	} else {   /* 'n' */
		if ((rc = cli_parse_uint_opt(cmd, "--node", optarg, UINT32_MAX,
					     &node)))
			return rc;
		if (node == 0)
			return cli_usage_error(cmd, "--node 0: expected a node "
					       "id 1..%u", UINT32_MAX);
		ra->node = (uint32_t)node;
	}
	return 0;
}

/* All of role's options: 0 to go on, -1 after --help, else the exit
 * code (printed). */
static int role_args(int argc, char **argv, struct role_args *ra)
{
	static const struct option opts[] = {
		MODEL_LONGOPTS,
		{ "node", required_argument, NULL, 'n' },
		{ "set", required_argument, NULL, 's' },
		{ "clear", no_argument, NULL, 'x' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd = "role";
	struct cli_getopt g;
	int ch, rc;

	memset(ra, 0, sizeof(*ra));
	cli_getopt_init(&g, cmd, argc, argv, opts, role_help, &ra->z);
	while ((ch = model_getopt_next(&g, &ra->model, &rc)) != CLI_OPT_END)
		if (ch == CLI_OPT_STOP || (rc = role_option(ch, ra)))
			return rc ? rc : -1;
	if ((rc = model_cmd_check(&g, ra->model)))
		return rc;
	if (ra->set && ra->clear)
		return cli_usage_error(cmd, "--set and --clear exclude each "
				       "other");
	if ((ra->set || ra->clear) && !ra->node)
		return cli_usage_error(cmd, "--%s needs --node ID",
				       ra->set ? "set" : "clear");
	if (ra->node && !ra->set && !ra->clear)
		return cli_usage_error(cmd, "--node needs --set ROLE or "
				       "--clear (without --node: list the "
				       "overrides)");
	return 0;
}

int cmd_role(int argc, char **argv)
{
	const char *cmd = "role", *model, *set, *old;
	struct topo_role_override *o = NULL;
	struct topo_member *m = NULL;
	struct role_args ra;
	struct topo_admin *a;
	uint32_t n = 0, nm = 0, node;
	bool clear, have_members;
	char was[TOPO_ROLE_MAX + 1];
	enum fr_err err;
	int rc;

	if ((rc = role_args(argc, argv, &ra)))
		return rc < 0 ? 0 : rc;
	model = ra.model;
	set = ra.set;
	clear = ra.clear;
	node = ra.node;

	a = model_connect(cmd, &ra.z, model, &rc);
	if (!a)
		return rc;
	rc = CLI_EXIT_RUNTIME;
	o = calloc(TOPO_ROLE_OVERRIDES_MAX, sizeof(*o));
	if (!o) {
		cli_error(cmd, "out of memory");
		goto out;
	}
	err = topo_admin_roles_get(a, model, o, TOPO_ROLE_OVERRIDES_MAX, &n);
	if (err) {
		cli_error(cmd, "reading the role overrides of "
			  "model %s: %s", model, cli_errtext(err));
		goto out;
	}
	/* Who is live is context, not a must: without it, say so. */
	have_members = topo_admin_members(a, &m, &nm, NULL) == FR_OK;
	if (!have_members)
		cli_error(cmd, "warning: cannot read the members "
			  "(%s); liveness not shown", fr_errmsg());
	if (!set && !clear) {
		role_list(model, o, n, m, nm, have_members);
		rc = 0;
		goto out;
	}

	old = override_of(o, n, node);
	if (old)
		fr_show(was, sizeof(was), old);
	if (clear && !old) {
		printf("model %s: node %llu has no role override; nothing to "
		       "clear\n", model, (unsigned long long)node);
		rc = 0;
		goto out;
	}
	err = topo_admin_role_set(a, model, (uint32_t)node, set);
	if (err) {
		cli_error(cmd, "%s the role override of node "
			  "%llu for model %s: %s", set ? "setting" : "clearing",
			  (unsigned long long)node, model, cli_errtext(err));
		rc = err == FR_ERR_INVAL ? CLI_EXIT_USAGE : CLI_EXIT_RUNTIME;
		goto out;
	}
	if (set)
		printf("model %s: node %llu is now %s (was: %s)\n", model,
		       (unsigned long long)node, set,
		       old ? was : "no override");
	else
		printf("model %s: node %llu's role override cleared (was: "
		       "%s); it takes its configured role\n", model,
		       (unsigned long long)node, was);
	if (have_members && !member_of(m, nm, (uint32_t)node))
		cli_error(cmd, "note: node %llu is not a live member now; the "
			  "override applies when it joins",
			  (unsigned long long)node);
	rc = 0;
out:
	free(m);
	free(o);
	topo_admin_close(a);
	return rc;
}
