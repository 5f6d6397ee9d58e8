"""The request set bench/waf times: N distinct benign API requests, made here from a fixed seed,
and N distinct attacks from the CRS regression corpus (spread over its files), as records
"<length>\\n<raw bytes>" plus one class per line ("benign" or "attack").

Usage: requests.py CORPUS_REQUESTS CORPUS_META N OUT_REQUESTS OUT_CLASSES
(CORPUS_REQUESTS and CORPUS_META as bench/waf-corpus/corpus.py writes them.)"""
import json
import random
import sys

WORDS = ("alpha bravo river stone maple cedar orbit copper lantern meadow harbor signal "
         "violet summit canyon ember falcon glacier hazel island juniper kestrel lagoon "
         "marble nectar oak pepper quartz raven saffron timber umber velvet willow").split()
AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "python-requests/2.31.0",
    "okhttp/4.12.0",
    "Go-http-client/1.1",
)
ORIGINS = ("https://app.example.com", "https://shop.example.com", "https://admin.example.org")


def words(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n))


def benign(rng, i):
    """One realistic API request; i is folded into ids so no two requests are the same."""
    hexid = "%08x%08x" % (i, rng.getrandbits(32))
    headers = [
        ("Host", "api.example.com"),
        ("User-Agent", rng.choice(AGENTS)),
        ("Accept", "application/json"),
        ("Accept-Language", rng.choice(("en-US,en;q=0.9", "de-DE,de;q=0.8,en;q=0.5", "fr"))),
        ("X-Request-Id", "%08x-%04x-4%03x-a%03x-%012x" % (
            rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(12), rng.getrandbits(12),
            rng.getrandbits(48))),
    ]
    if rng.random() < 0.7:
        headers.append(("X-API-Key", "sk_live_%032x" % rng.getrandbits(128)))
    if rng.random() < 0.5:
        headers.append(("Origin", rng.choice(ORIGINS)))
    if rng.random() < 0.4:
        headers.append(("Cookie", "session=%032x; theme=%s" % (rng.getrandbits(128),
                                                               rng.choice(("dark", "light")))))
    body = b""
    kind = i % 5
    if kind == 0:
        method, uri = "GET", "/v1/orders/%s?expand=items&limit=%d" % (hexid, rng.randint(1, 100))
    elif kind == 1:
        q = words(rng, rng.randint(1, 3)).replace(" ", "+")
        method, uri = "GET", "/v1/products?q=%s&page=%d&sort=%s" % (
            q, rng.randint(1, 50), rng.choice(("price_asc", "price_desc", "newest")))
    elif kind == 2:
        method, uri = "POST", "/v1/orders"
        doc = {"customer": "c_%s" % hexid,
               "items": [{"sku": "%s-%d" % (rng.choice(WORDS)[:3].upper(), rng.randint(1, 999)),
                          "qty": rng.randint(1, 5)} for _ in range(rng.randint(1, 4))],
               "note": words(rng, rng.randint(2, 8))}
        body = json.dumps(doc).encode()
        headers.append(("Content-Type", "application/json"))
    elif kind == 3:
        method, uri = "PUT", "/v1/users/u_%s/profile" % hexid
        first, last = rng.choice(WORDS).title(), rng.choice(WORDS).title()
        doc = {"name": f"{first} {last}", "email": f"{first.lower()}.{i}@example.com",
               "address": {"street": "%d %s Street" % (rng.randint(1, 300), last),
                           "city": rng.choice(WORDS).title(), "zip": "%05d" % rng.randint(0, 99999)},
               "newsletter": rng.random() < 0.5}
        body = json.dumps(doc).encode()
        headers.append(("Content-Type", "application/json"))
    else:
        method, uri = "POST", "/v1/search"
        body = ("query=%s&limit=%d&offset=%d" % (words(rng, 2).replace(" ", "+"),
                                                rng.randint(1, 100), i)).encode()
        headers.append(("Content-Type", "application/x-www-form-urlencoded"))
    if body:
        headers.append(("Content-Length", str(len(body))))
    head = [f"{method} {uri} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def records(path):
    out = []
    with open(path, "rb") as f:
        while True:
            line = f.readline()
            if not line:
                return out
            out.append(f.read(int(line)))


def main(corpus_requests, corpus_meta, n, out_requests, out_classes):
    n = int(n)
    rng = random.Random(17)
    good = [benign(rng, i) for i in range(n)]
    meta = json.load(open(corpus_meta))
    seen, attacks = set(), []
    for raw, m in zip(records(corpus_requests), meta):
        if m["kind"] == "attack" and raw not in seen:
            seen.add(raw)
            attacks.append(raw)
    # Every k-th attack: all the corpus' files and families, in the corpus' order.
    step = max(1, len(attacks) // n)
    bad = attacks[::step][:n]
    assert len(set(good)) == len(good), "benign requests repeat"
    # Interleaved, so neither class runs on caches the other warmed in a block of its own.
    reqs, classes = [], []
    for i in range(max(len(good), len(bad))):
        for r, c in ((good, "benign"), (bad, "attack")):
            if i < len(r):
                reqs.append(r[i])
                classes.append(c)
    with open(out_requests, "wb") as f:
        for r in reqs:
            f.write(b"%d\n" % len(r) + r)
    with open(out_classes, "w") as f:
        f.write("\n".join(classes) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:6])
