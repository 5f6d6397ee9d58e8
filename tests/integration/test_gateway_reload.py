"""SIGHUP reloads the keys file and the web ACL.

The gateway also watches both files, so a changed file alone would be picked up without the
signal. What only the signal does is a forced reload: the file is read and put in force even
when its contents are those already in force, and that is counted. So each step here checks
the reload counters move by exactly one per signal, and not at all without one.
"""
import json
import signal
import time

import pytest
import requests

from harness import FakeWorker, Gateway, create_topics, new_key, new_prefix, write_keys_file
from test_waf import TINY_ACL, assert_waf_403, byte_rule, handler, write_acl

PLANS = {"default": {"throttle": {"rate": 1000, "burst": 2000}}}
RELOADS = {"keys": "sluice_gateway_keys_reloads_total", "waf": "sluice_gateway_waf_reloads_total"}


@pytest.fixture
def gw(build_dir, kafka_bootstrap, tmp_path):
    prefix = new_prefix()
    create_topics(kafka_bootstrap, prefix)
    old = dict(zip(("value", "id", "hash"), new_key()))
    keys_file, acl_file = tmp_path / "keys.json", tmp_path / "acl.json"
    write_keys_file(keys_file, [old], PLANS)
    write_acl(acl_file, TINY_ACL)
    worker = FakeWorker(kafka_bootstrap, prefix, handler).start()
    g = Gateway(build_dir, tmp_path, kafka_bootstrap, prefix, keys_file,
                SLUICE_WAF_ACL_FILE=str(acl_file)).start()
    yield {"gw": g, "old": old, "keys_file": keys_file, "acl_file": acl_file}
    code = g.stop()
    worker.stop()
    assert code == 0, g.log_text()[-3000:]


def counts(g):
    return {(what, result): g.metric(f'{name}{{result="{result}"}}')
            for what, name in RELOADS.items() for result in ("ok", "error")}


def wait_for(g, want, timeout=5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and counts(g) != want:
        time.sleep(0.05)
    return counts(g)


def get(g, path, key):
    return requests.get(g.url + path, headers={"X-API-Key": key, "User-Agent": "reload-it/1"},
                        timeout=10)


def test_sighup_reloads_the_keys_file_and_the_web_acl_even_unchanged(gw):
    g = gw["gw"]
    before = counts(g)
    g.signal(signal.SIGHUP)
    want = dict(before)
    want[("keys", "ok")] += 1
    want[("waf", "ok")] += 1
    assert wait_for(g, want) == want
    assert g.log_text().count("SIGHUP: reloading the keys file and the web ACL") == 1
    # The watches see nothing to do: the counts stay where the one signal put them.
    time.sleep(2.5)
    assert counts(g) == want
    assert get(g, "/still", gw["old"]["value"]).status_code == 200


def test_sighup_puts_new_keys_and_a_new_acl_in_force_and_keeps_them_on_a_bad_file(gw):
    g = gw["gw"]
    new = dict(zip(("value", "id", "hash"), new_key()))
    assert get(g, "/k", new["value"]).status_code == 403
    assert_waf_403(get(g, "/blocked", gw["old"]["value"]))
    write_keys_file(gw["keys_file"], [new], PLANS)
    doc = json.loads(json.dumps(TINY_ACL))
    doc["Rules"][2] = byte_rule("blocked", 2, "/now-blocked", {"Block": {}})
    write_acl(gw["acl_file"], doc)
    g.signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and get(g, "/k", new["value"]).status_code != 200:
        time.sleep(0.05)
    assert get(g, "/k", new["value"]).status_code == 200
    assert get(g, "/k", gw["old"]["value"]).status_code == 403  # the old key is gone
    assert get(g, "/blocked", new["value"]).status_code == 200
    assert_waf_403(get(g, "/now-blocked", new["value"]))
    # A bad file and a signal: counted as an error each, and what is in force stays.
    time.sleep(1.5)  # the watches have settled on the good files
    before = counts(g)
    gw["keys_file"].write_text("{not json")
    gw["acl_file"].write_text('{"Name": "x", "DefaultAction": {"Nope": {}}, "Rules": []}')
    g.signal(signal.SIGHUP)
    time.sleep(2.5)
    after = counts(g)
    assert after[("keys", "ok")] == before[("keys", "ok")]
    assert after[("waf", "ok")] == before[("waf", "ok")]
    # The watch may refuse the file once before the signal does; the signal always does.
    assert 1 <= after[("keys", "error")] - before[("keys", "error")] <= 2
    assert 1 <= after[("waf", "error")] - before[("waf", "error")] <= 2
    assert get(g, "/k", new["value"]).status_code == 200
    assert_waf_403(get(g, "/now-blocked", new["value"]))
