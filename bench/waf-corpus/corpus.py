"""Turns the CRS regression tests (go-ftw YAML) and the benign corpus (tests/corpus/benign) into
raw requests, and the engines' verdicts into recall per family, the should-pass rate and the
false-positive rate on the benign corpus (bench/waf-corpus/run)."""
import base64
import collections
import json
import pathlib
import re
import sys

ATTACK = {"930": "LFI", "931": "RFI", "932": "RCE", "933": "PHP", "934": "generic",
          "941": "XSS", "942": "SQLi", "944": "Java/Log4J"}
PROTOCOL = {"913": "scanner", "920": "protocol", "921": "protocol attack"}
HOST = b"waf-bench.example"


def stages(test):
    for s in test.get("stages") or []:
        s = s.get("stage", s)  # the older format nests the stage
        if isinstance(s, dict) and "input" in s:
            yield s["input"], s.get("output") or {}


def raw_request(inp):
    """The bytes the test sends, with Host rewritten (the README: Host: localhost would trip
    Host_localhost_HEADER on its own). A POST body without a Content-Type gets the form type a
    client sends with it; both engines see the same bytes."""
    if inp.get("encoded_request"):
        raw = base64.b64decode(inp["encoded_request"])
        return re.sub(rb"(?im)^(host:[ \t]*)localhost(:\d+)?", rb"\g<1>" + HOST, raw)
    method = str(inp.get("method", "GET"))
    uri = str(inp.get("uri", "/"))
    version = str(inp.get("version", "HTTP/1.1"))
    headers = dict(inp.get("headers") or {})
    data = inp.get("data")
    if isinstance(data, list):
        data = "\r\n".join(str(d) for d in data)
    body = b"" if data is None else (data.encode() if isinstance(data, str) else bytes(data))
    out = [f"{method} {uri} {version}".encode()]
    names = {k.lower() for k in headers}
    for k, v in headers.items():
        v = str(v)
        if k.lower() == "host" and v.startswith("localhost"):
            v = HOST.decode()
        out.append(f"{k}: {v}".encode("utf-8", "surrogateescape"))
    if body and "content-type" not in names:
        out.append(b"Content-Type: application/x-www-form-urlencoded")
    if body and "content-length" not in names:
        out.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(out) + b"\r\n\r\n" + body


def benign(jsonl, req_path):
    """The benign corpus's requests (JSON lines: method, path, query, headers, body) as raw
    requests, in the same record format."""
    with open(req_path, "wb") as f:
        for line in open(jsonl, encoding="utf-8"):
            r = json.loads(line)
            target = r["path"] + ("?" + r["query"] if r["query"] else "")
            body = r["body"].encode()
            out = [f"{r['method']} {target} HTTP/1.1".encode(), b"Host: " + HOST]
            out += [f"{k}: {v}".encode() for k, v in r["headers"].items()]
            if body:
                out.append(b"Content-Length: %d" % len(body))
            raw = b"\r\n".join(out) + b"\r\n\r\n" + body
            f.write(b"%d\n" % len(raw) + raw)


def ids_of(output):
    log = output.get("log") or {}
    exp = log.get("expect_ids") or []
    no = log.get("no_expect_ids") or []
    if "log_contains" in output:  # older format: id "942100"
        exp += re.findall(r'id "(\d+)"', str(output["log_contains"]))
    if "no_log_contains" in output:
        no += re.findall(r'id "(\d+)"', str(output["no_log_contains"]))
    return [str(i) for i in exp], [str(i) for i in no]


def build(corpus, req_path, meta_path):
    import yaml
    meta = []
    with open(req_path, "wb") as f:
        for path in sorted(pathlib.Path(corpus).rglob("*.y*ml")):
            doc = yaml.safe_load(path.read_text(errors="replace"))
            if not isinstance(doc, dict):
                continue
            fam = path.parent.name.split("-")[1]
            for t in doc.get("tests") or []:
                for inp, out in stages(t):
                    exp, no = ids_of(out)
                    if fam == "999" or (not exp and no):
                        kind = "pass"
                    elif any(e[:3] in ATTACK for e in exp):
                        kind = "attack"
                    elif any(e[:3] in PROTOCOL for e in exp):
                        kind = "protocol"
                    else:
                        continue
                    try:
                        raw = raw_request(inp)
                    except Exception:  # an unusable stage (binary junk in YAML) is skipped
                        continue
                    f.write(b"%d\n" % len(raw) + raw)
                    meta.append({"file": f"{path.parent.name}/{path.name}",
                                 "test": t.get("test_id", t.get("test_title")), "family": fam,
                                 "kind": kind, "expect": exp, "no_expect": no})
    json.dump(meta, open(meta_path, "w"))


def benign_report(requests_path, paths, show):
    """Blocked requests of the benign corpus, per column, with the rules that blocked them."""
    rows = [[line.rstrip("\n").split("\t") for line in open(p)] for p in paths]
    n = len(rows[0])
    assert all(len(r) == n for r in rows), [len(r) for r in rows]
    blocked = [[r[1] == "BLOCK" for r in rows[0]], [r[1] == "BLOCK" for r in rows[1]],
               [r[3] not in ("0", "200") for r in rows[0]]]

    def pct(a, b):
        return f"{100.0 * a / b:5.2f}%" if b else "   - "

    print(f"\nbenign corpus (tests/corpus/benign): {n} requests")
    print(f"{'blocked (false positives)':<26} {n:>8}", end="")
    for b in blocked:
        print(f" {sum(b):>6} {pct(sum(b), n)}", end="")
    print()
    for label, col in (("Sluice", 0), ("Sluice+SQLi", 1)):
        why = collections.Counter(r[2] for r, b in zip(rows[col], blocked[col]) if b)
        if why:
            print(f"  {label}: " + ", ".join(f"{r.split('/')[-1]} {k}" for r, k in
                                          why.most_common(4)))
    if show:
        targets = [json.loads(line) for line in open(requests_path, encoding="utf-8")]
        for col, label in ((0, "Sluice"), (1, "Sluice+SQLi")):
            for i, r in enumerate(rows[col]):
                if blocked[col][i]:
                    t = targets[i]
                    print(f"  {label} blocks #{i + 1} ({r[2]}): {t['method']} {t['path']}"
                          f"{'?' + t['query'] if t['query'] else ''} {t['body'][:300]!r}")


def crs_fails_a_pass_test(m, status, ids):
    """A should-pass test fails CRS only where CRS blocked it and one of the rules that fired is
    one the test says must not fire; a test that names no such rule fails on any block (the
    regression suite's own criterion: other rules may fire on its request)."""
    if status in ("0", "200"):
        return False
    if not m.get("no_expect"):
        return True
    fired = set(filter(None, ids.split(",")))
    return bool(fired & set(m["no_expect"]))


def report(meta_path, verdicts_path, sqli_path, crs3_path, acl, json_path=None):
    meta = json.load(open(meta_path))
    rows = [line.rstrip("\n").split("\t") for line in open(verdicts_path)]
    rows2 = [line.rstrip("\n").split("\t") for line in open(sqli_path)]
    rows3 = [line.rstrip("\n").split("\t") for line in open(crs3_path)] if crs3_path else None
    assert len(rows) == len(meta) == len(rows2), (len(rows), len(meta), len(rows2))
    assert rows3 is None or len(rows3) == len(meta)
    ncol = 4 if rows3 is None else 5
    # total, sluice, sluice+sqli, crs 4.28.0[, crs 3.3.4]
    fam = collections.defaultdict(lambda: [0] * ncol)
    why = collections.defaultdict(collections.Counter)
    passing = [0] * ncol
    for i, (m, (_, action, rule, status, ids), r2) in enumerate(zip(meta, rows, rows2)):
        s, q = action == "BLOCK", r2[1] == "BLOCK"
        extra = [] if rows3 is None else [rows3[i]]
        if m["kind"] == "pass":
            got = [True, not s, not q, not crs_fails_a_pass_test(m, status, ids)]
            got += [not crs_fails_a_pass_test(m, r[3], r[4]) for r in extra]
            passing = [a + b for a, b in zip(passing, got)]
            continue
        got = [True, s, q, status not in ("0", "200")]
        got += [r[3] not in ("0", "200") for r in extra]
        fam[m["family"]] = [a + b for a, b in zip(fam[m["family"]], got)]
        if s:
            why[m["family"]][rule.split("/")[-1]] += 1

    def pct(a, b):
        return f"{100.0 * a / b:5.1f}%" if b else "   - "

    print(f"WAF corpus: {len(meta)} requests (CRS regression tests; Host rewritten)")
    print(f"Sluice: web ACL {acl}; CRS: libmodsecurity3 + OWASP CRS 4.28.0"
          f"{' (and 3.3.4)' if rows3 else ''} (PL1, threshold 5)\n")
    heads = ["Sluice", "Sluice+SQLi", "CRS 4.28.0"] + (["CRS 3.3.4"] if rows3 else [])
    print(f"{'family':<26} {'requests':>8}" + "".join(f" {h:>14}" for h in heads))

    def line(label, t, *cols):
        print(f"{label:<26} {t:>8}" + "".join(f" {c:>6} {pct(c, t)}" for c in cols))

    for group, names in (("attacks", ATTACK), ("protocol (informative)", PROTOCOL)):
        for code, name in names.items():
            row = fam.get(code, [0] * ncol)
            if row[0]:
                line(f"{code} {name}", *row)
        if group == "attacks":
            line("all attacks", *(sum(fam[k][i] for k in ATTACK if k in fam)
                                  for i in range(ncol)))
            print()
    print()
    line("should pass (not blocked)", *passing)
    if json_path:
        names = ["sluice", "sluice+sqli", "crs-4.28.0"] + (["crs-3.3.4"] if rows3 else [])
        fams = [{"family": f"{code} {name}", "requests": fam[code][0],
                 "recall": {n: fam[code][i + 1] / fam[code][0] for i, n in enumerate(names)}}
                for code, name in ATTACK.items() if fam.get(code, [0])[0]]
        json.dump({"acl": acl, "requests": len(meta), "families": fams,
                   "should_pass": {"requests": passing[0],
                                   "passed": {n: passing[i + 1] / passing[0]
                                              for i, n in enumerate(names)} if passing[0] else {}}},
                  open(json_path, "w"), indent=1)
    print()
    print("Sluice's blocking rules per family:")
    for code in sorted(why):
        top = ", ".join(f"{r} {n}" for r, n in why[code].most_common(4))
        print(f"  {code}: {top}")


if __name__ == "__main__":
    if sys.argv[1] == "requests":
        build(sys.argv[2], sys.argv[3], sys.argv[4])
    elif sys.argv[1] == "benign":
        benign(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "benign-report":
        benign_report(sys.argv[2], sys.argv[3:5], sys.argv[5] == "1")
    else:
        report(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5] or None, sys.argv[6],
               sys.argv[7] if len(sys.argv) > 7 else None)
