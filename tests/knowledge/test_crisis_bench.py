"""Floors of the crisis detector on its development set, the shape of the sets, and the KB's crisis texts.

The figures next to the old detector come from `bench/crisis.py`; the held-out set is scored there only.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from knowledge.crisis import CrisisDetector, Level
from knowledge.models import KnowledgeBase
from knowledge.normalize import Normalizer

ROOT = Path(__file__).resolve().parents[2]
DEV = ROOT / "bench" / "crisis_dev.yaml"
HELDOUT = ROOT / "bench" / "crisis_heldout.yaml"
HELDOUT10 = ROOT / "bench" / "crisis_heldout10.yaml"  # the held-out figure: never a training example
LANGS = {"ja", "en", "zh-Hans", "zh-Hant", "ko", "vi", "tl", "pt", "ne", "id", "th"}
# Numbers the facts sheets mark verified: false (they must never be shown as fact).
UNVERIFIED = ["0120-99-7777", "0570-783-556", "011-231-4343", "0120-189-783", "0120-061-338", "0138-54-4152"]


def _items(path: Path) -> list[dict[str, str]]:
    items: list[dict[str, str]] = yaml.safe_load(path.read_text(encoding="utf-8"))["items"]
    return items


@pytest.fixture(scope="module")
def detector(kb: KnowledgeBase) -> CrisisDetector:
    return CrisisDetector.for_kb(kb, Normalizer(kb.synonyms))


def test_sets_are_large_varied_and_apart(kb: KnowledgeBase) -> None:
    dev, held = _items(DEV), _items(HELDOUT)
    assert len(dev) >= 300 and len(held) >= 120
    for items in (dev, held):
        assert {i["level"] for i in items} == {"urgent", "distress", "none"}
        assert {"kana", "dialect", "child", "foreign", "lookalike", "en"} <= {i["kind"] for i in items}
    categories = {c.id for c in kb.crisis.categories}
    assert {i["category"] for i in dev + held if i["level"] != "none"} <= categories
    dev_texts, held_texts = {i["text"] for i in dev}, {i["text"] for i in held}
    examples = {t for texts in kb.crisis.examples.values() for t in texts}
    assert dev_texts.isdisjoint(held_texts)
    fresh = {i["text"] for i in _items(HELDOUT10)}
    assert examples.isdisjoint(dev_texts | held_texts | fresh), "bench messages must not be training examples"


def test_dev_set_floors(detector: CrisisDetector) -> None:
    missed, wrong, alarms, unoffered = [], [], [], []
    dev = _items(DEV)
    for item in dev:
        a = detector.assess(item["text"])
        if item["level"] == "urgent":
            if a.level != Level.URGENT:
                missed.append(item["text"])
            elif item["category"] not in a.categories:
                wrong.append(item["text"])
        elif item["level"] == "distress" and a.level == Level.NONE:
            unoffered.append(item["text"])
        elif item["level"] == "none" and a.level == Level.URGENT:
            alarms.append(item["text"])
    ordinary = sum(i["level"] == "none" for i in dev)
    distress = sum(i["level"] == "distress" for i in dev)
    assert missed == [], "urgent recall must stay at 100 %"
    assert len(wrong) <= 2, wrong
    assert len(alarms) <= ordinary // 100, alarms  # at most 1 % of ordinary messages raised to urgent
    assert len(unoffered) <= distress // 10, unoffered  # distress offered a person >= 90 %


@pytest.mark.parametrize(
    "text",
    [
        "保育園に落ちた",
        "ほいくえん おちた",
        "夜泣きがひどくて泣き叫ぶ",
        "夜泣きを終わりにしたい",
        "死ぬほど眠い",
        "離乳食を無理やり食べさせてもいい？",
        "子どもを置いて出かけるのは何歳から？",
        "2歳の子が私を叩く",
        "息子が友達を叩いてしまう",
        "上の子が下の子を叩きそうで目が離せない",
        "しにたいくらい はずかしい",
        "虐待の通報先を教えて",
        "my toddler hits me",
        "I'm dying to know the opening hours",
        "How to report domestic violence?",
        "中毒110番の番号を教えて",
        "窒息が心配なので、ミニトマトは切ったほうがいい？",
    ],
)
def test_ordinary_worries_that_sound_alike_are_not_crises(detector: CrisisDetector, text: str) -> None:
    assert detector.assess(text).level != Level.URGENT
    assert detector.detect(text) is None


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("叩いてしまいそうで自分が怖い", "parent_harm"),
        ("こどもを たたいて しまいそう", "parent_harm"),
        ("赤ちゃんを揺さぶりたくなる", "parent_harm"),
        ("息子をつねりかけた", "parent_harm"),
        ("隣の家から毎晩子どもの悲鳴がする", "abuse"),
        ("夫が子どもを殴る", "abuse"),
        ("おかあさんに たたかれる", "child_sos"),
        ("いえに かえりたくない おとうさんが こわい", "child_sos"),
        ("夫にぶたれた", "dv"),
        ("夫が生活費をくれない", "dv"),
        ("全部終わらせたい", "self_harm"),
        ("この子と一緒に死にたい", "with_child"),
        ("子どもが洗剤を飲んだ", "poisoning"),
        ("息をしてない", "child_danger"),
        ("Chồng tôi đánh tôi", "dv"),
        ("我想死", "self_harm"),
        ("아기가 숨을 안 쉬어요", "child_danger"),
    ],
)
def test_crises_of_each_kind(detector: CrisisDetector, text: str, category: str) -> None:
    hit = detector.detect(text)
    assert hit is not None and hit.category.id == category


def test_negation_and_distress_without_an_act(detector: CrisisDetector) -> None:
    assert detector.assess("子どもを叩いたことはありません").level == Level.NONE
    calm = detector.assess("死にたいとは思わないけど、毎日つらい")
    assert calm.level == Level.DISTRESS and detector.detect("死にたいとは思わないけど、毎日つらい") is None
    assert detector.assess("もう限界です").level == Level.DISTRESS


def test_several_categories_are_kept_with_the_leading_one_first(detector: CrisisDetector) -> None:
    a = detector.assess("夫に殴られて、もう死にたい")
    assert a.level == Level.URGENT and {"dv", "self_harm"} <= set(a.categories)
    hit = detector.hit_for(a)
    assert hit is not None and {c.id for c in (hit.category, *hit.also)} == set(a.categories)


def test_every_category_speaks_every_language_with_verified_numbers_only(kb: KnowledgeBase) -> None:
    for cat in kb.crisis.categories:
        assert set(cat.message) == LANGS, cat.id
        if cat.notice is not None:
            assert set(cat.notice) == LANGS, cat.id
        texts = [*cat.message.values(), *(cat.notice or {}).values()]
        texts += [kb.contacts[c].model_dump_json() for c in cat.contacts]
        for text in texts:
            assert not [n for n in UNVERIFIED if n in text], cat.id
    assert set(kb.crisis.notice) == LANGS


def test_replies_name_the_numbers_each_category_promises(kb: KnowledgeBase) -> None:
    def numbers(cat_id: str) -> str:
        cat = kb.crisis.category(cat_id)
        assert cat is not None
        return cat.message["ja"] + " ".join(kb.contacts[c].phone or "" for c in cat.contacts)

    assert {"189", "0138-32-3192"} <= set(re.findall(r"[\d-]+", numbers("abuse")))
    assert {"189", "0138-32-3192"} <= set(re.findall(r"[\d-]+", numbers("parent_harm")))
    assert "0120-0-78310" in numbers("child_sos")
    assert {"110", "0120-279-889", "#8008"} <= set(re.findall(r"#?[\d-]+", numbers("dv")))
    assert {"0120-279-338", "0120-783-556", "119"} <= set(re.findall(r"[\d-]+", numbers("self_harm")))
    assert {"189", "110", "0120-279-338"} <= set(re.findall(r"[\d-]+", numbers("with_child")))
    assert {"119", "072-727-2499"} <= set(re.findall(r"[\d-]+", numbers("poisoning")))
    assert {"119", "#8000"} <= set(re.findall(r"#?[\d-]+", numbers("child_danger")))
    dv = kb.crisis.category("dv")
    assert dv is not None and dv.notice is not None
    assert "履歴" in dv.message["ja"] and "連絡することはしません" in dv.notice["ja"]


def test_the_rule_prefilter_never_changes_a_result(kb: KnowledgeBase) -> None:
    """Rules are tried only when the message names one of their content words; that shortcut must give
    the same hits as trying every rule, on every message we have."""
    from knowledge.crisis_ja import fold_surface, lemma_stream, match_rules
    from knowledge.normalize import clean

    tokenizer = Normalizer(kb.synonyms).tokenizer
    texts = [i["text"] for p in (DEV, HELDOUT) for i in _items(p)]
    texts += [t for examples in kb.crisis.examples.values() for t in examples]
    texts += [q for e in kb.entries.values() for _lang, q in e.question_list()]
    for text in texts:
        stream, surface = lemma_stream(tokenizer.tokens(clean(text))), fold_surface(text)
        fast = sorted(h.rule.id for h in match_rules(stream, surface))
        assert fast == sorted(h.rule.id for h in match_rules(stream, surface, prefilter=False)), text


# Kinds found by fresh batches (round 1 of the generalisation work): each row is a variant of a kind that
# was missed, not the bench message itself.
@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("何度呼んでも目を開けません", "child_danger"),  # polite negative of the eyes not opening
        ("娘が硬貨を飲み込んでしまった", "child_danger"),  # a swallowed hard object
        ("子どもがうつぶせで浴槽に浮いていた", "child_danger"),
        ("まどの さくに のぼって おっこちそう", "child_danger"),  # kana-only, the analyser splits oddly
        ("ひきつけを起こして白目をむいてる", "child_danger"),
        ("息子がひきつけを起こした！", "child_danger"),  # the analyser splits ひきつけ
        ("むすめが せんざいを なめちゃった", "poisoning"),
        ("今晩で終わりにしようと考えています", "self_harm"),
        ("死ねば楽になれるのかな", "self_harm"),
        ("everyone would be happier without me", "self_harm"),
        ("娘を連れて川に行って、もう帰らないつもり", "with_child"),
        ("taking my son and driving off the bridge", "with_child"),
        ("つい息子を引っ叩いてしまった", "parent_harm"),
        ("娘にビンタしてしまった", "parent_harm"),
        ("手が出そうになる", "parent_harm"),
        ("おとうさんが ほうちょう むけてくる", "child_sos"),
        ("夫に毎日クズと言われる", "dv"),
        ("妻に通帳を取り上げられた", "dv"),
        ("殺すぞと脅されている", "dv"),
    ],
)
def test_round_one_kinds_are_caught(detector: CrisisDetector, text: str, category: str) -> None:
    hit = detector.detect(text)
    assert hit is not None and hit.category.id == category, detector.assess(text)


@pytest.mark.parametrize(
    "text",
    [
        "実家の近くの病院でインフルエンザの予防接種を打ちたい",  # 打つ without a child is not harm
        "ボールを思い切り蹴りたい",
        "太鼓を叩きたいと息子が言う",
        "授乳は今月で終わりにしようと思います",  # an end with a topic or object is not self-harm
        "娘が友達とけんかして叩かれたらしい",  # a peer quarrel is not abuse
        "息子がゲームで「殺すぞ」って言うのをやめさせたい",  # words a child repeats are not a threat
        "ゲームで殺された",
        "お母さんが包丁で野菜を切っている",
        "白目をむいて寝ているのは大丈夫？",
        "ひきつけを起こしたことがある子の予防接種",  # a seizure told as history
        "名前を呼んでも振り向かないのは発達の問題？",
    ],
)
def test_round_one_look_alikes_stay_ordinary(detector: CrisisDetector, text: str) -> None:
    assert detector.assess(text).level == Level.NONE, detector.assess(text)


# Round 2 kinds: accidents where the child does not get up, a fall into water, a choke "made to stick",
# a child not home after the hour, taking the child along into death, a parent's partner touching the
# writer, a relative hitting a nephew, a pupil's bruises, the writer crying "in spite of myself".
@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("次女がバイクにはねられて倒れたまま動かない", "child_danger"),
        ("息子が用水路に落ちた！", "child_danger"),
        ("娘がぐったりして泣かないし目を開けない", "child_danger"),
        ("ブドウを喉に詰まらせてしまった", "child_danger"),
        ("門限を3時間過ぎても息子が帰宅しない、連絡もない", "child_danger"),
        ("my daughter banged her head on the table and keeps throwing up", "child_danger"),
        ("she drank some of the blue liquid under the sink", "poisoning"),
        ("子どもを置いて逝けないから一緒に連れて行きます", "with_child"),
        ("娘を殺して後を追うしかない", "with_child"),
        ("練炭を買ってきてしまった", "self_harm"),
        ("おかあさんの かれしに よる へやで さわられる", "child_sos"),
        ("おかあさんが おこると ぼくと いもうとを たたく", "child_sos"),
        ("叔父が姪っ子を蹴っているのを見た", "abuse"),
        ("担任している児童の腕にいつも痣がある", "abuse"),
        ("my neighbour's children are left alone every night", "abuse"),
        ("my ex keeps waiting outside my work", "dv"),
    ],
)
def test_round_two_kinds_are_caught(detector: CrisisDetector, text: str, category: str) -> None:
    hit = detector.detect(text)
    assert hit is not None and hit.category.id == category, detector.assess(text)


@pytest.mark.parametrize(
    "text",
    [
        "転んで膝から血が出たけど絆創膏で大丈夫？",  # a scrape is not an emergency
        "寝返りの練習中、子どもが動かないのは普通？",
        "猫がじっとロープを眺めている",
        "my son bumped his head, no vomiting, when should I worry?",
        "she is choking back tears after the move",
        "I picked up my baby and she laughed",
    ],
)
def test_round_two_look_alikes_are_not_urgent(detector: CrisisDetector, text: str) -> None:
    assert detector.assess(text).level != Level.URGENT, detector.assess(text)


def test_round_two_distress_in_other_words(detector: CrisisDetector) -> None:
    for text in (
        "誰とも話せない日が続いている",
        "夜になると毎日泣いてしまう",
        "もう何もしたくない",
        "I'm tired of it all",
    ):
        assert detector.assess(text).level == Level.DISTRESS, text


# Round 3 kinds: a part breathed in, swept away by the sea, taken into a stranger's car, a spray licked
# after other words, the child's head as the object, pressing the baby down "until the crying stops",
# 手ぇあげてまう without を, a child seeing one parent hit the other, a threat of fire, a parent away for
# days, dialect negatives of the meaning of life, numbness.
@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("娘がビーズを吸い込んでしまった", "child_danger"),
        ("息子が川に流されて見えなくなった", "child_danger"),
        ("アイロンで腕をやけどして皮がむけてる", "child_danger"),  # a burn told by its extent
        ("知らない人に車に乗せられて連れて行かれたらしい", "child_danger"),
        ("子どもが制汗スプレーを手にかけてぺろっと舐めた", "poisoning"),
        ("my son drank a bit of grandpa's cough syrup", "poisoning"),
        ("娘の顔を平手で何度も叩いてしまった", "parent_harm"),
        ("子どもを枕に押し付けて黙らせたくなる", "parent_harm"),
        ("そのうち子どもに手あげてまいそう", "parent_harm"),
        ("I'm afraid I'll lose it and hit my daughter", "parent_harm"),
        ("おとうさんが おかあさんを けってる", "child_sos"),
        ("my mom burns me with a lighter", "child_sos"),
        ("元彼が家に火をつけるって言ってくる", "dv"),
        ("娘の夫が食事のたびに孫を蹴っている", "abuse"),
        ("生きてる意味が分からん", "self_harm"),
        ("we would all be better off dead, me and my kids", "with_child"),
    ],
)
def test_round_three_kinds_are_caught(detector: CrisisDetector, text: str, category: str) -> None:
    hit = detector.detect(text)
    assert hit is not None and hit.category.id == category, detector.assess(text)


@pytest.mark.parametrize(
    "text",
    [
        "知らない人の車に乗せられないようにどう教える？",
        "掃除機がレゴの部品を吸い込んだ",
        "夫が出張で何日も帰ってこない",
        "息子の頭をなでてあげた",
        "指に小さな水ぶくれができた",
        "海で波にさらわれないための注意点は？",
    ],
)
def test_round_three_look_alikes_are_not_urgent(detector: CrisisDetector, text: str) -> None:
    assert detector.assess(text).level != Level.URGENT, detector.assess(text)


def test_numbness_is_distress(detector: CrisisDetector) -> None:
    assert detector.assess("子どもを抱いても何も感じない").level == Level.DISTRESS
