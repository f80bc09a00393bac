"""The browser tests' fixtures: Chromium (``tests.browser.chromium``) and SIPp."""

from tests.browser.chromium import chromium
from tests.e2e.conftest import sipp

__all__ = ["chromium", "sipp"]
