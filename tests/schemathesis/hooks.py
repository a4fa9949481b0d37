"""Schemathesis hooks for Homeroom's API document (loaded through SCHEMATHESIS_HOOKS).

WHIP and WHEP bodies are SDP text (application/sdp, application/trickle-ice-sdpfrag), which
schemathesis has no serializer for: send whatever string it generated as UTF-8 text, so the
server's SDP parsing is fuzzed too.
"""

import schemathesis


@schemathesis.serializer("application/sdp", "application/trickle-ice-sdpfrag")
def sdp_text(ctx, value):
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "replace")
