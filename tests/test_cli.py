"""The `feeds` command, through click's runner, and its one-line errors."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from feeds.cli import cli
from tests.conftest import OFFSTREAM


def config_file(tmp_path: Path, tree: Path, extra: str = "") -> Path:
    path = tmp_path / "feeds.toml"
    path.write_text(
        f'database = "feeds.db"\nbase_url = "http://feeds.test/"\n{extra}\n'
        f'[[sources]]\nname = "example"\nkind = "directory"\nlocation = "{tree}"\n'
    )
    return path


def test_ingest_then_topics(tmp_path: Path, tree: Path) -> None:
    runner = CliRunner()
    config = config_file(tmp_path, tree)
    result = runner.invoke(cli, ["--config", str(config), "ingest", str(tree)])
    assert result.exit_code == 0, result.output
    assert "59 new, 0 changed, 0 deleted events" in result.output
    result = runner.invoke(cli, ["--config", str(config), "topics"])
    assert result.exit_code == 0, result.output
    assert "russian-invasion-of-ukraine  Russian invasion of Ukraine" in result.output
    result = runner.invoke(cli, ["--config", str(config), "refresh"])
    assert result.exit_code == 0, result.output
    assert "0 new, 0 changed, 0 deleted events" in result.output


def test_ingest_single_document_and_report_malformed(tmp_path: Path, tree: Path) -> None:
    runner = CliRunner()
    config = config_file(tmp_path, tree)
    page = OFFSTREAM / "news/1999/01/1/the-euro-currency-is-introduced.md"
    result = runner.invoke(cli, ["--config", str(config), "ingest", str(page)])
    assert result.exit_code == 0, result.output
    assert "1 new" in result.output
    bad = tree / "news/2023/02/6/broken.md"
    bad.write_text("no date line here\n")
    result = runner.invoke(cli, ["--config", str(config), "ingest", str(tree)])
    assert result.exit_code == 1
    assert f"problem: {bad}: date: no date line" in result.output
    assert "59 new" in result.output  # the rest of the batch is stored


def test_config_errors_are_one_line(tmp_path: Path, tree: Path) -> None:
    runner = CliRunner()
    config = config_file(tmp_path, tree, extra="items_per_feed = 'many'")
    result = runner.invoke(cli, ["--config", str(config), "topics"])
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {config}: config items_per_feed: must be int, got 'many'"
    result = runner.invoke(cli, ["--config", str(tmp_path / "missing.toml"), "topics"])
    assert result.exit_code == 1 and "no such file" in result.output
    result = runner.invoke(cli, ["--config", str(config_file(tmp_path, tree, extra="colour = 1")), "topics"])
    assert result.exit_code == 1 and "config colour: unknown key" in result.output


def test_environment_overrides_the_file(tmp_path: Path, tree: Path, monkeypatch: object) -> None:
    from feeds import config as cfg

    path = config_file(tmp_path, tree)
    settings = cfg.load(path, env={"FEEDS_ITEMS_PER_FEED": "7", "FEEDS_BASE_URL": "https://x.test/"})
    assert settings.items_per_feed == 7 and settings.base_url == "https://x.test"
    assert settings.database == str(tmp_path / "feeds.db")
    assert settings.sources[0].location == str(tree)
