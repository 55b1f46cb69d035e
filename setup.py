"""The one compiled part: the Kraken v1 book update in C (src/ssmd/venues/_kraken_native.c).

Optional: without a C compiler (and zlib's header) the install still succeeds and
ssmd normalizes with the pure-Python reference path, only slower; `ssmd venue list`
says which path is in use. Everything else is in pyproject.toml.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "ssmd.venues._kraken_native",
            sources=["src/ssmd/venues/_kraken_native.c"],
            libraries=["z"],
            extra_compile_args=["-O2"],
            optional=True,
        )
    ]
)
