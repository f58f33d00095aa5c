"""Only here to ship c7n_unused_keys.pth at the root of site-packages; metadata is in setup.cfg."""
import os

from setuptools import setup
from setuptools.command.build_py import build_py

PTH = 'c7n_unused_keys.pth'
PTH_SRC = os.path.join('plugin', PTH)


class build_py_with_pth(build_py):
    """c7n has no plugin entry points: the .pth installs the start-up hook."""

    def run(self):
        super().run()
        if self.editable_mode:
            # PEP 660 discards build_lib; install_lib is the root of the editable wheel.
            dest = self.get_finalized_command('install').install_lib
        else:
            dest = self.build_lib
        self.copy_file(PTH_SRC, os.path.join(dest, PTH), preserve_mode=0)

    def get_outputs(self, include_bytecode=1):
        return super().get_outputs(include_bytecode) + [os.path.join(self.build_lib, PTH)]

    def get_source_files(self):
        return super().get_source_files() + [PTH_SRC]


setup(cmdclass={'build_py': build_py_with_pth})
