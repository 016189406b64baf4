"""Test setup for the Python bindings.

`scripts/test-all.sh` runs `python -m pytest -q bindings/python` from the repository root
after `scripts/gen-bindings.sh`, which writes `gochat_e2ee_ffi.py` and the cdylib side by
side into `bindings/python/generated/`. The tests import that module directly, so they
run without installing the package. When the package is installed (for example from a
wheel built with `pip wheel bindings/python`) and `generated/` is absent, the
installed module is used.
"""

import json
import pathlib
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
GENERATED = HERE.parent / "generated"
VECTORS = HERE.parents[2] / "test-vectors"

if (GENERATED / "gochat_e2ee_ffi.py").is_file():
    sys.path.insert(0, str(GENERATED))
# The hand-written fast path (gochat_e2ee_fast), shipped beside the generated module.
sys.path.insert(0, str(HERE.parent / "src"))


def load_vector(name):
    with open(VECTORS / f"{name}.json", encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="session")
def vectors_dir():
    return VECTORS
