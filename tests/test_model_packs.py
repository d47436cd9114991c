"""Bundled model packs: assembly from installed part-packages, checksum, missing parts, corruption."""
import hashlib
import importlib

import pytest

from zhiku.backends import model_packs as mp
from zhiku.errors import ConfigError, GeneratorError, GeneratorUnavailable

PARTS = [b"GGUF" + b"a" * 1000, b"b" * 1000, b"c" * 500]


def make_parts(root, prefix="zhikutestpack_part", parts=PARTS):
    for i, data in enumerate(parts, 1):
        pkg = root / f"{prefix}{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(data)
    importlib.invalidate_caches()


@pytest.fixture
def pack(tmp_path, monkeypatch):
    site = tmp_path / "site"
    make_parts(site)
    monkeypatch.syspath_prepend(str(site))
    whole = b"".join(PARTS)
    return mp.ModelPack("test-pack", "test", "zhikutestpack-part", 3, len(whole), hashlib.sha256(whole).hexdigest())


def test_assembles_parts_in_order_and_verifies(pack, tmp_path):
    seen = []
    path = mp.assemble(pack, tmp_path / "models", lambda d, t: seen.append((d, t)))
    assert path.read_bytes() == b"".join(PARTS)
    assert seen[-1] == (pack.size, pack.size)
    assert mp.status(pack, tmp_path / "models") == "ready"
    assert not list((tmp_path / "models").glob(".*.tmp"))


def test_second_call_reuses_the_verified_file(pack, tmp_path):
    path = mp.assemble(pack, tmp_path / "models")
    mtime = path.stat().st_mtime_ns
    assert mp.assemble(pack, tmp_path / "models", lambda d, t: pytest.fail("re-assembled")) == path
    assert path.stat().st_mtime_ns == mtime


def test_a_damaged_assembled_file_is_rebuilt(pack, tmp_path):
    path = mp.assemble(pack, tmp_path / "models")
    path.write_bytes(b"GGUF" + b"x" * 10)  # truncated / overwritten after assembly
    assert mp.status(pack, tmp_path / "models") != "ready"
    assert mp.assemble(pack, tmp_path / "models").read_bytes() == b"".join(PARTS)


def test_missing_parts_name_the_packages_to_install(tmp_path, monkeypatch):
    site = tmp_path / "site"
    make_parts(site, parts=PARTS[:2])
    monkeypatch.syspath_prepend(str(site))
    pack = mp.ModelPack("test-pack", "t", "zhikutestpack-part", 3, 2500, "0" * 64)
    with pytest.raises(GeneratorUnavailable) as err:
        mp.assemble(pack, tmp_path / "models")
    assert "zhikutestpack-part3" in str(err.value) and "pip install" in str(err.value)
    assert "--no-llm" in err.value.hint


def test_checksum_mismatch_leaves_nothing_behind(pack, tmp_path):
    bad = mp.ModelPack(pack.name, pack.title, pack.dist_prefix, pack.parts, pack.size, "f" * 64)
    with pytest.raises(GeneratorError, match="checksum"):
        mp.assemble(bad, tmp_path / "models")
    assert list((tmp_path / "models").iterdir()) == []


def test_wrong_total_size_is_refused_before_copying(pack, tmp_path):
    bad = mp.ModelPack(pack.name, pack.title, pack.dist_prefix, pack.parts, pack.size + 1, pack.sha256)
    with pytest.raises(GeneratorError, match="expected"):
        mp.assemble(bad, tmp_path / "models")


def test_resolve_model_accepts_gguf_paths_and_rejects_others(tmp_path):
    good = tmp_path / "m.gguf"
    good.write_bytes(b"GGUF" + b"\0" * 10)
    assert mp.resolve_model(str(good), tmp_path) == good
    bad = tmp_path / "fake.gguf"
    bad.write_bytes(b"<html>not a model")
    with pytest.raises(GeneratorError, match="not a GGUF"):
        mp.resolve_model(str(bad), tmp_path)
    with pytest.raises(GeneratorUnavailable, match="does not exist"):
        mp.resolve_model(str(tmp_path / "missing.gguf"), tmp_path)
    with pytest.raises(ConfigError, match="unknown model"):
        mp.resolve_model("gpt-17", tmp_path)


def test_bundled_packs_are_described_consistently():
    for pack in mp.PACKS.values():
        assert len(pack.distributions) == pack.parts and len(pack.sha256) == 64
