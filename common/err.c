/*
 * err.c — text for freshet's error codes and the per-thread detail message.
 *
 * A failing function returns a code and may leave a sentence saying which
 * field was wrong and what was expected; that sentence lives in a
 * thread-local buffer so threads never see each other's details and no lock
 * is needed.  This file does not log anything: callers decide whether an
 * error is worth a line.
 */
#include <stdarg.h>
#include <stdio.h>

#include "common/common.h"

/* Long enough for a field name, a value and what was expected; longer
 * details are truncated rather than allocated, so fr_fail never fails. */
#define FR_ERRMSG_MAX 512

static _Thread_local char fr_errmsg_buf[FR_ERRMSG_MAX];

/* Indexed by -err; designated initialisers keep text and code together. */
static const char *const fr_err_text[FR_ERR__COUNT] = {
	[-FR_OK] = "ok",
	[-FR_ERR_NOMEM] = "out of memory",
	[-FR_ERR_INVAL] = "invalid argument",
	[-FR_ERR_RANGE] = "value out of range",
	[-FR_ERR_TRUNC] = "input truncated",
	[-FR_ERR_CHECKSUM] = "checksum mismatch",
	[-FR_ERR_MAGIC] = "bad magic number",
	[-FR_ERR_VERSION] = "unsupported version",
	[-FR_ERR_IO] = "i/o error",
	[-FR_ERR_NOTFOUND] = "not found",
	[-FR_ERR_EXISTS] = "already exists",
	[-FR_ERR_BUSY] = "busy, queue full",
	[-FR_ERR_REFUSED] = "version refused",
	[-FR_ERR_NOUNDO] = "undo history too short",
	[-FR_ERR_TOOBIG] = "too big",
	[-FR_ERR_CLOSED] = "closed",
	[-FR_ERR_UNSUPPORTED] = "not supported",
	[-FR_ERR_CORRUPT] = "data corrupt",
	[-FR_ERR_PROTO] = "protocol violation",
	[-FR_ERR_TIMEOUT] = "timed out",
	[-FR_ERR_GPU] = "gpu error",
	[-FR_ERR_ZK] = "zookeeper error",
};

_Static_assert(FR_ERR__COUNT == 1 - FR_ERR_ZK,
	       "FR_ERR__COUNT must follow the last error code");

const char *fr_strerror(enum fr_err err)
{
	long i = -(long)err;

	if (i < 0 || i >= FR_ERR__COUNT || !fr_err_text[i])
		return "unknown error";
	return fr_err_text[i];
}

enum fr_err fr_fail(enum fr_err err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	/* vsnprintf always terminates; truncation is acceptable here. */
	vsnprintf(fr_errmsg_buf, sizeof(fr_errmsg_buf), fmt, ap);
	va_end(ap);
	return err;
}

const char *fr_errmsg(void)
{
	return fr_errmsg_buf;
}

void fr_errclear(void)
{
	fr_errmsg_buf[0] = '\0';
}
