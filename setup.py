"""Builds the engines' compiled extensions in place: ``python setup.py build_ext --inplace``.

Each C core lives beside its Cython wrapper under ``engines/`` and is added to
``EXTENSIONS`` by the issue that brings it; ``make`` runs this on every set-up.
"""

from setuptools import Extension, setup

EXTENSIONS: list = []


def _scheduler() -> list:
    """engines.scheduler: the C core (_core.c, _kernels.c) and its Cython wrapper."""
    from Cython.Build import cythonize

    here = "engines/scheduler"
    ext = Extension(
        "engines.scheduler._scheduler",
        sources=[f"{here}/_scheduler.pyx", f"{here}/_core.c", f"{here}/_kernels.c"],
        include_dirs=[here],
        depends=[f"{here}/{h}.h" for h in ("_atomics", "_core", "_deque", "_kernels", "_mpsc")],
        extra_compile_args=["-O2", "-std=gnu11", "-Wno-unused-function"],
        extra_link_args=["-pthread"],
    )
    return cythonize([ext], quiet=True, language_level=3)


def _firewall() -> list:
    """engines.firewall: the proxy's per-message hot path and its own socket transport
    (pure Cython, no C beside them; _relay cimports _transport)."""
    from Cython.Build import cythonize

    exts = [
        Extension(
            f"engines.firewall.{name}",
            sources=[f"engines/firewall/{name}.pyx"],
            depends=["engines/firewall/_transport.pxd"],
            extra_compile_args=["-O2"],
        )
        for name in ("_transport", "_relay")
    ]
    return cythonize(exts, quiet=True, language_level=3)


EXTENSIONS += _scheduler() + _firewall()

setup(name="portfolio-site-engines", ext_modules=EXTENSIONS, py_modules=[])
