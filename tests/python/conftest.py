"""Where the tests find the build and the golden files (set by ctest; defaults for a manual run)."""
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("RWKV7_BUILD_DIR", ROOT / "build"))
DATA = pathlib.Path(os.environ.get("RWKV7_TEST_DATA_DIR", ROOT / "tests" / "data"))


def pytest_configure(config):
    config.addinivalue_line("markers", "two_runs: the test holds runs of our binary equal to each other bit for bit "
                            "or within 1e-6, so they run with MKL_CBWR=COMPATIBLE")


@pytest.fixture(autouse=True)
def reproducible_gemm_for_two_runs(request, monkeypatch):
    """MKL's default float32 GEMM is not reproducible from run to run; its COMPATIBLE path is
    (docs/testing.md). Every other test runs on the default path, whatever the shell exported: the
    seed's trajectory was made on it. The binaries inherit the environment."""
    if request.node.get_closest_marker("two_runs"):
        monkeypatch.setenv("MKL_CBWR", "COMPATIBLE")
    else:
        monkeypatch.delenv("MKL_CBWR", raising=False)


def golden(relative):
    path = DATA / relative
    if not path.exists():  # a missing golden file fails the test, never skips it
        raise FileNotFoundError(f"golden file missing: {path}")
    return path


@pytest.fixture
def app():
    exe = BUILD / "rwkv7"
    assert exe.exists(), f"build the project first: {exe} is missing"
    return exe


@pytest.fixture
def ops_library():
    lib = BUILD / "librwkv7_ops.so"
    assert lib.exists(), f"build the project first: {lib} is missing"
    return lib


def rwkv_package(model_path):
    """BlinkDL's `rwkv` inference package on a .pth (RWKV-7, fp32 on the CPU, no JIT or CUDA)."""
    os.environ["RWKV_V7_ON"] = "1"
    os.environ["RWKV_JIT_ON"] = "0"
    os.environ["RWKV_CUDA_ON"] = "0"
    from rwkv.model import RWKV

    return RWKV(model=str(model_path)[:-4], strategy="cpu fp32")
