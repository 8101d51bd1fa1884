"""Minting orthanc-edge session tokens with PyJWT: the few lines a backend needs."""
import time

import jwt  # PyJWT


def edge_token(secret, user, studies=None, series=None, instances=None, lifetime_s=300):
    """An HS256 token the edge accepts (auth.jwt.secret = `secret`), restricted when ids are given."""
    now = int(time.time())
    claims = {"sub": user, "iat": now, "exp": now + lifetime_s}
    if studies is not None:
        claims["studies"] = list(studies)
    if series is not None:
        claims["series"] = list(series)
    if instances is not None:
        claims["instances"] = list(instances)
    return jwt.encode(claims, secret, algorithm="HS256")
