"""Bearer-token authentication: `Authorization: Bearer <token>` on every job route.

Only the Authorization header is read (a token in a URL would end up in access logs),
and no token is ever logged or echoed back.
"""

from __future__ import annotations

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from farm.state.tokens import TokenView, verify_token

bearer = HTTPBearer(auto_error=False, description="A token from `farm tokens create NAME`.")

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="farm"'}


def require_token(request: Request, creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> TokenView:
    """The caller's active token, or HTTP 401 (missing, unknown and revoked tokens alike)."""
    if creds is None or creds.scheme.lower() != "bearer" or not creds.credentials:
        raise HTTPException(401, "a bearer token is required (Authorization: Bearer <token>)", headers=_CHALLENGE)
    token = verify_token(request.app.state.ctx.db, creds.credentials)
    if token is None:
        raise HTTPException(401, "the bearer token is not valid (unknown or revoked)", headers=_CHALLENGE)
    request.state.token_name, request.state.token_id = token.name, token.id
    return token
