"""The rich menu: its definition and image, the upload against the fake LINE API, and what each area does."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from linebot.v3.messaging import RichMenuRequest  # type: ignore[import-untyped]

from bot.cli import main as cli_main
from bot.runtime import Runtime
from bot.settings import LineSettings, Settings
from handlers.channels import line
from handlers.engine import Engine
from tests.dialog import Dialog
from tests.fakes.line_api import FakeLineAPI

MENU = json.loads(line.RICHMENU_JSON.read_text(encoding="utf-8"))


def _settings(fake: FakeLineAPI) -> Settings:
    line_settings = LineSettings(channel_secret="s", channel_access_token=fake.token, api_base_url=fake.url)
    return Settings(line=line_settings, _env_file=None)


def _actions() -> dict[str, dict[str, str]]:
    return {area["action"]["label"]: area["action"] for area in MENU["areas"]}


def test_definition_has_the_four_areas_and_the_sdk_accepts_it() -> None:
    actions = _actions()
    assert list(actions) == ["よくある質問", "相談員に相談", "お知らせ設定", "開館時間"]
    assert actions["相談員に相談"]["data"] == "handoff"
    assert actions["お知らせ設定"]["data"] == "notices"
    assert actions["開館時間"]["type"] == "message"
    RichMenuRequest.from_dict(MENU)
    width, height = MENU["size"]["width"], MENU["size"]["height"]
    assert sum(a["bounds"]["width"] for a in MENU["areas"]) == width
    assert all(a["bounds"]["height"] == height for a in MENU["areas"])


def test_image_is_a_png_of_the_menu_size_under_100_kb() -> None:
    data = line.RICHMENU_IMAGE.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) <= 100 * 1024
    assert struct.unpack(">II", data[16:24]) == (MENU["size"]["width"], MENU["size"]["height"])


def test_upload_creates_the_menu_uploads_the_image_and_sets_the_default(fake: FakeLineAPI) -> None:
    menu_id = line.upload_rich_menu(_settings(fake))
    assert fake.rich_menus[menu_id] == MENU
    assert fake.images[menu_id] == line.RICHMENU_IMAGE.read_bytes()
    assert fake.default_rich_menu == menu_id
    paths = [(c.path, c.status) for c in fake.calls]
    assert paths == [
        ("/v2/bot/richmenu", 200),
        (f"/v2/bot/richmenu/{menu_id}/content", 200),
        (f"/v2/bot/user/all/richmenu/{menu_id}", 200),
    ]
    image_call = fake.calls[1]
    assert image_call.headers["content-type"] == "image/png"
    assert image_call.headers["authorization"] == f"Bearer {fake.token}"


def test_the_cli_command_uploads_it(
    fake: FakeLineAPI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LINE_CHANNEL_SECRET", "s")
    monkeypatch.setenv("LINE_CHANNEL_ACCESS_TOKEN", fake.token)
    monkeypatch.setenv("LINE_API_BASE_URL", fake.url)
    assert cli_main(["line", "richmenu"]) == 0
    assert fake.default_rich_menu is not None
    assert fake.default_rich_menu in capsys.readouterr().out


def test_an_image_of_the_wrong_size_is_refused_and_the_half_made_menu_deleted(
    fake: FakeLineAPI, tmp_path: Path
) -> None:
    wrong = tmp_path / "menu.json"
    wrong.write_text(json.dumps({**MENU, "size": {"width": 2500, "height": 1686}}), encoding="utf-8")
    with pytest.raises(line.RichMenuError, match="upload image failed: 400 the image size does not match"):
        line.upload_rich_menu(_settings(fake), definition=wrong)
    assert fake.default_rich_menu is None and fake.rich_menus == {}


def test_each_area_does_what_its_label_says(runtime_engine: Engine) -> None:
    actions = _actions()
    dialog = Dialog(runtime_engine, channel="line")
    faq = dialog.send(f"[{actions['よくある質問']['data']}]")
    assert faq[0].kind.value == "answer" and faq[0].choices  # examples of what to ask, with follow-ups
    handoff = dialog.send(f"[{actions['相談員に相談']['data']}]")
    assert handoff[0].kind.value == "consent"
    dialog.send("[consent:no]")
    notices = dialog.send(f"[{actions['お知らせ設定']['data']}]")
    assert notices[0].kind.value == "info" and "受け取り" in notices[0].text
    assert len(line.render(notices)[-1]["quickReply"]["items"]) <= 13
    hours = dialog.send(actions["開館時間"]["text"])
    assert hours[0].entry_id == "kidsplaza-hours"


@pytest.fixture
def runtime_engine(runtime: Runtime) -> Engine:
    return runtime.engine
