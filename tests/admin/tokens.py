"""The bearer tokens every admin test uses: the operator's, acme's and globex's, as
``AdminToken`` entries (``TOKENS``) and as the settings' ``admin.tokens`` (``TOKEN_SETTINGS``)."""

from __future__ import annotations

from typing import Any

from callserver.config.admin import AdminToken, token_digest

OPERATOR, ACME, GLOBEX = "operator-secret", "acme-secret", "globex-secret"
TOKENS = (
    AdminToken(name="noc", role="operator", sha256=token_digest(OPERATOR)),
    AdminToken(name="acme-portal", role="customer", customer="acme", sha256=token_digest(ACME)),
    AdminToken(
        name="globex-portal", role="customer", customer="globex", sha256=token_digest(GLOBEX)
    ),
)
TOKEN_SETTINGS: list[dict[str, Any]] = [token.model_dump(exclude_none=True) for token in TOKENS]
