-- wrk script: a CORS preflight from an allowed origin (answered by the gateway, no key).
wrk.method = "OPTIONS"
wrk.headers["Origin"] = "https://yourdomain.com"
wrk.headers["Access-Control-Request-Method"] = "POST"
