"""The one compiled part, `ssmd._native`: hot paths in C (src/ssmd/_native/, see common.h).

Optional: without a C compiler (and zlib's header) the install still succeeds and
ssmd normalizes with the pure-Python reference path, only slower; `ssmd venue list`
says which path is in use. Everything else is in pyproject.toml.
"""

from setuptools import Extension, setup

NATIVE = ("module", "kraken_v1", "kraken_v2", "record", "blake2b", "journal", "nats", "frames")

setup(
    ext_modules=[
        Extension(
            "ssmd._native",
            sources=[f"src/ssmd/_native/{name}.c" for name in NATIVE],
            depends=["src/ssmd/_native/common.h"],
            libraries=["z"],
            extra_compile_args=["-O3"],
            optional=True,
        )
    ]
)
