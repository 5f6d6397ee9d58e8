"""The echo handler against its oracle: the AWS stack's Python Lambda (lib/lambda/api-handler.py),
extracted from the design document at test time and run on the same request as the worker's
echo handler (tests/support/echo_answer.c runs wk_echo_handle itself).

The event is what the worker's envelope carries, as API Gateway's v1 event: the body's bytes
decoded as UTF-8 with errors="replace" (None when empty), the query's last value per name.
Both answers are compared after json.loads, timestamp aside; a number may be written
differently (1e5 for 100000.0) as long as it reads back to the same value, so each side is
compared as json.dumps of what it parsed to (NaN compares equal that way). Deliberate
differences, asserted as such: other methods are 405 with Allow and "success": false; the
Lambda's CORS headers are not emitted (the gateway decides CORS)."""
import json
import os
import re
import subprocess
import threading
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "corpus" / "echo"
STAGE = "test-stage"
REQUEST_ID = "req-0123"


def lambda_source():
    path = Path(os.environ.get("SLUICE_SEED_FILE") or ROOT / ".." / "shared" / "seed" / "000_a36fe1d200a52f7f.txt")
    if not path.exists():
        pytest.skip(f"the Lambda's source is not here: {path}")
    text = path.read_text()
    m = re.search(r"^### lib/lambda/api-handler\.py\s*\n+```python\n(.*?)^```", text, re.S | re.M)
    assert m, "no python block under ### lib/lambda/api-handler.py"
    return m.group(1)


@pytest.fixture(scope="module")
def lambda_handler():
    ns = {"__name__": "api_handler"}
    exec(compile(lambda_source(), "api-handler.py", "exec"), ns)
    return ns["lambda_handler"]


@pytest.fixture(scope="module")
def echo_answer(build_dir):
    exe = build_dir / "tests" / "echo_answer"
    if not exe.exists():
        pytest.skip(f"{exe} is not built")
    return exe


def run_c(exe, method, path, files, query=()):
    args = [str(exe), method, path, STAGE, REQUEST_ID]
    for name, value in query:
        args += ["-q", f"{name}={value}"]
    out = subprocess.run(args + ["--"] + [str(f) for f in files], check=True, capture_output=True,
                         timeout=600).stdout
    lines = out.split(b"\n")
    answers = []
    for i in range(len(files)):
        head, body = lines[2 * i].decode().split("\t"), lines[2 * i + 1]
        headers = dict(h.split(": ", 1) for h in head[1:])
        answers.append((int(head[0]), headers, body))
    return answers


def run_python(handler, method, path, body, query=()):
    """The Lambda on a fresh thread: its stack starts near empty, as in the Lambda runtime,
    so json.loads meets its recursion limit at about the same depth."""
    event = {"httpMethod": method, "path": path,
             "queryStringParameters": dict(query) or None,
             "headers": {"Host": "localhost", "X-API-Key": "k"},
             "requestContext": {"stage": STAGE},
             "body": body.decode("utf-8", "replace") if body else None}
    context = types.SimpleNamespace(aws_request_id=REQUEST_ID)
    result = {}
    old = os.environ.get("STAGE")
    os.environ["STAGE"] = STAGE
    try:
        t = threading.Thread(target=lambda: result.update(r=handler(event, context)))
        t.start()
        t.join()
    finally:
        if old is None:
            os.environ.pop("STAGE", None)
        else:
            os.environ["STAGE"] = old
    return result["r"]


def unique_keys(pairs):
    """A parsed object, refusing a key twice: json.loads would keep the last one silently and
    hide an answer that prints a repeated key of the body twice."""
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), f"a key printed twice: {keys}"
    return dict(pairs)


def canonical(body):
    doc = json.loads(body, object_pairs_hook=unique_keys)
    doc.pop("timestamp", None)
    return json.dumps(doc)


def corpus():
    files = sorted(CORPUS.glob("*.body"))
    assert len(files) >= 200
    return files


def compare(handler, exe, method, files, path="/items/42", query=()):
    failures = []
    for f, (status, headers, body) in zip(files, run_c(exe, method, path, files, query)):
        want = run_python(handler, method, path, f.read_bytes(), query)
        got_status = status
        if method not in ("GET", "POST", "PUT", "DELETE") and want["statusCode"] == 200:
            # The deliberate difference: 405 + Allow, "success": false, the same data.
            assert status == 405 and headers.get("Allow") == "GET, POST, PUT, DELETE", f.name
            got_status = 200
            doc = json.loads(body)
            assert doc["success"] is False, f.name
            doc["success"] = True
            body = json.dumps(doc).encode()
        assert headers.get("Content-Type") == "application/json"
        assert "Access-Control-Allow-Origin" not in headers
        try:
            got = canonical(body)
        except (AssertionError, ValueError) as e:
            got = f"not an answer: {e}"
        if (got_status, got) != (want["statusCode"], canonical(want["body"])):
            failures.append(f"{f.name}: C {status} {body[:300]!r}\n  Python {want['statusCode']} "
                            f"{want['body'][:300]!r}")
    assert not failures, f"{len(failures)} of {len(files)} differ:\n" + "\n".join(failures)


def test_post_answers_as_the_lambda_on_the_whole_corpus(lambda_handler, echo_answer):
    compare(lambda_handler, echo_answer, "POST", corpus())


def test_put_answers_as_the_lambda_on_the_whole_corpus(lambda_handler, echo_answer):
    compare(lambda_handler, echo_answer, "PUT", corpus())


def test_get_with_query_strings_answers_as_the_lambda(lambda_handler, echo_answer):
    # A body on a GET is parsed too (the Lambda parses before it looks at the method), so the
    # corpus's bodies that make json.loads raise answer 500 here as well.
    query = [("a", "1"), ("b", "two words"), ("é", "ü\U0001F600"), ("empty", ""), ("x", "\"<>\\")]
    compare(lambda_handler, echo_answer, "GET", corpus(), path="/search", query=query)
    compare(lambda_handler, echo_answer, "GET", corpus()[:5], path="/plain")


def test_delete_answers_as_the_lambda(lambda_handler, echo_answer):
    compare(lambda_handler, echo_answer, "DELETE", corpus(), path="/items/7")


@pytest.mark.parametrize("method", ["PATCH", "HEAD", "OPTIONS", "FOO", "PROPFIND" * 8])
def test_other_methods_are_405_with_the_lambdas_data(lambda_handler, echo_answer, method):
    compare(lambda_handler, echo_answer, method, corpus()[:40])


def test_bodies_whose_escape_is_six_times_larger_still_answer(lambda_handler, echo_answer, tmp_path):
    """1.7 MiB of bytes that each print as \\u00XX or \\ufffd (10.2 MiB of answer) and a
    10 MiB body of '[' (the recursion limit, without stack risk)."""
    files = []
    for name, data in [("controls", bytes(range(1, 32)) * (17 * 1024 * 1024 // 10 // 31)),
                       ("invalid", b"\xff" * (17 * 1024 * 1024 // 10)),
                       ("string-controls", b'"' + b"\\u0001" * 300000 + b"\x7f" * 1000000 + b'"'),
                       ("open-brackets", b"[" * (10 << 20))]:
        (tmp_path / name).write_bytes(data)
        files.append(tmp_path / name)
    compare(lambda_handler, echo_answer, "POST", files)
