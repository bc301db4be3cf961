"""Configuration, catalogs, migrations, file stripping, text splitting and the CLI."""

from __future__ import annotations

import dataclasses
import io
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from PIL import Image
from sqlalchemy import Connection

from bot.channels.text import split_text
from bot.config import ConfigError, load_settings
from bot.i18n import Catalog
from storage.crypto import Vault
from storage.engine import create_engine
from storage.files import FileStore
from storage.migrate import head_revision, upgrade
from storage.models import Base

ROOT = Path(__file__).resolve().parent.parent
KEY_USE = re.compile(r"""\bt\(\s*f?["']([a-z_]+\.[a-z_.{}]+)["']""")


def run_cli(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run `tipline ARGS` in a fresh process."""
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        env={**env, "PYTHONPATH": str(ROOT)},
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def test_catalogs_have_the_same_keys_and_placeholders() -> None:
    catalog = Catalog()
    vi, en = catalog.messages["vi"], catalog.messages["en"]
    assert set(vi) == set(en), set(vi) ^ set(en)
    for key in vi:
        fields_vi = set(re.findall(r"{(\w+)}", vi[key]))
        fields_en = set(re.findall(r"{(\w+)}", en[key]))
        assert fields_vi == fields_en, key


def test_every_message_used_in_code_exists() -> None:
    catalog = Catalog()
    used: set[str] = set()
    for path in [*ROOT.glob("handlers/*.py"), *ROOT.glob("bot/**/*.py")]:
        used.update(KEY_USE.findall(path.read_text(encoding="utf-8")))
    assert len(used) > 40
    for key in used:
        if "{" in key:
            prefix = key.split("{")[0]
            assert any(k.startswith(prefix) for k in catalog.messages["vi"]), key
        else:
            assert catalog.has(key), key


def test_invalid_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIPLINE_WEB_PORT", "70000")
    with pytest.raises(ConfigError, match="TIPLINE_WEB_PORT"):
        load_settings(_env_file=None)
    monkeypatch.setenv("TIPLINE_WEB_PORT", "0")
    monkeypatch.setenv("TIPLINE_TIP_CATEGORIES", "drugs, fraud ,other")
    assert load_settings(_env_file=None).tip_categories == ("drugs", "fraud", "other")


def test_settings_parse_environment_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("TIPLINE_")]:
        monkeypatch.delenv(key)
    env_file = tmp_path / ".env"
    env_file.write_text("TIPLINE_WEB_PORT=9000\nTIPLINE_WEB_ENABLED=no\n", encoding="utf-8")
    monkeypatch.setenv("TIPLINE_WEB_PORT", "9100")  # the environment wins over the .env file
    monkeypatch.setenv("TIPLINE_ADMIN_TELEGRAM_IDS", " 12, -34 ,")
    monkeypatch.setenv("TIPLINE_AREA_RADIUS_KM", "2.5")
    monkeypatch.setenv("TIPLINE_LOG_LEVEL", "debug")
    monkeypatch.setenv("TIPLINE_DATA_DIR", str(tmp_path / "d"))
    settings = load_settings(env_file)
    assert settings.web_port == 9100 and settings.web_enabled is False
    assert settings.admin_telegram_ids == (12, -34)
    assert settings.area_radius_km == 2.5 and settings.log_level == "DEBUG"
    assert settings.data_dir == tmp_path / "d"
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.web_port = 1  # type: ignore[misc]
    for variable, value in (
        ("TIPLINE_WEB_ENABLED", "maybe"),
        ("TIPLINE_AREA_RADIUS_KM", "0"),
        ("TIPLINE_ADMIN_TELEGRAM_IDS", "12,abc"),
        ("TIPLINE_TIP_CATEGORIES", " , "),
        ("TIPLINE_FLOOD_MESSAGES", "many"),
    ):
        monkeypatch.setenv(variable, value)
        with pytest.raises(ConfigError, match=f"invalid {variable}: "):
            load_settings(None)
        monkeypatch.delenv(variable)


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("TIPLINE_LOG_LEVEL", "LOUD", "TIPLINE_LOG_LEVEL"),
        ("TIPLINE_WEB_PORT", "-1", "TIPLINE_WEB_PORT"),
        ("TIPLINE_DATABASE_URL", "nonsense://db", "TIPLINE_DATABASE_URL"),
        ("TIPLINE_DATABASE_URL", "postgresql+psycopg2://u@127.0.0.1:1/db", "TIPLINE_DATABASE_URL"),
        ("TIPLINE_SECRET_KEY", "short", "TIPLINE_SECRET_KEY"),
        ("TIPLINE_TELEGRAM_API_URL", "ftp://x", "TIPLINE_TELEGRAM_API_URL"),
        ("TIPLINE_CONVERSATION_TIMEOUT_MINUTES", "0", "TIPLINE_CONVERSATION_TIMEOUT_MINUTES"),
    ],
)
def test_cli_reports_bad_config_in_one_line(
    tmp_path: Path, variable: str, value: str, named: str
) -> None:
    env = {**os.environ, "TIPLINE_DATA_DIR": str(tmp_path), "TIPLINE_WEB_PORT": "0"}
    env[variable] = value
    result = run_cli(tmp_path, env, "run")
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("tipline: ") and named in last
    assert "Traceback" not in result.stderr


def test_cli_db_upgrade(tmp_path: Path) -> None:
    env = {**os.environ, "TIPLINE_DATA_DIR": str(tmp_path)}
    result = run_cli(tmp_path, env, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "tipline.sqlite3").exists()


async def test_migrations_match_the_models(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'm.sqlite3'}")
    await upgrade(engine)

    def diff(connection: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))

    async with engine.connect() as connection:
        assert await connection.run_sync(diff) == []
        mode = (await connection.exec_driver_sql("PRAGMA journal_mode")).scalar()
        fks = (await connection.exec_driver_sql("PRAGMA foreign_keys")).scalar()
    await engine.dispose()
    assert mode == "wal" and fks == 1


def test_images_lose_exif_and_gps(tmp_path: Path) -> None:
    image = Image.new("RGB", (16, 16), "blue")
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x8825] = {1: "N", 2: (21.0, 1.0, 30.0)}  # GPS IFD
    raw = io.BytesIO()
    image.save(raw, format="JPEG", exif=exif)
    assert b"SecretCam" in raw.getvalue()
    store = FileStore(tmp_path)
    ref = store.save_image(raw.getvalue())
    assert ref is not None
    path = store.path(ref)
    assert path is not None
    stored = path.read_bytes()
    assert b"SecretCam" not in stored and b"Exif" not in stored
    with Image.open(path) as reopened:
        assert not reopened.getexif()
    assert store.save_image(b"not an image") is None
    assert store.path("stored:../../etc/passwd") is None


def test_vault_round_trip_and_tamper() -> None:
    vault = Vault(b"0123456789abcdef0123456789abcdef")
    token = vault.encrypt("telegram:777000111")
    assert "777000111" not in token
    assert vault.decrypt(token) == "telegram:777000111"
    assert vault.decrypt(token[:-4] + "AAAA") is None
    assert vault.keyed_hash("x") != Vault(b"another-key-0123456789abcdefghij").keyed_hash("x")


def test_split_text_respects_limit_and_keeps_everything() -> None:
    text = ("word " * 3000).strip()
    parts = split_text(text, 4096)
    assert all(len(p) <= 4096 for p in parts)
    assert " ".join(parts).split() == text.split()
    assert split_text("short", 4096) == ["short"]
    unbroken = "x" * 9000
    assert "".join(split_text(unbroken, 4096)) == unbroken


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    data = tmp_path / "from-dotenv"
    (tmp_path / ".env").write_text(f"TIPLINE_DATA_DIR={data}\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIPLINE_")}
    result = run_cli(tmp_path, env, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert (data / "tipline.sqlite3").exists()


def test_areas_command_line(tmp_path: Path) -> None:
    env = {**os.environ, "TIPLINE_DATA_DIR": str(tmp_path / "data"), "TIPLINE_PROVINCES": "01"}
    bad = tmp_path / "bad.csv"
    bad.write_text("name,ward_code\nTổ 1,70\nẤp 2,26743\n", encoding="utf-8")
    result = run_cli(tmp_path, env, "areas", "import", str(bad))
    assert result.returncode == 1
    assert (
        "line 3: unknown ward code W26743" in result.stdout
        and "nothing was imported" in result.stdout
    )
    listed = run_cli(tmp_path, env, "areas", "list", "W00070")
    assert listed.returncode == 0 and "0 areas" in listed.stdout
    good = tmp_path / "good.csv"
    good.write_text("name,ward_code,latitude,longitude\nTổ 1,70,21.03,105.85\n", encoding="utf-8")
    assert run_cli(tmp_path, env, "areas", "import", str(good)).returncode == 0
    listed = run_cli(tmp_path, env, "areas", "list", "W00070")
    assert "N00070-to-1" in listed.stdout and "Tổ 1 · Phường Hoàn Kiếm · Hà Nội" in listed.stdout
    found = run_cli(tmp_path, env, "areas", "search", "hoan", "kiem")
    assert found.stdout.splitlines()[0].startswith("W00070") and "found in" in found.stdout
    assert "no subscribers" in run_cli(tmp_path, env, "areas", "subscribers").stdout
    provinces = run_cli(tmp_path, env, "areas", "list")
    assert "P01" in provinces.stdout and "1 areas" in provinces.stdout


LEAN_START = """
import asyncio, sys
from pathlib import Path
from bot.app import build_core
from bot.config import Settings

async def main() -> None:
    settings = Settings(data_dir=Path(sys.argv[1]), secret_key="k" * 40)
    for _ in range(2):  # the first start migrates (in a child), the second finds it current
        core = await build_core(settings)
        await core.close()
    print(sorted(m for m in ("alembic", "mako", "pydantic", "PIL") if m in sys.modules))

asyncio.run(main())
"""


def test_running_bot_migrates_in_a_child_and_stays_lean(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", LEAN_START, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    with sqlite3.connect(tmp_path / "tipline.sqlite3") as db:
        [(revision,)] = db.execute("SELECT version_num FROM alembic_version").fetchall()
    assert revision == head_revision()


def test_command_menu_lists_each_command_once_in_both_languages() -> None:
    from handlers.dispatcher import listed_commands

    listed = listed_commands()
    assert listed[:3] == ["start", "tip", "mytips"] and len(listed) == len(set(listed))
    assert "areas" not in listed, "staff commands stay out of the menu"
    catalog = Catalog()
    for name in listed:
        assert catalog.has(f"commands.{name}"), name
