/*
 * log.c — freshet's one log format, one write(2) per line.
 *
 * Every line is "2026-11-25T01:02:03.456Z INFO  [node] module: message\n",
 * built in a stack buffer and handed to the kernel in a single write so that
 * lines from different threads never interleave.  The level test lives in the
 * fr_log macro (common.h) so that arguments of a suppressed line are never
 * evaluated.  This file does no buffering, rotation or syslog: the
 * supervisor (systemd, a test harness) owns the fd.
 *
 * The node id and the fd are plain statics without a lock: they are set once
 * at start-up, before any other thread exists, and only read afterwards.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/common.h"

/* Longer lines are cut; the newline is always kept. */
#define FR_LOG_LINE_MAX 2048
#define FR_LOG_NODE_MAX 64

volatile int fr_log_threshold = FR_LOG_INFO;

static int fr_log_fd = 2;
static char fr_log_node[FR_LOG_NODE_MAX] = "-";

static const char *const fr_log_names[] = {
	[FR_LOG_DEBUG] = "DEBUG",
	[FR_LOG_INFO] = "INFO",
	[FR_LOG_WARN] = "WARN",
	[FR_LOG_ERROR] = "ERROR",
	[FR_LOG_OFF] = "OFF",
};

static const char *const fr_log_parse_names[] = {
	[FR_LOG_DEBUG] = "debug",
	[FR_LOG_INFO] = "info",
	[FR_LOG_WARN] = "warn",
	[FR_LOG_ERROR] = "error",
	[FR_LOG_OFF] = "off",
};

void fr_log_write(enum fr_log_level level, const char *module,
		  const char *fmt, ...)
{
	char line[FR_LOG_LINE_MAX];
	struct timespec ts;
	struct tm tm;
	const char *lname;
	size_t len;
	int n;
	va_list ap;
	ssize_t w;

	if ((int)level < FR_LOG_DEBUG || (int)level >= FR_LOG_OFF)
		lname = "?";
	else
		lname = fr_log_names[level];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line),
		     "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s [%s] %s: ",
		     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		     tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L, lname,
		     fr_log_node, module ? module : "-");
	len = n < 0 ? 0 : (size_t)n;
	/* Keep one byte for the newline in every case below. */
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	va_start(ap, fmt);
	n = vsnprintf(line + len, sizeof(line) - 1 - len, fmt, ap);
	va_end(ap);
	if (n > 0)
		len += (size_t)n;
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	/* A message that already ends in a newline does not get a second. */
	if (len == 0 || line[len - 1] != '\n')
		line[len++] = '\n';
	do {
		w = write(fr_log_fd, line, len);
	} while (w < 0 && errno == EINTR);
	/* Nowhere to report a failed log write; drop the line. */
}

void fr_log_set_level(enum fr_log_level level)
{
	fr_log_threshold = (int)level;
}

enum fr_err fr_log_level_parse(const char *s, enum fr_log_level *out)
{
	size_t i;

	if (!s)
		return fr_fail(FR_ERR_INVAL, "log level: missing, expected "
			       "debug|info|warn|error|off");
	for (i = 0; i < sizeof(fr_log_parse_names) / sizeof(*fr_log_parse_names);
	     i++) {
		if (strcasecmp(s, fr_log_parse_names[i]) == 0) {
			*out = (enum fr_log_level)i;
			return FR_OK;
		}
	}
	return fr_fail(FR_ERR_INVAL, "log level '%s': expected "
		       "debug|info|warn|error|off", s);
}

void fr_log_set_node(const char *node_id)
{
	if (!node_id || !*node_id) {
		strcpy(fr_log_node, "-");
		return;
	}
	snprintf(fr_log_node, sizeof(fr_log_node), "%s", node_id);
}

void fr_log_set_fd(int fd)
{
	fr_log_fd = fd;
}

static void fr_log_libevent_cb(int severity, const char *msg)
{
	enum fr_log_level level;

	switch (severity) {
	case EVENT_LOG_DEBUG:
		level = FR_LOG_DEBUG;
		break;
	case EVENT_LOG_MSG:
		level = FR_LOG_INFO;
		break;
	case EVENT_LOG_WARN:
		level = FR_LOG_WARN;
		break;
	default:
		level = FR_LOG_ERROR;
		break;
	}
	fr_log(level, "libevent", "%s", msg ? msg : "");
}

void fr_log_route_libevent(void)
{
	event_set_log_callback(fr_log_libevent_cb);
}
