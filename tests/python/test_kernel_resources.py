"""scripts/kernel_resources.py's RWKV-LM comparison (kernel_resources_rwkv_lm.py), the parts that
need no nvcc: which -D values a .cu of theirs gets, the block size read off its launcher, the
markdown's second table, files that are skipped rather than failing the run, and --fail-on-spill
looking at our kernels only. The .cu texts here are made up to have the shapes their launchers have."""
import importlib.util
import json
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"


def load(name):
    """A module of scripts/, the way `python3 scripts/kernel_resources.py` sees it (scripts/ on sys.path)."""
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def kr():
    return load("kernel_resources")


@pytest.fixture(scope="module")
def lm():
    return load("kernel_resources_rwkv_lm")


def test_defines_are_the_loader_values_of_the_macros_a_file_leaves_open(lm):
    assert lm.rwkv_lm_defines("float s[_N_]; if (t % _CHUNK_LEN_ == 0) {}") == {"_N_": 64, "_CHUNK_LEN_": 16}
    assert lm.rwkv_lm_defines("float s[_C_];") == {"_C_": 64}
    # a file written for one head size says so, and gets it
    assert lm.rwkv_lm_defines('static_assert(_N_ == 128, "x"); float s[_N_];') == {"_N_": 128}
    # what the file defines itself is not passed, and a file without the macros gets none
    assert lm.rwkv_lm_defines("#define _CHUNK_LEN_ 32\nint c = _CHUNK_LEN_;") == {}
    assert lm.rwkv_lm_defines("constexpr int kThreads = 256;") == {}


LAUNCHERS = """
#define ROWS 16
constexpr int threads = 64;
constexpr int kWarps = 4;
template<int N> __global__ void fwd(int T) {}
template<int N> __global__ void bwd(int T) {}
template<typename T, int BLOCK> __global__ void ce(int n) {}
__global__ void rows_kernel(int n) {}
__global__ void local_kernel(int n) {}
__global__ void fn_kernel(int n) {}
__global__ void runtime_kernel(int n) {}
__global__ void min_kernel(int n) {}
__global__ void declared_kernel(int n) {}
inline int pick_threads() {
    int threads = 128;
    if (const char* env = std::getenv("X")) { threads = std::atoi(env); }
    return threads;
}
void launch(int B, int H, int n, torch::Tensor x) {
    fwd<_N_><<<dim3(H,B), dim3(_N_)>>>(n);
    bwd<_N_><<<dim3(H,B), dim3(_N_, 2)>>>(n);
    ce<scalar_t, BLOCK><<<n, BLOCK, 0, stream>>>(n);
    rows_kernel<<<n, kWarps * 32 * ROWS / 16, 0, stream>>>(n);
    const int threads = 512;
    local_kernel<<<static_cast<int>(ceil_div(n, static_cast<int64_t>(threads))), threads>>>(n);
    const int picked = pick_threads();
    fn_kernel<<<n, picked>>>(n);
    runtime_kernel<<<n, x.size(0)>>>(n);
    min_kernel<<<n, std::min(n, 1024)>>>(n);
}
"""


@pytest.mark.parametrize("kernel, threads", [
    ("fwd<64>", 64),                    # one thread per row of the state
    ("bwd<128>", 256),                  # dim3(x, y): x * y threads
    ("ce<c10::BFloat16, 512>", 512),    # a template parameter, from the compiled instance
    ("rows_kernel", 128),               # constants and #defines, with arithmetic
    ("local_kernel", 512),              # the launcher's own variable, not a file-wide one
    ("fn_kernel", 128),                 # a function's default (not what an environment variable may say)
    ("runtime_kernel", None),           # decided at run time
    ("min_kernel", None),               # likewise, in C that is not plain arithmetic
    ("declared_kernel", None),          # never launched here
])
def test_block_threads_read_off_their_launcher(lm, kernel, threads):
    assert lm.rwkv_lm_block_threads(LAUNCHERS, kernel, {"_N_": 64}) == threads


def their_row(source, kernel, **numbers):
    row = {"project": "RWKV-LM", "source": f"RWKV-LM {source}", "kernel": kernel, "registers": 255, "spill_stores": 0,
           "spill_loads": 0, "stack": 0, "smem": 2304, "defines": "-D_N_=64 -D_CHUNK_LEN_=16", "block_threads": 64,
           "blocks_per_sm": 4, "occupancy": 0.125}
    row.update(numbers)
    return row


def test_markdown_has_their_table_apart_from_ours(kr):
    ours = [{"source": "ops/wkv7/wkv7_cuda.cu", "kernel": "rwkv7_cuda::forward_kernel<bf16, 64>", "registers": 104,
             "spill_stores": 0, "spill_loads": 0, "stack": 0, "smem": 0, "block_threads": 64, "blocks_per_sm": 9,
             "occupancy": 0.28125}]
    cuda = "RWKV-v7/train_temp/cuda"
    theirs = [their_row(f"230d32b {cuda}/wkv7_cuda.cu", "backward_kernel", registers=248),
              their_row(f"abc1234 {cuda}/a.cu", "backward_kernel<64>", spill_stores=128, spill_loads=64, stack=64),
              their_row(f"abc1234 {cuda}/a.cu", "gate_kernel", block_threads=None, blocks_per_sm=None, occupancy=None,
                        defines=""),
              {"project": "RWKV-LM", "source": f"RWKV-LM abc1234 {cuda}/b.cu",
               "skipped": "includes LibTorch headers; none found (--torch-include)"}]
    md = kr.markdown(ours, theirs)
    first, second = md.split("## RWKV-LM's kernels (for comparison)")
    assert "| `rwkv7_cuda::forward_kernel<bf16, 64>` | 104 | 0 / 0 | 0 | 0 | 64 | 9 | 28% |" in first
    assert "backward_kernel" not in first  # theirs stay out of our table
    assert "| 230d32b wkv7_cuda.cu | `backward_kernel` | 248 | 0 / 0 | 0 | 2304 | 64 | 4 | 12% |" in second
    assert "| abc1234 a.cu | `backward_kernel<64>` | 255 | 128 / 64 | 64 | 2304 | 64 | 4 | 12% |" in second
    assert "| abc1234 a.cu | `gate_kernel` | 255 | 0 / 0 | 0 | 2304 | ? | ? | ? |" in second
    assert "- 230d32b wkv7_cuda.cu: `-D_N_=64 -D_CHUNK_LEN_=16`" in second
    assert "- abc1234 b.cu: skipped: includes LibTorch headers; none found (--torch-include)" in second
    assert "--use_fast_math -O3 -Xptxas -O3 --extra-device-vectorization" in second
    assert "RWKV-LM" not in kr.markdown(ours)  # without a checkout, our table alone


def test_a_file_that_cannot_be_compiled_is_skipped_not_fatal(lm, tmp_path):
    cuda = tmp_path / "lm-copy" / "RWKV-v7" / "train_temp" / "cuda"
    cuda.mkdir(parents=True)
    (cuda / "torch_op.cu").write_text("#include <torch/extension.h>\n__global__ void k() {}\n")
    (cuda / "plain.cu").write_text("__global__ void k() {}\n")
    (cuda / "loader.cpp").write_text("// not a .cu: not compiled\n")
    no_torch = tmp_path / "empty"
    no_torch.mkdir()
    # a copy, not a git work tree: labelled by its folder; `false`: an nvcc that fails
    rows = lm.rwkv_lm_measure("false", str(tmp_path / "lm-copy"), str(no_torch))
    assert rows == [
        {"project": "RWKV-LM", "source": "RWKV-LM lm-copy RWKV-v7/train_temp/cuda/plain.cu", "skipped": "nvcc exited 1"},
        {"project": "RWKV-LM", "source": "RWKV-LM lm-copy RWKV-v7/train_temp/cuda/torch_op.cu",
         "skipped": "includes LibTorch headers; none found (--torch-include)"}]


def test_fail_on_spill_checks_ours_only(kr, tmp_path, monkeypatch):
    ours = [{"source": "ops/x.cu", "kernel": "ours_kernel", "registers": 32, "spill_stores": 0, "spill_loads": 0,
             "stack": 0, "smem": 0, "block_threads": 256, "blocks_per_sm": 8, "occupancy": 1.0}]
    theirs = [their_row("abc1234 RWKV-v7/train_temp/cuda/a.cu", "backward_kernel<64>", spill_stores=128)]
    monkeypatch.setattr(kr, "measure", lambda nvcc: [dict(r) for r in ours])
    monkeypatch.setattr(kr, "rwkv_lm_measure", lambda nvcc, tree, inc: [dict(r) for r in theirs])
    out, tree = tmp_path / "out.json", tmp_path / "rwkv-lm"
    (tree / "RWKV-v7" / "train_temp" / "cuda").mkdir(parents=True)  # a work tree's shape; measured by the stub
    monkeypatch.setattr(sys, "argv", ["kr", "--fail-on-spill", "--rwkv-lm", str(tree), "--json", str(out)])
    kr.main()  # their spill is theirs: no failure
    assert [r.get("project") for r in json.loads(out.read_text())] == [None, "RWKV-LM"]
    ours[0]["spill_stores"] = 4
    with pytest.raises(SystemExit, match=r"ours_kernel \(ops/x.cu\): 4 bytes"):
        kr.main()


def test_our_wkv_blocks_are_the_launchers(kr):
    # the forward runs a thread per channel; the backward kBackwardSplit (the last template argument)
    assert kr.block_threads("rwkv7_cuda::forward_kernel<bf16, 128, false>") == 128
    assert kr.block_threads("rwkv7_cuda::backward_kernel<bf16, 128, false, true, 2>") == 256
    assert kr.block_threads("rwkv7_cuda::backward_kernel<float, 64, true, false, 4>") == 256
    assert kr.block_threads("rwkv7_cuda::vres_gate_forward_kernel<bf16>") == 256


@pytest.mark.parametrize("args, says", [
    (["--md", "/no/such/folder/x.md"], "/no/such/folder"),
    (["--json", "ops/wkv7/wkv7_kernels.cuh"], "ops/wkv7/wkv7_kernels.cuh"),
    (["--md", "same.out", "--json", "same.out"], "same.out"),
    (["--rwkv-lm", "/no/such/tree"], "/no/such/tree"),
])
def test_bad_arguments_are_refused_in_one_line_before_compiling(kr, monkeypatch, args, says):
    def compile_nothing(nvcc):
        raise AssertionError("compiled before checking its arguments")
    monkeypatch.setattr(kr, "measure", compile_nothing)
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "argv", ["kr", *args])
    with pytest.raises(SystemExit) as e:
        kr.main()
    message = str(e.value.code)
    assert says in message and "\n" not in message


def test_an_interrupted_write_leaves_the_old_report(kr, tmp_path, monkeypatch):
    ours = [{"source": "ops/x.cu", "kernel": "k", "registers": 32, "spill_stores": 0, "spill_loads": 0,
             "stack": 0, "smem": 0, "block_threads": 256, "blocks_per_sm": 8, "occupancy": 1.0}]
    monkeypatch.setattr(kr, "measure", lambda nvcc: ours)
    old = tmp_path / "r.json"
    old.write_text("[]\n")

    def broken_dumps(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(kr.json, "dumps", broken_dumps)
    monkeypatch.setattr(sys, "argv", ["kr", "--json", str(old)])
    with pytest.raises(KeyboardInterrupt):
        kr.main()
    assert old.read_text() == "[]\n" and [p.name for p in tmp_path.iterdir()] == ["r.json"]
