"""`cmake --install` gives a tool that runs on its own: bin/rwkv7, lib/librwkv7_ops.so and
share/rwkv7/configs under the prefix, found through the RPATH without the build tree or
LD_LIBRARY_PATH."""
import json
import os
import subprocess

import pytest

from conftest import BUILD, golden


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    p = tmp_path_factory.mktemp("prefix")
    subprocess.run(["cmake", "--install", str(BUILD), "--prefix", str(p)], check=True, capture_output=True)
    return p


def installed_env():
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    return env


def test_layout(prefix):
    assert (prefix / "bin" / "rwkv7").is_file()
    assert (prefix / "lib" / "librwkv7_ops.so").is_file()
    assert (prefix / "share" / "rwkv7" / "configs" / "demo.yaml").is_file()


def test_runpath_does_not_name_the_build_tree(prefix):
    for f in (prefix / "bin" / "rwkv7", prefix / "lib" / "librwkv7_ops.so"):
        dyn = subprocess.run(["readelf", "-d", str(f)], check=True, capture_output=True, text=True).stdout
        paths = [l for l in dyn.splitlines() if "RUNPATH" in l or "RPATH" in l]
        assert paths, f"{f} has no RUNPATH"
        assert str(BUILD.resolve()) not in "".join(paths), paths
        assert "$ORIGIN/../lib" in "".join(paths), paths


def test_installed_binary_runs_and_loads_its_own_op_library(prefix, tmp_path):
    exe = prefix / "bin" / "rwkv7"
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, env=installed_env(), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "train" in out.stdout
    # logits runs the wkv7 op, which only the installed librwkv7_ops.so registers
    res = tmp_path / "logits.json"
    out = subprocess.run([str(exe), "logits", "--model", str(golden("tiny_rwkv7_834K/tiny-rwkv7-834K.pth")),
                          "--tokens", "34,105,110", "--out", str(res)],
                         capture_output=True, text=True, env=installed_env(), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    ours = json.loads(res.read_text())["last_logits"]
    expected = json.load(open(golden("tiny_rwkv7_834K/expected_logits_quote_in.json")))
    expected = expected["last_logits"]
    assert max(abs(a - b) for a, b in zip(ours, expected)) < 1e-4
    ldd = subprocess.run(["ldd", str(exe)], capture_output=True, text=True, env=installed_env()).stdout
    ops_line = [l for l in ldd.splitlines() if "librwkv7_ops.so" in l][0]
    resolved = os.path.realpath(ops_line.split("=>")[1].split("(")[0].strip())
    assert resolved == os.path.realpath(prefix / "lib" / "librwkv7_ops.so"), ops_line
