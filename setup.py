"""The compiled part of callserver: batched RTP socket I/O (callserver/media/_rtpio.pyx).

Everything else about the package is in pyproject.toml. The extension is optional: without a
C compiler (or off Linux, where epoll and recvmmsg are missing) the build goes on without it
and callserver.media.rtpio serves the same API in Python, with a warning at start.
"""

import sys

from setuptools import Extension, setup


def _extensions() -> list[Extension]:
    if not sys.platform.startswith("linux"):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("Cython is missing: callserver.media._rtpio is not built", file=sys.stderr)
        return []
    rtpio = Extension("callserver.media._rtpio", ["callserver/media/_rtpio.pyx"], optional=True)
    return cythonize([rtpio], build_dir="build/cython", language_level=3)


setup(ext_modules=_extensions())
