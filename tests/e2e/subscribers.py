"""One centrex.yaml subscriber for the registrar's end-to-end tests, and the server's settings
that let SIPp register as it.

SIPp 3.6.1 answers MD5 only and reads the first challenge's algorithm, so the server offers
MD5 alone here (see tests/e2e/test_digest_trunks.py).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from callserver.sip.auth import password_ha1

USERNAME, REALM, PASSWORD = "38733100201", "callserver", "phone-201-secret"
AOR = "+38733100201"
MD5_ONLY: dict[str, object] = {"digest": {"algorithms": ["MD5"]}, "trunks": {}}
TRUNKS: dict[str, object] = {**MD5_ONLY, "customers": {"acme": {}}}  # the group's customer
CALLING = {**TRUNKS, "trunks": {"test": {"match": ["127.0.0.1"]}}}  # and a trunk to call from
CREDENTIALS = ("-au", USERNAME, "-ap", PASSWORD)  # SIPp's digest arguments
CALLER = ("-s", USERNAME, "-m", "1", "-key", "caller", "38761000000")  # SIPp calling the phone


def write_centrex(tmp_path: Path) -> None:
    """centrex.yaml in ``tmp_path`` with the group acme-office and its phone +387 33 100 201."""
    group = {
        "customer": "acme",
        "numbers": ["+387 33 100 200-299"],
        "realm": REALM,
        "extensions": {"digits": 3},
        "subscribers": {
            "+387 33 100 201": {
                "username": USERNAME,
                "ha1_md5": password_ha1(USERNAME, REALM, PASSWORD, "MD5"),
                "ha1_sha256": password_ha1(USERNAME, REALM, PASSWORD, "SHA-256"),
            }
        },
    }
    (tmp_path / "centrex.yaml").write_text(yaml.safe_dump({"groups": {"acme-office": group}}))
