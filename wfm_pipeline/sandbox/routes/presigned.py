"""Presigned (S3-style) download URLs: ``/sandbox/downloads/<key>?expires=<epoch ms>&signature=<hmac>``.

Genesys hands large results out as links to a download host that needs no Bearer token; the sandbox signs
(key, expiry) with its HMAC key. Used by bulk adherence downloads and activity-code listings.
"""

from __future__ import annotations

import hmac
from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response

from wfm_pipeline.sandbox.state import DOWNLOADS_PREFIX, SandboxState


def signed_url(request: Request, sandbox: SandboxState, key: str, expires_at: datetime) -> str:
    """The download URL of ``key`` on the host the request came to, valid until ``expires_at``."""
    expires = int(expires_at.timestamp() * 1000)
    signature = sandbox.sign(f"{key}:{expires}")
    base = str(request.base_url).rstrip("/")
    return f"{base}{DOWNLOADS_PREFIX}{key}?expires={expires}&signature={signature}"


def refusal(request: Request, sandbox: SandboxState, key: str) -> Response | None:
    """The S3 error a download of ``key`` gets (bad signature, expired), or None when it may be served."""
    expires, signature = request.query_params.get("expires", ""), request.query_params.get("signature", "")
    if not expires.isdigit() or not hmac.compare_digest(sandbox.sign(f"{key}:{expires}"), signature):
        return s3_error(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        )
    if sandbox.now().timestamp() * 1000 >= int(expires):
        return s3_error(403, "AccessDenied", "Request has expired")
    return None


def s3_error(status: int, code: str, message: str) -> Response:
    """Presigned-download errors look like S3's (XML), as the real download host is S3-style."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    )
    return Response(body, status_code=status, media_type="application/xml")
