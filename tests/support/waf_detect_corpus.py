#!/usr/bin/env python3
"""Measures the WAF's SQLi/XSS detectors on the OWASP CRS regression corpus.

Extracts, for every go-ftw test, the values a SqliMatch/XssMatch statement would inspect
(query argument names and values, the body, cookies, the URI path and non-boilerplate headers),
URL-decoded once the way a URL_DECODE transformation would, feeds them to the waf_detect_eval
driver and prints the detection rate per family (942 SQLi, 941 XSS) and the false-positive rate
on the should-pass set (tests that only carry no_expect_ids, and REQUEST-999 exceptions).

usage: waf_detect_corpus.py DRIVER [CORPUS_DIR] [--misses] [--fps]
"""
import base64
import glob
import os
import subprocess
import sys
import urllib.parse

import yaml

BOILERPLATE = {"host", "accept", "accept-encoding", "accept-language", "content-type",
               "content-length", "connection", "proxy-connection", "cache-control",
               "transfer-encoding", "keep-alive", "te", "upgrade-insecure-requests"}
CRS_AGENT = "OWASP CRS test agent"


def url_decode(v):
    return urllib.parse.unquote_to_bytes(v.replace("+", " ")) if isinstance(v, str) else v


def split_pairs(qs):
    out = []
    for part in qs.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        out.append(url_decode(name))
        out.append(url_decode(value))
    return out


def raw_request(blob):
    """Splits a raw HTTP request into (uri, headers dict, body str)."""
    text = blob.decode("latin-1")
    head, _, body = text.partition("\r\n\r\n")
    if not _:
        head, _, body = text.partition("\n\n")
    lines = head.replace("\r\n", "\n").split("\n")
    parts = lines[0].split(" ")
    uri = parts[1] if len(parts) > 1 else "/"
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip()] = v.strip()
    return uri, headers, body


def stage_values(inp):
    uri = inp.get("uri", "/") or "/"
    headers = dict(inp.get("headers") or {})
    body = inp.get("data")
    if inp.get("encoded_request"):
        uri, headers, body = raw_request(base64.b64decode(inp["encoded_request"]))
    elif inp.get("raw_request"):
        uri, headers, body = raw_request(inp["raw_request"].encode("latin-1", "replace"))
    values = []
    path, _, query = str(uri).partition("?")
    values.append(url_decode(path))
    values.extend(split_pairs(query))
    if isinstance(body, list):
        body = "\n".join(str(x) for x in body)
    if body:
        body = str(body)
        values.append(url_decode(body))
        if "=" in body and "{" not in body[:1]:
            values.extend(split_pairs(body))
    for k, v in headers.items():
        name = str(k).lower()
        if name in BOILERPLATE or (name == "user-agent" and v == CRS_AGENT):
            continue
        if name == "cookie":
            for c in str(v).split(";"):
                cn, _, cv = c.strip().partition("=")
                values.append(url_decode(cn))
                values.append(url_decode(cv))
        else:
            values.append(url_decode(str(v)))
    return [v for v in values if v]


def load(corpus):
    """Yields (family, test name, values) with family '942', '941' or 'pass' (others skipped)."""
    for path in sorted(glob.glob(os.path.join(corpus, "*", "*.y*ml"))):
        with open(path, encoding="utf-8", errors="replace") as f:
            doc = yaml.safe_load(f) or {}
        always_pass = "REQUEST-999" in path
        for t in doc.get("tests") or []:
            expect, no_expect, values = set(), set(), []
            for st in t.get("stages") or []:
                st = st.get("stage", st)
                log = (st.get("output") or {}).get("log") or {}
                expect.update(str(x) for x in log.get("expect_ids") or [])
                no_expect.update(str(x) for x in log.get("no_expect_ids") or [])
                values.extend(stage_values(st.get("input") or {}))
            name = "%s#%s" % (doc.get("rule_id", os.path.basename(path)), t.get("test_id"))
            if always_pass or (no_expect and not expect):
                yield "pass", name, values
            elif any(e.startswith("942") for e in expect):
                yield "942", name, values
            elif any(e.startswith("941") for e in expect):
                yield "941", name, values


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if not args:
        sys.exit(__doc__)
    driver = args[0]
    corpus = args[1] if len(args) > 1 else os.path.join(
        os.path.dirname(__file__), "..", "..", "..", "shared", "waf-corpus", "crs-regression")
    tests = list(load(corpus))
    stream = bytearray()
    for _, _, values in tests:
        for v in values:
            stream += b"%d\n" % len(v) + v
    out = subprocess.run([driver], input=bytes(stream), capture_output=True, check=True)
    verdicts = iter(out.stdout.decode().split("\n"))
    stats = {}
    for family, name, values in tests:
        hit = [False, False, False]
        for v in values:
            bits = next(verdicts).split()
            for k in range(3):
                hit[k] = hit[k] or bits[k] == "1"
        s = stats.setdefault(family, {"n": 0, "low": 0, "high": 0, "xss": 0, "any": 0})
        s["n"] += 1
        s["low"] += hit[0]
        s["high"] += hit[1]
        s["xss"] += hit[2]
        s["any"] += hit[0] or hit[2]
        show = ("--misses" in sys.argv and family == "942" and not hit[0]) or \
               ("--misses" in sys.argv and family == "941" and not hit[2]) or \
               ("--fps" in sys.argv and family == "pass" and (hit[0] or hit[1] or hit[2]))
        if show:
            print("%s %s low=%d high=%d xss=%d %r" % (family, name, hit[0], hit[1], hit[2],
                                                     [v[:160] for v in values]))

    def pct(a, b):
        return "%d/%d (%.1f%%)" % (a, b, 100.0 * a / b if b else 0.0)

    s = stats.get("942", {"n": 0, "low": 0, "high": 0})
    print("942 SQLi detection: LOW %s  HIGH %s" % (pct(s["low"], s["n"]), pct(s["high"], s["n"])))
    s = stats.get("941", {"n": 0, "xss": 0})
    print("941 XSS  detection: %s" % pct(s["xss"], s["n"]))
    s = stats.get("pass", {"n": 0, "low": 0, "high": 0, "xss": 0, "any": 0})
    print("should-pass false positives: SQLi LOW %s  SQLi HIGH %s  XSS %s  SQLi LOW or XSS %s" %
          (pct(s["low"], s["n"]), pct(s["high"], s["n"]), pct(s["xss"], s["n"]),
           pct(s["any"], s["n"])))


if __name__ == "__main__":
    main()
