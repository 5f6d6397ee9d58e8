"""`sluicectl waf check` and `sluicectl waf eval`: the operator's way to test a web ACL."""
import json
import subprocess


def run(build_dir, *args, stdin=b""):
    return subprocess.run([str(build_dir / "tools/sluicectl/sluicectl"), "waf", *args],
                          input=stdin, capture_output=True)


def test_check_accepts_the_shipped_documents(build_dir, root_dir):
    r = run(build_dir, "check", str(root_dir / "data/waf/default-acl.json"), "@default")
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().splitlines() == [
        f"{root_dir}/data/waf/default-acl.json: ok: web ACL SluiceDefaultWebACL, 3 rules",
        "@default: ok: web ACL SluiceDefaultWebACL, 3 rules"]


def test_check_prints_every_error_with_its_json_path_and_exits_1(build_dir, tmp_path):
    acl = tmp_path / "bad.json"
    acl.write_text(json.dumps({"DefaultAction": {"Allow": {}}, "Rules": [
        {"Name": "a", "Priority": 0, "Action": {"Block": {}}, "Statement": {"ByteMatchStatement": {
            "SearchString": "x", "FieldToMatch": {"UriPath": {}}, "PositionalConstraint": "START",
            "TextTransformations": [{"Priority": 0, "Type": "NONE"}]}}},
        {"Name": "a", "Priority": 1, "Action": {"Allow": {}},
         "Statement": {"GeoMatchStatement": {"CountryCodes": ["XX"]}}}]}))
    r = run(build_dir, "check", str(acl))
    assert r.returncode == 1
    assert r.stderr.decode().splitlines() == [
        f'{acl}: Rules[0].Statement.ByteMatchStatement.PositionalConstraint: "START" is not one '
        "of EXACTLY, STARTS_WITH, ENDS_WITH, CONTAINS, CONTAINS_WORD",
        f"{acl}: Rules[1].Statement.GeoMatchStatement: not supported by Sluice (see docs/waf.md)",
        f'{acl}: Rules[1].Name: "a" is also the name of Rules[0]',
        f"{acl}: invalid"]


def test_eval_prints_the_verdict_and_matching_rule_per_request(build_dir):
    reqs = (b"GET /items?id=1 HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: app/1\r\n\r\n"
            b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: app/1\r\n\r\n"
            b"POST /c HTTP/1.1\r\nHost: api\r\nUser-Agent: app/1\r\nContent-Length: 25\r\n\r\n"
            b"<script>alert(1)</script>"
            b"PROPFIND /dav HTTP/1.1\r\nHost: api\r\nUser-Agent: app/1\r\n\r\n")
    r = run(build_dir, "eval", "@default", stdin=reqs)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().splitlines() == [
        "1\tGET /items?id=1\tALLOW\tDefault_Action\t",
        "2\tGET /\tBLOCK\tAWSManagedRulesKnownBadInputsRuleSet/Host_localhost_HEADER\t"
        "awswaf:managed:aws:known-bad-inputs:Host_Localhost_Header\t403",
        "3\tPOST /c\tBLOCK\tAWSManagedRulesCommonRuleSet/CrossSiteScripting_BODY\t"
        "awswaf:managed:aws:core-rule-set:CrossSiteScripting_Body\t403",
        "4\tPROPFIND /dav\tBLOCK\tAWSManagedRulesKnownBadInputsRuleSet/PROPFIND_METHOD\t"
        "awswaf:managed:aws:known-bad-inputs:Propfind_Method\t403"]
