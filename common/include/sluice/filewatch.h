/* Watching a configuration file for changes: atomic renames, Kubernetes Secret swaps, edits. */
#ifndef SLUICE_FILEWATCH_H
#define SLUICE_FILEWATCH_H

#include <stdint.h>

#include <uv.h>

/*
 * Calls `cb` on the loop thread when the file at `path` may have changed. Two mechanisms:
 *  - a uv_fs_event on the file's DIRECTORY (an atomic rename replaces the inode, and a
 *    Kubernetes Secret volume swaps a `..data` symlink; a watch on the file itself would see
 *    neither), debounced by 50 ms so a burst of events gives one call;
 *  - a stat check every `poll_ms` (device, inode, size, mtime, ctime, following symlinks) as a
 *    safety net for file systems without inotify.
 * A call means "look again": the owner re-reads the file and compares contents (the watch fires
 * for any entry of the directory). The stat seen before each call is recorded, so the poll does
 * not repeat a change the watch already reported.
 *
 * The handles are unreferenced: a watch never keeps the loop alive. Lifecycle:
 * sl_filewatch_start -> sl_filewatch_close (the callback never runs after close is called; the
 * object is freed before close_cb runs). If start fails, nothing is left to close.
 */
struct sl_filewatch;

typedef void (*sl_filewatch_cb)(void *data);

int sl_filewatch_start(uv_loop_t *loop, const char *path, uint64_t poll_ms, sl_filewatch_cb cb,
                       void *data, struct sl_filewatch **out);
/* Records the file's current state as seen (call after the owner read the file itself). */
void sl_filewatch_mark_seen(struct sl_filewatch *w);
void sl_filewatch_close(struct sl_filewatch *w, void (*close_cb)(void *data), void *data);

#endif
