"""schemathesis hooks of tests/schemathesis.sh: webhook deliveries are signed with the demo app
secret (botflow_server::config::DEMO_APP_SECRET), as Messenger signs them, so generated envelopes
reach the journal and the runtime instead of all stopping at the signature check (401)."""

import hashlib
import hmac
import json

import schemathesis
from schemathesis.core import NotSet

APP_SECRET = b"demo-app-secret"
HEADER = "X-Hub-Signature-256"


@schemathesis.hook
def before_call(ctx, case, kwargs):
    if case.operation.method.upper() != "POST" or case.operation.path != "/webhook":
        return
    headers = case.headers or {}
    # A case without the header (the missing-header checks) or without a body stays as it is.
    if HEADER not in headers or isinstance(case.body, NotSet):
        return
    body = case.body if isinstance(case.body, bytes) else json.dumps(case.body).encode()
    kwargs["data"] = body
    headers[HEADER] = "sha256=" + hmac.new(APP_SECRET, body, hashlib.sha256).hexdigest()
    case.headers = headers
