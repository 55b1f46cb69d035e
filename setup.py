"""The one compiled part: Kraken book frames in C (src/ssmd/venues/_native/, see common.h).

Optional: without a C compiler (and zlib's header) the install still succeeds and
ssmd normalizes with the pure-Python reference path, only slower; `ssmd venue list`
says which path is in use. Everything else is in pyproject.toml.
"""

from setuptools import Extension, setup

NATIVE = ("module", "kraken_v1", "kraken_v2")

setup(
    ext_modules=[
        Extension(
            "ssmd.venues._kraken_native",
            sources=[f"src/ssmd/venues/_native/{name}.c" for name in NATIVE],
            depends=["src/ssmd/venues/_native/common.h"],
            libraries=["z"],
            extra_compile_args=["-O2"],
            optional=True,
        )
    ]
)
