"""Builds headwater's one extension module, headwater._native._native, from csrc/*.c.

Knobs (environment):
  HEADWATER_DEBUG=1            -O0 -g, assertions on (HW_DEBUG), Cython line tracing
  HEADWATER_SANITIZE=1         AddressSanitizer + UndefinedBehaviorSanitizer
  HEADWATER_CYTHON_ANNOTATE=1  write the Cython annotate HTML next to the .pyx
CPU features are chosen at run time (see csrc/hw_crc32c.c); nothing here uses -march=native.
"""

import glob
import os

from Cython.Build import cythonize
from setuptools import Extension, setup

debug = os.environ.get("HEADWATER_DEBUG") == "1"
sanitize = os.environ.get("HEADWATER_SANITIZE") == "1"
annotate = os.environ.get("HEADWATER_CYTHON_ANNOTATE") == "1"

cflags = ["-std=c11", "-Wall", "-Wextra", "-Wno-unused-function", "-D_GNU_SOURCE"]
ldflags: list[str] = []
macros = []
if debug:
    cflags += ["-O0", "-g", "-UNDEBUG"]
    macros += [("HW_DEBUG", "1"), ("CYTHON_TRACE_NOGIL", "1")]
else:
    cflags += ["-O3"]
if sanitize:
    cflags += ["-fsanitize=address,undefined", "-fno-omit-frame-pointer"]
    ldflags += ["-fsanitize=address,undefined"]

ext = Extension(
    "headwater._native._native",
    ["src/headwater/_native/_native.pyx"] + sorted(glob.glob("csrc/*.c")),
    include_dirs=["csrc"],
    define_macros=macros,
    extra_compile_args=cflags,
    extra_link_args=ldflags,
)

setup(
    ext_modules=cythonize(
        [ext],
        language_level=3,
        include_path=["src"],
        annotate=annotate,
        compiler_directives={
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "linetrace": debug,
        },
    )
)
