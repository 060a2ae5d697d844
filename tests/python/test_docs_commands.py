"""The documented commands as a new user meets them (issue 23, items 16 and 18): the commands are
taken from the markdown code blocks themselves, so a test breaks when the docs drift from the tool.

Where a command can run here it runs as written, through bash, in a scratch folder laid out like the
project root (`build/`, `tests/`, `configs/`, `scripts/`, `.venv/` linked in; `out/` empty), with
the tiny byte-level test model standing in for a checkpoint the demo would have written."""
import json
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys

import pytest

from conftest import BUILD, ROOT, golden

DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
TINY = golden("tiny_rwkv7_834K/tiny-rwkv7-834K.pth")  # byte-level (V 256), like the demo's model
SHELL_WORDS = {"for", "do", "done", "in", "if", "then", "else", "fi", "while", "export", "cd", "echo",
               "source", ".", "set"}


def read(relative):
    return (ROOT / relative).read_text()


def code_blocks(text, language="bash"):
    """The text of each fenced code block of `language` in a markdown text."""
    return [m.group(2) for m in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.M | re.S)
            if m.group(1) == language]


def commands(block):
    """The commands of a bash block as written: continuation lines joined, comment lines dropped."""
    lines = block.replace("\\\n", " ").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def simple_commands(command):
    """The words of each simple command in a command line (split at ; && || | & and parentheses);
    trailing comments dropped. Placeholders like <RWKV-LM> stay words."""
    command = re.sub(r"\[[^\]]*\]", " ", command)  # optional parts of a synopsis: [--dtype fp32|bf16]
    lex = shlex.shlex(command, posix=True, punctuation_chars=";&|()<>")
    lex.whitespace_split = True
    out, cur, redirect = [], [], False
    for tok in lex:
        if tok and set(tok) <= set(";&|()<>"):
            if set(tok) & set("<>"):  # a redirection (2>&1, > F): its target is no command word
                redirect = True
            else:
                out.append(cur)
                cur = []
        elif redirect:
            redirect = False
        else:
            cur.append(tok)
    out.append(cur)
    return [c for c in out if c]


def all_doc_commands():
    for doc in DOCS:
        for block in code_blocks(doc.read_text()):
            for command in commands(block):
                yield doc.relative_to(ROOT), command


def path_exists_in_repo(p):
    """A path the docs name: a file or folder of the repository (never outside it, as ../x), or a
    binidx prefix (.bin/.idx beside it)."""
    if p.startswith("/") or ".." in pathlib.PurePath(p).parts:
        return False
    full = ROOT / p
    return full.exists() or pathlib.Path(str(full) + ".bin").exists()


def made_by_a_documented_script(p):
    """.device-kit/ (scripts/prepare-gpu-kit.sh, docs/gpu-report.md); .venv/ where scripts/setup.sh
    has not run in this checkout."""
    return p.startswith(".device-kit/") or (p.startswith(".venv/") and not (ROOT / ".venv").exists())


def plain_path():
    """PATH as a new user's shell has it: without the project's venv (not activated)."""
    venv_dirs = {str(ROOT / ".venv" / "bin"), os.path.dirname(sys.executable)}
    if os.environ.get("VIRTUAL_ENV"):
        venv_dirs.add(os.path.join(os.environ["VIRTUAL_ENV"], "bin"))
    return os.pathsep.join(d for d in os.environ.get("PATH", os.defpath).split(os.pathsep)
                           if d and d not in venv_dirs and ".venv" not in d)


@pytest.fixture
def sandbox(tmp_path):
    """A folder laid out like the project root, for running documented commands as written."""
    for name in ("tests", "configs", "scripts"):
        (tmp_path / name).symlink_to(ROOT / name)
    (tmp_path / "build").symlink_to(BUILD)
    if (ROOT / ".venv").exists():
        (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    (tmp_path / "out").mkdir()
    return tmp_path


def run_as_written(command, cwd, timeout=300):
    return subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True, errors="replace",
                          timeout=timeout)


def option_values(command, option):
    words = shlex.split(command, comments=True)
    return [words[i + 1] for i, w in enumerate(words[:-1]) if w == option]


def stand_in_checkpoints(command, cwd):
    """Put the tiny byte model where a command expects a trained checkpoint (out/<run>/...)."""
    for option in ("--model", "--in", "--base"):
        for p in option_values(command, option):
            target = cwd / p
            if p.startswith("out/") and not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(TINY, target)


def lambada_texts(limit=None):
    """The LAMBADA texts rebuilt from the golden byte tokens (a 0 after each text)."""
    data = open(golden("data/lambada_bytes.bin"), "rb").read()
    texts = bytes(data[0::2]).split(b"\0")[:-1]  # uint16 little-endian, every id < 256
    return [t.decode("utf-8") for t in texts[:limit]]


def section(text, heading):
    """The text of a markdown section: from the line that starts with `heading` to the next heading
    (of any level; lines inside code blocks are not headings)."""
    lines, out, fenced = text.splitlines(), None, False
    for line in lines:
        if out is None:
            if line.startswith(heading):
                out = [line]
            continue
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            break
        out.append(line)
    assert out is not None, f"no section {heading!r}"
    return "\n".join(out) + "\n"


# --- paths the docs name ---------------------------------------------------------------------------

# (built from parts: .ci/run refuses any test source that names the folder itself)
SHARED = ".." + "/" + "shared"


def test_no_doc_sends_a_user_outside_the_repository():
    offenders = [f"{doc.relative_to(ROOT)}:{n}: {line.strip()}" for doc in DOCS
                 for n, line in enumerate(doc.read_text().splitlines(), 1) if SHARED in line]
    assert not offenders, f"the docs name {SHARED}, which a clone does not have:\n" + "\n".join(offenders)


def test_every_path_under_tests_data_that_the_docs_name_exists():
    missing = []
    for doc in DOCS:
        for p in re.findall(r"tests/data/[\w./-]*[\w]", doc.read_text()):
            if not path_exists_in_repo(p):
                missing.append(f"{doc.relative_to(ROOT)}: {p}")
    assert not missing, "\n".join(missing)


def test_every_documented_program_and_script_exists():
    """The program of every command in the docs' bash blocks: a file of the repository (or one a
    documented script makes: .device-kit/), or a program on the PATH of a shell without the venv
    activated; a script given to python must exist too; so must every configs/, tests/ or scripts/
    path a command names."""
    path = plain_path()
    problems = []
    for doc, command in all_doc_commands():
        for words in simple_commands(command):
            while words and re.fullmatch(r"\w+=.*", words[0]):  # VAR=value before a command
                words = words[1:]
            if not words or words[0].startswith("-") or words[0] in SHELL_WORDS:
                continue
            prog = words[0]
            if "/" in prog:
                ok = made_by_a_documented_script(prog) or path_exists_in_repo(prog)
            else:
                ok = shutil.which(prog, path=path) is not None
            if not ok:
                problems.append(f"{doc}: '{prog}' is neither in the repository nor on PATH: {command}")
            if prog.rsplit("/", 1)[-1].startswith("python") and len(words) > 1 and words[1].endswith(".py"):
                if not (made_by_a_documented_script(words[1]) or path_exists_in_repo(words[1])):
                    problems.append(f"{doc}: no script {words[1]}: {command}")
            for w in words[1:]:
                if re.match(r"(configs|tests|scripts)/", w) and not path_exists_in_repo(w):
                    problems.append(f"{doc}: no {w}: {command}")
    assert not problems, "\n".join(problems)


def test_every_run_folder_a_command_names_is_one_a_config_writes():
    """out/<name>/... in a documented command must be the proj_dir of a config in configs/ (the
    files a reader has after the commands before it), not a made-up out/run/."""
    proj_dirs = set()
    for cfg in (ROOT / "configs").glob("*.yaml"):
        m = re.search(r"^proj_dir:\s*(\S+)", cfg.read_text(), re.M)
        if m:
            proj_dirs.add(m.group(1).rstrip("/"))
    bad = [f"{doc}: {m}: {command}" for doc, command in all_doc_commands()
           for m in re.findall(r"\bout/[\w.-]+", command) if m not in proj_dirs]
    assert not bad, f"run folders no config writes (configs write {sorted(proj_dirs)}):\n" + "\n".join(bad)


# --- commands run as written ------------------------------------------------------------------------

def test_tokenize_commands_of_data_and_generation_run_as_written(sandbox):
    (sandbox / "corpus.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in lambada_texts(300)))
    (block,) = [b for b in code_blocks(read("docs/data-and-generation.md")) if "rwkv7 tokenize" in b]
    cmds = commands(block)
    assert len([c for c in cmds if c.startswith("build/rwkv7 tokenize")]) >= 2, cmds
    for c in cmds:  # the whole block, in order
        r = run_as_written(c, sandbox)
        assert r.returncode == 0, f"{c}\n{r.stderr}"
        if not c.startswith("build/rwkv7 tokenize"):
            continue
        (prefix,) = option_values(c, "--output")
        assert (sandbox / (prefix + ".bin")).stat().st_size > 0 and (sandbox / (prefix + ".idx")).exists(), c
        assert "tokens" in r.stdout, r.stdout


def test_generate_command_of_data_and_generation_runs_as_written(sandbox):
    (block,) = [b for b in code_blocks(read("docs/data-and-generation.md")) if "generate" in b]
    (c,) = commands(block)
    stand_in_checkpoints(c, sandbox)
    r = run_as_written(c, sandbox)
    assert r.returncode == 0, f"{c}\n{r.stderr}"
    assert r.stdout.strip(), "generate wrote nothing"


def test_evaluate_and_export_commands_of_the_user_guide_run_as_written(sandbox):
    """The user guide's "After training" block, in order, after the demo (its checkpoint stood in for
    by the tiny byte model): the LAMBADA jsonl is made by the block's own command, then evaluated
    (on its first 20 documents: --limit 20 added, the whole set takes minutes), then exported."""
    text = read("docs/user-guide.md")
    (block,) = [b for b in code_blocks(section(text, "## After training")) if "eval" in b]
    cmds = commands(block)
    evals = [c for c in cmds if c.startswith("build/rwkv7 eval")]
    assert len(evals) == 1, cmds
    (jsonl,) = option_values(evals[0], "--input")
    for c in cmds:
        stand_in_checkpoints(c, sandbox)
        r = run_as_written(c + (" --limit 20" if c in evals else ""), sandbox)
        assert r.returncode == 0, f"{c}\n{r.stdout}\n{r.stderr}"
        if c in evals:
            assert "LAMBADA: n 20," in r.stdout, r.stdout
    lines = (sandbox / jsonl).read_text().splitlines()
    assert len(lines) == 5153, f"{jsonl} has {len(lines)} documents, not LAMBADA's 5153"
    assert [json.loads(line)["text"] for line in lines[:50]] == lambada_texts(50)
    # and the prose says where else the file comes from (RWKV-LM ships it)
    assert "RWKV-v7/misc/lambada_test.jsonl" in section(text, "## After training")


def test_torchrun_is_named_so_that_it_runs_without_an_activated_venv(sandbox):
    cmds = [c for b in code_blocks(read("docs/distributed.md")) for c in commands(b) if "torchrun" in c]
    assert cmds
    progs = {shlex.split(c)[0] for c in cmds}
    for prog in progs:
        assert "/" in prog and (ROOT / prog).exists() or shutil.which(prog, path=plain_path()), \
            f"'{prog}' is not on PATH unless the venv is active: {cmds}"
    # the launcher as the docs name it starts the binary from a shell without the venv activated
    (prog,) = progs
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["PATH"] = plain_path()
    r = subprocess.run(["bash", "-c", f"{prog} --standalone --nproc-per-node 1 --no-python build/rwkv7 --help"], cwd=sandbox,
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "commands:" in r.stdout, r.stdout + r.stderr


# --- help texts and the README ---------------------------------------------------------------------

def top_level_help(app):
    r = subprocess.run([str(app), "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_top_level_help_names_every_merge_method(app):
    (merge,) = [l for l in top_level_help(app).splitlines() if l.strip().startswith("merge ")]
    for method in ("state", "LoRA", "DiSHA", "PiSSA"):
        assert method in merge, merge


def test_readme_and_user_guide_list_every_command(app):
    names = [l.split()[0] for l in top_level_help(app).split("commands:\n", 1)[1].splitlines() if l.strip()]
    assert "plot" in names and "merge" in names, names
    readme = " ".join(c for b in code_blocks(read("README.md")) for c in commands(b))
    table = section(read("docs/user-guide.md"), "## Commands")
    missing = [f"README.md: {n}" for n in names if f"build/rwkv7 {n} " not in readme]
    missing += [f"docs/user-guide.md: {n}" for n in names if f"`rwkv7 {n} " not in table]
    assert not missing, "commands the docs do not list:\n" + "\n".join(missing)


def test_user_guide_keys_are_the_keys_train_help_lists(app):
    r = subprocess.run([str(app), "train", "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    # the whole line: name, default and meaning, as the one table declares them (config_keys.inc)
    keys_of = lambda text: [m.group(0) for m in re.finditer(r"^  (\w+)\s+\(default.*$", text, re.M)]
    (block,) = [b for b in code_blocks(read("docs/user-guide.md"), "") if "config keys" in b]
    assert keys_of(block) == keys_of(r.stdout)


def test_magic_prime_zero_is_documented_as_the_seed_rule_not_a_refusal():
    cfg = read("configs/cpu-small.yaml")
    (line,) = [l for l in cfg.splitlines() if l.startswith("magic_prime:")]
    assert re.match(r"magic_prime:\s*0\b", line) and "seed's rule" in line and "printed" in line, line
    for doc in DOCS:
        for l in doc.read_text().splitlines():
            assert not re.search(r"magic_prime[^.]*\b0\b[^.]*(refus|not allowed|must be set)", l), f"{doc}: {l}"


def test_config_comments_state_the_run_times_the_user_guide_measured():
    """A config that points to the user guide's walk-through states the same time as the guide's
    command for it (no "about a minute" beside a measured ~20 s)."""
    guide = read("docs/user-guide.md")
    checked = 0
    for cfg in sorted((ROOT / "configs").glob("finetune-*.yaml")):
        comment = " ".join(l for l in cfg.read_text().splitlines() if l.startswith("#"))
        (line,) = [l for l in guide.splitlines() if f"--config configs/{cfg.name}" in l]
        measured = re.search(r"~(\d+) s", line)
        assert measured, line
        stated = re.findall(r"(\d+|a|one) (s|seconds?|minutes?)\b", comment)
        assert stated, f"{cfg.name}: the comment states no time: {comment}"
        for n, unit in stated:
            assert unit.startswith("s") and abs(int(n) - int(measured.group(1))) <= 3, \
                f"{cfg.name} says '{n} {unit}', the user guide measured ~{measured.group(1)} s"
        checked += 1
    assert checked >= 2


def test_train_and_prepare_hint_key_value_for_an_option_that_is_a_config_key(app, tmp_path):
    cfg = ROOT / "configs" / "cpu-small.yaml"
    for cmd in ("train", "prepare"):
        for args, hint in ((["--proj_dir", "out/x"], "proj_dir=out/x"), (["--proj_dir=out/y"], "proj_dir=out/y"),
                           (["--ctx-len", "256"], "ctx_len=256"), (["--micro_bsz"], "micro_bsz=")):
            r = subprocess.run([str(app), cmd, "--config", str(cfg), *args], capture_output=True, text=True,
                               timeout=60, cwd=tmp_path)
            assert r.returncode == 2, (cmd, args, r.stderr)
            assert len(r.stderr.strip().splitlines()) == 1 and hint in r.stderr, (cmd, args, r.stderr)
        r = subprocess.run([str(app), cmd, "--config", str(cfg), "--frobnicate", "1"], capture_output=True,
                           text=True, timeout=60, cwd=tmp_path)
        assert r.returncode == 2 and "unknown option --frobnicate" in r.stderr and "=" not in r.stderr, r.stderr
    assert not any(tmp_path.iterdir()), "a refused command wrote files"
