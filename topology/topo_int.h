/*
 * topo_int.h — private helpers shared by topology/'s files (codec.c,
 * topo.c, admin.c): the name and address rules every znode field and
 * every topo_config field must follow, and the ZooKeeper paths under
 * ROOT.  Nothing here is part of the public API (topology.h).
 */
#ifndef FRESHET_TOPO_INT_H
#define FRESHET_TOPO_INT_H

#include <stddef.h>
#include <stdint.h>

#include "common/common.h"
#include "topology/topology.h"

#define TOPO_NODE_ID_MAX 4294967294u   /* 0 and 2^32-1 are never ids */

/* Longest ZooKeeper path we build: chroot lives in the hosts string, so
 * "/freshet/<cluster>/election/<dc>/n_<id>_<gen>_<seq>" is the longest. */
#define TOPO_PATH_MAX 256

/* 1..max bytes of [A-Za-z0-9_.-], NUL-terminated within max + 1 bytes.
 * Fails with FR_ERR_INVAL and a detail starting with `what`.  Any thread. */
enum fr_err topo_check_name(const char *s, size_t max, const char *what);
/* "HOST:PORT" (host a name of [A-Za-z0-9_.-] or a dotted IPv4 address) or
 * "[IPV6[%zone]]:PORT", port 1..65535, at most TOPO_ADDR_MAX bytes.
 * FR_ERR_INVAL with a detail starting with `what`.  Any thread. */
enum fr_err topo_check_addr(const char *s, const char *what);
/* Comma-separated words of [a-z]+ (possibly none), at most
 * TOPO_ROLES_MAX bytes.  FR_ERR_INVAL naming `what`.  Any thread. */
enum fr_err topo_check_roles(const char *s, const char *what);
/* Every field of a member (used by the encoder and by topo_new). */
enum fr_err topo_member_check(const struct topo_member *m);

/* If hosts ends in a chroot ("h:2181/a/b"), connect without it and create
 * /a and /a/b when missing: the ZooKeeper client refuses every call under
 * a chroot that does not exist.  FR_OK when there is no chroot.  Blocks up
 * to about timeout_ms; not for the loop thread. */
enum fr_err topo_chroot_ensure(const char *hosts, uint32_t timeout_ms);

/* Copy at most cap-1 bytes of untrusted s into buf for a log line,
 * replacing anything unprintable by '?' and marking a cut with "...". */
const char *topo_show(char *buf, size_t cap, const char *s, size_t len);

#endif /* FRESHET_TOPO_INT_H */
