/* Handler plugins: shared objects exporting sluice_handler_v1, loaded in each child. */
#ifndef SLUICE_WORKER_PLUGIN_H
#define SLUICE_WORKER_PLUGIN_H

#include "handlers/handlers.h"
#include "sluice/buf.h"
#include "sluice/envelope.h"
#include "sluice/handler_v1.h"
#include "sluice/routes.h"

/*
 * One loaded plugin. Lifecycle: wk_plugin_load (dlopen, ABI check, init) -> wk_plugin_handle
 * per request -> wk_plugin_unload (shutdown, dlclose, free). Owned by the child that loaded it.
 */
struct wk_plugin {
    char *path;
    void *dl;
    const struct sluice_handler_v1 *h;
    void *state;
};

/* Returns 0 or a negative code with the reason in `err`; on failure nothing is loaded. */
int wk_plugin_load(const char *path, struct wk_plugin **out, struct sl_buf *err);
void wk_plugin_unload(struct wk_plugin *p);

/*
 * Runs the plugin for one request and copies its answer into `out`; a failing handle or an
 * answer that breaks the ABI's rules marks `out` failed (handler_error / invalid_reply).
 * Returns 0, or -ENOMEM.
 */
int wk_plugin_handle(struct wk_plugin *p, const struct sl_envelope_request *req,
                     struct wk_response *out);

/* Why a plugin's answer breaks the ABI's rules (handler_v1.h), or NULL when it keeps them. */
const char *wk_plugin_reply_invalid(const struct sluice_response_v1 *r);

#endif
