/*
 * file.c — reading a whole file into memory, the one way every module
 * does it (snapshot side files, models.json, WAL segments).
 *
 * Not here: writing (each writer has its own durability rules: temp file,
 * fsync, rename, fsync of the directory).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"

enum fr_err fr_read_file(const char *what, const char *path, size_t max,
			 uint8_t **out, size_t *len)
{
	enum fr_err rc = FR_OK;
	struct stat sb;
	uint8_t *buf;
	size_t off = 0;
	ssize_t k;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ?
			fr_fail(FR_ERR_NOTFOUND, "%s '%s': no such file", what,
				path) :
			fr_fail(FR_ERR_IO, "%s '%s': open: %s", what, path,
				strerror(errno));
	if (fstat(fd, &sb) != 0) {
		rc = fr_fail(FR_ERR_IO, "%s '%s': fstat: %s", what, path,
			     strerror(errno));
		goto out_close;
	}
	if (sb.st_size < 0 || (uint64_t)sb.st_size > max) {
		rc = fr_fail(FR_ERR_TOOBIG, "%s '%s': size %lld, expected <= %zu",
			     what, path, (long long)sb.st_size, max);
		goto out_close;
	}
	/* malloc's alignment keeps every payload 8-byte aligned, which the
	 * zero-copy batch decoder needs; the extra byte holds a NUL. */
	buf = malloc((size_t)sb.st_size + 1);
	if (!buf) {
		rc = fr_fail(FR_ERR_NOMEM, "%s '%s': %lld bytes", what, path,
			     (long long)sb.st_size);
		goto out_close;
	}
	while (off < (size_t)sb.st_size) {
		k = pread(fd, buf + off, (size_t)sb.st_size - off, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			rc = fr_fail(FR_ERR_IO, "%s '%s': read: %s", what, path,
				     strerror(errno));
			free(buf);
			goto out_close;
		}
		if (k == 0)
			break;      /* shrank under us: read what is there */
		off += (size_t)k;
	}
	buf[off] = '\0';
	*out = buf;
	*len = off;
out_close:
	close(fd);
	return rc;
}
