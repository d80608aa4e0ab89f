#!/usr/bin/env python3
"""Check AWS API calls recorded by our protocol-level AWS sandbox against AWS's service models.

The sandbox is our only stand-in for AWS: the product talks to it in tests, and nothing else
tells us whether the requests the product sends, or the responses the sandbox gives back, are
ones real AWS would send or accept. This script checks a recording of those calls against
botocore's published JSON models (shapes, required members, enums, lengths, ranges, patterns,
error codes), so both the sandbox and the product are held to AWS's own models.

Usage: check-aws-models.py CALLS.json    (exit 0 clean, 1 violations, 2 unusable input/models)
       check-aws-models.py --self-test
"""
import json
import re
import sys
import unicodedata
import warnings
from datetime import datetime

MODEL_NAMES = {"sagemaker": "sagemaker", "application-autoscaling": "application-autoscaling",
               "monitoring": "cloudwatch", "servicequotas": "service-quotas", "sts": "sts"}
COMMON_ERRORS = frozenset(
    "ThrottlingException Throttling ValidationException ValidationError InternalFailure "
    "InternalServiceError ServiceUnavailable AccessDeniedException AccessDenied "
    "UnrecognizedClientException IncompleteSignature InvalidAction MissingAction "
    "RequestLimitExceeded TooManyRequestsException".split())
# Java's POSIX-style classes (US-ASCII, as java.util.regex has them without UNICODE_CHARACTER_CLASS).
POSIX = {"Lower": "a-z", "Upper": "A-Z", "ASCII": r"\x00-\x7F", "Alpha": "a-zA-Z", "Digit": "0-9",
         "Alnum": "a-zA-Z0-9", "Punct": r"!-/:-@\[-`{-~", "Graph": r"\x21-\x7E",
         "Print": r"\x20-\x7E", "Blank": r" \t", "Cntrl": r"\x00-\x1F\x7F",
         "XDigit": "0-9a-fA-F", "Space": r" \t\n\x0B\f\r"}
JSON_TYPES = {"structure": dict, "map": dict, "list": list, "string": str, "blob": str, "boolean": bool}
_category_runs = {}


def class_body(name):
    """Body of a character class for Java's \\p{NAME}: a POSIX class or a Unicode category (L, Nd)."""
    if name in POSIX:
        return POSIX[name]
    cat = name[2:] if name.startswith("Is") else name
    if not _category_runs:  # one pass over all code points, only once a pattern needs it
        prev, start = None, 0
        for cp in range(0x110001):
            c = unicodedata.category(chr(cp)) if cp <= 0x10FFFF else None
            if c != prev:
                if prev is not None:
                    _category_runs.setdefault(prev, []).append((start, cp - 1))
                prev, start = c, cp
    runs = [r for c, rs in _category_runs.items() if c.startswith(cat) for r in rs]
    if not runs or len(cat) > 2:
        raise ValueError(f"unknown class {name}")
    return "".join(f"\\U{lo:08X}-\\U{hi:08X}" for lo, hi in runs)


def java_to_python(p):
    """Translate the Java regex dialect used in AWS models into Python's; ValueError if we can't."""
    p = re.sub(r"\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})", lambda m: "\\U%08X" % (  # UTF-16 pairs
        0x10000 + ((int(m[1], 16) - 0xD800) << 10) + int(m[2], 16) - 0xDC00), p, flags=re.I)
    p = re.sub(r"\\x\{([0-9a-fA-F]+)\}", lambda m: "\\U%08X" % int(m[1], 16), p)
    p = re.sub(r"(?<!\\)\$\{1,\d+\}", "$", p)  # Java lets the '$' anchor be repeated
    out, i, in_class = [], 0, False
    while i < len(p):
        ch = p[i]
        if ch == "\\" and i + 1 < len(p):
            m = re.match(r"\{(\w+)\}|([A-Z])", p[i + 2:]) if p[i + 1] in "pP" else None
            if m and p[i + 1] == "P" and in_class:
                raise ValueError("negated class inside a class")
            if m:
                body = class_body(m[1] or m[2])
                out.append(body if in_class else ("[^%s]" if p[i + 1] == "P" else "[%s]") % body)
                i += 2 + m.end()
            else:
                out.append(r"\Z" if p[i + 1] == "z" else p[i:i + 2])
                i += 2
            continue
        if in_class and (ch == "[" or p.startswith("&&", i)):
            raise ValueError("nested class or class intersection")
        in_class = (ch == "[") or (in_class and ch != "]")
        out.append(ch)
        i += 1
    return "".join(out)


def fail(msg):
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(2)


def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def is_iso(v):
    try:
        return isinstance(v, str) and bool(datetime.fromisoformat(v))
    except ValueError:
        return False


class Checker:
    def __init__(self):
        try:
            try:
                from botocore import loaders
            except ImportError:
                from awscli.botocore import loaders
            self.loader = loaders.Loader()
        except Exception as e:
            fail(f"cannot load botocore's model loader (botocore or awscli.botocore): {e}")
        self.models, self.patterns, self.unchecked = {}, {}, {}

    def model(self, service):
        if service not in self.models:
            try:
                m = self.loader.load_service_model(MODEL_NAMES[service], "service-2")
            except Exception as e:
                fail(f"cannot load the model for {service}: {e}")
            codes = {n for n, s in m["shapes"].items() if s.get("exception")}
            codes |= {s["error"]["code"] for s in m["shapes"].values() if s.get("error", {}).get("code")}
            self.models[service] = (m, codes)
        return self.models[service]

    def regex(self, shape_name, pattern):
        if pattern not in self.patterns:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error")  # e.g. FutureWarning on Java-only set syntax
                    self.patterns[pattern] = re.compile(java_to_python(pattern))
            except (ValueError, re.error, FutureWarning):
                self.patterns[pattern] = None
                self.unchecked.setdefault(pattern, shape_name)
        return self.patterns[pattern]

    def check_call(self, call):
        """Violation lines for one recorded call."""
        if not isinstance(call, dict):
            return [f"seq ? malformed call record: {json.dumps(call)[:80]}"]
        service, op = call.get("service"), call.get("operation")
        head = f"seq {call.get('seq', '?')} {service}.{op}"
        if service not in MODEL_NAMES:
            return [f"{head} request: $: unknown service {service!r}"]
        model, codes = self.model(service)
        if op not in model["operations"]:
            return [f"{head} request: $: unknown operation"]
        opdef, out = model["operations"][op], []
        params = {} if call.get("params") is None else call["params"]
        self.check_root(model, opdef.get("input"), params, False, f"{head} request", out)
        error, response = call.get("error"), call.get("response")
        if error is None and response is None:
            out.append(f"{head} response: $: null response without an error")
        elif error is None:
            self.check_root(model, opdef.get("output"), response, True, f"{head} response", out)
        elif not isinstance(error, str) or error.split("#")[-1].split(":")[0] not in codes | COMMON_ERRORS:
            out.append(f"{head} response: $error: error code {error!r} is neither modeled "
                       "for the service nor a common AWS error")
        return out

    def check_root(self, model, ref, value, resp, prefix, out):
        if ref is None and value != {}:
            out.append(f"{prefix}: $: operation has no {'output' if resp else 'input'} shape, "
                       f"expected {{}}, got {json.dumps(value)[:80]}")
        elif ref is not None:
            problems = []
            self.check(model["shapes"], ref["shape"], value, "$", resp, problems)
            out.extend(f"{prefix}: {p}" for p in problems)

    def check(self, shapes, name, v, path, resp, out):
        s, t = shapes[name], shapes[name]["type"]

        def bad(msg):
            out.append(f"{path}: {msg}")
        if v is None:
            return bad("null value (AWS protocols omit absent members)")
        if s.get("document"):
            return
        if t in JSON_TYPES and not isinstance(v, JSON_TYPES[t]):
            return bad(f"expected {t} ({name}), got {type(v).__name__} {json.dumps(v)[:40]}")
        if t == "structure":
            members = s.get("members", {})
            for k, val in v.items():
                if k not in members:
                    out.append(f"{path}.{k}: unknown member of {name}")
                else:
                    self.check(shapes, members[k]["shape"], val, f"{path}.{k}", resp, out)
            if s.get("union") and sum(val is not None for val in v.values()) != 1:
                bad(f"union {name} must have exactly one member set")
            for r in s.get("required", []):
                if r not in v:
                    bad(f"missing required member {r} of {name}")
        elif t == "list":
            for i, item in enumerate(v):
                self.check(shapes, s["member"]["shape"], item, f"{path}[{i}]", resp, out)
        elif t == "map":
            for k, item in v.items():
                self.check(shapes, s["key"]["shape"], k, f"{path}{{{k!r}}}(key)", resp, out)
                self.check(shapes, s["value"]["shape"], item, f"{path}{{{k!r}}}", resp, out)
        elif t == "string":
            if "enum" in s and v not in s["enum"]:
                bad(f"{v!r} is not one of {name}'s enum values {s['enum']}")
            rx = self.regex(name, s["pattern"]) if "pattern" in s else None
            if rx is not None and not rx.search(v):  # AWS patterns are unanchored unless written so
                bad(f"{v!r} does not match {name}'s pattern {s['pattern']!r}")
        elif t in ("integer", "long", "float", "double"):
            # integer/long must be JSON integers: 60.0 is rejected, as AWS types these as ints.
            if not (is_num(v) and (isinstance(v, int) or t in ("float", "double"))):
                return bad(f"expected {t} ({name}), got {type(v).__name__} {json.dumps(v)[:40]}")
        elif t == "timestamp":
            ts = isinstance(v, dict) and set(v) == {"$ts"} and is_num(v["$ts"])
            if not (is_num(v) or (ts if resp else is_iso(v))):
                bad(f"expected timestamp ({name}), got {json.dumps(v)[:80]}")
        elif t not in JSON_TYPES:
            return bad(f"shape {name} has unsupported type {t!r}")
        sized = t in ("list", "map", "string")  # min/max bound their length, numbers their value
        n = len(v) if sized else v
        if (sized or is_num(v)) and not s.get("min", n) <= n <= s.get("max", n):
            bad(f"{'length' if sized else 'value'} {n} is outside {name}'s range "
                f"[{s.get('min', '')}, {s.get('max', '')}]")


def self_test():
    c = Checker()
    alarm = {"AlarmName": "a", "MetricName": "CPU", "Namespace": "AWS/SageMaker", "Statistic": "Average",
             "Dimensions": [{"Name": "EndpointName", "Value": "e"}], "Period": 60, "EvaluationPeriods": 1,
             "Threshold": 80.0, "ComparisonOperator": "GreaterThanThreshold"}
    max_results = c.model("application-autoscaling")[0]["shapes"]["MaxResults"].get("max", float("inf"))
    endpoint = {"EndpointName": "e", "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/e",
                "EndpointStatus": "InService", "CreationTime": {"$ts": 1.0}, "LastModifiedTime": 2}
    arn, ep = "arn:aws:servicequotas:us-east-1:123456789012:quota/x", {"EndpointName": "e"}
    policy = {"PolicyName": "\t", "ServiceNamespace": "sagemaker", "ResourceId": "endpoint/e/variant/v",
              "ScalableDimension": "sagemaker:variant:DesiredInstanceCount"}
    ok = (None, {})
    cases = [  # (label, service, operation, params, (error, response), expected violation count)
        ("valid alarm", "monitoring", "PutMetricAlarm", alarm, ok, 0),
        ("unknown member", "monitoring", "PutMetricAlarm", {**alarm, "Bogus": 1}, ok, 1),
        ("Period as string", "monitoring", "PutMetricAlarm", {**alarm, "Period": "60"}, ok, 1),
        ("bad enum", "monitoring", "PutMetricAlarm", {**alarm, "ComparisonOperator": "Bigger"}, ok, 1),
        ("output for no-output op", "monitoring", "PutMetricAlarm", alarm, (None, {"X": 1}), 1),
        ("MaxResults 60 (model max: %s)" % max_results, "application-autoscaling", "DescribeScalingPolicies",
         {"ServiceNamespace": "sagemaker", "MaxResults": 60}, (None, {}), int(60 > max_results)),
        ("$ts timestamp", "sagemaker", "DescribeEndpoint", ep, (None, endpoint), 0),
        ("bad timestamp", "sagemaker", "DescribeEndpoint", ep, (None, {**endpoint, "CreationTime": "x"}), 1),
        ("null + 5 missing", "sagemaker", "DescribeEndpoint", {"EndpointName": None}, (None, {}), 6),
        ("\\p{L} ok", "servicequotas", "TagResource",
         {"ResourceARN": arn, "Tags": [{"Key": "Größe 1", "Value": ""}]}, ok, 0),
        ("\\p{L} bad", "servicequotas", "TagResource",
         {"ResourceARN": arn, "Tags": [{"Key": "a\x07", "Value": "v"}]}, ok, 1),
        ("\\p{Print}", "application-autoscaling", "PutScalingPolicy", policy,
         ("ValidationException", None), 1),
        ("modeled error code", "monitoring", "GetDashboard", {"DashboardName": "d"},
         ("ResourceNotFound", None), 0),
        ("common error", "sagemaker", "DescribeEndpoint", ep, ("ThrottlingException", None), 0),
        ("unmodeled error", "sagemaker", "DescribeEndpoint", ep, ("NoSuchEndpoint", None), 1),
        ("unknown operation", "sagemaker", "DescribeEndpoints", {}, ok, 1),
    ]
    failed = 0
    for label, svc, op, params, (error, response), expected in cases:
        got = c.check_call({"service": svc, "operation": op, "params": params, "response": response,
                            "error": error, "seq": 0})
        if len(got) != expected:
            failed += 1
            print(f"FAIL {label}: expected {expected} violation(s), got {len(got)}:", *got, sep="\n  ")
    if c.unchecked:
        failed += 1
        print(f"FAIL unexpected unchecked patterns: {c.unchecked}")
    if failed:
        sys.exit(1)
    print("self-test ok")


def main(argv):
    if len(argv) != 2:
        fail("usage:\n" + __doc__.split("Usage: ")[-1])
    if argv[1] == "--self-test":
        return self_test()
    try:
        with open(argv[1], encoding="utf-8") as f:
            calls = json.load(f)
        calls = calls.get("calls") if isinstance(calls, dict) else None
        if not isinstance(calls, list):
            raise ValueError('expected an object with a "calls" array')
    except (OSError, ValueError) as e:
        fail(f"cannot read calls from {argv[1]}: {e!r}")
    checker, violations = Checker(), []
    for call in calls:
        violations.extend(checker.check_call(call))
    for line in violations:
        print(line)
    print(f"checked {len(calls)} calls: {len(violations)} violations")
    if checker.unchecked:
        print(f"note: {len(checker.unchecked)} unchecked pattern(s), no Python translation: "
              + "; ".join(f"{shape} {p!r}" for p, shape in sorted(checker.unchecked.items())))
    sys.exit(1 if violations else 0)


if __name__ == "__main__":
    main(sys.argv)
