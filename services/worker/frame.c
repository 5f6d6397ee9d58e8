/* Length-prefixed frames between the supervisor and its handler children. */
#include "frame.h"

#include <errno.h>
#include <unistd.h>

#include "sluice/error.h"
#include "sluice/fileio.h"

void wk_frame_header(uint8_t out[WK_FRAME_HEADER], uint32_t len) {
    out[0] = (uint8_t)(len >> 24);
    out[1] = (uint8_t)(len >> 16);
    out[2] = (uint8_t)(len >> 8);
    out[3] = (uint8_t)len;
}

int wk_frame_parse(const void *buf, size_t n, size_t max, const uint8_t **payload, size_t *len) {
    const uint8_t *b = buf;
    if (n < WK_FRAME_HEADER)
        return 0;
    size_t l = (size_t)b[0] << 24 | (size_t)b[1] << 16 | (size_t)b[2] << 8 | (size_t)b[3];
    if (l > max)
        return SL_ERR_TOO_LARGE;
    if (n - WK_FRAME_HEADER < l)
        return 0;
    *payload = b + WK_FRAME_HEADER;
    *len = l;
    return 1;
}

/* Reads exactly n bytes: 0, 1 on end of stream before the first byte, or a negative code. */
static int read_all(int fd, void *p, size_t n) {
    char *c = p;
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, c + got, n - got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            return got == 0 ? 1 : SL_ERR_PARSE;
        got += (size_t)r;
    }
    return 0;
}

int wk_frame_write_fd(int fd, const void *payload, size_t len) {
    if (len > WK_FRAME_MAX)
        return SL_ERR_TOO_LARGE;
    uint8_t h[WK_FRAME_HEADER];
    wk_frame_header(h, (uint32_t)len);
    int rc = sl_fileio_write_all(fd, h, sizeof h);
    if (rc == 0 && len)
        rc = sl_fileio_write_all(fd, payload, len);
    return rc;
}

int wk_frame_read_fd(int fd, struct sl_buf *out, size_t max) {
    uint8_t h[WK_FRAME_HEADER];
    sl_buf_reset(out);
    int rc = read_all(fd, h, sizeof h);
    if (rc != 0)
        return rc;
    size_t len = (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | (size_t)h[3];
    if (len > max)
        return SL_ERR_TOO_LARGE;
    if ((rc = sl_buf_reserve(out, len)) < 0)
        return rc;
    if (len && (rc = read_all(fd, out->data, len)) != 0)
        return rc == 1 ? SL_ERR_PARSE : rc;
    out->len = len;
    out->data[len] = '\0';
    return 0;
}
