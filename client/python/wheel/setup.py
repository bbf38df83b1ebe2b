"""Marks the wheel as platform-specific: it carries a prebuilt extension (qcal/_qcal*.so), so
bdist_wheel must tag it cpXY-cpXY-linux_<arch>, not py3-none-any. Metadata is in pyproject.toml."""

from setuptools import setup
from setuptools.dist import Distribution


class BinaryDistribution(Distribution):
    def has_ext_modules(self):
        return True


setup(distclass=BinaryDistribution)
