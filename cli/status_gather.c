/*
 * status_gather.c — the reads of one `freshet status` round: members,
 * leaders and the model registry from ZooKeeper (topology.h's admin
 * client), then every member's admin GET /status?shards=1 through
 * libcurl's multi interface, all members at once, each bounded by
 * --node-timeout.  What comes back is only stored (status_node_parse
 * checks a reply); working out what it means is status_compute.c's.
 *
 * Not here: flags, rows (status_compute.c), output (status_render.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "cli/status_int.h"
#include "common/common.h"

#define BODY_MAX (256u << 20)         /* largest /status reply read */

_Static_assert(CLI_STATUS_WHY_MAX >= CURL_ERROR_SIZE + 64,
	       "a node's why holds curl's error text");

/* One member's request. */
struct http {
	struct cli_status_node *nd;
	CURL *h;
	char *body;
	size_t n, cap;
	bool toobig;
	char errbuf[CURL_ERROR_SIZE];
};

/* ========================================================================
 * ZooKeeper
 * ===================================================================== */

/* Members, leaders and the registry; false (r->zk_error set) when
 * ZooKeeper failed. */
static bool gather_zk(struct cli_status_report *r, struct topo_admin *a)
{
	uint32_t bad = 0, n = 0;
	char **names = NULL, shown[80];
	struct shard_model_def def;
	enum fr_err err;

	if (topo_admin_members(a, &r->members, &r->nmembers, &bad))
		goto fail;
	r->bad_topo += bad;
	if (topo_admin_leaders(a, &r->leaders, &r->nleaders, &bad))
		goto fail;
	r->bad_topo += bad;
	r->bad_znodes = r->bad_topo;
	if (topo_admin_model_list(a, &names, &n))
		goto fail;
	for (uint32_t i = 0; i < n; i++) {
		struct cli_status_model *md;

		err = topo_admin_model_get(a, names[i], &def);
		if (err == FR_ERR_NOTFOUND)
			continue;       /* deleted since the listing */
		if (err == FR_ERR_INVAL) {      /* not a model name */
			r->bad_znodes++;
			cli_status_problem(r, "malformed", NULL, 0, NULL,
				"/freshet/%s/models/%s ignored: %s",
				r->cluster,
				fr_show(shown, sizeof(shown), names[i]),
				fr_errmsg());
			continue;
		}
		if (err == FR_ERR_CORRUPT || err == FR_ERR_TOOBIG) {
			r->bad_znodes++;   /* the detail names the path */
			cli_status_problem(r, "malformed", NULL, 0, NULL,
				"%s; ignored", fr_errmsg());
			continue;
		}
		if (err) {
			free(names);
			goto fail;
		}
		md = cli_status_model_add(r, def.name);
		if (!md) {
			free(names);
			fr_fail(FR_ERR_NOMEM, "out of memory");
			goto fail;
		}
		md->registered = true;
		md->def = def;
	}
	free(names);
	return true;
fail:
	/* Show only the failure, not half a picture. */
	snprintf(r->zk_error, sizeof(r->zk_error), "%s", fr_errmsg());
	free(r->members);
	free(r->leaders);
	r->members = NULL;
	r->leaders = NULL;
	r->nmembers = r->nleaders = 0;
	r->nmodels = 0;
	r->nproblems = 0;
	r->bad_znodes = r->bad_topo = 0;
	return false;
}

/* ========================================================================
 * Every node's /status, in parallel
 * ===================================================================== */

static size_t body_write(char *p, size_t size, size_t nmemb, void *arg)
{
	struct http *b = arg;
	size_t n = size * nmemb, ncap;
	char *np;

	if (b->n + n > BODY_MAX) {
		b->toobig = true;
		return 0;       /* aborts the transfer */
	}
	if (b->n + n + 1 > b->cap) {
		ncap = b->cap ? b->cap : 65536;
		while (ncap < b->n + n + 1)
			ncap *= 2;
		np = realloc(b->body, ncap);
		if (!np)
			return 0;
		b->body = np;
		b->cap = ncap;
	}
	memcpy(b->body + b->n, p, n);
	b->n += n;
	b->body[b->n] = '\0';
	return n;
}

/* Start q's request on mh; false (nd->why set) when it cannot. */
static bool http_start(CURLM *mh, struct http *q, uint32_t timeout_ms)
{
	struct cli_status_node *nd = q->nd;
	char url[TOPO_ADDR_MAX + 32];

	if (!nd->m.admin[0]) {
		snprintf(nd->why, sizeof(nd->why), "no admin address in its "
			 "member znode");
		return false;
	}
	q->h = mh ? curl_easy_init() : NULL;
	if (!q->h) {
		snprintf(nd->why, sizeof(nd->why), "cannot start an HTTP "
			 "request (out of memory)");
		return false;
	}
	snprintf(url, sizeof(url), "http://%s/status?shards=1", nd->m.admin);
	curl_easy_setopt(q->h, CURLOPT_URL, url);
	curl_easy_setopt(q->h, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(q->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(q->h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(q->h, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(q->h, CURLOPT_WRITEFUNCTION, body_write);
	curl_easy_setopt(q->h, CURLOPT_WRITEDATA, q);
	curl_easy_setopt(q->h, CURLOPT_ERRORBUFFER, q->errbuf);
	curl_easy_setopt(q->h, CURLOPT_PRIVATE, q);
	curl_easy_setopt(q->h, CURLOPT_USERAGENT, "freshet-status");
	q->errbuf[0] = '\0';
	if (curl_multi_add_handle(mh, q->h) != CURLM_OK) {
		curl_easy_cleanup(q->h);
		q->h = NULL;
		snprintf(nd->why, sizeof(nd->why), "cannot start an HTTP "
			 "request");
		return false;
	}
	return true;
}

/* What became of a finished request. */
static void http_done(CURLMsg *msg)
{
	struct http *q;
	struct cli_status_node *nd;
	char *priv = NULL, shown[CURL_ERROR_SIZE];
	long code = 0;

	curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
	q = (struct http *)priv;
	if (!q)
		return;
	nd = q->nd;
	if (msg->data.result != CURLE_OK) {
		if (q->toobig)
			snprintf(nd->why, sizeof(nd->why), "/status reply "
				 "larger than %u bytes", BODY_MAX);
		else
			snprintf(nd->why, sizeof(nd->why), "%s",
				 fr_show(shown, sizeof(shown),
					 q->errbuf[0] ? q->errbuf :
					 curl_easy_strerror(msg->data.result)));
		return;
	}
	curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
	if (code != 200) {
		nd->state = CLI_STATUS_NODE_BAD;
		snprintf(nd->why, sizeof(nd->why), "/status answered HTTP %ld",
			 code);
		return;
	}
	cli_status_node_parse(nd, q->body, q->n);
}

static bool gather_http(struct cli_status_report *r, uint32_t timeout_ms)
{
	struct http *qs = calloc(r->nmembers ? r->nmembers : 1, sizeof(*qs));
	CURLM *mh = qs ? curl_multi_init() : NULL;
	int running = 0;
	CURLMsg *msg;

	if (!qs)
		return false;
	for (uint32_t i = 0; i < r->nmembers; i++) {
		qs[i].nd = &r->nodes[i];
		r->nodes[i].state = CLI_STATUS_NODE_DOWN;
		http_start(mh, &qs[i], timeout_ms);
	}
	if (mh) {
		do {
			if (curl_multi_perform(mh, &running) != CURLM_OK)
				break;
			if (running)
				curl_multi_poll(mh, NULL, 0, 100, NULL);
		} while (running);
		while ((msg = curl_multi_info_read(mh, &running)))
			if (msg->msg == CURLMSG_DONE)
				http_done(msg);
	}
	for (uint32_t i = 0; i < r->nmembers; i++) {
		struct cli_status_node *nd = &r->nodes[i];

		if (qs[i].h) {
			curl_multi_remove_handle(mh, qs[i].h);
			curl_easy_cleanup(qs[i].h);
		}
		/* Requests that never finished (a broken multi loop). */
		if (nd->state == CLI_STATUS_NODE_DOWN && !nd->why[0])
			snprintf(nd->why, sizeof(nd->why), "no answer");
		free(qs[i].body);
	}
	if (mh)
		curl_multi_cleanup(mh);
	free(qs);
	return true;
}

/* ========================================================================
 * The round's reads
 * ===================================================================== */

bool status_http_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

void status_http_fini(void)
{
	curl_global_cleanup();
}

bool status_gather(struct cli_status_report *r, struct topo_admin *a,
		   uint32_t node_timeout_ms)
{
	r->time_ms = fr_wall_ms(NULL);
	if (!gather_zk(r, a))
		return false;
	r->nodes = calloc(r->nmembers ? r->nmembers : 1, sizeof(*r->nodes));
	if (!r->nodes)
		goto out_nomem;
	for (uint32_t i = 0; i < r->nmembers; i++)
		r->nodes[i].m = r->members[i];
	if (!gather_http(r, node_timeout_ms))
		goto out_nomem;
	return true;

out_nomem:
	snprintf(r->zk_error, sizeof(r->zk_error), "out of memory");
	return false;
}
