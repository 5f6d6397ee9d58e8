/* Whole writes on file descriptors, where write(2) may stop short or be interrupted. */
#ifndef SLUICE_FILEIO_H
#define SLUICE_FILEIO_H

#include <stddef.h>

/*
 * Writes all n bytes at p to fd, writing again after a short write and after EINTR. Returns 0,
 * or a negative errno (-EAGAIN on a non-blocking descriptor that is full, -EPIPE, ...), in
 * which case an unknown prefix of the bytes has been written.
 */
int sl_fileio_write_all(int fd, const void *p, size_t n);

#endif
