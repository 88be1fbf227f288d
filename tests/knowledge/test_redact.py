"""Personal data is taken out of a question before it is kept as FAQ feedback: each kind in many phrasings,
and the ordinary words of a question (ages, dates, amounts, family words, place names of offices) stay."""

from __future__ import annotations

import pytest

from knowledge.redact import ADDRESS, EMAIL, NAME, NUMBER, PHONE, SudachiNames, redact

NAMES = SudachiNames()


def r(text: str) -> str:
    return redact(text, NAMES)


@pytest.mark.parametrize(
    "text",
    [
        "電話番号は0138-21-3619です",
        "090-1234-5678に折り返しください",
        "09012345678まで連絡ほしい",
        "080 1234 5678 です",
        "（0138）21-3619にかけました",
        "(0138)21-3619",
        "０９０ー１２３４ー５６７８に電話して",
        "+81 90 1234 5678",
        "+81-138-21-3619",
        "0120-123-456は無料ですか",
        "携帯 070-9876-5432",
        "tel:0138213619",
    ],
)
def test_phone_numbers_go(text: str) -> None:
    out = r(text)
    assert PHONE in out, out
    assert not any(ch.isdigit() for ch in out.replace(PHONE, "")), out


@pytest.mark.parametrize(
    "text",
    [
        "hanako.yamada@example.jp に返信してください",
        "メールはtaro_123@mail.example.co.jpです",
        "ＭＡＩＬ：ｓａｔｏ＠ｅｘａｍｐｌｅ．ｃｏｍ",
        "my email is john.smith+kids@gmail.com",
        "連絡先 a-b.c@d-e.org まで",
    ],
)
def test_email_addresses_go(text: str) -> None:
    out = r(text)
    assert EMAIL in out and "@" not in out, out


@pytest.mark.parametrize(
    "text",
    [
        "〒040-0011 函館市本町2丁目3番4号に住んでいます",
        "〒0400011です",
        "040-0011",
        "美原3丁目5-6に住んでます",
        "函館市五稜郭町1番地の2",
        "本町12-3のアパート",
        "湯川町三丁目の近くです",
        "桔梗2丁目10番5号",
        "住所は富岡町1-2-3です",
        "12番5号",
    ],
)
def test_postal_codes_and_street_addresses_go(text: str) -> None:
    out = r(text)
    assert ADDRESS in out, out
    assert not any(ch.isdigit() for ch in out.replace(ADDRESS, "")), out
    for place in ("本町", "美原", "五稜郭町", "湯川町", "桔梗", "富岡町"):
        assert place not in out, out


@pytest.mark.parametrize(
    "text",
    [
        "保険証の番号は12345678です",
        "カード番号 1234 5678 9012 3456",
        "受給者番号 98765",
        "マイナンバーは123456789012",
        "番号は12-345-6789",
        "my card is 4111-1111-1111-1111",
    ],
)
def test_long_digit_runs_go(text: str) -> None:
    out = r(text)
    assert NUMBER in out or PHONE in out or ADDRESS in out, out
    assert sum(ch.isdigit() for ch in out) < 5, out


@pytest.mark.parametrize(
    ("text", "gone"),
    [
        ("山田花子と申します。児童手当について教えて", ["山田", "花子"]),
        ("鈴木太郎です。保育園の申込みは？", ["鈴木", "太郎"]),
        ("佐藤さんに聞いたのですが", ["佐藤"]),
        ("娘のゆいが熱を出しました", ["ゆい"]),
        ("高橋美咲の母です", ["高橋", "美咲"]),
        ("はるとくんの保育園の申込み", ["はると"]),
        ("ユイちゃんの予防接種", ["ユイ"]),
        ("名前はゆいです", ["ゆい"]),
        ("わたなべと申します", ["わたなべ"]),
        ("渡辺翔太の健診はいつ", ["渡辺", "翔太"]),
    ],
)
def test_japanese_names_go(text: str, gone: list[str]) -> None:
    out = r(text)
    assert NAME in out, out
    for word in gone:
        assert word not in out, out


@pytest.mark.parametrize(
    ("text", "gone"),
    [
        ("My name is John Smith and I need help with daycare", ["John", "Smith"]),
        ("my name is anna, where is the nursery", ["anna"]),
        ("Hi, I am Emily. Where can I get vaccines?", ["Emily"]),
        ("I'm Maria Santos from Brazil", ["Maria", "Santos"]),
        ("this is David, how much is childcare", ["David"]),
        ("My name's Priya", ["Priya"]),
    ],
)
def test_english_names_after_an_introduction_go(text: str, gone: list[str]) -> None:
    out = r(text)
    assert NAME in out, out
    for word in gone:
        assert word not in out, out


@pytest.mark.parametrize(
    "text",
    [
        "一時預かりの料金はいくら？",
        "3歳の子どもは何時まで預けられますか",
        "2026年4月から保育園に入れますか",
        "児童手当は月10,000円ですか",
        "出産育児一時金は50000円もらえる？",
        "お母さんと赤ちゃんの健診",
        "お兄ちゃんの学童はいつから",
        "I am worried about my son",
        "I am Japanese, can I use this?",
        "How much is the fee for 2 children?",
        "函館市子ども未来部の窓口はどこ",
        "キッズプラザは何歳まで遊べますか",
    ],
)
def test_an_ordinary_question_keeps_its_words(text: str) -> None:
    out = r(text)
    assert "〔" not in out, out


def test_markers_of_one_kind_next_to_each_other_become_one() -> None:
    assert r("山田 花子") == NAME
    assert r("〒040-0011 函館市本町2丁目3番4号") == ADDRESS


def test_without_the_analyser_the_pattern_kinds_still_go() -> None:
    out = redact("0138-21-3619 a@b.jp 〒040-0011 12345678 my name is Ken")
    assert out == f"{PHONE} {EMAIL} {ADDRESS} {NUMBER} my name is {NAME}"
