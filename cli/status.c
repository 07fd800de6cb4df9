/*
 * status.c — `freshet status`: the cluster on one screen.  Members and
 * leaders come from ZooKeeper (topology.h's admin client), the model
 * registry too; each member's admin endpoint is asked GET /status?shards=1.
 * From those replies it works out, per model and DC, how far the DC's
 * slowest node is behind the freshest version anyone holds, in
 * milliseconds and in shards, and flags what an operator must look at.
 * docs/cli.md shows the screen, the JSON schema and the exit codes.
 *
 * A round is gather (status_gather.c: ZooKeeper, then HTTP) -> compute
 * (status_compute.c, pure) -> render (status_render.c: the screen or
 * --json); --watch repeats it every second on the same ZooKeeper session
 * until SIGINT.  This file holds the options and the rounds.
 *
 * Not here: option parsing shared with the other commands and the JSON
 * helpers (cliutil.c), ZooKeeper itself (topology/).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/status_int.h"
#include "common/common.h"
#include "topology/topology.h"

#define CMD "status"

#define NODE_TIMEOUT_DEFAULT 2000     /* ms per /status request */
#define WATCH_MS 1000

const char status_help[] =
	"usage: freshet status [--zk HOSTS] [--cluster NAME] [--json] "
	"[--watch]\n"
	"                      [--timeout MS] [--node-timeout MS]\n"
	"\n"
	"The cluster at a glance: per DC its leader and nodes (up/down,\n"
	"generation, backend), per model each DC's freshness (how far its\n"
	"slowest node is behind the freshest version, in ms and in shards),\n"
	"its rollback epoch, canaries and baseline, and every problem,\n"
	"flagged with a leading '!'.  Members, leaders and models come from\n"
	"ZooKeeper; versions from each node's admin /status.\n"
	"\n"
	CLI_ZK_HELP
	"  --json              one JSON object (docs/cli.md has the schema)\n"
	"  --watch             redraw every second until interrupted (with\n"
	"                      --json: one object per line)\n"
	"  --node-timeout MS   bound on each node's /status (default 2000)\n"
	"\n"
	"Exit: 0 healthy, 1 ZooKeeper unreachable or failing, 2 usage error,\n"
	"3 something is flagged.  --watch exits 0 when interrupted.\n";

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* Gather and compute one round into r; false (r->zk_error says why, and
 * r holds nothing else: only the failure is shown, not half a picture)
 * when ZooKeeper failed or memory ran out. */
static bool round_build(struct cli_status_report *r, struct topo_admin *a,
			uint32_t node_timeout)
{
	char why[sizeof(r->zk_error)];
	const char *cluster = r->cluster, *hosts = r->hosts;
	uint64_t time_ms;

	if (status_gather(r, a, node_timeout) && cli_status_compute(r))
		return true;
	snprintf(why, sizeof(why), "%s", r->zk_error);
	time_ms = r->time_ms;
	cli_status_report_fini(r);
	r->cluster = cluster;
	r->hosts = hosts;
	r->time_ms = time_ms;
	snprintf(r->zk_error, sizeof(r->zk_error), "%s", why);
	return false;
}

/* Gather, compute and render one round; CLI_EXIT_RUNTIME when ZooKeeper
 * failed.  a NULL: no session (watch mode), connect_err says why. */
static int one_round(struct topo_admin *a, const char *connect_err,
		     const struct cli_zk_opts *z, uint32_t node_timeout,
		     bool json, bool watch)
{
	struct cli_status_report r;
	char *text = NULL;
	size_t len = 0;
	FILE *o;
	int rc;

	memset(&r, 0, sizeof(r));
	r.cluster = z->cluster;
	r.hosts = z->hosts;
	if (!a) {
		snprintf(r.zk_error, sizeof(r.zk_error), "%s", connect_err);
	} else if (!round_build(&r, a, node_timeout) && !watch) {
		cli_error(CMD, "ZooKeeper %s: %s", z->hosts, r.zk_error);
		cli_status_report_fini(&r);
		return CLI_EXIT_RUNTIME;
	}
	rc = r.zk_error[0] ? CLI_EXIT_RUNTIME
			   : r.nproblems ? CLI_EXIT_UNHEALTHY : 0;
	if (json) {
		if (cli_print_json_line(CMD, cli_status_render_json(&r)))
			rc = CLI_EXIT_RUNTIME;
		cli_status_report_fini(&r);
		return rc;
	}
	/* One write per screen, so a redraw does not flicker. */
	o = open_memstream(&text, &len);
	if (!o) {
		cli_error(CMD, "out of memory");
		cli_status_report_fini(&r);
		return CLI_EXIT_RUNTIME;
	}
	if (watch)
		fputs("\033[H\033[2J", o);
	cli_status_render_text(&r, o);
	if (watch)
		fprintf(o, "\n(every %u ms; Ctrl-C to stop)\n", WATCH_MS);
	fclose(o);
	fwrite(text, 1, len, stdout);
	fflush(stdout);
	free(text);
	cli_status_report_fini(&r);
	return rc;
}

/* --watch: a round every WATCH_MS until SIGINT or SIGTERM; a is taken. */
static void watch_loop(struct topo_admin *a, const struct cli_zk_opts *z,
		       uint32_t node_timeout, bool json)
{
	struct sigaction sa;

	/* No SA_RESTART: the sleep below wakes on Ctrl-C. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	while (!interrupted) {
		uint64_t next = fr_mono_ms() + WATCH_MS;
		char why[512] = "";

		/* After a failed round the session may be gone for good
		 * (expired while ZooKeeper was away): start a new one,
		 * bounded by a redraw, so Ctrl-C is heard. */
		if (!a) {
			a = cli_zk_connect(CMD, z, z->timeout_ms < WATCH_MS ?
					   z->timeout_ms : WATCH_MS, NULL);
			if (!a)
				snprintf(why, sizeof(why), "%s", fr_errmsg());
		}
		if (one_round(a, why, z, node_timeout, json, true) ==
		    CLI_EXIT_RUNTIME) {
			topo_admin_close(a);
			a = NULL;
		}
		while (!interrupted && fr_mono_ms() < next) {
			struct timespec ts = { 0, 50 * 1000000L };

			nanosleep(&ts, NULL);
		}
	}
	topo_admin_close(a);
}

int cmd_status(int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_ZK_LONGOPTS,
		{ "node-timeout", required_argument, NULL, 'N' },
		{ "json", no_argument, NULL, 'j' },
		{ "watch", no_argument, NULL, 'w' },
		{ NULL, 0, NULL, 0 },
	};
	struct cli_zk_opts z;
	struct cli_getopt g;
	struct topo_admin *a;
	uint64_t node_timeout = NODE_TIMEOUT_DEFAULT;
	bool json = false, watch = false;
	int ch, rc;

	cli_getopt_init(&g, CMD, argc, argv, opts, status_help, &z);
	while ((ch = cli_getopt_next(&g, &rc)) != CLI_OPT_END) {
		switch (ch) {
		case CLI_OPT_STOP: return rc;
		case 'j': json = true; break;
		case 'w': watch = true; break;
		case 'N':
			if ((rc = cli_parse_uint_opt(CMD, "--node-timeout",
						     optarg, INT32_MAX,
						     &node_timeout)))
				return rc;
			if (node_timeout == 0)
				return cli_usage_error(CMD, "--node-timeout 0: "
						       "expected 1..%d ms",
						       INT32_MAX);
			break;
		}
	}
	if ((rc = cli_getopt_no_args(&g)) || (rc = cli_zk_check(CMD, &z)))
		return rc;

	if (!status_http_init()) {
		cli_error(CMD, "cannot initialise libcurl");
		return CLI_EXIT_RUNTIME;
	}
	a = cli_zk_connect(CMD, &z, z.timeout_ms, &rc);
	if (!a) {
		status_http_fini();
		return rc;
	}
	rc = 0;
	if (watch) {
		watch_loop(a, &z, (uint32_t)node_timeout, json);
	} else {
		rc = one_round(a, NULL, &z, (uint32_t)node_timeout, json,
			       false);
		topo_admin_close(a);
	}
	status_http_fini();
	return rc;
}
