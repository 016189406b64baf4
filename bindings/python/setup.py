"""Ships the cdylib next to the generated module (pyproject.toml holds the metadata).

uniffi's module loads `libgochat_e2ee_ffi.so` / `.dylib` / `gochat_e2ee_ffi.dll` from its
own directory, so the library goes to the top of the wheel; the wheel is tagged for the
platform (`py3-none-<platform>`): the module is pure Python, the library is not.
"""

import glob
import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70
    from wheel.bdist_wheel import bdist_wheel

HERE = os.path.dirname(os.path.abspath(__file__))
LIBS = ["libgochat_e2ee_ffi.so", "libgochat_e2ee_ffi.dylib", "gochat_e2ee_ffi.dll"]


class BuildPyWithCdylib(build_py):
    def run(self):
        super().run()
        found = [p for name in LIBS for p in glob.glob(os.path.join(HERE, "generated", name))]
        if not found:
            raise SystemExit("no cdylib in bindings/python/generated: run scripts/gen-bindings.sh python")
        for lib in found:
            shutil.copy2(lib, self.build_lib)
        # The hand-written fast path (docs/python.md, "Fast path").
        shutil.copy2(os.path.join(HERE, "src", "gochat_e2ee_fast.py"), self.build_lib)


class PlatformWheel(bdist_wheel):
    def finalize_options(self):
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self):
        _, _, plat = super().get_tag()
        return "py3", "none", plat


setup(cmdclass={"build_py": BuildPyWithCdylib, "bdist_wheel": PlatformWheel})
