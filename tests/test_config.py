import pytest

from zhiku.config import load_settings
from zhiku.errors import ConfigError


def test_precedence(tmp_path):
    (tmp_path / "config.toml").write_text("[retrieve]\nk = 7\nrrf_k = 30\n[chunk]\nmax_chars = 300\n")
    s = load_settings(tmp_path, overrides={"retrieve.k": 3}, env={"ZHIKU_RETRIEVE_RRF_K": "20"})
    assert (s.retrieve.k, s.retrieve.rrf_k, s.chunk.max_chars) == (3, 20, 300)
    assert s.home == tmp_path


def test_home_from_env(tmp_path):
    assert load_settings(env={"ZHIKU_HOME": str(tmp_path)}).home == tmp_path


def test_unknown_key_names_valid_ones(tmp_path):
    (tmp_path / "config.toml").write_text("[retrieve]\ntopk = 7\n")
    with pytest.raises(ConfigError, match="valid keys in \\[retrieve\\]: mode, k"):
        load_settings(tmp_path, env={})


def test_bad_type_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match="must be int"):
        load_settings(tmp_path, env={"ZHIKU_RETRIEVE_K": "many"})
    (tmp_path / "config.toml").write_text("[retrieve\n")
    with pytest.raises(ConfigError, match="fix the TOML"):
        load_settings(tmp_path, env={})


def test_bool_coercion(tmp_path):
    assert load_settings(tmp_path, env={"ZHIKU_INGEST_FOLLOW_SYMLINKS": "no"}).ingest.follow_symlinks is False
