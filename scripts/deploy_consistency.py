#!/usr/bin/env python3
"""Checks deploy/ against the binary and the code (scripts/deploy-checks.sh runs it).

1. Every environment variable a task definition or Kubernetes manifest sets is one the binary
   reads (`retainwise env-vars`).
2. The SQS queue's visibility timeout and the DLQ's maxReceiveCount come from the same root
   variables as the tasks' RETAINWISE_VISIBILITY_TIMEOUT_SECS and RETAINWISE_MAX_RECEIVES.
3. The IAM actions granted to the task roles are exactly the AWS calls the code makes (SQS
   operations in crates/retainwise-queue/src/sqs, object_store calls in storage.rs), no action
   or resource is `*`, and each role has what its work needs and not the other role's work.

Usage: deploy_consistency.py RETAINWISE_BINARY
"""

import glob
import json
import os
import re
import subprocess
import sys

import hcl2
import yaml

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))
AWS = os.path.join(ROOT, "deploy", "aws")
failures = []


def fail(msg):
    failures.append(msg)
    print(f"FAIL: {msg}")


def ok(msg):
    print(f"ok:   {msg}")


def norm(value):
    """python-hcl2 keeps HCL's quotes around strings and block labels; drop them (and its
    comment and block markers)."""
    if isinstance(value, dict):
        return {norm(k): norm(v) for k, v in value.items() if k not in ("__comments__", "__is_block__")}
    if isinstance(value, list):
        return [norm(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def load_tf(path):
    with open(path) as f:
        return norm(hcl2.load(f))


def module_files(module_dir):
    return sorted(glob.glob(os.path.join(module_dir, "*.tf")))


def blocks(module_dir, kind):
    """All blocks of `kind` (resource, data, module, variable, locals) in a module folder."""
    out = []
    for path in module_files(module_dir):
        for block in load_tf(path).get(kind, []):
            out.append(block)
    return out


def strip_expr(value):
    """hcl2 gives expressions as '${...}' strings."""
    if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
        return value[2:-1].strip()
    return value


# ---------------------------------------------------------------- 1. environment variables
binary = sys.argv[1]
read_vars = set(subprocess.run([binary, "env-vars"], check=True, capture_output=True, text=True).stdout.split())
if len(read_vars) < 20:
    fail(f"`retainwise env-vars` listed only {len(read_vars)} variables")

set_vars = {}
env_entry = re.compile(r'\{\s*name\s*=\s*"([A-Za-z_][A-Za-z0-9_]*)"\s*,\s*(value|valueFrom)\s*=')
for path in glob.glob(os.path.join(AWS, "**", "*.tf"), recursive=True):
    text = open(path).read()
    for m in env_entry.finditer(text):
        set_vars.setdefault(m.group(1), set()).add(os.path.relpath(path, ROOT))

for path in glob.glob(os.path.join(ROOT, "deploy", "kubernetes", "**", "*.yaml"), recursive=True):
    for doc in yaml.safe_load_all(open(path)):
        if not doc:
            continue
        rel = os.path.relpath(path, ROOT)
        if doc.get("kind") in ("ConfigMap", "Secret"):
            for key in list((doc.get("data") or {}).keys()) + list((doc.get("stringData") or {}).keys()):
                set_vars.setdefault(key, set()).add(rel)
        spec = (((doc.get("spec") or {}).get("template") or {}).get("spec") or {})
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            for e in c.get("env", []) or []:
                set_vars.setdefault(e["name"], set()).add(rel)

if len(set_vars) < 10:
    fail(f"found only {len(set_vars)} variables set in deploy/ (the pattern no longer matches the task definitions?)")
# `X_FILE` is read for every X the binary reads (the value from that file: secrets).
unknown = {
    k: sorted(v) for k, v in set_vars.items()
    if k not in read_vars and not (k.endswith("_FILE") and k[: -len("_FILE")] in read_vars)
}
if unknown:
    for k, where in sorted(unknown.items()):
        fail(f"{k} is set in {', '.join(where)} but the binary does not read it")
else:
    ok(f"all {len(set_vars)} variables set in deploy/ are read by the binary")

# ---------------------------------------------------------------- 2. queue settings agree
root_modules = {name: body for b in blocks(AWS, "module") for name, body in b.items()}
root_vars = {name: body for b in blocks(AWS, "variable") for name, body in b.items()}


def root_variable(module_name, module_var):
    """The root variable a module input is wired to (`var.X` in main.tf), or None."""
    expr = strip_expr(root_modules[module_name].get(module_var))
    m = re.fullmatch(r"var\.([a-z0-9_]+)", expr or "")
    return m.group(1) if m else None


sqs_tf = load_tf(os.path.join(AWS, "modules", "data", "sqs.tf"))
queue = next(r["aws_sqs_queue"]["predictions"] for r in sqs_tf["resource"] if "predictions" in r.get("aws_sqs_queue", {}))
vis_expr = strip_expr(queue["visibility_timeout_seconds"])
redrive_text = str(queue["redrive_policy"])
mrc = re.search(r"maxReceiveCount\s*[=:]\s*var\.([a-z0-9_]+)", redrive_text)
tasks_text = open(os.path.join(AWS, "modules", "service", "tasks.tf")).read()


def task_env_var(name):
    m = re.search(r'name\s*=\s*"%s"\s*,\s*value\s*=\s*tostring\(var\.([a-z0-9_]+)\)' % name, tasks_text)
    return m.group(1) if m else None


for setting, queue_side, env_name in [
    ("visibility timeout", re.fullmatch(r"var\.([a-z0-9_]+)", vis_expr or ""), "RETAINWISE_VISIBILITY_TIMEOUT_SECS"),
    ("maxReceiveCount", mrc, "RETAINWISE_MAX_RECEIVES"),
]:
    task_side = task_env_var(env_name)
    if not queue_side or not task_side:
        fail(f"{setting}: cannot trace the queue side ({queue_side}) or {env_name} ({task_side}) to a variable")
        continue
    q_root = root_variable("data", queue_side.group(1))
    t_root = root_variable("service", task_side)
    if q_root and q_root == t_root:
        ok(f"{setting} of the SQS queue and {env_name} both come from var.{q_root} (default {root_vars[q_root].get('default')})")
    else:
        fail(f"{setting}: the queue uses var.{q_root}, the tasks' {env_name} var.{t_root}")

vis_default = root_vars["visibility_timeout_secs"]["default"]
if not (3 <= vis_default <= 43200):
    fail(f"visibility_timeout_secs default {vis_default}: the binary accepts 1..43200 and the heartbeat extends at a third of it")
if not (1 <= root_vars["max_receives"]["default"] <= 1000):
    fail("max_receives default outside SQS's 1..1000")

# ---------------------------------------------------------------- 3. IAM against the code
SQS_OPS = {
    "send_message": "SendMessage", "send_message_batch": "SendMessage",
    "receive_message": "ReceiveMessage",
    "delete_message": "DeleteMessage", "delete_message_batch": "DeleteMessage",
    "change_message_visibility": "ChangeMessageVisibility",
    "change_message_visibility_batch": "ChangeMessageVisibility",
    "get_queue_attributes": "GetQueueAttributes", "get_queue_url": "GetQueueUrl",
    "create_queue": "CreateQueue", "set_queue_attributes": "SetQueueAttributes",
    "delete_queue": "DeleteQueue", "purge_queue": "PurgeQueue", "list_queues": "ListQueues",
    "start_message_move_task": "StartMessageMoveTask", "tag_queue": "TagQueue",
    "list_dead_letter_source_queues": "ListDeadLetterSourceQueues",
}
# object_store's ObjectStore methods → the S3 actions they need (Amazon S3 API Reference; a
# multipart upload that fails is aborted, HEAD needs s3:GetObject).
STORE_OPS = {
    "put": ["PutObject"], "put_opts": ["PutObject"],
    "put_multipart": ["PutObject", "AbortMultipartUpload"], "put_multipart_opts": ["PutObject", "AbortMultipartUpload"],
    "get": ["GetObject"], "get_opts": ["GetObject"], "get_range": ["GetObject"], "get_ranges": ["GetObject"],
    "head": ["GetObject"], "delete": ["DeleteObject"], "delete_stream": ["DeleteObject"],
    "list": ["ListBucket"], "list_with_delimiter": ["ListBucket"], "list_with_offset": ["ListBucket"],
    "copy": ["GetObject", "PutObject"], "copy_if_not_exists": ["GetObject", "PutObject"],
    "rename": ["GetObject", "PutObject", "DeleteObject"],
}


def strip_tests(text):
    return text.split("#[cfg(test)]")[0]


def fn_body(text, name):
    start = text.index(f"pub async fn {name}(")
    depth, i = 0, text.index("{", start)
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[start:j + 1]
    raise ValueError(name)


sqs_src = ""
for path in glob.glob(os.path.join(ROOT, "crates", "retainwise-queue", "src", "sqs", "*.rs")):
    text = strip_tests(open(path).read())
    if path.endswith("client.rs"):
        # `setup` is the operator's `retainwise queue setup`; Terraform creates the queues.
        text = text.replace(fn_body(text, "setup"), "")
    sqs_src += text
code_sqs = {SQS_OPS[op] for op in re.findall(r"\.([a-z_]+)\(\)", sqs_src) if op in SQS_OPS}
storage_src = strip_tests(open(os.path.join(ROOT, "crates", "retainwise", "src", "storage.rs")).read())
store_calls = set(re.findall(r"\.store\s*\.([a-z_]+)\(", storage_src))
code_s3 = {a for op in store_calls if op in STORE_OPS for a in STORE_OPS[op]}
# storage/direct.rs: object_store's MultipartStore on the raw S3 client, and requests it signs
# itself (presigned PUTs the client sends, signed with the API's role: s3:PutObject; ListParts).
DIRECT_OPS = {
    "create_multipart": ["PutObject"], "complete_multipart": ["PutObject"],
    "abort_multipart": ["AbortMultipartUpload"], "signed_url": [],
}
direct_path = os.path.join(ROOT, "crates", "retainwise", "src", "storage", "direct.rs")
if os.path.exists(direct_path):
    direct_src = strip_tests(open(direct_path).read())
    direct_calls = set(re.findall(r"\bs3\s*\.\s*([a-z_]+)\(", direct_src)) - {"credentials", "as_ref", "is_none", "is_some"}
    unmapped_direct = direct_calls - set(DIRECT_OPS)
    if unmapped_direct:
        fail(f"storage/direct.rs calls S3 client methods this check cannot map to S3 actions: {sorted(unmapped_direct)}")
    code_s3 |= {a for op in direct_calls if op in DIRECT_OPS for a in DIRECT_OPS[op]}
    if "fn list_parts" in direct_src:
        code_s3.add("ListMultipartUploadParts")
    if "fn presigned_put" in direct_src:
        code_s3.add("PutObject")
unmapped = store_calls - set(STORE_OPS)
if unmapped:
    fail(f"storage.rs calls object_store methods this check cannot map to S3 actions: {sorted(unmapped)}")
if not code_sqs or not code_s3:
    fail(f"found no AWS calls in the code (SQS {code_sqs}, S3 {code_s3}): the patterns no longer match")

iam_tf = load_tf(os.path.join(AWS, "modules", "service", "iam.tf"))
roles = {}
for d in iam_tf.get("data", []):
    for name, docs in d.get("aws_iam_policy_document", {}).items():
        if name in ("api", "worker"):
            grants = []
            for st in docs.get("statement", []):
                for action in st.get("actions", []):
                    for res in st.get("resources", []):
                        grants.append((action, strip_expr(res) if res.startswith("${") and res.endswith("}") and "/" not in res else res))
            roles[name] = grants
if set(roles) != {"api", "worker"}:
    fail(f"task role policies not found in iam.tf: {sorted(roles)}")

# No wildcard, in any policy of deploy/aws (documents and inline JSON alike).
for path in glob.glob(os.path.join(AWS, "**", "*.tf"), recursive=True):
    data = load_tf(path)
    for d in data.get("data", []):
        for name, doc in d.get("aws_iam_policy_document", {}).items():
            for st in doc.get("statement", []):
                for a in st.get("actions", []):
                    if "*" in a:
                        fail(f"{os.path.relpath(path, ROOT)}: {name} grants the wildcard action {a}")
                for r in st.get("resources", []):
                    if r.strip() == "*":
                        fail(f"{os.path.relpath(path, ROOT)}: {name} grants on resource *")
    text = open(path).read()
    if re.search(r'(Action|Resource)\s*=\s*"\*"|(actions|resources)\s*=\s*\[\s*"\*"', text):
        fail(f"{os.path.relpath(path, ROOT)}: a policy uses * as an action or resource")

granted = {a for grants in roles.values() for a, _ in grants}
granted_sqs = {a.split(":", 1)[1] for a in granted if a.startswith("sqs:")}
granted_s3 = {a.split(":", 1)[1] for a in granted if a.startswith("s3:")}
other = {a for a in granted if not a.startswith(("sqs:", "s3:"))}
if other:
    fail(f"task roles grant actions of other services the code does not call: {sorted(other)}")
for service, code, grant in [("sqs", code_sqs, granted_sqs), ("s3", code_s3, granted_s3)]:
    if code == grant:
        ok(f"{service}: the task roles grant exactly the {len(code)} actions the code calls: {', '.join(sorted(code))}")
    else:
        if code - grant:
            fail(f"{service}: the code calls {sorted(code - grant)} but no task role is granted them")
        if grant - code:
            fail(f"{service}: granted {sorted(grant - code)} but the code never calls them")

# What each role's work needs (the worker consumes and writes results; the API publishes and
# stores uploads), and what it must not have.
def has(role, action, resource_part):
    return any(a == action and resource_part in r for a, r in roles.get(role, []))


# The object prefixes each role's code touches, by the key constructors of
# crates/retainwise/src/domain/object_key.rs and the prefixes named in deletion.rs and
# retention.rs. The worker runs every job kind: scoring (uploads → results, reports), pieces and
# their merge (pieces/), the challenger's shadow scores (shadow/), training (models/), and the
# housekeeping kinds (erasure rewrites uploads, results and reports; deletion and retention
# remove objects under every data prefix). The API takes uploads (and copies them for
# schedules), stores the spreadsheet-safe download copies, and reads what the pages show.
needs = [
    ("worker", "sqs:ReceiveMessage", "var.queue_arn"), ("worker", "sqs:DeleteMessage", "var.queue_arn"),
    ("worker", "sqs:ChangeMessageVisibility", "var.queue_arn"),
    ("api", "sqs:SendMessage", "var.queue_arn"),
    ("api", "s3:ListMultipartUploadParts", "/uploads/*"),
]
for prefix in ["uploads", "models", "results", "reports", "pieces", "shadow"]:
    needs.append(("worker", "s3:GetObject", f"/{prefix}/*"))
for prefix in ["results", "reports", "models", "pieces", "shadow", "uploads"]:
    needs.append(("worker", "s3:PutObject", f"/{prefix}/*"))
for prefix in ["uploads", "results", "reports", "downloads", "pieces", "shadow", "models"]:
    needs.append(("worker", "s3:DeleteObject", f"/{prefix}/*"))
for prefix in ["uploads", "downloads"]:
    needs.append(("api", "s3:PutObject", f"/{prefix}/*"))
for prefix in ["uploads", "results", "reports", "models", "shadow", "downloads"]:
    needs.append(("api", "s3:GetObject", f"/{prefix}/*"))
forbidden = [
    ("api", "sqs:ReceiveMessage", ""), ("api", "sqs:DeleteMessage", ""), ("api", "sqs:ChangeMessageVisibility", ""),
    ("api", "s3:PutObject", "/results/*"), ("api", "s3:PutObject", "/models/*"),
    ("api", "s3:PutObject", "/pieces/*"), ("api", "s3:PutObject", "/shadow/*"),
    ("api", "s3:DeleteObject", "/results/*"), ("api", "s3:DeleteObject", "/models/*"),
]
for role, action, res in needs:
    if not has(role, action, res):
        fail(f"the {role} role lacks {action} on {res}")
for role, action, res in forbidden:
    if has(role, action, res):
        fail(f"the {role} role must not have {action} on {res or 'anything'}")
if all(has(*n) for n in needs) and not any(has(*f) for f in forbidden):
    ok(f"per role: {len(needs)} needed grants present, {len(forbidden)} forbidden ones absent")

if failures:
    print(f"\n{len(failures)} deploy consistency check(s) failed")
    sys.exit(1)
print("\ndeploy consistency: all checks passed")
