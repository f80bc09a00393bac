"""``callserver admin token NAME --role operator|customer [--customer ID]``: a new bearer token.

The token is printed once; the settings keep only its SHA-256 digest (``config.admin``), so
the lines printed for config/callserver.yaml's ``admin.tokens`` hold no usable secret.
"""

from __future__ import annotations

import secrets

from callserver.config.admin import AdminToken, token_digest

__all__ = ["new_token"]


def new_token(name: str, role: str, customer: str | None) -> tuple[str, str]:
    """A fresh random token and the YAML lines of its ``admin.tokens`` entry.

    Raises:
        ValueError: the name, role or customer would make an invalid entry (the message says
            which and how to fix it).
    """
    token = secrets.token_urlsafe(32)
    entry = AdminToken.model_validate(
        {"name": name, "role": role, "customer": customer, "sha256": token_digest(token)}
    )
    lines = [f"    - name: {entry.name}", f"      role: {entry.role}"]
    if entry.customer is not None:
        lines.append(f"      customer: {entry.customer}")
    lines.append(f"      sha256: {entry.sha256}")
    return token, "\n".join(lines) + "\n"
