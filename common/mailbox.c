/*
 * mailbox.c — a bounded multi-producer queue drained on the event loop.
 *
 * Other threads (the WAL writer, the topology thread) must not touch node
 * state; they post a message here and the loop thread
 * receives it through a libevent callback.  The queue is a fixed ring of
 * pointers under one mutex, so a post never allocates; the mutex is a leaf
 * lock held only to push or pop.  An eventfd wakes the loop.
 *
 * Wake-up protocol (why no message can be stranded):
 *
 *   post():  lock; push; was_empty = (count == 1); unlock;
 *            if was_empty: write(efd, 1)
 *   drain(): read(efd)                       -- clears the counter
 *            n = count (snapshot)            -- bounds this round
 *            n times: lock; pop; unlock; fn(msg)
 *            lock; more = count > 0; unlock
 *            if more: write(efd, 1)          -- come back next loop turn
 *
 * The queue only becomes non-empty through a post that sees it empty and
 * writes the eventfd, and a drain that leaves messages behind re-arms it
 * itself, so while anything is queued the eventfd is readable or a drain is
 * running that will check.  Bounding a round by the snapshot keeps a busy
 * producer from starving the loop's other events.
 *
 * fn may post to or close its own mailbox but must not free it: the drain
 * loop still holds it.
 *
 * Not here: priorities, blocking posts, or delivery to more than one
 * thread.  libevent is called only from the loop thread, so no libevent
 * threading support is needed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/common.h"

struct fr_mailbox {
	pthread_mutex_t lock;	/* leaf lock: guards ring, head, count, closed */
	void **ring;
	size_t cap;
	size_t head;		/* index of the oldest message */
	size_t count;
	bool closed;
	int efd;
	struct event *ev;
	fr_mailbox_fn fn;
	void *arg;
};

static void fr_mailbox_kick(struct fr_mailbox *mb)
{
	uint64_t one = 1;
	ssize_t w;

	/* EAGAIN means the counter is saturated, i.e. already readable. */
	do {
		w = write(mb->efd, &one, sizeof(one));
	} while (w < 0 && errno == EINTR);
}

static bool fr_mailbox_pop(struct fr_mailbox *mb, void **msg)
{
	bool got = false;

	pthread_mutex_lock(&mb->lock);
	if (mb->count) {
		*msg = mb->ring[mb->head];
		mb->head = (mb->head + 1) % mb->cap;
		mb->count--;
		got = true;
	}
	pthread_mutex_unlock(&mb->lock);
	return got;
}

static void fr_mailbox_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fr_mailbox *mb = arg;
	uint64_t val;
	size_t n;
	bool more;
	void *msg;
	ssize_t r;

	do {
		r = read(mb->efd, &val, sizeof(val));
	} while (r < 0 && errno == EINTR);
	/* EAGAIN: a spurious wake-up; the queue is still worth checking. */

	n = fr_mailbox_pending(mb);
	while (n-- > 0 && fr_mailbox_pop(mb, &msg))
		mb->fn(msg, mb->arg);

	pthread_mutex_lock(&mb->lock);
	more = mb->count > 0;
	pthread_mutex_unlock(&mb->lock);
	if (more)
		fr_mailbox_kick(mb);
}

struct fr_mailbox *fr_mailbox_new(struct event_base *base, size_t cap,
				  fr_mailbox_fn fn, void *arg,
				  enum fr_err *err)
{
	struct fr_mailbox *mb;
	enum fr_err e;

	if (!base || !fn || cap == 0 || cap > SIZE_MAX / sizeof(void *)) {
		e = fr_fail(FR_ERR_INVAL, "mailbox: need a base, a callback "
			    "and 0 < cap (got cap %zu)", cap);
		goto out;
	}
	mb = calloc(1, sizeof(*mb));
	if (!mb) {
		e = fr_fail(FR_ERR_NOMEM, "mailbox: cannot allocate");
		goto out;
	}
	mb->ring = malloc(cap * sizeof(void *));
	if (!mb->ring) {
		e = fr_fail(FR_ERR_NOMEM, "mailbox: cannot allocate %zu slots",
			    cap);
		goto out_free_mb;
	}
	if (pthread_mutex_init(&mb->lock, NULL) != 0) {
		e = fr_fail(FR_ERR_NOMEM, "mailbox: pthread_mutex_init failed");
		goto out_free_ring;
	}
	mb->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (mb->efd < 0) {
		e = fr_fail(FR_ERR_IO, "mailbox: eventfd: %s", strerror(errno));
		goto out_destroy_lock;
	}
	mb->ev = event_new(base, mb->efd, EV_READ | EV_PERSIST, fr_mailbox_cb,
			   mb);
	if (!mb->ev) {
		e = fr_fail(FR_ERR_NOMEM, "mailbox: event_new failed");
		goto out_close_efd;
	}
	if (event_add(mb->ev, NULL) != 0) {
		e = fr_fail(FR_ERR_IO, "mailbox: event_add failed");
		goto out_free_ev;
	}
	mb->cap = cap;
	mb->fn = fn;
	mb->arg = arg;
	if (err)
		*err = FR_OK;
	return mb;

out_free_ev:
	event_free(mb->ev);
out_close_efd:
	close(mb->efd);
out_destroy_lock:
	pthread_mutex_destroy(&mb->lock);
out_free_ring:
	free(mb->ring);
out_free_mb:
	free(mb);
out:
	if (err)
		*err = e;
	return NULL;
}

enum fr_err fr_mailbox_post(struct fr_mailbox *mb, void *msg)
{
	bool was_empty;

	pthread_mutex_lock(&mb->lock);
	if (mb->closed) {
		pthread_mutex_unlock(&mb->lock);
		return fr_fail(FR_ERR_CLOSED, "mailbox: closed");
	}
	if (mb->count == mb->cap) {
		pthread_mutex_unlock(&mb->lock);
		return fr_fail(FR_ERR_BUSY, "mailbox: full (%zu messages)",
			       mb->cap);
	}
	mb->ring[(mb->head + mb->count) % mb->cap] = msg;
	was_empty = mb->count++ == 0;
	pthread_mutex_unlock(&mb->lock);
	if (was_empty)
		fr_mailbox_kick(mb);
	return FR_OK;
}

size_t fr_mailbox_pending(struct fr_mailbox *mb)
{
	size_t n;

	pthread_mutex_lock(&mb->lock);
	n = mb->count;
	pthread_mutex_unlock(&mb->lock);
	return n;
}

void fr_mailbox_close(struct fr_mailbox *mb)
{
	pthread_mutex_lock(&mb->lock);
	mb->closed = true;
	pthread_mutex_unlock(&mb->lock);
}

void fr_mailbox_free(struct fr_mailbox *mb, void (*drop)(void *msg))
{
	void *msg;

	if (!mb)
		return;
	event_free(mb->ev);	/* deletes it from the base first */
	close(mb->efd);
	while (fr_mailbox_pop(mb, &msg)) {
		if (drop)
			drop(msg);
	}
	pthread_mutex_destroy(&mb->lock);
	free(mb->ring);
	free(mb);
}
