"""schemathesis hooks for scripts/contract-fuzz (loaded through `hooks` in schemathesis.toml).

A generated Idempotency-Key is short ("0", "A"), so generated requests would share keys all the time
and be refused as reuses (422 IDEMPOTENCY_KEY_REUSED) before the route's own logic runs. A valid key
is replaced with a fresh one for every request; an invalid key (negative data) is sent as generated.
"""

import re
import uuid

import schemathesis

VALID_KEY = re.compile(r"^[!-~]{1,200}$")


@schemathesis.hook
def before_call(context, case, kwargs):
    # Every phase's requests pass here (the coverage phase does not use the generation hooks).
    headers = kwargs.get("headers") or {}
    key = headers.get("Idempotency-Key")
    if isinstance(key, str) and VALID_KEY.match(key):
        headers["Idempotency-Key"] = uuid.uuid4().hex
