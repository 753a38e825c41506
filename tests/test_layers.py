"""The package's layers (README.md, "Code map"): the import-linter contracts of pyproject.toml hold and can fail,
no two modules import each other through any chain (imports inside functions count), and every module is short."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "unimodal"
MAX_LINES = 400
TOKENIZER_CONTRACT = "tokenizers never import eval, training, model, pipeline, data or commands"


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` on the package under ``root`` (its pyproject.toml's contracts), as CI would run it."""
    env = dict(os.environ, PYTHONPATH=str(root))   # grimp finds `unimodal` here, not in an installed copy
    command = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
               "sys.exit(lint_imports_command())", "--no-cache", "--no-logo"]
    return subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=300)


GRAPH = """import json, grimp
graph = grimp.build_graph("unimodal", include_external_packages=False, cache_dir=None)
print(json.dumps({m: sorted(graph.find_modules_directly_imported_by(m)) for m in sorted(graph.modules)}))"""


def module_imports(root: Path = ROOT) -> dict[str, list[str]]:
    """Every module of the package under ``root`` -> the package's modules it imports, at any depth in the
    file (grimp reads imports inside functions too), read in a fresh process so that it is that copy."""
    result = subprocess.run([sys.executable, "-c", GRAPH], cwd=root, env=dict(os.environ, PYTHONPATH=str(root)),
                            capture_output=True, text=True, timeout=300, check=True)
    return json.loads(result.stdout)


def test_contracts_hold():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout and f"{TOKENIZER_CONTRACT} KEPT" in result.stdout


def test_every_top_level_module_has_a_layer():
    """A new module or subpackage of unimodal must be placed in the layers contract, or nothing checks it."""
    layers = re.search(r"layers = \[(.*?)\]", (ROOT / "pyproject.toml").read_text(), re.S).group(1)
    placed = set(re.findall(r"unimodal\.(\w+)", layers))
    children = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"} | {
        p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert children - placed == set(), f"add these to the layers contract in pyproject.toml: {children - placed}"


def test_a_forbidden_import_inside_a_function_breaks_its_contract(tmp_path):
    """A copy of the package whose text tokenizer imports evaluation inside a function: the tokenizer contract
    names the broken import, so the contract (and grimp's reading of function-level imports) really works."""
    shutil.copytree(PACKAGE, tmp_path / "unimodal", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(ROOT / "conf", tmp_path / "conf")
    text = tmp_path / "unimodal" / "tokenizers" / "text.py"
    text.write_text(text.read_text() + '\n\ndef _measured() -> object:\n'
                    '    from unimodal.eval.metrics.image import psnr_per_image\n\n    return psnr_per_image\n')
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert f"{TOKENIZER_CONTRACT} BROKEN" in result.stdout, result.stdout[-3000:]
    assert "unimodal.tokenizers.text -> unimodal.eval.metrics.image" in result.stdout


def strongly_connected(imports: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one module (an import loop each)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    loops: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in imports[module]:
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                loops.append(sorted(component))

    for module in imports:
        if module not in index:
            visit(module)
    return loops


def test_no_import_loops():
    imports = module_imports()
    assert len(imports) > 50   # the whole package was read
    assert strongly_connected(imports) == []


def test_the_loop_finder_finds_a_loop_through_an_import_inside_a_function(tmp_path):
    shutil.copytree(PACKAGE, tmp_path / "unimodal", ignore=shutil.ignore_patterns("__pycache__"))
    vocab = tmp_path / "unimodal" / "vocab.py"
    vocab.write_text(vocab.read_text() + "\n\ndef _codec() -> object:\n"
                     "    from unimodal.sequence import SequenceCodec\n\n    return SequenceCodec\n")
    loops = strongly_connected(module_imports(tmp_path))
    assert any({"unimodal.vocab", "unimodal.sequence"} <= set(loop) for loop in loops), loops


def test_metrics_import_only_errors():
    imports = module_imports()
    metrics = {m for m in imports if m.startswith("unimodal.eval.metrics")}
    imported = {i for m in metrics for i in imports[m]}
    assert imported - metrics <= {"unimodal.errors"}


def test_modules_are_short():
    lengths = {str(path.relative_to(ROOT)): len(path.read_text().splitlines()) for path in PACKAGE.rglob("*.py")}
    assert len(lengths) > 50
    long = {name: lines for name, lines in lengths.items() if lines > MAX_LINES}
    assert not long, f"split these modules (at most {MAX_LINES} lines each): {long}"
