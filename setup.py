"""The engines' compiled extensions; everything else about the package is in pyproject.toml.

setuptools reads both: ``pip install -e .`` (what ``make setup`` runs) builds these in place,
beside their sources, and ``python setup.py build_ext --inplace`` (``make build``) rebuilds
just what changed after an edit of a ``.pyx`` or ``.c``. Each C core lives beside its Cython
wrapper under ``engines/``.
"""

from glob import glob

from Cython.Build import cythonize
from setuptools import Extension, setup


def _scheduler() -> list[Extension]:
    """engines.scheduler: the C core (_core.c, _kernels.c) and its Cython wrapper."""
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


def _cython(package: str, names: tuple[str, ...], pxds: list[str]) -> list[Extension]:
    """Cython modules of ``engines/<package>`` (no C beside them), cimporting one another
    through the .pxd files in ``pxds``."""
    here = f"engines/{package}"
    exts = [
        Extension(
            f"engines.{package}.{name}",
            sources=[f"{here}/{name}.pyx"],
            depends=pxds,
            extra_compile_args=["-O2"],
        )
        for name in names
    ]
    return cythonize(exts, quiet=True, language_level=3)


def _pgproxy() -> list[Extension]:
    """engines.pgproxy: the protocol proxy's hot path, shared by the firewall and the router."""
    names = ("_transport", "_endpoint", "_statements", "_metrics", "_policy", "_server",
             "_pool", "_client")  # fmt: skip
    return _cython("pgproxy", names, sorted(glob("engines/pgproxy/*.pxd")))


def _firewall() -> list[Extension]:
    """engines.firewall: the guard's compiled half, a policy on pgproxy's relay."""
    pxds = sorted(glob("engines/pgproxy/*.pxd") + glob("engines/firewall/*.pxd"))
    return _cython("firewall", ("_guard",), pxds)


setup(ext_modules=_scheduler() + _pgproxy() + _firewall())
