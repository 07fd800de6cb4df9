/*
 * main.c — the freshetd command line: read the config file, apply
 * --section.key=value overrides, validate, then run the node until
 * SIGTERM/SIGINT.  All policy lives in node.c; this file only maps
 * outcomes to exit codes:
 *
 *   0  clean stop (or --check-config / --help / --version)
 *   1  the node failed at run time (a port in use, a data dir held by
 *      another daemon, an I/O error, a failed final snapshot)
 *   2  bad command line or configuration (the message names the key), or
 *      a snapshot that does not match the configured model
 *
 * Options are parsed by hand rather than with getopt_long because the
 * override keys (--node.id, --gossip.link_mbit, ...) come from the config
 * table, not from a fixed option list.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/config.h"
#include "node/node.h"
#include "proto/proto.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: freshetd --config FILE [--SECTION.KEY=VALUE ...]\n"
		"       freshetd --check-config --config FILE [--SECTION.KEY=VALUE ...]\n"
		"       freshetd --help | --version\n"
		"\n"
		"Runs one freshet replica node: serves PUBLISH and LOOKUP on\n"
		"node.listen, gossips with its peers, and serves /healthz,\n"
		"/status and /metrics on node.admin.  SIGTERM or SIGINT stops it\n"
		"cleanly (acks in-flight publishes, snapshots, exits 0).\n"
		"\n"
		"options:\n"
		"  --config FILE          INI configuration file\n"
		"  --check-config         validate, print the effective config, exit\n"
		"  --SECTION.KEY=VALUE    override a key of the file (also\n"
		"                         --SECTION.KEY VALUE), e.g. --node.id=3\n"
		"  --help, -h             this text and the table of keys\n"
		"  --version              print the version\n"
		"\n"
		"exit status: 0 clean stop, 1 run-time failure, 2 bad configuration\n"
		"\n");
}

int main(int argc, char **argv)
{
	const char *config_path = NULL;
	bool check = false;
	char **overrides;
	int noverrides = 0, code = 0;
	struct node_config *cfg;
	struct node *n;
	enum fr_err rc;

	overrides = calloc((size_t)argc + 1, sizeof(*overrides));
	cfg = calloc(1, sizeof(*cfg));
	if (!overrides || !cfg) {
		fprintf(stderr, "freshetd: out of memory\n");
		return 1;
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			node_config_print_help(stdout);
			goto out_free;
		} else if (strcmp(a, "--version") == 0) {
			printf("freshetd %s (wire protocol %d)\n",
			       fr_version(), PROTO_VERSION);
			goto out_free;
		} else if (strcmp(a, "--check-config") == 0) {
			check = true;
		} else if (strcmp(a, "--config") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "freshetd: --config: expected a "
					"file name\n");
				code = 2;
				goto out_free;
			}
			config_path = argv[++i];
		} else if (strncmp(a, "--config=", 9) == 0) {
			config_path = a + 9;
		} else if (strncmp(a, "--", 2) == 0 && strchr(a, '.') &&
			   (!strchr(a, '=') || strchr(a, '.') < strchr(a, '='))) {
			if (strchr(a, '=')) {
				overrides[noverrides] = strdup(a + 2);
			} else if (i + 1 < argc) {
				size_t len = strlen(a + 2) + strlen(argv[i + 1]) + 2;

				overrides[noverrides] = malloc(len);
				if (overrides[noverrides])
					snprintf(overrides[noverrides], len,
						 "%s=%s", a + 2, argv[++i]);
			} else {
				fprintf(stderr, "freshetd: %s: expected a value "
					"(%s=VALUE or %s VALUE)\n", a, a, a);
				code = 2;
				goto out_free;
			}
			if (!overrides[noverrides]) {
				fprintf(stderr, "freshetd: out of memory\n");
				code = 1;
				goto out_free;
			}
			noverrides++;
		} else {
			fprintf(stderr, "freshetd: unknown option '%s' (see "
				"--help)\n", a);
			code = 2;
			goto out_free;
		}
	}

	node_config_defaults(cfg);
	if (config_path) {
		rc = node_config_load_file(cfg, config_path);
		if (rc) {
			fprintf(stderr, "freshetd: %s\n", fr_errmsg());
			code = 2;
			goto out_free;
		}
	}
	for (int i = 0; i < noverrides; i++) {
		rc = node_config_set(cfg, overrides[i]);
		if (rc) {
			fprintf(stderr, "freshetd: %s\n", fr_errmsg());
			code = 2;
			goto out_free;
		}
	}
	rc = node_config_validate(cfg);
	if (rc) {
		fprintf(stderr, "freshetd: %s\n", fr_errmsg());
		code = 2;
		goto out_free;
	}
	if (check) {
		/* stdout is the effective config, loadable as is; the
		 * verdict goes to stderr. */
		node_config_print(stdout, cfg);
		fprintf(stderr, "freshetd: config OK\n");
		goto out_free;
	}

	{
		char id[16];

		snprintf(id, sizeof(id), "%u", cfg->node_id);
		fr_log_set_node(id);
	}
	fr_log_set_level(cfg->log_level);
	fr_log_route_libevent();
	/* A peer that vanishes mid-write must be an error return, not a
	 * signal that kills the node. */
	signal(SIGPIPE, SIG_IGN);

	n = node_new(cfg, &rc);
	if (!n) {
		fprintf(stderr, "freshetd: cannot start: %s\n", fr_errmsg());
		code = rc == FR_ERR_INVAL ? 2 : 1;
		goto out_free;
	}
	rc = node_run(n);
	node_free(n);
	code = rc ? 1 : 0;

out_free:
	for (int i = 0; i < noverrides; i++)
		free(overrides[i]);
	free(overrides);
	free(cfg);
	return code;
}
