"""Configuration precedence, pair by pair: flags > RAGCLI_* env > file > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragcli.config import RagConfig, load_settings
from ragcli.errors import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / ".ragcli.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_when_nothing_is_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(env={})
    assert settings.config == RagConfig()
    assert settings.sources["chunking.chunk_size"] == "default"
    assert settings.file is None
    # No .ragcli.toml or .ragcli/ here or above: the per-user data directory (see tests/conftest.py).
    assert settings.home.name == "ragcli" and "xdg-data" in str(settings.home)
    assert "per-user data directory" in settings.home_reason


def test_file_beats_default(tmp_path: Path) -> None:
    path = _write(tmp_path, "[chunking]\nchunk_size = 128\n")
    settings = load_settings(path, env={})
    assert settings.config.chunking.chunk_size == 128
    assert settings.sources["chunking.chunk_size"] == f"file:{path}"


def test_env_beats_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(env={"RAGCLI_EMBEDDING__BATCH_SIZE": "7"})
    assert settings.config.embedding.batch_size == 7
    assert settings.sources["embedding.batch_size"] == "env:RAGCLI_EMBEDDING__BATCH_SIZE"


def test_env_beats_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "[embedding]\nbatch_size = 16\n")
    settings = load_settings(path, env={"RAGCLI_EMBEDDING__BATCH_SIZE": "8"})
    assert settings.config.embedding.batch_size == 8


def test_flag_beats_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(flags={"retrieval.top_k": 3}, env={"RAGCLI_RETRIEVAL__TOP_K": "9"})
    assert settings.config.retrieval.top_k == 3
    assert settings.sources["retrieval.top_k"] == "flag:--top-k"


def test_flag_beats_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "[retrieval]\ntop_k = 12\n")
    assert load_settings(path, flags={"retrieval.top_k": 2}, env={}).config.retrieval.top_k == 2


def test_flag_beats_default_and_unset_flag_changes_nothing(tmp_path: Path) -> None:
    path = _write(tmp_path, "[retrieval]\ntop_k = 12\n")
    assert load_settings(path, flags={"retrieval.top_k": None}, env={}).config.retrieval.top_k == 12
    assert load_settings(flags={"retrieval.top_k": 4}, env={}).config.retrieval.top_k == 4


def test_all_four_layers_at_once(tmp_path: Path) -> None:
    path = _write(tmp_path, "[chunking]\nchunk_size = 100\nchunk_overlap = 10\nstrategy = 'fixed'\n")
    settings = load_settings(
        path,
        flags={"chunking.chunk_size": 300},
        env={"RAGCLI_CHUNKING__CHUNK_SIZE": "200", "RAGCLI_CHUNKING__CHUNK_OVERLAP": "20"},
    )
    c = settings.config.chunking
    assert (c.chunk_size, c.chunk_overlap, c.strategy, c.semantic_threshold) == (300, 20, "fixed", 0.25)


def test_config_file_from_env_variable_and_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "elsewhere.toml"
    other.write_text("[retrieval]\ntop_k = 11\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert load_settings(env={"RAGCLI_CONFIG": str(other)}).config.retrieval.top_k == 11
    _write(tmp_path, "[retrieval]\ntop_k = 13\n")
    assert load_settings(env={}).config.retrieval.top_k == 13


def test_unknown_key_in_file_names_key_and_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "[chunking]\nchunk_sise = 100\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert "chunking.chunk_sise" in info.value.message
    assert str(path) in info.value.message


def test_unknown_section_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "[chunkin]\nchunk_size = 100\n")
    with pytest.raises(ConfigError, match="chunkin"):
        load_settings(path, env={})


def test_bad_value_names_key_and_env_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_settings(env={"RAGCLI_EMBEDDING__BATCH_SIZE": "many"})
    assert "embedding.batch_size" in info.value.message
    assert "RAGCLI_EMBEDDING__BATCH_SIZE" in info.value.message


def test_misspelt_env_variable_fails_loudly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="RAGCLI_EMBEDING__MODEL"):
        load_settings(env={"RAGCLI_EMBEDING__MODEL": "x"})


def test_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "[chunking\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(path, env={})


def test_missing_explicit_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", env={})


def test_home_precedence_and_relative_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    project.mkdir()
    path = project / ".ragcli.toml"
    path.write_text("home = 'state'\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    # A relative path in the file is relative to the file, not to wherever cron started us.
    assert load_settings(path, env={}).home == project / "state"
    assert load_settings(path, env={"RAGCLI_HOME": str(tmp_path / "h")}).home == tmp_path / "h"
    path.write_text("", encoding="utf-8")
    assert load_settings(path, env={}).home == project / ".ragcli"


def test_env_lists_are_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(env={"RAGCLI_INGEST__EXCLUDE": '["*.tmp", "drafts/**"]'})
    assert settings.config.ingest.exclude == ["*.tmp", "drafts/**"]


def test_example_config_documents_every_key_with_its_default() -> None:
    import tomllib

    example = Path(__file__).resolve().parents[1] / ".ragcli.example.toml"
    text = example.read_text(encoding="utf-8")
    data = tomllib.loads(text)
    assert RagConfig.model_validate(data) == RagConfig()
    # Keys without a default value (None) cannot be written in TOML; they must be shown commented out.
    for section, values in RagConfig().model_dump().items():
        if not isinstance(values, dict):
            continue
        for key, value in values.items():
            if value is None:
                assert f"# {key} = " in text, f"{section}.{key} is not documented"
            elif value == {}:
                commented = f"# [{section}.{key}." in text or f"# [{section}.{key}]" in text
                assert commented, f"{section}.{key} has no commented example"
            else:
                assert key in data[section], f"{section}.{key} is not documented"


def test_overlap_must_be_smaller_than_size(tmp_path: Path) -> None:
    path = _write(tmp_path, "[chunking]\nchunk_size = 64\nchunk_overlap = 64\n")
    with pytest.raises(ConfigError, match="chunk_overlap"):
        load_settings(path, env={})
