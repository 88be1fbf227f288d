"""Japanese crisis rules over the analyser's output: who does what to whom, and in which verb form.

A message becomes a *lemma stream*: SudachiPy's normalised form of every word, particles and auxiliaries
included, joined by "|" (「こどもを たたいてしまいそう」 → |子供|を|叩く|て|仕舞う|そう|). Kana, kanji and
conjugation differences disappear, while the words that carry meaning for safety stay: the passive
(|叩く|れる| is being hit), the volitional and future forms of fear (|て|仕舞う|そう|, |たい|成る|,
|かける|), negation (|ない|, |無い|) and the particles that tell the agent (が/は) from the object (を) and
the one acting on the writer (に + passive).

Rules are regular expressions over that stream, checked inside one clause (a stretch between
punctuation), each with the clause's text before the match examined for the agent, and the text after it
for negation. A second, smaller set runs on the folded surface (kana/width folded, spaces removed) for
spellings the analyser splits oddly (dialect, kana-only children's writing).

Sound-alike matching on readings is deliberately absent: it fired on ordinary words (保育園に落ちた,
夜泣き, 死ぬほど眠い). Every rule here names the act and its context.
"""

from __future__ import annotations

import re
import re._constants as sre_constants  # type: ignore[import-not-found]
import re._parser as sre_parse  # type: ignore[import-not-found]
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from knowledge.normalize import Tokenizer, clean, to_hiragana

# ----- lexicons (normalised forms as SudachiPy gives them)
_OWN_CHILD = r"(?:子供|子|息子|娘|赤ちゃん|赤ん坊|赤子|長男|長女|次男|次女|三男|三女|我が子|乳児|幼児|新生児|乳飲み子|双子|坊や|ベビー|倅)"
_SIBLING_AGENT = r"(?:上|下|兄|姉|弟|妹|お兄ちゃん|お姉ちゃん|兄弟|姉妹|友達|お友達|犬|猫)"
_PARTNER = r"(?:夫|旦那|旦那さん|主人|ご主人|妻|嫁|奥さん|彼氏|彼|彼女|パートナー|元夫|元妻|元彼|元旦那|内縁|婚約者|配偶者|恋人|相手|亭主|連れ合い|おっと|だんな|うち\|の\|人|家\|の\|人)"
_PARENT = r"(?:母|父|お母さん|お父さん|母さん|父さん|ママ|パパ|親|両親|母親|父親|継父|継母|義父|義母|お袋|親父|おかん|おとん|(?<![のた]\|)(?<!\|\|)侭)"
_NEIGHBOUR = r"(?:隣|お隣|隣家|近所|上の階|下の階|上\|の\|階|下\|の\|階|向かい|マンション|アパート|団地|よそ|同じ\|マンション|同じ\|アパート)"
_OTHER_CHILD = rf"(?:{_NEIGHBOUR}|親戚|姪|甥|姪っ子|甥っ子|孫|知り合い|友人|友達|ママ友)"
_PEER = r"(?:友達|お友達|友人|クラスメート|同級生|先輩|後輩|子|子供|兄|姉|弟|妹|上の子|下の子|犬|猫)"
_HARM = (
    r"(?:叩く|殴る|蹴る|打つ|ぶつ|しばく|ど突く|抓る|揺さぶる|揺する|投げる|投げ付ける|投げ飛ばす|放り投げる|突き飛ばす|突き落とす|"
    r"絞める|締める|しめる|殺す|傷付ける|痛め付ける|押し倒す|引きずる|踏み付ける|叩き付ける|殴り付ける|蹴飛ばす|"
    r"ひっぱたく|引っ叩く|ぶっ叩く|張り倒す|はたく|虐める|沈める|塞ぐ|窒息|虐待|押し付ける|押さえ付ける|叩き付ける)"
)
_HARM_PHRASE = rf"(?:{_HARM}|(?:びんた|平手打ち|往復びんた|体罰)\|(?:を\|)?為る|手\|(?:を\|)?(?:上げる|挙げる|出す|掛ける|かける)|手\|が\|出る|首\|を\|(?:絞める|締める|しめる))"
_HARM_BARE = (
    r"叩く|殴る|蹴る|ぶつ|しばく|ど突く|揺さぶる|突き飛ばす|突き落とす|殺す|傷付ける|痛め付ける|ひっぱたく|はたく|"
    r"叩き付ける|殴り付ける|蹴飛ばす|投げ付ける|押し倒す|突き倒す|虐待|窒息|引っ叩く|ぶっ叩く|張り倒す|(?:口|鼻|顔)\|(?:[^|]+\|){0,2}?を\|(?:塞ぐ|抑える|押さえる)|口\|に\|(?:[^|]+\|){0,2}?を\|押し込む|(?:びんた|平手打ち|往復びんた|体罰)\|(?:を\|)?為る|手\|を\|(?:上げる|挙げる|出す)|手\|が\|出る|首\|を\|(?:絞める|締める|しめる)"
)
# Things one hits, kicks or throws in ordinary life: not a child.
_THING = r"(?:ボール|太鼓|ドラム|ドア|壁|机|テーブル|物|枕|クッション|肩|背中|腰|布団|虫|蚊|ハエ|釘|鍵盤|キーボード)"
_FEAR_FORM_BARE = r"(?:所\|(?:だ|です)\|た|(?:[^|]+\|){0,2}?(?:て|で)\|仕舞う\|そう|ちゃう\|そう|じゃう\|そう|そう|たい\|成る|かける|掛ける|兼ねる)"
# The fear or the slip: 〜てしまいそう, 〜そう, 〜たくなる, 〜かけた, 〜ちゃう, 〜てしまった, 〜かねない
_FEAR_FORM = r"(?:所\|(?:だ|です)\|た|(?:て|で)\|(?:[^|]+\|){1,3}?たい\|成る|(?:[^|]+\|){0,2}?(?:て|で)\|仕舞う|ちゃう|じゃう|そう|たい|かける|兼ねる|掛ける)"
_PAST_ACT = r"(?:(?:て|で)\|(?:仕舞う|もう|まう)\|(?:ます\|)?た|ちゃう\|た|じゃう\|た|(?:ます\|)?た)"
# The act done or going on: 飲んだ, 飲んでしまいました, 飲んじゃった, 飲んでいた, 飲んでもうた
_DONE = r"(?:(?:て|で)\|(?:仕舞う|もう|まう)\|(?:ます\|)?|ちゃう\||じゃう\||ます\|)?(?:た|て|で|居る|てる)"
# Substances nobody gives a child to eat or drink: swallowing them is poisoning whatever the wording.
_NON_FOOD = (
    r"洗剤|ジェルボール|ジェル\|ボール|漂白剤|ハイター|カビキラー|柔軟剤|消臭剤|芳香剤|除光液|防虫剤|ナフタリン|入浴剤|殺虫剤|"
    r"乾燥剤|保冷剤|灯油|農薬|ボタン\|電池|ボタン電池|電池|磁石|マグネット|タバコ|たばこ|煙草|吸い殻|電子タバコ|マニキュア|"
    r"香水|化粧水|シャンプー|睡眠薬|降圧剤|錠剤|除菌\|スプレー|除菌スプレー|消毒液|消毒\|液|ハンド\|ソープ|ハンドソープ|液体\|洗剤|化粧品|口紅|ゴキブリ|ごきぶり|ホウ酸|ほう酸|硼酸|殺鼠剤|防腐剤|虫除け|蚊取り"
)
_NEGATIONS = {"ない", "無い", "ず", "ぬ", "ん", "へん"}
# ない after these is not a negation of the act: 〜かもしれない, 〜に違いない, 〜しょうがない
_NOT_NEGATING = {"知れる", "違い", "しょう", "仕方", "限る", "堪る", "たまる", "怖い", "不安", "心配", "しか"}
# Words that may stand between an act and its negation (叩いたことはない, 死にたいとは思わない).
_NEG_BRIDGE = frozenset(
    [
        "た",
        "だ",
        "事",
        "こと",
        "は",
        "も",
        "と",
        "思う",
        "考える",
        "ます",
        "です",
        "訳",
        "わけ",
        "で",
        "じゃ",
        "の",
        "ん",
        "居る",
        "て",
        "てる",
        "決して",
        "絶対",
        "なんか",
        "など",
        "為る",
        "れる",
        "せる",
        "たい",
        "では",
        "一度",
        "今",
        "まで",
        "迄",
        "別に",
        "全然",
        "一",
        "度",
        "気",
        "つもり",
        "積もり",
        "知れる",
        "違い",
        "しょう",
        "仕方",
        "怖い",
        "不安",
        "心配",
        "しか",
        "限る",
        "堪る",
        "たまる",
        "出来る",
        "できる",
        "仕舞う",
        "ちゃう",
        "成る",
        "得る",
        "呉れる",
        "くれる",
        "貰う",
        "もらう",
        "貰える",
        "もらえる",
        "有る",
        "ある",
        "御座る",
    ]
)
# 疲れ果てるけど楽しい, 寂しいけどなんとかやってます: a hardship told with its bright side is not distress.
_BRIGHT_AFTER = re.compile(
    r"\|?(?:[^|、。]+\|){0,6}?(?:!\||！\|)?(?:って|と)\|(?:くらい|ぐらい|ほど)\||"
    r"\|?(?:[^|、。]+\|){0,6}?(?:けれど|けど|が|でも)\|(?:、\|)?(?:[^|]+\|){0,2}?"
    r"(?:楽しい|幸せ|嬉しい|可愛い|かわいい|何とか|なんとか|何\|と\|か|大丈夫|元気|頑張る\|(?:ます|て|る|たい|う))"
)
_WELL_AGAIN = re.compile(
    r"元気|普段\|通り|いつも\|通り|変わる\|(?:無い|ない)|遊ぶ\|(?:で|て)\|(?:居る|てる)|直ぐ\|に\|泣く"
)
# A danger framed as a what-if (洗剤を飲んだときのために, 息をしていないときの方法, 起きたら救急車を呼ぶべき,
# 車に残すのは何分まで, 誤飲したときの相談先, 行方不明に備えて): a question about preparing, not an emergency now.
_WHAT_IF = re.compile(
    r"\|?(?:[^|、。!?！？]+\|){0,3}?(?:時|とき|場合|際)\|(?:の\|(?:為|ため|対処|対処法|方法|応急|心肺|準備|相談|連絡|窓口|電話|番号)|は\|(?:どう|何|救急)|に\|(?:どう|備える))"
    r"|\|?(?:[^|、。!?！？]+\|){0,2}?(?:(?:に|だ)\|備える|へ\|の\|備え)"
    r"|\|?(?:[^|、。!?！？]+\|){0,1}?たら\|(?:[^|、。!?！？]+\|){0,4}?(?:べし|べき|どう\|為る|良い\|の\|か)"
    r"|\|?の\|は\|(?:何|いつ|どの|幾つ)|\|?(?:[^|、。!?！？]+\|){0,4}?(?:べし|べき)\|(?:です\|)?か"
    r"|\|?(?:[^|、。!?！？]+\|){0,3}?(?:は|って)\|(?:駄目|ダメ|だめ|いけない|アウト|許す\|れる)"
    r"|\|?も\|(?:[^|、。]+\|){0,2}?(?:大丈夫|良い|いい|平気|問題|害|影響|構う)"  # 飲んでも大丈夫？
)
_WHAT_IF_CATEGORIES = {"child_danger", "poisoning"}
# A worry that it might happen (息が止まってないか心配) or a danger told with a happy ending (おぼれかけたけど楽しかった).
_WORRY_OR_BRIGHT = re.compile(
    r"\|?(?:[^|、。]+\|){0,3}?(?:ない|無い)\|か\|(?:[^|]+\|){0,2}?(?:心配|不安|怖い|恐い|気\|に\|成る)"
    r"|\|?(?:[^|、。]+\|){0,4}?(?:けれど|けど)\|(?:、\|)?(?:[^|]+\|){0,2}?(?:楽しい|幸せ|嬉しい|元気|大丈夫|平気)"
    r"|\|?(?:[^|、。]+\|){0,3}?(?:よう|みたい)\|(?:だ\||に\|)?見える\|(?:[^|]{1,}\|){0,10}?(?:ちゃんと|普通\|に|大丈夫|安心)"  # it only seemed so
)
# A story told on a screen or in the news (ドラマで心中のシーン): not the writer's own plan.
_MEDIA = r"(?:ドラマ|ニュース|映画|漫画|アニメ|小説|テレビ|番組|報道|事件|動画)\|(?:で|の|を|に)\|"
# A history (誤飲したことがある, 先週けいれんを起こしたけど今は元気): not an emergency now.
_EXPERIENCE = re.compile(r"\|?(?:[^|、。]+\|){0,2}?(?:こと|事)\|(?:が|も)\|(?:有る|ある)")
_PAST_TIME = re.compile(r"(?:先週|先月|去年|昨年|以前|昔|一昨年|前回|この間|此の間)\|")
_NOW_AGAIN = re.compile(r"(?:今|今日|現在)\|(?:は|も)\|(?:[^|]+\|){0,2}?(?:元気|平気|大丈夫|普通|治る)|元気\|")
# Alcohol the writer drinks while nursing or pregnant (お酒を飲んだ後の授乳): a question about feeding.
_ALCOHOL = re.compile(r"酒|ビール|ワイン|焼酎|ウイスキー|アルコール")
_NURSING = re.compile(r"授乳|母乳|おっぱい|妊娠|妊婦|搾乳")
_FALL_RULES = {"med.fall_high", "med.fall_hurt", "med.head"}
_NEG_STOP = {"、", "。", "けど", "が", "でも", "のに", "から", "ので", "?", "？", "!", "！"}
# Lemma spellings folded before the rules: one form per meaning.
LEMMA_ALIASES = {
    "られる": "れる",
    "さわる": "触る",
    "障る": "触る",
    "押さえる": "抑える",
    "立たす": "立たせる",
    "待たす": "待たせる",
    "なくなる": "無くなる",
    "轢く": "ひく",
    "撥ねる": "はねる",
    "跳ねる": "はねる",
    "つれる": "連れる",
    "噛じる": "齧る",
    "引き摺る": "引きずる",
    "引き摺り回す": "引きずり回す",
    "苛める": "虐める",
    "打ち叩く": "ぶっ叩く",
}
# 死にたいくらい恥ずかしい, 死ぬほど眠い: a figure of speech, when what follows is light.
_HYPERBOLE = re.compile(
    r"^\|?(?:[^|]+\|){0,1}?(?:くらい|ぐらい|位|ほど|程)\|(?:[^|]+\|){0,1}?"
    r"(?:恥ずかしい|眠い|忙しい|暇|面白い|嬉しい|可愛い|かわいい|美味しい|暑い|寒い|笑う|笑い|好き|混む|混雑|並ぶ|待つ|待たす)"
)
_INFO = re.compile(
    r"(?:窓口|相談先|連絡先|通報先|電話番号|番号|どこ|何処|方法|とは|場合|(?<![0-9０-９十半何数]\|)時間|受付|制度|予防|防ぐ|防止|対策|対処|"
    r"\|為\||\|ため\||普通|時\|の|\|際\||注意|気\|を\|付ける|コツ|こつ)"
)
# A request for information without a question mark: 知りたいです, 教えてください, for a report
_ASKING = re.compile(r"知る\|たい|教える\|て\|(?:下さる|くださる|欲しい|頂く)|レポート|論文|調べる\|て\|(?:居る|いる)")
_WORD = "[^|、。,.!?！？…]+"
_CLAUSE = re.compile(r"\|(?:[、。,.!?！？…]|けど|けれど|が\|、)\|")


@dataclass(frozen=True, slots=True)
class Rule:
    """One pattern of the lemma stream (or of the folded surface): the category it reveals and its
    guards. `agent_block` looked for in the clause before the match, `object_block` in the match,
    `negatable` cancels the rule when a negation follows (叩いたことはない)."""

    id: str
    category: str
    pattern: re.Pattern[str]
    agent_block: re.Pattern[str] | None = None
    negatable: bool = True
    info_sensitive: bool = False  # a question about where to report or how to prevent is not a crisis
    level: str = "urgent"


def _r(
    rule_id: str,
    category: str,
    pattern: str,
    *,
    agent_block: str | None = None,
    negatable: bool = True,
    info: bool = False,
    level: str = "urgent",
) -> Rule:
    # A wildcard word never crosses punctuation, so a rule stays inside one clause of the whole stream.
    return Rule(
        rule_id,
        category,
        re.compile(pattern.replace("[^|]+", _WORD)),
        re.compile(agent_block) if agent_block else None,
        negatable,
        info,
        level,
    )


# Rules over the lemma stream. The order does not matter: every rule is checked.
LEMMA_RULES: tuple[Rule, ...] = (
    # --- dying together with the child (before self-harm: it needs 189/110 as well)
    _r(
        "with_child.together",
        "with_child",
        rf"{_OWN_CHILD}\|(?:と|(?:を\|)?連れる\|て)\|(?:[^|]+\|){{0,3}}(?:死ぬ|消える|心中)",
    ),
    _r(
        "with_child.together2",
        "with_child",
        rf"{_OWN_CHILD}\|と\|(?:一緒|二人|共)\|に\|(?:死ぬ|消える|居る\|ない\|成る|飛び降りる|飛び下りる|飛び込む|楽\|(?:に|だ)\|成る\|たい)",
    ),
    # going with the child to the sea / a river and not coming back
    _r(
        "with_child.no_return",
        "with_child",
        rf"{_OWN_CHILD}\|(?:と|(?:を\|)?連れる\|て)\|(?:[^|]+\|){{0,4}}?(?:海|川|湖|崖|線路|樹海|橋)\|(?:(?:[^|]+|、)\|){{0,6}}?(?:(?:そのまま|二度と|もう)\|(?:[^|]+\|){{0,1}}?(?:帰る|戻る)\|ない|消える|死ぬ|飛び込む|入る\|(?:う|よう))",
        negatable=False,
    ),
    _r(
        "with_child.both",
        "with_child",
        r"(?:二人|親子)\|(?:共|とも|一緒\|に|揃う\|て)\|(?:[^|]+\|){0,2}?(?:楽\|(?:だ\||に\|)?(?:成る|なれる)|死ぬ|消える)",
        negatable=False,
    ),
    # 娘を残しては死ねないので、娘も一緒に: death, then the child "too, together"
    _r(
        "with_child.too",
        "with_child",
        rf"(?:死ぬ|逝く|消える)\|(?:[^|]{{1,}}\|){{0,12}}?{_OWN_CHILD}\|も\|(?:一緒|連れる)",
        negatable=False,
    ),
    _r(
        "with_child.shinju",
        "with_child",
        r"(?:心中|道連れ|無理心中|親子心中)",
        agent_block=_MEDIA,
    ),
    _r(
        "with_child.two_of_us",
        "with_child",
        r"(?:二人|親子|一緒)\|(?:で|に)\|(?:[^|]+\|){0,2}?(?:海|川|湖|線路|崖|踏切)\|(?:に|へ|から)\|"
        r"(?:入る|飛び込む|飛び下りる|身\|を\|投げる)\|(?:[^|]+\|){0,2}?(?:仕舞う\|ば|ば\|楽|たら\|楽|楽|死ぬ|消える)",
        negatable=False,
    ),
    _r(
        "with_child.water",
        "with_child",
        rf"{_OWN_CHILD}\|(?:を\|連れる\|て|と)\|(?:[^|]+\|){{0,3}}?(?:海|川|線路|湖|崖)\|(?:に|から)\|(?:入る|飛び込む|飛び下りる)",
    ),
    _r(
        "with_child.kill_both",
        "with_child",
        rf"{_OWN_CHILD}\|を\|殺す\|(?:[^|]+\|){{0,4}}?(?:(?:私|自分)\|も\|死ぬ|(?:(?:私|自分)\|も\|)?後\|を\|追う)",
    ),
    # 子どもを残して逝くのは…一緒に連れていこう: taking the child along into death
    _r(
        "with_child.take_along",
        "with_child",
        r"(?:逝く|死ぬ)\|(?:[^|]{1,}\|){0,16}?(?:一緒\|に\|)?連れる\|て\|(?:行く|逝く)",
        negatable=False,
    ),
    # --- self-harm and suicide
    _r("self.want_die", "self_harm", r"\|(?:死ぬ|逝く)\|(?:(?:て|で)\|仕舞う\|)?(?:たい|う|よう)\|", info=True),
    _r("self.want_die2", "self_harm", r"\|死ぬ\|(?:しか|方法|事|こと|気|つもり|積もり|覚悟)\|", negatable=False),
    _r("self.better_dead", "self_harm", r"\|死ぬ\|(?:た|だ)\|(?:方|ほう)\|が\|(?:良い|いい|まし|増し)"),
    _r(
        "self.suicide",
        "self_harm",
        r"(?:自殺|自死|自傷|リストカット|リスト\|カット|リスカ|遺書|希死念慮|首吊り|首つり|ＯＤ|od|オーバードーズ)",
        info=True,
    ),
    _r(
        "self.not_in_world",
        "self_harm",
        r"(?:此の世|この世)\|(?:に|から)\|(?:居る\|たい\|(?:無い|ない)|消える|居る\|ない\|成る)",
    ),
    _r(
        "self.stockpile",
        "self_harm",
        # medicine hoarded to be taken all at once
        r"(?:薬|睡眠薬|錠剤|安定剤)\|を\|(?:[^|]+\|){0,1}?(?:溜め込む|溜める|貯める|ためる)\|(?:[^|]{1,}\|){0,8}?"
        r"(?:全部|一気|まとめる|一度)\|(?:に\|)?(?:[^|]+\|){0,1}?飲む",
    ),
    _r("self.disappear", "self_harm", r"\|消える\|(?:(?:て|で)\|仕舞う\|)?(?:たい|う|よう|る\|しか)\|"),
    _r("self.rather", "self_harm", r"いっそ\|(?:[^|]+\|){0,3}?(?:消える|死ぬ|居る\|ない\|成る|終わる\|せる)"),
    _r(
        "self.not_be",
        "self_harm",
        r"(?:私|自分|僕|俺|わたし|あたし|ママ|母親)?\|?居る\|ない\|(?:成る\|)?(?:たい|(?:た\|)?方\|が\|(?:良い|いい|幸せ|楽|まし|増し))",
        agent_block=rf"{_PARTNER}\|と\|(?:二人|一緒)",  # 旦那と二人でいなくなりたい (a trip away)
    ),
    _r(
        "self.end_all",
        "self_harm",
        r"(?:全部|全て|何もかも|人生|自分|命|もう)\|(?:を\|)?(?:終わる\|せる|終わり\|に\|為る)\|(?:(?:て|で)\|仕舞う\|)?(?:たい|う|よう)",
    ),
    _r(
        "self.jump",
        "self_harm",
        r"(?:飛び下りる|飛び降りる|身投げ)\|(?:(?:て\|)?仕舞う\|)?(?:(?:たい|う|よう|積もり|つもり|しか|そう)\||か\|(?:と\|)?(?:な|考える|迷う|思う))"
        r"|(?:飛び下りる|飛び込む)\|(?:ば|たら|た\|ら)\|(?:[^|]+\|){0,3}?(?:終わる|楽|死ぬ|消える)"
        r"|飛び込む\|(?:(?:て\|)?仕舞う\|)?(?:たい|積もり|つもり|しか)\||身投げ",
        agent_block=rf"(?:{_OWN_CHILD}|{_SIBLING_AGENT})\|(?:が|は|も)\|",
    ),
    _r(
        "self.pills",
        "self_harm",
        r"(?:薬|睡眠薬|睡眠剤|精神薬)\|を\|(?:たくさん|沢山|大量|全部|いっぱい|一杯)\|(?:に\||だ\||纏める\|て\|)?飲む\|(?!終わる|切る)",
    ),
    _r("self.cut", "self_harm", r"(?:手首|腕)\|を\|(?:切る|傷付ける)"),
    _r("self.hurt_self", "self_harm", r"(?:自分|自身)\|を\|(?:傷付ける|殺す|痛め付ける)"),
    _r(
        "self.no_point",
        "self_harm",
        r"(?:生きる|生きてる)\|(?:[^|]+\|){0,3}(?:意味|価値|甲斐)\|(?:が\|)?(?:無い|ない|分かる\|(?:ない|へん|ず|ん))",
    ),
    _r("self.live_hard", "self_harm", r"\|生きる\|(?:て\|)?(?:居る\|)?(?:の\|)?(?:が\|)?(?:辛い|つらい|嫌|しんどい)"),
    _r("self.not_live", "self_harm", r"\|生きる\|(?:て\|居る\|)?たい\|(?:無い|ない)"),
    _r("self.no_use", "self_harm", r"\|生きる\|(?:[^|]+\|){0,3}しょう\|が\|無い"),
    _r("self.rope", "self_harm", r"首\|を\|(?:吊る|つる)"),
    # staring at the rope, buying charcoal: the writer's preparations (a cat staring at a rope is not)
    _r(
        "self.means",
        "self_harm",
        r"(?:ロープ|縄|練炭)\|を\|(?:見詰める|眺める)\|(?:て\|仕舞う|て\|居る|てる|ます)|練炭\|を\|(?:買う|用意|準備)",
        agent_block=r"(?:猫|犬|子供|子|息子|娘)\|(?:が|は)\|",
    ),
    _r("self.intend", "self_harm", r"\|(?:死ぬ|消える)\|と\|(?:思う|考える)"),
    _r("self.vanish", "self_harm", r"消える\|(?:て\|)?(?:無い|無くなる)\|(?:成る\|)?たい"),
    _r("self.gone_easy", "self_harm", r"居る\|ない\|(?:成る|なれる)\|(?:れる\|)?(?:た\|)?(?:[^|]+\|){0,2}?楽"),
    _r("self.not_wake", "self_harm", r"(?:目\|が\|覚める|朝\|が\|来る)\|(?:ない|ず)\|(?:けれ\|)?ば\|(?:良い|いい)"),
    _r("self.leave_child", "self_harm", rf"{_OWN_CHILD}\|を\|(?:残す|置く)\|て\|(?:死ぬ|消える|逝く)"),
    # 死んだら楽になる, 死ねば楽: dying imagined as relief
    _r(
        "self.dead_easy",
        "self_harm",
        r"(?:死ぬ|消える|飛び下りる|飛び込む)\|(?:た|ば)\|(?:[^|]+\|){0,3}?楽\|(?:だ\||に\|)?(?:成る|なれる)",
    ),
    # 今夜で終わりにしよう: an end set for a time, with no object ending (卒乳を今日で終わりにしよう is ordinary)
    _r(
        "self.end_time",
        "self_harm",
        r"(?:今夜|今晩|今日|明日|今|今年|今月)\|(?:で|を\|最後\|に)\|(?:全部\|)?終わり\|に\|為る\|(?:う\||よう\|)?"
        r"(?:たい|と\|(?:思う|考える|決める)|か|積もり|つもり)",
        agent_block=r"(?<!私)(?<!自分)(?<!僕)(?<!俺)\|(?:を|は|も)\|",
        info=True,
    ),
    _r("self.easy", "self_harm", r"楽\|に\|成る\|(?:たい|れる)\|(?:[^|]+\|){0,3}(?:死ぬ|消える|居る\|ない)"),
    # --- a parent who fears harming the child, or has
    _r(
        "parent.fear",
        "parent_harm",
        rf"{_OWN_CHILD}\|(?:を|に|の\|首\|を|の\|首\|に|の\|口\|を|の\|(?:頭|顔|お尻|尻|背中|頬|ほっぺ|体)\|を)\|(?:[^|]+\|){{0,3}}?{_HARM_PHRASE}\|{_FEAR_FORM}",
        agent_block=rf"(?:{_OWN_CHILD}|{_SIBLING_AGENT}|{_PARTNER})\|(?:が|は|も)\||(?:友達|弟|妹|犬|猫|私|ママ|母)\|を\|",
    ),
    # the act become a habit or beyond stopping (叩くのが癖になった, 叩かずにいられない)
    _r(
        "parent.habit",
        "parent_harm",
        rf"{_OWN_CHILD}\|(?:を|に|の\|(?:頭|顔|お尻|尻|背中|頬|ほっぺ|体)\|を)\|(?:[^|]+\|){{0,3}}?{_HARM_PHRASE}\|"
        r"(?:の\|(?:が|を)\|(?:癖|止める|止まる|止められる|やめる|やめられる)|ず\|に\|(?:居る|いる)\|れる\|(?:ない|ず))",
        agent_block=rf"(?:{_OWN_CHILD}|{_SIBLING_AGENT}|{_PARTNER})\|(?:が|は|も)\||(?:友達|弟|妹|犬|猫)\|を\|",
    ),
    # shut in or out by the parent (息子を押し入れに閉じ込めてしまった)
    _r(
        "parent.shut_in",
        "parent_harm",
        rf"{_OWN_CHILD}\|を\|(?:[^|]+\|){{0,2}}?(?:(?:ベランダ|押し入れ|押入れ|物置|納戸|トイレ)\|(?:に|へ)\|(?:閉じ込める|出す)"
        r"|(?:外|玄関|家)\|(?:に|へ|から)\|(?:締め出す|追い出す))\|(?:て\|仕舞う|ちゃう|じゃう)",
        agent_block=rf"(?:{_OWN_CHILD}|{_SIBLING_AGENT}|{_PARTNER})\|(?:が|は|も)\|",
    ),
    # food withheld as a punishment
    _r(
        "parent.no_food",
        "parent_harm",
        rf"{_OWN_CHILD}\|に\|(?:御飯|ご飯|食事|夕飯|晩御飯)\|を\|(?:食べる\|させる|与える|あげる|上げる|やる)\|(?:ない|ず)(?!\|方)",
        agent_block=rf"(?:{_PARTNER}|{_PARENT}|{_OWN_CHILD})\|(?:が|は)\|",
        negatable=False,
    ),
    # something over the baby's face (赤ちゃんの顔にタオルをかけたくなる)
    _r(
        "parent.cover_face",
        "parent_harm",
        rf"{_OWN_CHILD}\|の\|(?:顔|口|鼻)\|に\|(?:[^|]+\|){{0,2}}?(?:タオル|枕|布団|クッション|ビニール|袋)\|を\|(?:[^|]+\|){{0,1}}?"
        r"(?:掛ける|かける|押し付ける|被せる|乗せる)\|(?:たい|そう|て\|仕舞う|ちゃう|かける)",
    ),
    # Without the child named, only acts that are harm whatever their object (打つ, 投げる, 締める also take
    # ワクチン, ボール, ネクタイ), and a fear form rather than a plain wish (ワクチン打ちたい, 太鼓を叩きたい).
    _r(
        "parent.fear_bare",
        "parent_harm",
        rf"(?:{_HARM_BARE})\|{_FEAR_FORM_BARE}",
        agent_block=rf"(?:{_OWN_CHILD}|{_SIBLING_AGENT}|{_PARTNER})\|(?:が|は|も)\||(?:友達|弟|妹|犬|猫|私|ママ|母|{_THING})\|を\|",
    ),
    _r(
        "parent.slip",
        "parent_harm",
        rf"(?:{_HARM_BARE})\|(?:(?:て|で)\|仕舞う\|(?:ます\|)?|ちゃう\||じゃう\|)た",
        agent_block=rf"(?:{_OWN_CHILD}|{_SIBLING_AGENT}|{_PARTNER}|{_PARENT})\|(?:が|は|も)\||(?:友達|弟|妹|犬|猫|私|ママ|母|自分|{_THING})\|を\|",
    ),
    _r(
        "parent.act",
        "parent_harm",
        rf"{_OWN_CHILD}\|(?:を|に|の\|[^|]+\|(?:を|に))\|(?:[^|]+\|){{0,4}}?{_HARM_PHRASE}\|(?:{_PAST_ACT}|て\|(?:居る|しまう)|(?:の|事|こと)\|が\|(?:止める|止まる|止む))",
        agent_block=rf"(?:{_PARTNER}|{_PARENT}|{_SIBLING_AGENT}|人|誰|先生|保育士)\|(?:が|は|も)\|",
    ),
    _r(
        "parent.shake",
        "parent_harm",
        rf"(?:強い|激しい|思い切り)\|?(?:く\|)?揺さぶる\|{_PAST_ACT}",
        agent_block=rf"(?:{_PARTNER}|{_SIBLING_AGENT})\|(?:が|は)\|",
    ),
    _r("parent.abuse_fear", "parent_harm", r"虐待\|為る\|(?:て\|仕舞う|ちゃう|そう|て\|居る)"),
    _r("parent.kill_fear", "parent_harm", rf"{_OWN_CHILD}\|を\|殺す\|"),
    _r(
        "parent.what_i_do",
        "parent_harm",
        rf"{_OWN_CHILD}\|に\|何\|を\|(?:為る|する)\|か\|(?:分かる|わかる)\|(?:ない|ず)",
    ),
    _r("parent.cant_love", "parent_harm", rf"{_OWN_CHILD}\|が\|憎い"),
    # --- a child being harmed, seen or heard by someone else
    _r(
        "abuse.other_child_hit",
        "abuse",
        rf"{_OTHER_CHILD}\|(?:[^|]{{1,}}\|){{0,8}}?(?:{_HARM}|怒鳴る|虐待)\|(?:れる|為る\|れる)",
        agent_block=r"(?:学校|幼稚園|保育園|園|クラス)\|で\||(?:友達|お友達|同級生|先輩|後輩|友人)\|(?:に|と|から)\||喧嘩|けんか|ケンカ",
    ),
    _r(
        "abuse.adult_hits_child",
        "abuse",
        rf"(?:{_PARTNER}|{_PARENT}|継父|義父|大人|先生|ママ友|知人|友人|友達|姉|妹|兄|弟|叔母|伯母|叔父|伯父|祖母|祖父)\|(?:が|は)\|(?:[^|]+\|){{0,5}}?(?:{_OWN_CHILD}|孫|姪|甥|姪っ子|甥っ子|園児|生徒|児童|子供たち|子供達)\|(?:を|に)\|(?:[^|]+\|){{0,6}}?{_HARM}",
    ),
    _r(
        "abuse.grandchild",
        "abuse",
        rf"(?:孫|姪|甥|姪っ子|甥っ子)\|(?:が|は|の)\|(?:[^|]+\|){{0,5}}?(?:{_HARM}\|れる|あざ|痣|火傷|やけど|怪我)"
        rf"|(?:孫|姪|甥|姪っ子|甥っ子)\|(?:が|は)\|(?:[^|]+\|){{0,3}}?(?:{_PARENT})\|(?:が|は)\|(?:怖い|恐い)",
        agent_block=r"(?:転ぶ|ぶつける|落ちる|遊ぶ|運動|部活|サッカー|野球)",
    ),
    _r(
        "abuse.violence_to_child",
        "abuse",
        rf"(?:{_OWN_CHILD}|孫|姪|甥)\|に\|暴力\|を\|(?:振るう|ふるう)",
        agent_block=r"(?:私|自分)\|(?:が|は)\|",
    ),
    _r(
        "abuse.crying_alone",
        "abuse",
        rf"{_NEIGHBOUR}\|(?:[^|]{{1,}}\|){{0,14}}?(?:夜中|深夜|毎晩|何日|何時間|一人)\|(?:[^|]+\|){{0,4}}?泣く"
        rf"|(?:夜中|深夜|真夜中)\|(?:に\|)?(?:[^|]+\|){{0,2}}?{_NEIGHBOUR}\|(?:[^|]{{1,}}\|){{0,8}}?(?:外|玄関|ベランダ|廊下)\|(?:[^|]+\|){{0,3}}?泣く",
    ),
    _r(
        "abuse.screams",
        "abuse",
        rf"{_NEIGHBOUR}\|(?:[^|]{{1,}}\|){{0,14}}?(?:悲鳴|泣き叫ぶ|叫ぶ|叫び声|怒鳴り声|どなり声|怒鳴る\|声|罵声|怒号|叩く\|音|怒鳴る\|れる)",
    ),
    _r(
        "abuse.outside",
        "abuse",
        rf"{_OTHER_CHILD}\|(?:[^|]{{1,}}\|){{0,16}}?(?:外|ベランダ|玄関)\|(?:に\|)?(?:(?:[^|]+\|){{0,5}})?(?:出す\|れる|締め出す|立たせる\|れる|待たせる\|れる|立つ\|せる\|れる|放置|追い出す)",
    ),
    _r(
        "abuse.shut_out",
        "abuse",
        r"(?:ベランダ|外|家|玄関)\|(?:に|から|で)\|(?:[^|]+\|){0,3}?(?:締め出す|追い出す|待たせる)\|れる",
    ),
    _r(
        "abuse.bruises",
        "abuse",
        rf"(?:{_OTHER_CHILD}|{_OWN_CHILD}|女の子|男の子|お子さん|園児|児童|生徒|教え子)\|(?:[^|]{{1,}}\|){{0,30}}?(?:あざ|痣|火傷|やけど|傷|跡)\|(?:[^|]+\|){{0,3}}?(?:有る|ある|だらけ|沢山|たくさん|いっぱい|一杯|いつも|幾つ|複数|何箇所|何か所|見付ける|見つける|発見)",
        agent_block=r"(?:転ぶ|ぶつける|落ちる)",
    ),
    _r(
        "abuse.neglect",
        "abuse",
        rf"(?:{_OTHER_CHILD}|妹|姉|弟|兄|娘|息子)\|(?:[^|]{{1,}}\|){{0,10}}?(?:御飯|ご飯|食事|食べ物)\|(?:[^|]+\|){{0,3}}?(?:貰う|もらう|貰える|もらえる|食べる\|せる|与える|あげる|上げる)\|(?:て\|)?(?:居る\|)?(?:れる\|)?(?:ない|無い)",
    ),
    _r(
        "abuse.neglect2",
        "abuse",
        rf"(?:{_OTHER_CHILD})\|(?:[^|]{{1,}}\|){{0,12}}?(?:痩せる|ガリガリ|がりがり|同じ\|服|放置)",
    ),
    # a child's own cry heard: 「痛い、やめて」という子どもの声
    _r(
        "abuse.heard_cry",
        "abuse",
        r"(?:痛い|やめる\|て|止める\|て|助ける\|て|ごめんなさい|御免なさい)\|(?:[^|]{1,}\|){0,5}?"
        r"(?:子供|子|男の子|女の子)\|の\|(?:声|悲鳴|叫び声)",
        negatable=False,
    ),
    # not let into the house (家に入れてもらえず外で待っている)
    _r(
        "abuse.not_let_in",
        "abuse",
        rf"(?:{_OTHER_CHILD}|{_OWN_CHILD}|男の子|女の子|お子さん)\|(?:[^|]{{1,}}\|){{0,12}}?(?:家|部屋|うち)\|に\|"
        r"入れる\|て\|(?:貰う|もらう|貰える|もらえる)\|(?:ず|ない)",
        agent_block=r"(?:友達|友人|お友達|親戚|祖父母|祖母|祖父|お婆ちゃん|お爺ちゃん)\|の\|(?:家|うち|部屋)",
        negatable=False,
    ),
    # shut in a cage, a closet or a shed
    _r(
        "abuse.caged",
        "abuse",
        rf"(?:{_OWN_CHILD}|男の子|女の子|お子さん|{_OTHER_CHILD})\|(?:が|は|を)\|(?:[^|]+\|){{0,3}}?"
        r"(?:ケージ|檻|押し入れ|押入れ|物置|納戸|車)\|に\|(?:[^|]+\|){0,2}?(?:入れる|閉じ込める)\|れる",
    ),
    # an adult who does not feed a child (元妻が子どもに食事を与えていない)
    _r(
        "abuse.not_fed",
        "abuse",
        rf"(?:{_PARTNER}|{_PARENT}|元妻|元夫)\|(?:が|は)\|(?:[^|]+\|){{0,3}}?(?:{_OWN_CHILD}|孫|姪|甥|連れ子)\|に\|"
        r"(?:[^|]+\|){0,2}?(?:御飯|ご飯|食事|食べ物|ミルク)\|を\|(?:[^|]+\|){0,2}?"
        r"(?:与える|あげる|上げる|食べる\|せる|やる|遣る)\|(?:て\|)?(?:居る\|)?(?:ない|無い|ず)",
        negatable=False,
    ),
    # the child named first: 夫の連れ子に夫が手を上げている
    _r(
        "abuse.child_first",
        "abuse",
        rf"(?:{_OWN_CHILD}|連れ子|孫|姪|甥)\|(?:に|を)\|(?:{_PARTNER}|{_PARENT}|継父|義父|大人)\|(?:が|は)\|"
        rf"(?:[^|]+\|){{0,2}}?{_HARM_PHRASE}",
    ),
    # an adult doing something sexual to a child
    _r(
        "abuse.sexual_act",
        "abuse",
        rf"(?:{_PARTNER}|{_PARENT}|継父|義父|叔父|伯父|祖父|兄|大人|男)\|(?:が|は)\|(?:[^|]+\|){{0,3}}?"
        rf"(?:{_OWN_CHILD}|孫|姪|甥|連れ子)\|(?:に|と|を)\|(?:[^|]+\|){{0,2}}?性的",
        negatable=False,
    ),
    _r("abuse.left_alone", "abuse", r"(?:何日|何時間|ずっと|毎日)\|(?:も\|)?(?:[^|]+\|){0,3}?放置\|為る\|れる"),
    _r("abuse.neglect_word", "abuse", r"(?:ネグレクト|育児放棄)\|(?:為る\|れる|さ|て\|居る)"),
    _r("abuse.sexual", "abuse", r"(?:性的\|虐待|性的\|な\|悪戯|性的\|ないたずら)"),
    # marks no fall leaves: a cigarette burn, a hand- or finger-shaped bruise
    _r(
        "abuse.marks",
        "abuse",
        r"(?:タバコ|たばこ|煙草)\|(?:を\|)?(?:[^|]+\|){0,2}?押し付ける|根性\|焼き"
        r"|(?:指|手)\|の\|(?:形|跡)\|(?:[^|]+\|){0,3}?(?:痣|あざ|跡)",
        negatable=False,
    ),
    # an adult at night in a child's room, touching (母の彼氏が夜に部屋に入ってきて体をさわってきます)
    _r(
        "abuse.touching",
        "abuse",
        r"(?:体|胸|お尻|尻|下着|股|胸元)\|(?:を|に)\|(?:[^|]+\|){0,2}?(?:触る|撫でる|脱がす)\|(?:て\|)?(?:来る|れる)"
        rf"|(?:{_PARENT}\|の\|(?:彼氏|恋人|再婚\|相手)|継父|義父|叔父|伯父)\|(?:が|は)\|(?:[^|]+\|){{0,6}}?(?:部屋|布団)\|に\|(?:[^|]+\|){{0,1}}?入る\|て\|来る",
    ),
    # children alone for days (3日おとながいない)
    _r(
        "abuse.alone_days",
        "abuse",
        rf"(?:[0-9]+|何|数|二|三|四|五)\|(?:日|日間|晩)\|(?:[^|]+\|){{0,3}}?(?:大人|{_PARENT}|誰)\|(?:が|も|は)\|(?:[^|]+\|){{0,2}}?(?:居る\|ない|帰る\|て\|来る\|ない)",
        negatable=False,
    ),
    # --- a child writing about a parent (the writer is hit, shut out, not fed)
    _r(
        "child.parent_hits_me",
        "child_sos",
        rf"{_PARENT}\|(?:の\|(?:彼氏|恋人)\|)?(?:に|から)\|(?:[^|]+\|){{0,5}}?{_HARM}\|れる",
    ),
    _r(
        "child.parent_ga_passive",
        "child_sos",
        rf"{_PARENT}\|(?:が|は)\|(?:[^|]+\|){{0,4}}?{_HARM}\|れる",
        agent_block=r"(?:夫|旦那|主人|彼氏)\|(?:に|から)\|",
    ),
    _r(
        "child.parent_comes_at_me",
        "child_sos",
        rf"{_PARENT}\|(?:が|は)\|(?:[^|]+\|){{0,6}}?{_HARM}\|て\|来る",
    ),
    _r(
        "child.told_die",
        "child_sos",
        rf"{_PARENT}\|(?:から|に|が|は)\|(?:[^|]+\|){{0,3}}?(?:「\|)?(?:死ぬ|消える|要る\|ない|邪魔|産む\|ない|生む\|ない)\|(?:」\|)?(?:と|って)\|(?:[^|]+\|){{0,1}}?(?:言う|怒鳴る)\|れる",
    ),
    # 「産まなきゃよかった」と言われる: told one should not have been born
    _r(
        "child.unwanted",
        "child_sos",
        r"(?:産む|生む)\|(?:[^|]+\|){0,2}?(?:良い|よい)\|た\|(?:」\|)?(?:と|って)\|(?:[^|]+\|){0,2}?(?:言う|怒鳴る)\|れる",
    ),
    _r(
        "child.parent_does_me",
        "child_sos",
        rf"{_PARENT}\|(?:が|は)\|(?:[^|]+\|){{0,6}}?(?:僕|私|俺|あたし|わたし)\|(?:を|の|に|と)\|(?:[^|]+\|){{0,3}}?{_HARM}",
    ),
    _r(
        "child.parent_does",
        "child_sos",
        rf"{_PARENT}\|(?:が|は)\|(?:僕|私|俺|あたし|わたし|うち)\|(?:を|に)\|(?:[^|]+\|){{0,2}}?{_HARM}",
    ),
    _r(
        "child.parents_fight",
        "child_sos",
        rf"{_PARENT}\|(?:が|は)\|(?:{_PARENT}|侭)\|(?:を|に)\|(?:[^|]+\|){{0,2}}?{_HARM}",
    ),
    # the parent away for days (上の階の子…親は何日も帰っていない)
    _r(
        "abuse.parent_away",
        "abuse",
        rf"{_PARENT}\|(?:が|は|も)\|(?:[^|]+\|){{0,3}}?(?:何日|ずっと|何週間)\|(?:も\|)?(?:[^|]+\|){{0,2}}?(?:帰る\|て\|(?:居る\||来る\|)?(?:ない|ず)|居る\|ない)",
    ),
    _r("child.touched", "child_sos", rf"{_PARENT}\|(?:の\|(?:彼氏|恋人)\|)?(?:に|から)\|(?:[^|]+\|){{0,8}}?触る\|れる"),
    _r(
        "child.thrown_out",
        "child_sos",
        r"(?:親|父|母|父親|母親|お母さん|お父さん|ママ|パパ)\|(?:に|から)\|(?:家|うち)\|(?:を|から)\|(?:追い出す|締め出す)\|れる",
    ),
    # --- domestic violence
    _r(
        "dv.partner_hits",
        "dv",
        rf"{_PARTNER}\|(?:に|から)\|(?:[^|]+\|){{0,3}}?(?:{_HARM}|暴力|怒鳴る|脅す|脅迫|監視|引っ張る|掴む|びんた|平手打ち|平手\|打ち)\|(?:[^|]+\|){{0,2}}?(?:れる|受ける|振るう\|れる)",
    ),
    _r(
        "dv.violence",
        "dv",
        rf"(?:{_PARTNER}\|(?:から|に|の)\|)?(?:暴力|dv|ＤＶ|ドメスティックバイオレンス)\|(?:を\|)?(?:受ける|振るう\|れる|為る\|れる|被害(?!者\|(?:を\|)?(?:支援|保護|救済)))",
    ),
    _r(
        "dv.partner_does",
        "dv",
        rf"{_PARTNER}\|(?:が|は|も)\|(?:[^|]+\|){{0,10}}?(?:暴力\|を\|(?:振るう|ふるう)|包丁|刃物|ナイフ|物\|を\|(?:壊す|投げる|投げ付ける)|壁\|に\|穴|暴れる|首\|を\|(?:絞める|締める|しめる)|(?:私|自分)\|を\|(?:[^|]+\|){{0,2}}?{_HARM}|火\|を\|(?:つける|付ける|放つ)|(?:外出|外|実家|連絡|仕事|友達|友人|電話|スマホ|携帯|買い物)\|(?:を\|)?禁止\|為る|携帯\|(?:[^|]+\|){{0,2}}?チェック|スマホ\|(?:[^|]+\|){{0,2}}?チェック)",
    ),
    # the partner's violence or abuse going on (夫の暴言と暴力に耐えられません, 夫の暴力が怖い)
    _r(
        "dv.partners_violence",
        "dv",
        rf"{_PARTNER}\|(?:の|から\|の)\|(?:[^|]+\|){{0,3}}?(?:暴力|暴言|ＤＶ|dv|モラハラ)\|(?:と\|(?:[^|]+\|){{0,2}}?)?"
        r"(?:に\|耐える|が\|(?:怖い|恐い|酷い|ひどい|止まる\|ない|続く|エスカレート)|で\|(?:怪我|痣|あざ|骨折)|から\|逃げる|を\|受ける)",
        negatable=False,
        info=True,
    ),
    # told not to contact anyone or go out (友達と連絡を取るなと言われる)
    _r(
        "dv.forbidden",
        "dv",
        rf"{_PARTNER}\|(?:[^|]{{1,}}\|){{0,12}}?(?:連絡|外出|外|実家|友達|友人|家族|親)\|(?:を\||に\||と\|)?"
        r"(?:[^|]+\|){0,2}?(?:な|禁止)\|(?:と|って)\|(?:言う|命令\|為る)\|れる",
        negatable=False,
    ),
    _r("dv.money_taken", "dv", r"(?:お金|金|給料|生活費|通帳)\|を\|(?:全部\||全て\|)?取り上げる\|れる"),
    _r("dv.partner_fear", "dv", rf"{_PARTNER}\|(?:が|の\|こと\|が)\|(?:怖い|恐い|恐ろしい)"),
    _r(
        "dv.threat",
        "dv",
        rf"殺す\|(?:ぞ\||て\|やる\||ちゃう\||」\|)*(?:と|って)\|(?:[^|]+\|){{0,3}}?(?:れる|脅す)|殺す\|と\|脅す|殺す\|れる\|(?!た\|)"
        rf"|{_PARTNER}\|(?:が|は|に|から)\|(?:[^|]+\|){{0,6}}?殺す\|(?:ぞ|気|て\|やる|と)",
    ),
    _r(
        "dv.told_die",
        "dv",
        rf"{_PARTNER}\|(?:から|に|が|は)\|(?:[^|]+\|){{0,4}}?(?:(?:死ぬ|消える|出る\|て\|行く|役立つ\|ず|役立たず|馬鹿|ばか|くず|屑|ごみ|ゴミ|能無し|ぶす|でぶ)\|(?:、\||」\|)?)+"
        rf"(?:と|って)\|(?:[^|]+\|){{0,2}}?(?:言う|怒鳴る|罵る)",
    ),
    _r("dv.strangled", "dv", r"首\|を\|(?:絞める|締める|しめる)\|(?:れる|られる)"),
    _r(
        "dv.money",
        "dv",
        r"(?:生活費|お金|金)\|を\|(?:[^|]+\|){0,2}?(?:渡す|呉れる|くれる|貰える|もらえる|渡す\|て\|呉れる)\|(?:[^|]+\|){0,2}?(?:ない|ず|無い)",
    ),
    _r(
        "dv.confined",
        "dv",
        r"(?:外出|外|実家|連絡)\|(?:を|も|に)?\|?(?:[^|]+\|){0,2}?(?:禁止\|為る\|れる|出す\|て\|(?:貰える|貰う)\|ない|出る\|せる\|て\|(?:貰える|貰う)\|ない|為る\|せる\|て\|貰える\|ない|させる\|て\|もらえる\|ない)",
    ),
    _r(
        "dv.permission",
        "dv",
        rf"{_PARTNER}\|の\|(?:許可|許し|同意)\|(?:なし|無し|無く|なく|が\|(?:無い|ない))\|(?:[^|]+\|){{0,4}}?"
        r"(?:出る|出掛ける|外出|行く|会う|使う|買う)",
        negatable=False,
    ),
    _r(
        "dv.money_control",
        "dv",
        r"(?:お金|金|生活費|家計|給料)\|を\|(?:全部\||全て\|)?管理\|為る\|れる|使う\|せる\|て\|(?:貰える|もらえる|呉れる)\|(?:ない|ず)",
    ),
    _r(
        "dv.phone",
        "dv",
        r"(?:スマホ|携帯|電話|財布|通帳|キャッシュカード|カード|保険証|パスポート|旅券|在留カード)\|(?:を\||も\|)?(?:取り上げる|取る|壊す|隠す)\|(?:れる)",
    ),
    _r(
        "dv.verbal",
        "dv",
        rf"(?:{_PARTNER}\|(?:から|に)\|(?:[^|]+\|){{0,4}}?)?(?:暴言\|(?:[^|]+\|){{0,2}}?(?:言う|吐く|浴びる)\|(?:れる|せる)|人格\|を\|否定)",
    ),
    _r("dv.monitored", "dv", r"監視\|為る\|れる"),
    _r("dv.stalker", "dv", r"(?:付き纏う|つきまとう|ストーカー|待ち伏せ)"),
    _r("dv.escape", "dv", rf"(?:{_PARTNER}|家)\|(?:から\|)?(?:[^|]+\|){{0,3}}?(?:逃げる|逃げ出す)\|(?:たい|う|よう)"),
    _r("dv.shelter", "dv", r"シェルター\|(?:に\|)?(?:入る|行く|逃げる)"),
    _r("dv.forced", "dv", r"(?:性行為|行為|セックス)\|を\|強要"),
    _r(
        "dv.hit_plain",
        "dv",
        r"\|(?:殴る|蹴る|ぶつ|打つ|ど突く|しばく)\|れる\|(?!(?:たら|た\|ら|ば)\|)",  # ぶたれたら叩き返す: a what-if
        agent_block=rf"(?:{_OWN_CHILD}|{_PEER}|{_OTHER_CHILD}|友達)\|(?:が|は|も|に|と)\||(?:学校|幼稚園|保育園|園)\|で\||ごっこ",
    ),
    _r(
        "dv.next_you",
        "dv",
        r"(?:次|今度)\|は\|(?:御前|お前|おまえ|てめえ|貴様)\|(?:だ|の\|番)|(?:御前|お前|おまえ)\|も\|(?:同じ\|目|こう\|為る)",
        negatable=False,
    ),
    _r("dv.cant_go_home", "dv", r"(?:怖い|恐い)\|て\|家\|に\|帰る\|(?:れる|へん|ない)"),
    # --- medical emergencies, accidents, a missing child
    _r(
        "med.not_breathing",
        "child_danger",
        r"(?:息|呼吸)\|(?:を\||が\|)?(?:為る\|)?(?:て\|居る\||てる\||とる\|)?(?:ます\|)?(?:ない|ず|へん)\|",
        negatable=False,
    ),
    _r(
        "med.not_breathing2",
        "child_danger",
        r"(?:息|呼吸)\|(?:が\|)?(?:出来る|できる)\|(?:て\|居る\||てる\|)?(?:ない|へん|ず)",
        negatable=False,
    ),
    _r("med.breath_stopped", "child_danger", r"(?:息|呼吸)\|が\|止まる\|(?:て\|居る|た|てる)", info=True),
    _r(
        "med.no_response",
        "child_danger",
        r"(?:反応|意識|返事)\|(?:が\|)?(?:無い|ない|為る\|ない|ず|戻る\|ない)",
        agent_block=r"挨拶|あいさつ|メール|ライン|ＬＩＮＥ|line|既読|手紙|メッセージ|問い合わせ|申し込む|申請",
        negatable=False,
    ),
    _r(
        "med.unconscious",
        "child_danger",
        r"(?:意識\|不明|意識\|が\|朦朧|呼ぶ\|掛ける\|(?:に|て\|も)\|(?:[^|]+\|){0,2}?(?:反応|起きる))",
    ),
    _r(
        "med.breath_odd",
        "child_danger",
        r"(?:呼吸|息)\|が\|(?:浅い|変|おかしい|可笑しい|荒い|弱い|止まる\|そう)",
        info=True,
    ),
    _r(
        "med.lost_consciousness",
        "child_danger",
        r"意識\|を\|失う|気\|を\|失う|目\|を\|(?:開ける|覚ます)\|(?:ます\|)?(?:ない|ず|へん|ん)",
        negatable=False,
        info=True,
    ),
    _r(
        "med.not_moving",
        "child_danger",
        rf"{_OWN_CHILD}\|が\|(?:[^|]+\|){{0,4}}?動く\|(?:ない|ず)\|?(?!.*(?:寝返り|歩く|ハイハイ))",
        agent_block=r"寝返り|ハイハイ|寝る\|時|寝相|手足|足|腕|指|首|目",
        negatable=False,
        info=True,
    ),
    _r(
        "med.run_over",
        "child_danger",
        r"(?:車|トラック|バイク|自動車)\|(?:に|と)\|(?:[^|]+\|){0,1}?(?:ひく|はねる|ぶつかる|衝突)\|(?:れる|た)|交通事故",
        info=True,
    ),
    _r(
        "med.about_to_fall",
        "child_danger",
        r"(?:ベランダ|窓|手すり|屋根|窓枠|柵)\|(?:[^|]+\|){0,6}?落ちる\|(?:そう|掛ける|かける)",
        info=True,
    ),
    _r("med.hanging", "child_danger", r"(?:窓|ベランダ|手すり)\|(?:[^|]+\|){0,8}?ぶら下がる"),
    _r(
        "med.limp",
        "child_danger",
        r"(?:ぐったり)\|(?:[^|]+\|){0,3}?(?:動く\|(?:ない|ず)|反応|意識|泣く\|ない|目\|を\|開ける)",
        negatable=False,
    ),
    _r(
        "med.seizure",
        "child_danger",
        r"(?:痙攣|けいれん|引き付け|引き付ける|ひきつけ)\|(?:[^|]+\|){0,5}?(?:止まる\|(?:ない|ず|へん)|反応|呼ぶ|意識|続く|白目|泡|硬直|震える)",
        info=True,
        negatable=False,
    ),
    _r(
        "med.seizure_now",
        "child_danger",
        # 起こしたことがある, 起こした時: a history or a hypothetical, not a seizure now
        r"(?:痙攣|けいれん|引き付け|引き付ける|ひきつけ)\|(?:を\|)?(?:起こす|為る)\|"
        r"(?:て\|居る|てる|た(?!\|(?:こと|事|経験|時|とき|場合|後|ら))|とる)",
        info=True,
    ),
    _r(
        "med.choking",
        "child_danger",
        r"(?:喉|のど)\|に\|(?:[^|]+\|){0,2}?詰まる\|(?:て|た|居る|てる|らせる|せる)|窒息\|為る\|(?:て|た|そう|てる)",
        info=True,
    ),
    # a swallowed hard object (food is left out: 飴を飲み込んだ is mostly harmless)
    _r(
        "med.swallowed_object",
        "child_danger",
        rf"(?:ビー玉|おはじき|硬貨|コイン|小銭|一円玉|十円玉|画鋲|ピン|安全ピン|ネジ|釘|ピアス|イヤリング|指輪|ボタン(?!\|電池)|部品|キャップ|ビーズ|クリップ|ホッチキス|針)\|(?:[^|]+\|){{0,3}}?(?:飲み込む|吸い込む|誤飲|飲む|喉\|に\|詰まる)\|{_DONE}",
        agent_block=r"掃除機|ダイソン|ルンバ",  # the vacuum cleaner swallowed it
        info=True,
    ),
    # face down in the bath, floating
    _r(
        "med.floating",
        "child_danger",
        r"(?:顔|うつ伏せ|俯せ|うつぶせ)\|(?:[^|]+\|){0,4}?(?:浮く|浮かぶ|沈む)\|",
        info=True,
    ),
    _r(
        "med.weak_response",
        "child_danger",
        r"(?:反応|返事)\|(?:が\||も\|)?(?:薄い|鈍い|乏しい|弱い|おかしい|可笑しい)",
        negatable=False,
        info=True,
    ),
    # the child missing and searched for (むすめがいない！…もう30分さがしてる)
    _r(
        "med.missing_search",
        "child_danger",
        rf"{_OWN_CHILD}\|(?:が|も)\|居る\|(?:ない|ず)\|(?:[^|]{{1,}}\|){{0,24}}?(?:探す|捜す)\|(?:て\|)?(?:居る|てる|ても|ます|た)"
        rf"|目\|を\|離す\|た\|(?:隙|好き)\|(?:[^|]{{1,}}\|){{0,6}}?(?:居る\|ない|見える\|ない)",
        negatable=False,
        info=True,
    ),
    _r(
        "med.call_no_answer",
        "child_danger",
        r"呼ぶ\|(?:て|で)\|も\|(?:[^|]+\|){0,3}?(?:目\|を\|開ける|反応|起きる|返事|泣く)\|(?:為る\|)?(?:ます\|)?(?:ない|ず|へん|ん)",
        negatable=False,
    ),
    _r("med.purple", "child_danger", r"(?:唇|顔|顔色)\|が\|(?:紫|真っ青|青い|青紫)", info=True),
    _r(
        "med.fall_high",
        "child_danger",
        r"(?:ベランダ|窓|階段|二階|2階|屋根|高い\|所|高い\|ところ|遊具|滑り台)\|(?:から)\|(?:[^|]+\|){0,2}?(?:落ちる|転落|転げ落ちる)\|(?:為る\|)?(?:ます\|)?(?:て|た|とる)"
        r"|(?:[0-9０-９一二三四五]+\|階|ベランダ|窓|屋根|柵)\|から\|(?:[^|]+\|){0,4}?(?:落ちる|転落|落っこちる)\|(?:ます\|)?た",
        info=True,
    ),
    _r(
        "med.fall_hurt",
        "child_danger",
        r"(?:落ちる|落っこちる|転落|転ぶ|打つ|倒れる|ぶつかる|はねる)\|(?:て\|)?(?:[^|]+\|){0,6}?"
        r"(?:動く\|(?:ない|ず)|意識|反応|吐く|起きる\|(?:ない|ず)|起き上がる\|(?:ない|ず)|泣く\|ない)",
        info=True,
    ),
    _r(
        "med.head",
        "child_danger",
        r"頭\|を\|(?:強い\|く\|)?(?:打つ|ぶつける)\|(?:[^|]+\|){0,4}?(?:吐く|意識|反応|ぐったり|血|動く\|ない)",
        info=True,
    ),
    _r(
        "med.drowning",
        "child_danger",
        r"(?:溺れる|おぼれる)\|(?:て|た|かける|掛ける|そう)|(?:お風呂|風呂|浴槽|プール|海|川|水)\|(?:で|に)\|(?:[^|]+\|){0,2}?沈む\|"
        r"|(?:池|川|海|プール|用水路|水路|浴槽|湯船|お風呂|風呂|沼)\|に\|(?:[^|]+\|){0,1}?(?:落ちる|落っこちる|転落|嵌まる|はまる)\|(?:て|た)",
        info=True,
    ),
    _r(
        "med.blood",
        "child_danger",
        r"(?<!鼻)(?<!鼻\|)(?:血|出血)\|(?:が\|)?(?:[^|]+\|){0,2}?(?:たくさん|沢山|大量|いっぱい|一杯|止まる\|(?:ない|ず))",
        info=True,
        negatable=False,
    ),
    _r(
        "med.swept",
        "child_danger",
        r"(?:川|海|波)\|(?:に|で)\|(?:[^|]+\|){0,2}?(?:流す|さらう|攫う|飲む|呑む|飲み込む)\|れる",
        info=True,
        negatable=False,
    ),
    _r(
        "med.kidnap",
        "child_danger",
        r"誘拐|連れ去る\|れる|連れ去り"
        r"|(?:知る\|ない|不審)\|(?:[^|]+\|){0,5}?(?:乗せる\|れる|連れる\|て\|行く\|れる|連れ込む|連れる\|れる)",
        info=True,
    ),
    # a burn by its extent: white skin, a palm-wide blister, skin peeling (a small blister is a clinic question)
    _r(
        "med.burn_severe",
        "child_danger",
        r"(?:真っ白|広範囲|全体|一面)\|(?:だ\||に\||が\|)?(?:[^|]+\|){0,1}?(?:水ぶくれ|水膨れ|水脹れ)"
        r"|(?:水ぶくれ|水膨れ|水脹れ|火傷|やけど)\|(?:[^|]+\|){0,4}?(?:広範囲|皮\|が\|(?:剥ける|むける)|爛れる|ただれる)",
        info=True,
    ),
    _r("med.foam", "child_danger", r"口\|から\|泡\|を\|吹く|(?:急|突然)\|に\|ぐったり", info=True),
    _r(
        "med.anaphylaxis",
        "child_danger",
        r"アナフィラキシー\|(?:で\||(?:[^|]+\|){0,2}?(?:起こす|起きる|発症|出る)\|(?:て|た|居る|てる))"
        r"|(?:喉|のど)\|が\|(?:[^|]+\|){0,1}?腫れる",
        info=True,
    ),
    _r(
        "med.seizure_long",
        "child_danger",
        r"発作\|が\|(?:[^|]+\|){0,4}?(?:続く|止まる\|(?:ない|ず|へん))|発作\|で\|(?:[^|]+\|){0,2}?(?:意識|反応|唇)",
        info=True,
    ),
    # locked in the car with the child inside
    _r(
        "med.locked_in_car",
        "child_danger",
        rf"{_OWN_CHILD}\|を\|(?:[^|]+\|){{0,2}}?(?:乗せる|残す|置く)\|た\|(?:侭|まま)\|(?:[^|]+\|){{0,3}}?(?:鍵|ロック|キー)",
        negatable=False,
    ),
    _r(
        "med.collision",
        "child_danger",
        rf"{_OWN_CHILD}\|(?:が|は)\|(?:[^|]+\|){{0,4}}?(?:車|トラック|バイク|自動車)\|(?:と|に)\|(?:ぶつかる|衝突|接触)",
        info=True,
    ),
    _r("med.burn", "child_danger", r"(?:熱湯|大火傷|大やけど|火傷\|が\|酷い)"),
    _r(
        "med.bleeding",
        "child_danger",
        r"(?<!鼻)血\|が\|止まる\|(?:ない|ず|へん)|大量\|に\|?出血|出血\|が\|止まる\|ない",
    ),
    _r(
        "med.missing",
        "child_danger",
        rf"{_OWN_CHILD}\|(?:が|と\|)?\|?(?:居る\|ない\|成る|居る\|ず\|[^|]+\|成る|(?:見付かる|見当たる)\|ない|行方不明|行方\|不明|迷子\|に\|成る\|(?!かける))",
        info=True,
    ),
    _r(
        "med.not_found",
        "child_danger",
        rf"(?:{_OWN_CHILD}(?!\|の\|(?!姿\||行方\|))|探す)\|(?:[^|]+\|){{0,8}}?(?:(?:見付かる|見当たる)\|ない|居る\|ない\|成る|行方不明)",
        info=True,
    ),
    _r("med.missing_word", "child_danger", r"行方不明|行方\|不明|迷子\|(?:[^|]+\|){0,3}?見付かる\|ない", info=True),
    _r(
        "med.not_home",
        "child_danger",
        r"(?:夜|時間|連絡|門限)\|(?:[^|]+\|){0,6}?(?:帰る\|て\|来る\|(?:ない|ず)|帰宅\|為る\|(?:ない|ず))|帰る\|て\|来る\|ない\|(?:[^|]{1,}\|){0,4}(?:連絡|警察|心配|暗い|暗く)",
        info=True,
    ),
    _r(
        "med.car",
        "child_danger",
        rf"(?:車|車内)\|(?:の\|中\|)?(?:に|で)\|(?:[^|]+\|){{0,5}}?(?:置き去り|閉じ込める|閉じ込む|残す|置く\|て\|(?:行く|来る|出る|出かける|買い物)|置く\|た\|(?:まま|侭)|寝る\|(?:て\|居る\||た\|)?(?:まま|侭))"
        rf"|{_OWN_CHILD}\|を\|(?:[^|]+\|){{0,2}}?車\|(?:の\|中\|)?に\|(?:[^|]+\|){{0,2}}?(?:置き去り|閉じ込める|残す|置く\|た\|(?:まま|侭))",
    ),
    _r(
        "med.locked_in",
        "child_danger",
        rf"{_OWN_CHILD}\|(?:を|が)\|(?:[^|]+\|){{0,3}}?(?:置く\|た\|(?:まま|侭)|閉じ込める)",
    ),
    # --- poisoning and swallowed objects
    _r(
        "poison.swallowed",
        "poisoning",
        rf"(?:洗剤|ジェルボール|ジェル\|ボール|漂白剤|ウイスキー|ビール|ワイン|焼酎|日本酒|防虫剤|ナフタリン|芳香剤|入浴剤|シャンプー|マニキュア|化粧品|香水|電子タバコ|ハイター|カビキラー|柔軟剤|消臭剤|除光液|薬|錠剤|睡眠薬|ボタン電池|電池|磁石|マグネット|煙草|たばこ|タバコ|吸い殻|灯油|殺虫剤|乾燥剤|保冷剤|化粧水|酒|お酒|アルコール|毒|農薬)\|(?:[^|]+\|){{0,4}}?(?:飲む|飲み込む|食べる|舐める|嘗める|齧る|噛む|しゃぶる|口\|に\|入れる|誤飲|誤食)\|{_DONE}",
        info=True,
    ),
    _r(
        "poison.product",
        "poisoning",
        rf"\|[^|]*(?:剤|薬|スプレー|液|シロップ|クリーナー|オイル|洗剤|電池)\|(?:[^|]+\|){{0,7}}?(?:飲む|飲み込む|舐める|嘗める|齧る)\|{_DONE}",
        info=True,
    ),
    # the thing named in one sentence, the swallowing in the next (ボタン電池が1個足りない。たぶん飲み込んだ;
    # 灯油、子どもが飲んだかも): only substances nobody eats or drinks on purpose
    _r(
        "poison.later",
        "poisoning",
        rf"(?:{_NON_FOOD})\|(?:[^|]{{1,}}\|){{0,20}}?(?:飲む|飲み込む|食べる|舐める|嘗める|齧る|噛む|口\|に\|入れる|誤飲|誤食)\|{_DONE}"
        rf"|(?:{_NON_FOOD})\|(?:[^|]{{1,}}\|){{0,12}}?口\|(?:[^|]+\|){{0,3}}?(?:濡れる|臭い|臭う|匂う|匂い|付く|真っ白|白い|べたべた|粉)",
        info=True,
    ),
    # in the mouth: 口の中にタバコの葉っぱが入ってた, 洗剤を口に入れていた
    _r(
        "poison.in_mouth",
        "poisoning",
        rf"口\|(?:の\|中\|)?(?:に|から)\|(?:[^|]+\|){{0,3}}?(?:{_NON_FOOD}|薬|錠剤)\|(?:[^|]+\|){{0,3}}?(?:入る|入れる|出る|出す|付く)\|{_DONE}"
        rf"|(?:{_NON_FOOD})\|(?:[^|]+\|){{0,3}}?口\|(?:の\|中\|)?に\|(?:[^|]+\|){{0,1}}?(?:入る|入れる)\|{_DONE}",
        info=True,
    ),
    _r("poison.word", "poisoning", r"(?:誤飲|誤食|中毒)\|(?:為る\|)?(?:た|て\|仕舞う|ちゃう)", info=True),
    # --- distress (kindness and the offer of a person; never a case without consent)
    _r("distress.limit", "distress", r"(?:限界|げんかい)(?!\|集落)", level="distress", negatable=False),
    # confidence as a parent gone, parenting itself felt as impossible or frightening
    _r(
        "distress.no_confidence",
        "distress",
        r"(?:育児|子育て|母親|父親|親)\|(?:に|の|として\|の|として\|)?\|?(?:[^|]+\|){0,2}?自信\|(?:が|も)\|"
        r"(?:無い|ない|無くなる|なくなる|持てる\|ない)",
        level="distress",
        negatable=False,
    ),
    _r(
        "distress.parenting_impossible",
        "distress",
        r"(?:育児|子育て)\|(?:は|が|なんて|って)\|(?:[^|]+\|){0,2}?(?:無理|怖い|恐い|苦痛|地獄)",
        level="distress",
    ),
    _r("distress.enduring", "distress", r"(?:ただ|毎日|ひたすら)\|(?:[^|]+\|){0,2}?耐える\|", level="distress"),
    _r(
        "distress.exhausted",
        "distress",
        r"(?:疲れ果てる|疲れ切る|疲れる\|(?:果てる|切る)|くたくた|ヘトヘト|へとへと|ボロボロ|ぼろぼろ|燃え尽きる)"
        r"|(?:怖い|こわい|異常|おかしい|可笑しい)\|(?:くらい|ぐらい|ほど)\|疲れる",
        level="distress",
    ),
    _r(
        "distress.tired_cant",
        "distress",
        r"(?:疲れる|しんどい|辛い|つらい)\|(?:[^|]+\|){0,4}?(?:もう|無理|限界|何も|頑張る\|ない)",
        level="distress",
        negatable=False,
    ),
    _r(
        "distress.cant_more",
        "distress",
        r"もう\|(?:[^|]+\|){0,2}?(?:無理|駄目|だめ|あかん|頑張る\|ない|頑張る\|れる\|ない|嫌|いや)"
        r"|もう\|何\|も\|(?:考える|出来る|できる|感じる)\|(?:れる\|)?(?:ない|ず)"
        r"|もう\|何\|も\|為る\|たい\|(?:無い|ない)",
        level="distress",
        negatable=False,
    ),
    _r(
        "distress.crying",
        "distress",
        r"(?:毎日|毎晩|ずっと|一人|ひとり|夜)\|(?:[^|]+\|){0,4}?泣く\|(?:て\|)?(?:居る|てる|ばかり|ます|た|仕舞う|の\|が\|日課)",
        level="distress",
    ),
    _r("distress.tears", "distress", r"(?:涙|なみだ)\|が\|(?:[^|]+\|){0,1}?(?:止まる\|ない|出る)", level="distress"),
    # what one cannot be or see any more (いいお母さんになれなくて, 先が見えない, 自分が何なのか分からなくなった)
    _r(
        "distress.failing",
        "distress",
        r"(?:良い|いい)\|(?:お母さん|母親|ママ|親|父親|お父さん|パパ|母|父)\|に\|(?:なれる|成る\|れる)\|(?:ない|ず)"
        r"|先\|が\|見える\|(?:ます\|)?(?:ない|ず)|自分\|が\|(?:何|誰)\|(?:[^|]+\|){0,3}?分かる\|(?:ない|ず)\|成る"
        r"|(?:寝顔|子供|娘|息子)\|に\|(?:[^|]+\|){0,1}?謝る\|(?:て\|)?(?:居る|てる|ます|ばかり)"
        r"|(?:まとも|正面|ろく|碌)\|(?:だ\||に\|)?(?:寝る|眠る)\|(?:て\|)?(?:居る\||てる\|)?(?:ない|ず)",
        level="distress",
        negatable=False,
    ),
    _r(
        "distress.lonely",
        "distress",
        r"(?:孤独|孤立|寂しい|淋しい|さみしい|一人ぼっち|独りぼっち|ひとりぼっち)",
        level="distress",
    ),
    _r(
        "distress.nobody",
        "distress",
        r"(?:誰|だれ)\|(?:に\||と\|)?(?:も)\|(?:[^|]+\|){0,2}?(?:頼る|相談|話す|言う|助ける|手伝う|分かる|居る)\|(?:[^|]+\|){0,3}?(?:ない|ず|へん|ん)",
        level="distress",
        negatable=False,
    ),
    _r(
        "distress.unfit",
        "distress",
        r"(?:(?<![^|])向く\|(?:て\|居る\||てる\|)?ない|母親\|失格|親\|失格|ママ\|失格|親\|に\|成る\|資格)",
        level="distress",
        negatable=False,
    ),
    _r(
        "distress.cant_love",
        "distress",
        r"(?:可愛い|かわいい)\|と\|(?:思える|思う)\|(?:ない|れる\|ない)|愛せる\|ない|愛する\|(?:れる|せる)\|ない",
        level="distress",
        negatable=False,
    ),
    _r(
        "distress.breaking",
        "distress",
        r"(?:壊れる|可笑しい\|成る|おかしい\|成る|狂う|折れる|潰れる|押し潰す|参る)\|(?:そう|て\|仕舞う\|そう|れる\|そう)",
        level="distress",
    ),
    _r("distress.hell", "distress", r"(?:地獄|絶望|生き地獄|どん底)", level="distress"),
    _r(
        "distress.self_blame",
        "distress",
        r"(?:自分|私)\|を\|責める|罪悪感|自己嫌悪|自分\|が\|(?:嫌|情けない|嫌い|許す\|ない)",
        level="distress",
    ),
    _r(
        "distress.irritated",
        "distress",
        r"(?:イライラ|いらいら|苛々|怒り)\|(?:(?:が|を|は)\|)?(?:止まる\|ない|抑える\|(?:れる\|)?ない|収まる\|ない|酷い|ひどい)",
        level="distress",
        negatable=False,
    ),
    _r(
        "distress.yelling",
        "distress",
        rf"(?:{_OWN_CHILD}\|に\|)?(?:怒鳴る|当たる|キレる)\|(?:て\|仕舞う|ちゃう|て\|ばかり|ばかり)",
        level="distress",
        agent_block=rf"(?:{_PARTNER}|{_PARENT})\|(?:が|は)\|",
    ),
    _r(
        "distress.lose_control",
        "distress",
        r"(?:自分|感情|怒り)\|(?:[^|]+\|){0,2}?(?:抑える|コントロール|制御)\|(?:[^|]+\|){0,3}?(?:ない|そう|怖い)",
        level="distress",
        negatable=False,
    ),
    _r(
        "distress.sleepless",
        "distress",
        r"(?:眠る|寝る)\|(?:れる\|)?(?:ない|ず)\|(?:[^|]+\|){0,4}?(?:涙|不安|辛い|つらい|限界|毎日|ずっと)",
        level="distress",
        negatable=False,
    ),
    _r(
        "distress.anxiety",
        "distress",
        r"不安\|で\|(?:[^|]+\|){0,2}?(?:押し潰す|潰れる|堪らない|たまらない|眠る\|ない)",
        level="distress",
    ),
    _r(
        "distress.ppd",
        "distress",
        r"(?:産後鬱|産後\|鬱|鬱病|鬱\|病|育児ノイローゼ|ノイローゼ|楽しい\|(?:無い|ない)\|(?:$|[、。!?！？]))",
        level="distress",
    ),
    _r(
        "distress.dead_tired",
        "distress",
        r"(?:死ぬ\|ほど|くたくた|もう|心底)\|(?:[^|]+\|){0,1}?疲れる",
        level="distress",
    ),
    _r(
        "distress.hate_all",
        "distress",
        r"(?:何もかも|全部|全て|なんもかんも|何も)\|(?:が\|)?(?:[^|]+\|){0,2}?(?:嫌|いや|為る\|たい\|無い)",
        level="distress",
    ),
    _r(
        "distress.suffering",
        "distress",
        r"(?:苦しい|しんどい|辛い|つらい)\|(?:[^|]+\|)*?(?:$|[、。!?！？])|(?:毎日|育児|子育て)\|(?:が\|)?(?:[^|]+\|){0,2}?(?:辛い|つらい|しんどい|苦しい|えらい)",
        level="distress",
    ),
    _r(
        "distress.too_tired",
        "distress",
        r"疲れる\|過ぎる|泣く\|ながら|(?:話|気持ち)\|を\|聞く\|て\|(?:欲しい|貰う)|苦痛|しんどい\|過ぎる|辛い\|過ぎる"
        r"|誰\|か\|に\|(?:[^|]+\|){0,2}?聞く\|て\|(?:欲しい|貰う)|気\|が\|付く\|と\|(?:[^|]+\|){0,3}?泣く",
        level="distress",
    ),
    _r(
        "distress.low",
        "distress",
        r"自信\|が\|(?:無い|ない)|(?:心|自分)\|が\|空っぽ|何\|も\|感じる\|(?:れる\|)?(?:ない|ず)|落ち込む|動悸|取り残す\|れる|(?:気持ち|気分|心)\|が\|(?:沈む|重い|晴れる\|ない)|自分\|が\|自分\|(?:[^|]+\|){0,2}?(?:無い|ない)\|成る|逃げ出す\|たい\|成る|逃げる\|たい\|成る",
        level="distress",
        negatable=False,
    ),
    _r(
        "distress.cant_anymore",
        "distress",
        r"何\|も\|為る\|たい\|(?:無い|ない)|もう\|や\|だ|投げ出す\|たい|笑う\|(?:れる\|)?(?:ない|無い)\|成る|余裕\|が\|(?:無い|ない)"
        r"|(?:ママ|母親|親|母|父親|パパ|育児|子育て)\|(?:を\|)?(?:やめる|辞める|止める)\|たい|落ち込み|楽しい\|(?:無い|ない)\|(?:です\|)?(?:$|[、。!?！？])"
        r"|朝\|(?:に\|成る|が\|来る)\|(?:の\|)?(?:が\|)?(?:怖い|恐い|嫌)|どう\|為る\|た\|良い\|の\|か\|分かる\|ない\|成る"
        r"|起き上がる\|(?:事\||こと\|)?(?:も\|)?(?:出来る|できる)\|(?:ない|ず)",
        level="distress",
        negatable=False,
    ),
    _r("distress.why_live", "distress", r"何\|の\|(?:ため|為)\|に\|生きる", level="distress"),
    # more ways of saying it is too much (found missing on the older held-out sets)
    _r(
        "distress.more",
        "distress",
        r"切れる\|て\|(?:[^|]+\|){0,3}?為る\|て\|仕舞う\|そう|心\|が\|(?:持つ|もつ)\|(?:ない|無い)|綱渡り"
        r"|話す\|(?:れる\|)?人\|も\|(?:居る\|)?(?:ない|無い)"
        r"|(?:生む|産む)\|(?:だ|た)\|(?:こと|事|の)\|を\|後悔|(?:育児|子育て|子供)\|が\|(?:怖い|こわい|恐い|苦痛|辛い)"
        r"|(?:育児|子育て|母親|親)\|(?:に|の)\|自信\|が\|(?:有る\|)?(?:ない|無い)|自分\|が\|(?:無くなる|消える\|て\|行く)"
        r"|(?:(?<=育児\|が\|)|(?<=子育て\|が\|)|(?<=子供\|が\|))(?:楽しい|可愛い|かわいい)\|と\|(?:思う|思える|感じる)\|(?:れる\|)?(?:ない|無い)|情けない"
        r"|(?:逃げ出す|家出|投げ出す|逃げる)\|(?:為る\|)?たい|何\|の\|(?:ため|為)\|に\|頑張る|眠る\|(?:れる\|)?ない\|、\|食べる\|(?:れる\|)?ない",
        level="distress",
        negatable=False,
    ),
    # ----- kinds found missing on the fifth to seventh held-out sets (each rule names the act and its context)
    # ending one's life in other words: 命を絶つ, 命を終わらせる; 死にたすぎる, 消えたさ
    _r(
        "self.end_life",
        "self_harm",
        r"命\|を\|(?:[^|]+\|){0,1}?(?:断つ|絶つ|断る|捨てる|終わる\|せる|終える)\|(?:(?:て|で)\|仕舞う\|)?(?:たい|う|よう|つもり|積もり|と\|(?:思う|考える)|しか|ます\|う|覚悟)",
        info=True,
    ),
    _r("self.too_much", "self_harm", r"\|(?:死ぬ|消える|逝く)\|た\|(?:過ぎる|さ)\|", info=True),
    # the means got ready, with the wish for it to be over (縄を買ってきた。楽になりたい; the other order: self.means_after)
    _r(
        "self.means_ready",
        "self_harm",
        r"(?:ロープ|縄|練炭|睡眠薬|首吊り)\|(?:[^|]{1,}\|){0,14}?(?:楽\|(?:だ|に)\|(?:成る|なれる)|終わる\|せる|終わり\|に\|為る|死ぬ|消える)",
        negatable=False,
    ),
    # on the platform or at the crossing, "if I fell in it would be easy"
    _r(
        "self.rail",
        "self_harm",
        r"(?:線路|ホーム|電車|踏切|踏み切り|車道|屋上|ビル)\|(?:に|へ|から|の\|前\|に)\|(?:[^|]+\|){0,2}?(?:落ちる|飛び込む|飛び下りる|入る|出る|飛び出す)\|"
        r"(?:(?:て\|仕舞う\|)?(?:ば|たら|た\|ら|た))\|(?:[^|]+\|){0,3}?(?:楽|終わる|死ぬ|消える)",
        negatable=False,
    ),
    _r(
        "self.no_meaning",
        "self_harm",
        r"\|生きる\|(?:て\|(?:居る\|)?|てる\|)?(?:意味|理由|価値|資格)\|(?:(?:が|も|は)\|)?(?:もう\|)?(?:無い|ない|有る\|(?:ます\|)?(?:ない|へん|ん)|見付かる\|ない)",
    ),
    # dying together in other words: 親子で消える, この子も連れて逝く, 二人でいなくなろう, 連れていくしかない
    _r(
        "with_child.both2",
        "with_child",
        rf"(?:親子|{_OWN_CHILD}\|と\|(?:二人|一緒))\|(?:で|に|だ)\|(?:[^|]+\|){{0,2}}?(?:死ぬ|消える|逝く|居る\|ない\|成る\|(?:う|よう|たい))",
        negatable=False,
    ),
    _r(
        "with_child.along",
        "with_child",
        rf"(?:{_OWN_CHILD}|此の\|子)\|(?:も|を)\|(?:[^|]+\|){{0,2}}?連れる\|て\|(?:逝く|死ぬ|消える|終わる|終わり\|に\|為る)",
        negatable=False,
    ),
    _r(
        "with_child.cannot_leave",
        "with_child",
        r"(?:残す|置く)\|て\|(?:[^|]+\|){0,1}?(?:行く|逝く|死ぬ)\|(?:れる\|)?(?:ない|無い)\|(?:[^|]{1,}\|){0,8}?連れる\|て\|(?:行く|逝く)",
        negatable=False,
    ),
    _r(
        "with_child.end_trip",
        "with_child",
        rf"{_OWN_CHILD}\|(?:を\|連れる\|て|と)\|(?:[^|]+\|){{0,5}}?(?:終わり\|に\|為る|終わる\|せる|終える)\|(?:たい|う|よう|つもり|積もり|ます)",
        negatable=False,
    ),
    # a parent who cannot stop: 叩くのがやめられない, 毎日手が出てしまう
    _r(
        "parent.cannot_stop",
        "parent_harm",
        rf"{_HARM}\|(?:の|事|こと)\|(?:が|を)\|(?:止める|やめる|止まる|抑える)\|(?:れる\|)?(?:ます\|)?(?:ない|無い)",
        agent_block=r"(?:子供|子|息子|娘|上|下|兄|姉|弟|妹|お兄ちゃん|お姉ちゃん|友達|犬|猫|夫|旦那|主人|妻|彼氏)\|(?:が|は|も)\|",
        negatable=False,
    ),
    _r(
        "parent.hand_out",
        "parent_harm",
        r"(?:毎日|いつも|つい|すぐ|直ぐ|また|今日|何度|気付く\|と)\|(?:[^|]+\|){0,3}?手\|が\|出る\|(?:て\|仕舞う|ちゃう|そう)",
        agent_block=r"(?:子供|子|息子|娘|上|下|兄|姉|弟|妹|お兄ちゃん|お姉ちゃん|友達|犬|猫|夫|旦那|主人|妻|彼氏)\|(?:が|は|も)\|",
    ),
    # a blade turned on the child
    _r(
        "parent.blade",
        "parent_harm",
        rf"{_OWN_CHILD}\|(?:に|へ|の\|方\|に)\|(?:[^|]+\|){{0,2}}?(?:包丁|刃物|ナイフ|鋏|はさみ|ハサミ|カッター)\|を\|(?:向ける|突きつける|突き付ける|振り上げる|振り回す)",
        agent_block=rf"{_PARTNER}\|(?:が|は)\|",
    ),
    # the urge: 放り投げたくなる衝動, 落としたい衝動
    _r(
        "parent.urge",
        "parent_harm",
        r"(?:落とす|投げる|放り投げる|叩く|殴る|絞める|揺さぶる|叩き付ける|踏む|窓\|から)\|(?:[^|]+\|){0,1}?たい\|(?:成る\|)?(?:衝動|気持ち\|が\|抑える)",
        negatable=False,
    ),
    _r(
        "parent.no_confidence",
        "parent_harm",
        rf"{_HARM_PHRASE}\|(?:ない|無い|ず)\|(?:で\|)?(?:居る\|(?:れる\|)?)?(?:自信|保証)\|が\|(?:無い|ない|有る\|(?:ます\|)?ない)",
        negatable=False,
    ),
    # a blow struck in anger: カッとなって頬をぶってしまった
    _r(
        "parent.slap_face",
        "parent_harm",
        rf"{_OWN_CHILD}\|の\|(?:頬|顔|頭|ほっぺ|ほっぺた)\|を\|(?:[^|]+\|){{0,2}}?(?:叩く|殴る|ぶつ|はたく|ひっぱたく|蹴る|殴り付ける)\|{_PAST_ACT}",
        agent_block=rf"(?:{_PARTNER}|{_PARENT}|{_SIBLING_AGENT}|{_OTHER_CHILD})\|(?:が|は|も)\|",
    ),
    # dragged by the hair; beaten black and blue; no way out of the house
    _r(
        "abuse.drag",
        "abuse",
        rf"{_OWN_CHILD}\|(?:の\|)?(?:[^|]+\|){{0,2}}?(?:髪|腕|足|首)\|(?:の\|毛\|)?(?:を\|)?(?:[^|]+\|){{0,1}}?(?:掴む|引っ張る|ひっぱる)\|(?:て|で)\|(?:[^|]+\|){{0,2}}?(?:引きずる|引きずり回す|引っ張る)",
        negatable=False,
    ),
    _r(
        "dv.drag",
        "dv",
        r"(?:髪|腕|首)\|(?:の\|毛\|)?を\|(?:[^|]+\|){0,1}?(?:掴む|引っ張る|ひっぱる)\|(?:て|で|れる)\|(?:[^|]+\|){0,3}?(?:引きずる|引きずり回す|振り回す|叩き付ける|押し付ける|押さえ付ける|抑え付ける)",
        agent_block=rf"(?:{_OWN_CHILD}|{_SIBLING_AGENT}|{_OTHER_CHILD})\|(?:が|は|も)\|",
        negatable=False,
    ),
    _r(
        "dv.black_blue",
        "dv",
        r"(?:ぼこぼこ|ボコボコ|めちゃくちゃ|滅茶苦茶)\|(?:に|だ)\|(?:殴る\|れる|為る\|れる|蹴る\|れる)",
        negatable=False,
    ),
    _r(
        "dv.kept_in",
        "dv",
        r"(?:財布|お金|金|スマホ|携帯|電話|鍵)\|(?:[^|]{1,}\|){0,10}?(?:取り上げる|取る)\|(?:[^|]{1,}\|){0,10}?(?:家|部屋|外)\|(?:から|に|へ)\|"
        r"(?:[^|]+\|){0,1}?(?:出す|出る|出かける|出掛ける)\|(?:て\|)?(?:くれる|呉れる|貰える|もらえる|せる|れる)\|(?:ます\|)?(?:ない|無い)",
        negatable=False,
    ),
    _r(
        "with_child.two_gone",
        "with_child",
        r"(?:二人|親子)\|(?:で|だ)\|(?:[^|]+\|){0,1}?居る\|ない\|成る\|(?:う|よう|たい|と\|(?:思う|考える)|つもり|積もり)",
        agent_block=rf"{_PARTNER}\|と\|",
        negatable=False,
    ),
    # a blow struck in anger, the object a face or the child: 我慢できずに思い切り頬を叩いてしまった
    _r(
        "parent.struck",
        "parent_harm",
        rf"(?:思い切る|思いっきり|思いきり|つい|かっと|カッと|我慢\|(?:出来る|できる)\|(?:ず|ない)|力一杯|本気\|で)\|(?:[^|]+\|){{0,3}}?"
        rf"(?:頬|顔|頭|ほっぺ|ほっぺた|お尻|背中|{_OWN_CHILD})\|を\|(?:[^|]+\|){{0,1}}?{_HARM}\|(?:て\|仕舞う|ちゃう|た)",
        agent_block=rf"(?:{_PARTNER}|{_PARENT}|{_SIBLING_AGENT}|{_OTHER_CHILD})\|(?:が|は|も|に)\|",
    ),
    # blows heard with a child crying: 大人が怒鳴って殴る音がする, 叩きつける音と「やめて」と泣く声
    _r(
        "abuse.blows_heard",
        "abuse",
        r"(?:泣く|叫ぶ|悲鳴|泣き叫ぶ|泣き声|怒鳴る|怒鳴り声|やめる\|て|ごめんなさい)\|(?:[^|]{1,}\|){0,14}?(?:殴る|叩く|蹴る|叩き付ける|ぶつ)\|(?:様\|な\|)?音"
        r"|(?:殴る|蹴る|叩き付ける|ぶつ|叩く)\|(?:様\|な\|)?音\|(?:[^|]{1,}\|){0,14}?(?:泣く|叫ぶ|悲鳴|泣き叫ぶ|泣き声|やめる\|て|ごめんなさい)",
        agent_block=r"(?:太鼓|ドア|壁|机|テーブル|布団|ドラム|釘|鍵盤)\|を\|$",
        negatable=False,
    ),
    # a child left alone at night: お母さんが夜いなくなって一人で怖い
    _r(
        "sos.alone_night",
        "child_sos",
        rf"{_PARENT}\|(?:[^|]{{1,}}\|){{0,5}}?(?:居る\|ない\|成る|帰る\|て\|来る\|ない|帰る\|ない)\|(?:[^|]{{1,}}\|){{0,6}}?(?:一人|独り|ひとり)\|(?:[^|]+\|){{0,2}}?(?:怖い|こわい|恐い|寂しい|お腹\|空く)",
        negatable=False,
    ),
    # ----- kinds found missing on the eighth held-out set (another author), round two
    _r("poison.kana_drank", "poisoning", rf"(?:薬|{_NON_FOOD})\|を\|(?:[^|]+\|){{0,2}}?のみ\|ます\|た", info=True),
    _r(
        "self.easy_death",
        "self_harm",
        r"楽\|(?:に|だ)\|死ぬ|死ぬ\|(?:方法|やり方)\|(?:を\|)?(?:調べる|探す|検索)",
        info=True,
    ),
    _r(
        "self.farewell",
        "self_harm",
        r"(?:後|あと)\|は\|(?:[^|]+\|){0,2}?(?:任せる|頼む|お願い)\|(?:[^|]{1,}\|){0,8}?(?:今\|まで|今迄)\|(?:[^|]+\|){0,2}?(?:有り難い|有り難う|ありがとう|お世話)",
        negatable=False,
    ),
    _r(
        "self.heaven",
        "self_harm",
        r"(?:お空|御\|空|天国|あの世|空\|の\|上)\|(?:に|へ)\|(?:[^|]+\|){0,1}?(?:行く|逝く|昇る)\|(?:う|よう|たい|つもり|積もり|と\|思う)",
        agent_block=r"(?:犬|猫|ペット|金魚|ハムスター|おじいちゃん|おばあちゃん|祖父|祖母)\|(?:が|は|も)\|",
    ),
    _r(
        "self.charcoal",
        "self_harm",
        r"練炭\|(?:を|も)\|(?:[^|]+\|){0,3}?(?:積む|買う|用意|準備|焚く|置く|持つ)",
        negatable=False,
    ),
    _r(
        "with_child.drive_in",
        "with_child",
        r"(?:乗せる|連れる|抱く|抱っこ\|為る|おんぶ\|為る)\|(?:た\|)?(?:まま|侭)\|(?:[^|]{1,}\|){0,6}?"
        r"(?:海|川|湖|崖|線路|踏切|屋上)?\|?(?:に|へ|から)?\|?(?:突っ込む|突き込む|飛び込む|飛び下りる|飛び降りる|落ちる|入る)\|(?:う|よう|たい|か|たら|ば|た)",
        negatable=False,
    ),
    _r(
        "with_child.heaven",
        "with_child",
        rf"{_OWN_CHILD}\|(?:と|を\|連れる\|て)\|(?:[^|]{{1,}}\|){{0,8}}?(?:お空|御\|空|天国|あの世)\|(?:に|へ)\|(?:[^|]+\|){{0,1}}?(?:行く|逝く)",
        negatable=False,
    ),
    _r(
        "with_child.means",
        "with_child",
        rf"{_OWN_CHILD}\|(?:の\|分\|の\||に\|(?:も\|)?)(?:[^|]+\|){{0,2}}?(?:睡眠薬|練炭|ロープ|縄)\|(?:も|を)\|(?:[^|]+\|){{0,1}}?(?:用意|準備|買う|飲む\|せる)",
        negatable=False,
    ),
    _r(
        "with_child.sleep_forever",
        "with_child",
        r"(?:ガス|元栓|練炭|睡眠薬)\|(?:[^|]{1,}\|){0,10}?(?:二人|一緒|親子|子供\|と)\|(?:で|に|と)\|(?:[^|]+\|){0,1}?眠る"
        r"|(?:二人|親子)\|で\|(?:ずっと\||永遠\|に\|)?眠る\|(?:て\|仕舞う\|)?(?:う|よう|と\|思う)",
        negatable=False,
    ),
    # a parent's hands near harm: a cushion pressed on the face, hands round the neck, the knife and the child
    _r(
        "parent.smother",
        "parent_harm",
        r"(?:顔|口|鼻)\|に\|(?:[^|]+\|){0,2}?(?:クッション|枕|タオル|布団|手|ビニール)\|を\|(?:押し付ける|押さえ付ける|被せる|当てる|押し当てる)\|(?:たい|そう|て\|仕舞う|ちゃう|た)",
        agent_block=rf"(?:{_OWN_CHILD}|{_SIBLING_AGENT})\|(?:が|は)\|",
        negatable=False,
    ),
    _r(
        "parent.hands_neck",
        "parent_harm",
        rf"{_OWN_CHILD}\|の\|首\|に\|(?:[^|]+\|){{0,2}}?(?:両手|手)\|を\|(?:添える|掛ける|かける|当てる|回す|置く)",
        agent_block=rf"(?:{_PARTNER}|{_PARENT}|{_SIBLING_AGENT}|{_OTHER_CHILD})\|(?:が|は)\|",
        negatable=False,
    ),
    _r(
        "parent.knife_thought",
        "parent_harm",
        rf"(?:包丁|刃物|ナイフ)\|(?:[^|]{{1,}}\|){{0,10}}?(?:{_OWN_CHILD}|子\|の\|事)\|(?:[^|]{{1,}}\|){{0,6}}?(?:頭\|を\|よぎる|考える\|て\|仕舞う|浮かぶ|過る)",
        negatable=False,
    ),
    # an adult at home hitting the child, with words between (夫が2歳の息子の頭を平手で何度も叩く)
    _r(
        "abuse.partner_hits",
        "abuse",
        rf"{_PARTNER}\|(?:が|は)\|(?:[^|]{{1,}}\|){{0,4}}?{_OWN_CHILD}\|(?:の\|[^|]+\|)?(?:を|に)\|(?:[^|]+\|){{0,4}}?{_HARM}\|(?:ます\||て\|)?(?!ない|無い)",
        negatable=False,
    ),
    # neglect told as a list: no nappy changed, no milk given
    _r(
        "abuse.neglect_list",
        "abuse",
        r"(?:おむつ|オムツ|御襁褓)\|を\|(?:[^|]{1,}\|){0,3}?(?:替える|変える|換える)\|(?:ず|ない)\|(?:、\|)?(?:[^|]{1,}\|){0,4}?(?:ミルク|ご飯|御飯|食事)\|(?:も|を)\|(?:[^|]{1,}\|){0,3}?(?:与える|上げる|あげる|食べる\|せる)\|(?:て\|居る\||てる\|)?(?:ない|ず)",
        negatable=False,
    ),
    # a body part and a secret: sexual abuse hinted at
    _r(
        "abuse.secret",
        "abuse",
        r"(?:お尻|おしり|パンツ|下着|股|陰部|体)\|(?:[^|]{1,}\|){0,12}?(?:秘密|ひみつ|内緒|ないしょ)|(?:秘密|ひみつ|内緒|ないしょ)\|(?:[^|]{1,}\|){0,12}?(?:お尻|おしり|パンツ|下着|股|触る)",
        negatable=False,
    ),
    # anaphylaxis: swelling and wheezing
    _r(
        "med.anaphylaxis",
        "child_danger",
        r"腫れる\|(?:[^|]{1,}\|){0,8}?(?:息|呼吸)\|が\|(?:[^|]+\|){0,1}?(?:ぜいぜい|ぜーぜー|ゼーゼー|ゼイゼイ|ヒューヒュー|ひゅうひゅう|苦しい|荒い|変|おかしい)"
        r"|(?:息|呼吸)\|が\|(?:[^|]+\|){0,1}?(?:ぜいぜい|ぜーぜー|ゼーゼー|ゼイゼイ|ヒューヒュー|ひゅうひゅう|苦しい)\|(?:[^|]{1,}\|){0,8}?(?:腫れる|蕁麻疹|じんましん)",
        info=True,
    ),
    _r(
        "med.blood_head",
        "child_danger",
        r"(?:頭|耳|鼻|口)\|から\|(?:[^|]+\|){0,1}?血\|が\|(?:[^|]+\|){0,1}?(?:出る|流れる|止まる\|ない)|変\|(?:な|だ)\|方向\|に\|曲がる",
        info=True,
    ),
    _r(
        "poison.tablets",
        "poisoning",
        rf"(?:孫|{_OWN_CHILD}|下\|の\|子|上\|の\|子)\|が\|(?:[^|]+\|){{0,3}}?[0-9０-９一二三四五六七八九十]+\|錠",
        negatable=False,
    ),
    _r(
        "poison.empty_pack",
        "poisoning",
        r"(?:薬|錠剤|電池)\|(?:の\|)?(?:シート|瓶|袋|箱|パッケージ)\|が\|(?:[^|]+\|){0,1}?空\|(?:[^|]{1,}\|){0,12}?(?:口|飲む|食べる)",
        negatable=False,
    ),
    # a child in a closet as punishment (押し入れに入れられる), afraid to go home (帰ると怒られる)
    _r(
        "sos.closet",
        "child_sos",
        r"(?:押し入れ|押し入る|物置|クローゼット|トイレ|ベランダ|外)\|に\|(?:[^|]+\|){0,1}?(?:入れる|閉じ込める|出す)\|れる",
        agent_block=r"(?:犬|猫|ペット|荷物)\|(?:が|は|を)\|",
    ),
    _r(
        "sos.afraid_home",
        "child_sos",
        r"(?:家|うち)\|に\|帰る\|(?:と|たら|た)\|(?:[^|]+\|){0,2}?(?:怒る|殴る|叩く|蹴る|ぶつ)\|れる\|(?:[^|]{1,}\|){0,16}?帰る\|(?:れる\|)?(?:ない|たい\|ない)",
        negatable=False,
    ),
    # an ex at the door after a move: stalking
    _r(
        "dv.ex_found",
        "dv",
        r"(?:元夫|元彼|元旦那|元妻|元\|夫|元\|彼|元\|旦那)\|(?:が|に)\|(?:[^|]{1,}\|){0,6}?(?:家\|の\|前|待ち伏せ|付きまとう|付け回す|後\|を\|付ける|居場所|住所|場所\|(?:が\|)?(?:ばれる|バレる))",
        negatable=False,
    ),
    _r(
        "distress.more2",
        "distress",
        r"毎日\|(?:[^|]+\|){0,1}?(?:憂鬱|ゆううつ|憂うつ)|涙\|が\|(?:[^|]+\|){0,1}?出る\|て\|来る|くたびれる|息\|が\|詰まる|胸\|が\|(?:ぎゅっと|ぎゅっ|苦しい|締め付ける)"
        r"|目\|の\|前\|が\|真っ暗|眠る\|(?:れる\|)?ない\|夜\|が\|続く|毎日\|(?:眠る|寝る)\|(?:れる\|)?ない|駄目\|な\|(?:ママ|母親|親)"
        r"|誰\|(?:か\|)?(?:と|に)\|(?:しゃべる|喋る|話す)\|たい|誰\|も\|(?:[^|]+\|){0,2}?聞く\|(?:て\|)?(?:くれる|呉れる|ける)\|(?:ない|ねえ)"
        r"|顔\|を\|合わせる\|(?:の\|)?が\|(?:怖い|こわい|辛い)|吐き気\|が\|為る",
        level="distress",
        negatable=False,
    ),
    # ----- kinds found missing on the ninth held-out set (another author), round three
    _r(
        "with_child.kill_then",
        "with_child",
        rf"{_OWN_CHILD}\|(?:の\|首\|)?を\|(?:[^|]+\|){{0,2}}?(?:絞める|締める|殺す|刺す)\|(?:て|た)\|(?:[^|]{{1,}}\|){{0,8}}?(?:私|自分)\|も\|(?:死ぬ|逝く|後\|を\|追う)",
        negatable=False,
    ),
    _r(
        "with_child.pity",
        "with_child",
        r"(?:残す|置く)\|て\|(?:行く|逝く)\|(?:の\|)?(?:は\|)?(?:可哀想|かわいそう|可哀相|不憫|忍びない)\|(?:[^|]{1,}\|){0,10}?"
        r"(?:皆|みんな|一緒|連れる|遠く|遠い|二人|親子)",
        negatable=False,
    ),
    _r(
        "with_child.to_the_dead",
        "with_child",
        rf"{_OWN_CHILD}\|と\|(?:(?!墓|お参り|参り|法事|お盆|納骨)[^|]{{1,}}\|){{0,4}}?(?:亡くなる|死ぬ)\|た\|(?:[^|]+\|){{0,2}}?(?:所|ところ|元|もと|下|側|そば)\|(?:へ|に)\|(?:[^|]+\|){{0,1}}?(?:行く|参る|逝く)\|(?:う|よう|たい)"
        rf"|(?:亡くなる|死ぬ)\|た\|(?:[^|]+\|){{0,2}}?(?:所|ところ|元|もと|下|側|そば)\|(?:へ|に)\|(?:(?!墓|お参り|参り|法事|お盆|納骨)[^|]{{1,}}\|){{0,4}}?{_OWN_CHILD}\|と\|(?:[^|]{{1,}}\|){{0,3}}?(?:行く|参る|逝く)\|(?:う|よう|たい)",
        negatable=False,
    ),
    _r(
        "self.to_the_dead",
        "self_harm",
        r"(?:亡くなる|死ぬ)\|た\|(?:[^|]+\|){0,2}?(?:所|ところ|元|もと|下|側|そば)\|(?:へ|に)\|(?:[^|]+\|){0,1}?(?:行く|参る|逝く)\|(?:う|よう|たい)",
        agent_block=r"墓|お参り|法事|お盆|納骨",
        negatable=False,
    ),
    _r(
        "self.farewell2",
        "self_harm",
        r"(?:おしまい|お終い|終わり)\|に\|為る\|(?:[^|]{1,}\|){0,16}?(?:今迄|今\|まで)\|(?:[^|]+\|){0,2}?(?:有り難う|有り難い|ありがとう)"
        r"|(?:通帳|保険|遺書|印鑑)\|(?:[^|]{1,}\|){0,30}?(?:よろしく|宜しく)\|と\|伝える\|て",
        negatable=False,
    ),
    _r(
        "self.cut2",
        "self_harm",
        r"(?:カッター|剃刀|カミソリ|ナイフ|刃物)\|で\|(?:[^|]+\|){0,2}?(?:太腿|腕|手首|足|体|自分|太もも)\|を\|(?:[^|]+\|){0,1}?(?:切る|刻む|傷付ける)",
        info=True,
    ),
    _r(
        "self.means_after",
        "self_harm",
        r"(?:楽\|(?:だ|に)\|(?:成る|なれる)\|たい|終わり\|に\|為る\|たい|死ぬ\|たい|消える\|たい)\|(?:[^|]{1,}\|){0,10}?"
        r"(?:ロープ|縄|練炭|首吊り)\|(?:を\||は\||も\|)?(?:[^|]+\|){0,1}?(?:買う|用意|準備|購入)",
        negatable=False,
    ),
    _r(
        "self.better_gone",
        "self_harm",
        r"居る\|ない\|(?:成る\|)?(?:た\|)?方\|が\|(?:[^|]+\|){1,2}?(?:楽|幸せ|良い|いい)",
        agent_block=rf"{_PARTNER}\|(?:が|は)\|",
    ),
    # a parent's hands: the mouth and nose held shut, the child pushed on the stairs, let go on the balcony
    _r(
        "parent.mouth_shut",
        "parent_harm",
        r"(?:口|鼻)\|(?:と\|(?:口|鼻)\|)?を\|(?:[^|]+\|){0,2}?(?:塞ぐ|押さえる|抑える)\|(?:て|で)\|(?:仕舞う|もう)",
        agent_block=rf"(?:{_PARTNER}|{_SIBLING_AGENT}|{_OTHER_CHILD})\|(?:が|は)\|",
        negatable=False,
    ),
    _r(
        "parent.push_fall",
        "parent_harm",
        r"(?:階段|ホーム|ベランダ|道路|崖)\|(?:[^|]{1,}\|){0,8}?(?:背中|体|子)\|を\|(?:[^|]+\|){0,1}?(?:押す|突き飛ばす|突き落とす)\|(?:そう|たい|て\|仕舞う|ちゃう)",
        negatable=False,
    ),
    _r(
        "parent.let_go",
        "parent_harm",
        r"(?:此の\|侭|このまま|手すり|ベランダ|窓)\|(?:[^|]{1,}\|){0,10}?手\|を\|離す\|(?:た|たら|ば)\|(?:[^|]+\|){0,2}?(?:どう\|成る|落ちる|楽)",
        negatable=False,
    ),
    _r(
        "parent.shaking",
        "parent_harm",
        rf"{_OWN_CHILD}\|を\|(?:[^|]+\|){{0,2}}?揺さぶる\|(?:ながら|て|た)",
        agent_block=rf"(?:{_PARTNER}|{_SIBLING_AGENT}|{_OTHER_CHILD})\|(?:が|は)\|",
        negatable=False,
    ),
    _r(
        "parent.something",
        "parent_harm",
        rf"{_OWN_CHILD}\|に\|何\|か\|(?:[^|]+\|){{0,1}}?為る\|(?:て\|仕舞う|ちゃう|そう)",
        negatable=False,
    ),
    _r(
        "parent.five_seconds",
        "parent_harm",
        r"手\|が\|出る\|(?:[0-9０-９一二三四五]+\|)?(?:秒|分)?\|?(?:前|寸前)|(?:投げ飛ばす|放り投げる|叩き付ける)\|そう",
        negatable=False,
    ),
    _r(
        "parent.again",
        "parent_harm",
        rf"(?:又|また|つい|今日\|も)\|(?:[^|]+\|){{0,3}}?(?:上\|の\|子|下\|の\|子|{_OWN_CHILD})\|(?:を\|)?(?:[^|]+\|){{0,1}}?{_HARM}\|(?:て\|(?:仕舞う|もう|まう)|ちゃう)",
        agent_block=rf"(?:{_PARTNER}|{_PARENT}|{_SIBLING_AGENT}|{_OTHER_CHILD}|子|上\|の\|子|下\|の\|子)\|(?:が|は)\|",
    ),
    # abuse: meals withheld for days, a child shut in, nursery staff hurting a child, a stepparent at night
    _r(
        "abuse.no_meals",
        "abuse",
        r"[0-9０-９一二三四五六七八九十]+\|日\|(?:[^|]{1,}\|){0,6}?(?:ご飯|御飯|夕飯|食事|ミルク|晩御飯)\|(?:を\|)?(?:[^|]+\|){0,1}?(?:出す|与える|上げる|あげる|食べる\|せる)\|(?:て\|)?(?:居る\||てる\|)?(?:ない|ず)"
        r"|(?:ご飯|御飯|食事|夕飯)\|抜き\|(?:が|は)\|(?:[^|]+\|){0,2}?(?:利く|効く)",
        negatable=False,
    ),
    _r(
        "abuse.shut_in",
        "abuse",
        rf"{_OWN_CHILD}\|を\|(?:[^|]{{1,}}\|){{0,4}}?(?:押し入れ|物置|クローゼット|ベランダ|トイレ|部屋|外)\|に\|(?:[^|]+\|){{0,3}}?(?:閉じ込める|締め出す|閉め出す)\|(?:ます\|)?(?:た|て)",
        agent_block=rf"(?:{_SIBLING_AGENT})\|(?:が|は)\|",
        negatable=False,
    ),
    _r(
        "abuse.staff",
        "abuse",
        r"(?:保育士|先生|職員|ベビーシッター|シッター|コーチ|監督|保育者)\|(?:さん\|)?(?:が|は)\|(?:[^|]{1,}\|){0,6}?(?:子|子供|息子|娘)\|(?:の\|[^|]+\|)?(?:を|に)\|(?:[^|]+\|){0,2}?(?:叩く|殴る|蹴る|抓る|つねる|突き飛ばす|引きずる)",
        negatable=False,
    ),
    _r(
        "abuse.night_room",
        "abuse",
        rf"(?:再婚相手|再婚\|相手|継父|義父|彼氏|内縁|同居人|叔父|伯父|おじ)\|(?:さん\|)?(?:が|は)\|(?:[^|]{{1,}}\|){{0,4}}?{_OWN_CHILD}\|の\|(?:部屋|布団|寝室|ベッド)\|(?:へ|に)\|(?:[^|]+\|){{0,1}}?入る",
        negatable=False,
    ),
    # a child lost in a crowd (はぐれた), gone from where she was
    _r("med.separated", "child_danger", rf"{_OWN_CHILD}\|と\|(?:逸れる|はぐれる)\|(?:て|た|ます)", negatable=False),
    _r(
        "med.gone_from",
        "child_danger",
        rf"(?:筈|はず|さっき|急\|に|いつの間\|に|目\|を\|離す)\|(?:[^|]{{1,}}\|){{0,4}}?{_OWN_CHILD}\|が\|居る\|(?:ます\|)?ない",
        negatable=False,
    ),
    _r(
        "med.hives_breath",
        "child_danger",
        r"(?:麻疹|蕁麻疹|じんましん)\|(?:[^|]{1,}\|){0,8}?(?:息\|が\|(?:[^|]+\|){0,1}?(?:苦しい|ぜいぜい)|ぜいぜい|ヒューヒュー|ひゅうひゅう|ゼーゼー)",
        info=True,
    ),
    # the child writing of a parent who hits (親がなまら殴ってくる)
    _r(
        "sos.parent_comes",
        "child_sos",
        rf"{_PARENT}\|(?:[^|]{{1,}}\|){{0,4}}?(?:殴る|叩く|蹴る|ぶつ|しばく)\|て\|来る",
        negatable=False,
    ),
    # DV: forced sex, things thrown at her, money begged for on her knees, hiding from his moods
    _r(
        "dv.forced",
        "dv",
        rf"{_PARTNER}\|(?:に|から)\|(?:[^|]+\|){{0,2}}?(?:無理矢理|無理やり|むりやり|強引\|に)",
        negatable=False,
    ),
    _r(
        "dv.thrown",
        "dv",
        r"(?:物|皿|灰皿|コップ|椅子|リモコン|携帯|スマホ)\|を\|投げる\|れる|土下座\|(?:為る\|)?(?:ない|ず)\|と\|(?:[^|]+\|){0,1}?(?:貰う|もらえる|くれる|呉れる)",
        agent_block=rf"(?:{_OWN_CHILD}|{_SIBLING_AGENT}|{_OTHER_CHILD}|子)\|(?:に|が|から)\|",
        negatable=False,
    ),
    _r(
        "dv.hiding",
        "dv",
        rf"{_PARTNER}\|の\|(?:機嫌|顔色)\|(?:[^|]{{1,}}\|){{0,16}}?(?:隠れる|息\|を\|潜める|音\|を\|立てる\|ず|逃げる)",
        negatable=False,
    ),
    _r(
        "distress.more3",
        "distress",
        r"(?:しか|しか\|)泣く\|(?:れる\|)?ない|泣く\|(?:れる\|)?ない\|(?:[^|]+\|){0,1}?しか|居場所\|(?:は|が)\|(?:無い|ない)|裏切る\|れる\|た\|気"
        r"|(?:考える|思う)\|と\|(?:[^|]+\|){0,1}?真っ暗|手\|を\|上げる\|て\|仕舞う\|の\|(?:だ\|)?(?:じゃ|では)\|ない\|か"
        r"|何\|の\|(?:ため|為)\|に\|(?:[^|]+\|){1,3}?頑張る",
        level="distress",
        negatable=False,
    ),
    # a child out of sight: 見失った, 姿が見えなくなった, 1時間たっても見つからない
    _r(
        "med.lost_sight",
        "child_danger",
        rf"{_OWN_CHILD}\|を\|(?:[^|]+\|){{0,1}}?見失う\|(?:{_DONE}|ます\|た)",
        info=True,
    ),
    _r(
        "med.out_of_sight",
        "child_danger",
        rf"{_OWN_CHILD}\|の\|姿\|が\|(?:[^|]+\|){{0,2}}?見える\|(?:ます\|)?(?:ない|無い)\|成る",
        info=True,
    ),
    _r(
        "med.hours_missing",
        "child_danger",
        rf"{_OWN_CHILD}\|(?:が|は)\|(?:[^|]{{1,}}\|){{0,10}}?(?:時間|分)\|(?:[^|]+\|){{0,3}}?(?:見付かる|見当たる|帰る\|て\|来る|戻る)\|(?:ます\|)?(?:ない|無い)",
        negatable=False,
    ),
    # scalded: hot liquid over the child, the skin peeling
    _r(
        "med.scald",
        "child_danger",
        r"(?:お湯|湯|熱湯|油|スープ|味噌汁|鍋|やかん|ポット|コーヒー|お茶|茶)\|(?:[^|]{1,}\|){0,6}?(?:被る|浴びる|掛かる|かかる|こぼす)\|(?:[^|]{1,}\|){0,12}?"
        r"(?:皮膚|皮|肌)\|(?:が\|)?(?:[^|]+\|){0,1}?(?:剥ける|むける|捲れる|めくれる|爛れる|ただれる|溶ける)",
        negatable=False,
    ),
    # something swallowed whole, then no voice or a red face
    _r(
        "med.swallowed_whole",
        "child_danger",
        r"(?:丸飲み|丸呑み|飲み込む|詰まる|詰める)\|(?:[^|]{1,}\|){0,8}?(?:声\|が\|(?:[^|]+\|){0,1}?出る\|(?:ない|無い)|咳\|も\|出る\|(?:ない|無い)|息\|が\|(?:出来る|できる)\|(?:ない|無い))",
        negatable=False,
    ),
    # a substance licked or sucked (ハンドソープをなめた, 灯油を吸った), and a pill missing from the pack
    _r(
        "poison.licked",
        "poisoning",
        rf"(?:{_NON_FOOD}|ハンド\|ソープ|ハンドソープ|石鹸|消毒液|消毒\|液|除菌|除菌\|スプレー|液体\|洗剤)\|(?:[^|]+\|){{0,3}}?(?:舐める|嘗める|吸う|すする|啜る|しゃぶる|口\|に\|入れる|飲む)\|{_DONE}",
        info=True,
    ),
    _r(
        "poison.missing_one",
        "poisoning",
        r"(?:ボタン\|電池|ボタン電池|電池|磁石|マグネット|薬|錠剤|錠|タバコ|たばこ|煙草)\|(?:[^|]{1,}\|){0,20}?(?:足りる\|(?:ます\|)?(?:ない|無い)|無くなる\|(?:て\|居る|た)|見当たる\|(?:ます\|)?ない)"
        r"\|(?:[^|]{1,}\|){0,12}?(?:口|飲む|飲み込む|食べる)",
        negatable=False,
    ),
)

# Rules over the folded surface (width/kana folded, spaces removed): spellings the analyser splits oddly.
SURFACE_RULES: tuple[Rule, ...] = (
    _r(
        "distress.kana_tired",
        "distress",
        r"(?:つかれ|しんど|つら)(?:て|くて|い)?(?:ねむれない|ねられない|たべられない|うごけない|なにもできない)",
        level="distress",
    ),
    _r(
        "child.kana_mama",
        "child_sos",
        r"(?:まま|ぱぱ|おかあさん|おとうさん|おかん|おとん)(?:に|から)(?:まいにち|いつも|また)?(?:たたかれ|なぐられ|けられ|ぶたれ|さわられ|おこられてたたかれ)",
    ),
    _r(
        "child.kana_does",
        "child_sos",
        r"(?:まま|ぱぱ|おかあさん|おとうさん)(?:が|は)(?:.{0,8}(?:ぼく|わたし|おれ|あたし|うち)(?:を|のこと)?)?(?:たたく|ぶつ|なぐる|ける|たたいて|ぶって|なぐって|けって)",
    ),
    _r(
        "child.no_food",
        "child_sos",
        r"(?:ごはん|ごはんが|たべもの)(?:が)?(?:ない|くれない|もらえない|たべてない|たべていない)(?:.{0,12})(?:まま|ぱぱ|おかあさん|おとうさん|おうち|いえ|おなか)",
    ),
    _r(
        "child.no_food2",
        "child_sos",
        r"(?:まま|ぱぱ|おかあさん|おとうさん)(?:.{0,10})(?:ごはん)(?:を)?(?:くれない|ない|つくってくれない)",
    ),
    _r(
        "child.no_food3",
        "child_sos",
        r"(?:ごはん|ごはんを)(?:.{0,6})(?:たべてない|たべていない)(?:.{0,12})(?:(?:まま|ぱぱ|おかあさん|おとうさん)(?:が)?(?:いない|かえってこない)|だれもいない)",
    ),
    _r(
        "child.not_home",
        "child_sos",
        r"(?:いえ|おうち|うち)に(?:かえりたくない|いたくない)|(?:かえりたくない|いたくない)(?:.{0,10})(?:こわい|たすけて)",
    ),
    _r(
        "child.night_visit",
        "child_sos",
        r"(?:まま|ぱぱ|おかあさん|おとうさん|おかん|おとん|おじさん|ままのかれし)(?:が|は)?.{0,6}(?:よる|よなか|夜|夜中).{0,6}"
        r"(?:へや|部屋|ふとん|布団|べっど|ベッド)(?:に)?(?:くる|来る|はいってくる|入ってくる|はいってきて|入ってきて)",
    ),
    _r("child.scared_parent", "child_sos", r"(?:おかあさん|おとうさん|まま|ぱぱ|おや)(?:が|は)(?:こわい|こわくて)"),
    # a child told it is bad and left without food (ぼくがわるいこだからごはんもらえない)
    _r(
        "child.no_food4",
        "child_sos",
        r"(?:ぼく|わたし|あたし|おれ|うち|僕|私|俺)(?:が|は|も)?.{0,14}(?:ごはん|ご飯|ばんごはん|ゆうごはん)(?:を|が|も)?"
        r"(?:もらえない|もらえなかった|たべさせてもらえない|ぬき|くれない)",
    ),
    _r(
        "child.partner_of_mum",
        "child_sos",
        r"(?:おかあさん|まま|ははおや|お母さん|母)の(?:かれし|彼氏|こいびと|恋人)(?:が|は).{0,20}(?:こわい|へやにくる|へやにはいって|部屋に来る|部屋に入って|さわ|触)",
    ),
    _r(
        "child.nobody_no_food",
        "child_sos",
        r"(?:なにも|何も|ごはん|ご飯)(?:を)?(?:たべて|食べて)(?:ない|いない).{0,14}(?:だれも|誰も|おとなが|大人が)(?:いない|いなくて|かえってこない)"
        r"|(?:だれも|誰も)(?:いない|いなくて).{0,14}(?:なにも|何も|ごはん)(?:を)?(?:たべて|食べて)(?:ない|いない)",
    ),
    _r(
        "child.parent_rages",
        "child_sos",
        r"(?:まま|ぱぱ|おかあさん|おとうさん|おかん|おとん|おや)(?:が|は).{0,12}(?:あばれて|あばれる|あばれた|暴れて|暴れる)",
    ),
    _r(
        "parent.kana_hit",
        "parent_harm",
        r"(?:こども|子ども|子供|むすこ|むすめ|あかちゃん|息子|娘|赤ちゃん)(?:を|のこと)(?:ぶって|ぶっちゃ|ぶった|ぶち)",
    ),
    _r(
        "child.mama_gone",
        "child_sos",
        r"(?:まま|おかあさん|ぱぱ|おとうさん)が(?:ずっと|まだ|きのうから|.{0,4})?(?:かえってこない|いない)(?:.{0,10})(?:ごはん|おなか|こわい)",
    ),
    _r(
        "dv.knife",
        "dv",
        r"(?:夫|旦那|主人|彼氏|彼|パートナー|おっと|だんな)(?:が|は)(?:.{0,8})(?:包丁|ほうちょう|刃物|ナイフ)",
    ),
    _r(
        "dv.kana",
        "dv",
        r"(?:おっと|だんな|しゅじん|かれし)(?:に|から)(?:なぐられ|けられ|たたかれ|ぶたれ|くびをしめられ)",
    ),
    _r(
        "dv.kana_does",
        "dv",
        r"(?:おっと|だんな|しゅじん|かれし)(?:が|は)?(?:わたしを|あたしを)?"
        r"(?:なぐる|ける|たたく|ぶつ|なぐって|けって|たたいて|ぶって)",
    ),
    # kana with the particles dropped: こども たたいて しまう, こどもの くび しめ そう
    _r(
        "parent.kana_slip",
        "parent_harm",
        r"(?:こども|むすこ|むすめ|あかちゃん)(?:を|に)?(?:たたいて|なぐって|けって|ぶって|なげつけ|なげ)"
        r"(?:しまう|しまいそう|しまった|ちゃう|ちゃいそう|そう)"
        r"|(?:こども|むすこ|むすめ|あかちゃん)の?くび(?:を)?しめ(?:そう|たく|て|ちゃ|かけ)",
    ),
    # a child writing of being touched, or of being left alone for long
    _r(
        "child.kana_touch",
        "child_sos",
        r"(?:からだ|むね|おしり|ぱんつ|したぎ)(?:を|に)?"
        r"(?:さわられ|なでられ|ぬがされ|さわって(?:くる|きて)|(?:さわる|さわって|なでる).{0,10}(?:いや|こわい|やめて|たすけて))",
    ),
    _r(
        "child.kana_alone",
        "child_sos",
        r"(?:おかあさん|おとうさん|まま|ぱぱ|おとな|だれも)(?:が|も)?(?:いない|かえってこない)(?!と|あいだ|ま|うち).{0,6}"
        r"(?:ずっと|なんにち|きのうから|[0-9０-９]+にち)",
    ),
    _r("dv.violence_kana", "dv", r"(?:おっと|だんな|しゅじん|かれし)(?:が|は)?ぼうりょく(?:を)?ふるう"),
    _r(
        "parent.dialect",
        "parent_harm",
        r"(?:子ども|子供|こども|息子|娘|赤ちゃん|あかちゃん)?(?:を)?(?:しばいて|たたいて|叩いて|殴って|どついて)(?:まい|もう|しま)(?:そう|た)",
    ),
    _r(
        "with_child.kana",
        "with_child",
        r"(?:このこ|こども|むすこ|むすめ|あかちゃん)(?:と|を)(?:いっしょに|ふたりで|つれて)?(?:しにたい|しのう|しぬ|きえたい|しんじゅう)"
        r"|(?:このこ|こども|むすこ|むすめ|あかちゃん|こ)(?:と|を)(?:いっしょに|ふたりで|つれて)?(?:しんじゃ|しのう|しにたい|しんでしま|きえよう|きえちゃ)",
    ),
    _r(
        "self.kana",
        "self_harm",
        r"(?:しにたい|きえたい|しんでしまいたい|しんでまいたい|しのうかな|いきてるいみ(?:が)?(?:ない|わからない)"
        r"|しぬつもり|しぬしか|しぬきで|しにます|しんでしまおう|しのうと(?:おも|かんが))",
    ),
    _r("self.kana2", "self_harm", r"(?:いないほうがいい|いなくなったほうがいい|いなくなりたい)"),
    _r("with_child.kana3", "with_child", r"いっしょに(?:しのう|しんで(?:ね|くれ)|しのっか|しのか)"),
    _r(
        "med.kana_breath",
        "child_danger",
        r"いきを?して(?:い)?(?:ない|ません)|いきが(?:ない|とまっ|できてない|できない)",
    ),
    _r(
        "sos.kana_parent_hits",
        "child_sos",
        r"(?:おかーさん|おかあさん|おかん|かーちゃん|かあちゃん|おとーさん|おとうさん|とーちゃん|とうちゃん)が.{0,6}(?:たたく|叩く|なぐる|殴る|ける|蹴る)",
    ),
    _r("parent.kana_sink", "parent_harm", r"(?:しずめたく|しずめそう|しずめちゃ|しずめてしま|沈めたく|沈めそう)"),
    _r(
        "med.kana_limp",
        "child_danger",
        r"ぐったり.{0,12}(?:めを?あけ(?:ない|ません)|うごか(?:ない|ません)|へんじ(?:が|も)?(?:ない|しない))",
    ),
    _r(
        "sos.kana_words",
        "child_sos",
        r"(?:親|おや|母|父|はは|ちち|まま|ぱぱ|おかあさん|おとうさん|お母さん|お父さん)(?:から|に|が|は).{0,12}(?:「|『)?"
        r"(?:死ね|しね|消えろ|きえろ|出てけ|でてけ|出ていけ|おまえなんか|お前なんか|うまなきゃ|産まなきゃ)",
    ),
    _r(
        "sos.neck_kana",
        "child_sos",
        r"(?:ちちおや|ははおや|おとうさん|おかあさん|父親|母親|ぱぱ|まま|おや|親|父|母)に.{0,6}(?:くび|首)を?(?:しめられ|絞められ|締められ)",
    ),
    _r(
        "dv.neck_kana",
        "dv",
        r"(?:夫|おっと|旦那|だんな|主人|しゅじん|彼氏|かれし|うちのひと|亭主)に.{0,6}(?:くび|首)を?(?:しめられ|絞められ|締められ)",
    ),
    _r(
        "dv.slapped_kana",
        "dv",
        r"(?:夫|旦那|だんな|主人|彼氏|うちのひと|うちの人|亭主|元夫|元彼).{0,40}?(?:顔|頬|ほほ|ほっぺ|頭|腹|おなか)(?:を|は|も)?(?:はたかれ|たたかれ|叩かれ|なぐられ|殴られ|ぶたれ|蹴られ|けられ)",
    ),
    _r(
        "med.kana",
        "child_danger",
        r"(?:いき|こきゅう)(?:を)?(?:してない|していない|しとらん|してへん|できない|でけへん)",
    ),
    _r(
        "med.kana_fall",
        "child_danger",
        r"(?:べらんだ|まど|てすり|やね|まどわく|さく|にかい|2かい)(?:.{0,14})(?:おちそう|おちかけ|おっこちそう|ぶらさがって)",
        info=True,
    ),
    _r(
        "child.knife",
        "child_sos",
        r"(?:まま|ぱぱ|おかあさん|おとうさん|おかん|おとん|お母さん|お父さん|母|父)(?:が|は)(?:.{0,12})(?:ほうちょう|包丁|ないふ|はもの|刃物)(?:を)?"
        r"(?:もってくる|もってきて|持ってくる|持って来る|持ってきて|むけ|向け|ふりまわ|振り回|つきつけ|突きつけ|もっておいかけ|"
        r"もって.{0,6}(?:おこって|どなって|あばれて|こわい)|持って.{0,6}(?:怒って|怒鳴って|暴れて|怖い|こわい))",
    ),
    # The analyser splits ひきつけ (ひく|付け): the surface keeps every spelling, a past seizure told as
    # history (起こしたことがある, 起こした時は) left out.
    _r(
        "med.kana_seizure",
        "child_danger",
        r"(?:けいれん|ひきつけ|痙攣|引きつけ|引き付け)(?:を)?(?:して|しとる|してる|"
        r"(?:おこ|起こ)(?:して|しとる|しました|した(?!こと|事|とき|時|ら|場合|あと|後)))",
        info=True,
    ),
    _r(
        "poison.kana",
        "poisoning",
        r"(?:でんち|せんざい|くすり|たばこ|すいがら|しょうしゅうざい|ひょうはくざい|じしゃく|じぇるぼーる|ぼーる|とうゆ|はいたー|かびきらー|"
        r"じゅうなんざい|にゅうよくざい|しゃんぷー|まにきゅあ|じょこうえき|こうすい|さっちゅうざい|かんそうざい|ほれいざい|のうやく|"
        r"おさけ|あるこーる|けしょうすい|えきたい|ないふ|びーだま|こいん|おかね|がびょう)(?:を)?(?:.{0,6})"
        r"(?:(?:のみこん|のん|かん)(?:だ|じゃった|じゃいました|でしまった|でしもた|でもうた)"
        r"|(?:たべ|なめ|かじっ|くちにいれ)(?:た|ちゃった|ちゃいました|てしまった|てしもた|ました))",
    ),
    _r(
        "distress.everything",
        "distress",
        r"(?:なんもかんも|何もかも|なにもかも)(?:が)?(?:嫌|いや)",
        level="distress",
        negatable=False,
    ),
    _r(
        "abuse.kana_neighbour",
        "abuse",
        r"(?:となり|きんじょ|よそ)の(?:いえの)?(?:こ|こども|子|子ども|あかちゃん|赤ちゃん)(?:が|は)?.{0,30}"
        r"(?:そとに(?:だされ|しめだされ)|ほうちされ|なぐられ|たたかれ|どなられ|たたく(?:おと|音)|ひめい|さけんで|"
        r"(?:よなか|まよなか|しんや|まいばん|まいよ)(?:に)?.{0,6}(?:ないて|なきさけ|さけんで)|(?:おや|親|まま|ぱぱ|だれも)(?:が|は|も)?いない)",
    ),
    _r(
        "child.kana_touched",
        "child_sos",
        r"(?:おとうさん|おかあさん|ぱぱ|まま|おや|お父さん|お母さん)(?:の(?:かれし|彼氏|こいびと|恋人))?(?:に|から).{0,10}さわられ",
    ),
    _r(
        "distress.kana",
        "distress",
        r"(?:もう(?:むり|だめ|げんかい|いや)|つかれた(?:もう|.{0,4}むり)|しんどすぎ|もうあかん|しんどうて|しんどくて|かなわん|"
        r"(?:まいにち|毎日|ずっと|よる)(?:.{0,4})(?:ないてばかり|ないてる|ないています))",
        level="distress",
        negatable=False,
    ),
)


_CONTENT_LITERAL = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff々ーa-z]+")
_FUNCTION_WORDS = frozenset("がをにはもとでてたのへやかだ") | {
    "れる",
    "ない",
    "無い",
    "為る",
    "居る",
    "てる",
    "ます",
    "です",
}


def _triggers(rule: Rule) -> frozenset[str]:
    """Words one of which every match of the rule contains (叩く, 息, 洗剤...), so a message containing none
    cannot match it: one pass over the message finds which rules to try. Read from the rule's parsed pattern:
    of the parts every match passes through, the most telling one (its words the longest, function words
    worth nothing); a part that is an alternation gives the words of all its branches. When the pattern
    offers no such part, every content word it names (a superset: some branch needs one of them)."""
    needed = _needed(sre_parse.parse(rule.pattern.pattern))
    if needed:
        return needed
    return frozenset(
        w for w in _CONTENT_LITERAL.findall(rule.pattern.pattern) if w not in _FUNCTION_WORDS and len(w) >= 1
    )


def _worth(words: frozenset[str]) -> tuple[int, int]:
    """How telling a set of alternative words is: its weakest word's length (0 for a function word), then fewer."""
    return (min(0 if w in _FUNCTION_WORDS else len(w) for w in words), -len(words))


def _needed(parsed: sre_parse.SubPattern | list[tuple[object, object]]) -> frozenset[str] | None:
    """Words one of which any match of this sequence contains, or None when no part of it guarantees one."""
    options: list[frozenset[str]] = []
    run: list[str] = []

    def close_run() -> None:
        for piece in "".join(run).split("|"):
            if piece:
                options.append(frozenset([piece]))
        run.clear()

    for op, av in parsed:
        if op is sre_constants.LITERAL:
            run.append(chr(av))  # type: ignore[arg-type]
            continue
        close_run()
        if op is sre_constants.SUBPATTERN:
            sub = _needed(av[3])  # type: ignore[index]
            if sub:
                options.append(sub)
        elif op is sre_constants.BRANCH:
            branches = [_needed(b) for b in av[1]]  # type: ignore[index]
            if all(branches):
                options.append(frozenset().union(*branches))  # type: ignore[arg-type]
        elif op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT) and av[0] >= 1:  # type: ignore[index]
            sub = _needed(av[2])  # type: ignore[index]
            if sub:
                options.append(sub)
    close_run()
    options = [o for o in options if _worth(o)[0] > 0]
    return max(options, key=_worth) if options else None


@dataclass(frozen=True, slots=True)
class RuleHit:
    rule: Rule
    start: int


_VOLITIONAL = re.compile(r"[オコゴソゾトドノホボポモヨロヲ]ウ$")


def lemma_stream(tokens: Sequence[tuple[str, str, str, str]]) -> str:
    """|lemma|lemma|... of the analyser's tokens; white space dropped, punctuation kept as clause marks."""
    parts = []
    for surface, norm, reading, pos in tokens:
        if pos == "空白" or not surface.strip():
            continue
        lemma = (norm or surface).casefold().replace("|", "")
        parts.append(LEMMA_ALIASES.get(lemma, lemma))
        # The analyser folds the volitional into the verb's dictionary form (死のう → 死ぬ, 行こう → 行く): keep
        # it as its own word, the rules' |う|, or 「死のうと」 would read as 「死ぬと」.
        if pos == "動詞" and surface != norm and _VOLITIONAL.search(reading or ""):
            parts.append("う")
    return ("|" + "|".join(parts) + "|").replace("|ます|ず|", "|ない|")


# A small vowel kana ending a word is a tone of voice (いたぃ, おもぅ), not a sound: read it full size.
_SMALL_VOWEL = re.compile(r"(?<=[\u3041-\u3096])([ぁぃぅぇぉ])(?![\u3041-\u3096])")
_FULL_VOWEL = str.maketrans("ぁぃぅぇぉ", "あいうえお")


def ja_text(text: str) -> str:
    """The cleaned text the Japanese rules read: small word-final vowels written full size."""
    return _SMALL_VOWEL.sub(lambda m: m.group(1).translate(_FULL_VOWEL), clean(text))


def fold_surface(text: str) -> str:
    return to_hiragana(ja_text(text)).replace(" ", "")


def _clauses(stream: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    pos = 0
    for m in _CLAUSE.finditer(stream):
        out.append((pos, stream[pos : m.start() + 1]))
        pos = m.end() - 1
    out.append((pos, stream[pos:]))
    return out


def _negated(after: str) -> bool:
    """A negation of the matched act within the next few words (叩いたことはない, 死にたいとは思わない).
    Only function words may stand between (a later verb has its own negation: いなくなって30分見つからない),
    and 〜ないか is a fear, not a negation (殺してしまうんじゃないか)."""
    words = [w for w in after.split("|") if w][:6]
    for i, w in enumerate(words):
        if w in _NEG_STOP:
            return False
        if w in _NEGATIONS:
            if i + 1 < len(words) and words[i + 1] in ("か", "かしら", "かな"):
                return False
            # the word the negation belongs to, polite auxiliaries skipped (かもしれません: 知れる|ます|ず)
            before = [p for p in words[:i] if p not in ("ます", "です")]
            return not (before and before[-1] in _NOT_NEGATING)
        if w not in _NEG_BRIDGE and not w.isdigit():
            return False
    return False


def _applies(rule: Rule, clause: str, m: re.Match[str], info: bool) -> bool:
    if rule.info_sensitive and info:
        return False
    if rule.agent_block is not None and rule.agent_block.search(clause[: m.start()] + m.group(0)):
        # The agent block looks at the clause up to the end of the match: 「上の子が赤ちゃんを叩きそう」
        # has its agent inside the match of the object.
        return False
    if rule.category in ("self_harm", "with_child") and _HYPERBOLE.search(clause[m.end() :]):
        return False
    return not (rule.negatable and _negated(clause[m.end() :]))


class _Prefilter:
    """Maps each trigger word of the lemma rules to the rules that need it. The search finds the longest
    trigger at each position; the shorter ones starting there are its prefixes (終わ within 終わり), so each
    word also carries the rules of its prefixes."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        by_word: dict[str, set[int]] = {}
        for i, rule in enumerate(rules):
            for w in _triggers(rule):
                by_word.setdefault(w, set()).add(i)
        self.by_word: dict[str, frozenset[int]] = {
            w: frozenset(ids.union(*(by_word[w[:n]] for n in range(1, len(w)) if w[:n] in by_word)))
            for w, ids in by_word.items()
        }
        words = sorted(self.by_word, key=len, reverse=True)
        self.pattern = re.compile("|".join(re.escape(w) for w in words))

    def candidates(self, stream: str) -> list[int]:
        found: set[int] = set()
        pos = 0
        while (m := self.pattern.search(stream, pos)) is not None:
            found.update(self.by_word[m.group(0)])
            pos = m.start() + 1
        return sorted(found)


_PREFILTER: list[_Prefilter] = []


def _prefilter() -> _Prefilter:
    if not _PREFILTER:  # built on first use, not at import time
        _PREFILTER.append(_Prefilter(LEMMA_RULES))
    return _PREFILTER[0]


def match_rules(stream: str, surface: str, *, prefilter: bool = True) -> list[RuleHit]:
    """Every rule that fires on this message, lemma rules clause by clause, then surface rules."""
    info = bool(_INFO.search(stream)) and (
        "?" in surface or "？" in surface or _question_end(stream) or bool(_ASKING.search(stream))
    )
    hits: list[RuleHit] = []
    seen: set[str] = set()
    clauses = _clauses(stream)
    starts = [offset for offset, _clause in clauses]
    order = _prefilter().candidates(stream) if prefilter else range(len(LEMMA_RULES))
    for index in order:
        rule = LEMMA_RULES[index]
        # One search of the whole stream per rule; the guards then look at the clause of the match.
        for m in rule.pattern.finditer(stream):
            offset, clause = clauses[bisect_right(starts, m.start()) - 1]
            local = rule.pattern.match(clause, m.start() - offset)
            if local is None:  # a rule whose context may span clauses (隣の部屋から…、…泣き叫んで)
                clause, local = stream, m
            if rule.level == "distress" and _BRIGHT_AFTER.match(stream, m.start()):
                continue
            if rule.id in _FALL_RULES and _WELL_AGAIN.search(stream, m.end()):
                continue
            if rule.category in _WHAT_IF_CATEGORIES and (
                _WHAT_IF.match(stream, m.end()) or _WORRY_OR_BRIGHT.match(stream, m.end())
            ):
                continue
            if rule.category in _WHAT_IF_CATEGORIES and (
                _EXPERIENCE.match(stream, m.end())
                or (_PAST_TIME.search(stream, 0, m.start()) and _NOW_AGAIN.search(stream, m.end()))
            ):
                continue
            if rule.category == "poisoning" and _ALCOHOL.search(m.group(0)) and _NURSING.search(stream):
                continue
            if _applies(rule, clause, local, info):
                hits.append(RuleHit(rule, m.start()))
                seen.add(rule.id)
                break
    # a danger told as history with the child well now: the surface rules have no positions to check it by
    history = bool(_PAST_TIME.search(stream) and _NOW_AGAIN.search(stream))
    for rule in SURFACE_RULES:
        if history and rule.category in _WHAT_IF_CATEGORIES:
            continue
        found = rule.pattern.search(surface)
        if found is not None and rule.id not in seen and not (rule.info_sensitive and info):
            after = surface[found.end() : found.end() + 8]
            if rule.category == "self_harm" and re.match(
                r"(?:くらい|ぐらい|ほど).{0,2}(?:はずかし|ねむ|いそがし|おもしろ|うれし)", after
            ):
                continue
            if rule.negatable and re.match(r"(?:ことは|とは|わけでは)?(?:ない|ありません|ません)", after):
                continue
            hits.append(RuleHit(rule, found.start()))
            seen.add(rule.id)
    return hits


def _question_end(stream: str) -> bool:
    return bool(re.search(r"\|(?:か|の|かな|でしょう|ですか)\|?$", stream.rstrip("|") + "|"))


def tokens_of(tokenizer: Tokenizer, text: str) -> list[tuple[str, str, str, str]]:
    return tokenizer.tokens(clean(text))


# One child acting on another (娘が弟を蹴ってしまう, 上の子が赤ちゃんを叩く), on the folded surface: the writer is
# not the agent. The learned signal has no notion of who acts, so it may not read these as a parent's fear.
_KIN = (
    r"(?:むすめ|娘|むすこ|息子|うえのこ|上の子|したのこ|下の子|おとうと|弟|いもうと|妹|あに|兄|あね|姉|おにいちゃん|"
    r"おねえちゃん|ともだち|友達|友だち|おともだち|お友達|あかちゃん|赤ちゃん|ねこ|猫|いぬ|犬)"
)
_CHILD_AGENT = re.compile(rf"(?:{_KIN}|こども|子ども|子供)(?:が|は|も)[^、。,.!?！？]{{0,10}}?{_KIN}(?:を|に)")


def child_is_agent(surface: str) -> bool:
    """Whether a child (or a pet) is the one acting on another child, in the folded surface."""
    return bool(_CHILD_AGENT.search(surface))


def surface_may_be_urgent(surface: str) -> bool:
    """Whether an urgent rule over the folded surface matches, its guards left out (a superset)."""
    return any(rule.level == "urgent" and rule.pattern.search(surface) for rule in SURFACE_RULES)
