"""Test data the tests read: public test vectors, byte for byte."""

from pathlib import Path

RFC4475 = Path(__file__).resolve().parent / "rfc4475"  # the 49 torture messages of RFC 4475
