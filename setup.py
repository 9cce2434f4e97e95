"""Builds the engines' compiled extensions in place: ``python setup.py build_ext --inplace``.

Each C core lives beside its Cython wrapper under ``engines/`` and is added to
``EXTENSIONS`` by the issue that brings it; ``make`` runs this on every set-up.
"""

from setuptools import setup

EXTENSIONS: list = []

setup(name="portfolio-site-engines", ext_modules=EXTENSIONS, py_modules=[])
