"""Kinds of wording the detector once missed or misread: dropped particles, small kana typed for tone,
a negation that belongs to a later verb, 〜ないか as a fear, a question asking what to do now, the
substance named one sentence before the swallowing, an adult told as ママ in kana, a child's grammar,
the parent's partner at night, children alone for days, English ages as nouns, and the ordinary worries
that look like them (a car ride, a jumping game, a hardship told with its bright side)."""

from __future__ import annotations

import pytest

from knowledge.crisis import CrisisDetector, Level
from knowledge.models import KnowledgeBase
from knowledge.normalize import Normalizer


@pytest.fixture(scope="module")
def detector(kb: KnowledgeBase) -> CrisisDetector:
    return CrisisDetector.for_kb(kb, Normalizer(kb.synonyms))


URGENT_KINDS = [
    # a particle dropped, a small kana typed for tone
    ("むすこ連れて死のうかな", "with_child"),
    ("むすめと しのうとおもぅ", "with_child"),
    # imagined relief with the child: the two of us into the river
    ("寝顔を見ていると、親子で川に飛び込んでしまえば楽なのにと思う", "with_child"),
    # a negation belonging to a later verb does not cancel the act
    ("3歳の息子がいなくなって20分たっても見つかりません", "child_danger"),
    # 〜んじゃないか: a fear, not a negation
    ("このままだと娘を叩いてしまうんじゃないか", "parent_harm"),
    # asking what to do now is not a general question
    ("1歳の子が漂白剤をなめてしまいました。どうしたらいいですか", "poisoning"),
    # the thing named first, the swallowing in the next sentence
    ("おもちゃの磁石がひとつ足りない。下の子が飲み込んだかも", "poisoning"),
    ("灯油のポリタンク、娘が少し飲んだみたい", "poisoning"),
    ("気づいたら口の中に洗剤が入っていた", "poisoning"),
    # a child left in the car
    ("車に赤ちゃんを残して買い物に行ってしまった、戻ったら泣いていない", "child_danger"),
    ("呼びかけても反応が鈍い、顔色も悪い", "child_danger"),
    ("公園で目を離した隙に娘がいない", "child_danger"),
    # a child's grammar: が with a passive, ママ read as 侭 in kana
    ("ままが ぼくを けって いたい。ままに なげられた", "child_sos"),
    ("ぱぱが おこって たたかれた", "child_sos"),
    ("わたしは わるいこ だから ばんごはん もらえない", "child_sos"),
    ("いもうとと ふたりだけ。5にち おとなが いない", "child_sos"),
    # marks no fall leaves, an adult at night
    ("姪の腕にタバコを押し付けた跡がある", "abuse"),
    ("預かった甥の首に指の形のあざがいくつもあった", "abuse"),
    ("母の恋人が夜中に布団に入ってくる。高校生です", "child_sos"),
    ("向かいの家の子、雪の日なのに夜玄関の外に出されてる", "abuse"),
    ("となりのあかちゃん まよなかに ずっと ないてる。おやが いないみたい", "abuse"),
    # DV: the threat of being next
    ("皿を割ったあと、今度はお前の番だと言われた", "dv"),
    # self-harm in indirect words
    ("屋上から飛び降りようかと考えている", "self_harm"),
    ("踏切に飛び込んだら楽になれるのかな", "self_harm"),
    ("腕をリストカットしてしまった", "self_harm"),
    # English: an age as the noun, a pillow, a substance told before
    ("I kicked my 6 year old and he is crying in his room", "parent_harm"),
    ("When he won't stop crying I think about holding a pillow over his face", "parent_harm"),
    ("There was an open box of my iron tablets on the floor and I think she swallowed some", "poisoning"),
    ("Every night the man next door yells at a little boy and then it goes silent", "abuse"),
    ("My cousin said her stepdad touches her when mom is at work", "abuse"),
    ("I keep thinking about taking my daughter with me when I die", "with_child"),
    ("I really don't want to wake up tomorrow", "self_harm"),
    # caught by the rules alone now that the similarity signal is off
    ("下の階の部屋から子どもを叩く音がする", "abuse"),
    ("夜泣きが続くと鼻と口を塞いでしまいそう", "parent_harm"),
    # polite negation (〜しません) read as the plain one
    ("揺すっても娘が目を覚ましません", "child_danger"),
    ("名前を呼んでも息子が反応しません", "child_danger"),
    # the child taken along, told a sentence later; both of us at rest
    ("私が死んだら息子はひとりぼっち。だから連れていくしかない", "with_child"),
    ("娘と二人とも楽になれたらいいのに", "with_child"),
    ("睡眠薬を全部まとめて飲もうかな", "self_harm"),
    ("死んだほうがましや", "self_harm"),
    # a slip told in the past with the child named earlier; the parent who comes at the child
    ("1歳の息子が泣き止まない。さっき突き飛ばしてしまいました", "parent_harm"),
    ("小4です。お母さんがすぐ叩いてきます", "child_sos"),
    ("中1です。父に「消えろ」と毎日言われています", "child_sos"),
    ("おかあさんの こいびとが よる へやに はいってくる", "child_sos"),
    ("きのうから だれもいない。なにも たべてない", "child_sos"),
    ("ぱぱが ずっと かえってこない。おなか すいた", "child_sos"),
    # DV with the particle dropped, confined
    ("夫に携帯壊されて、実家にも帰らせてもらえない", "dv"),
    # poisoning told by its traces
    ("漂白剤のボトルが倒れていて、娘の口の周りが濡れている", "poisoning"),
    ("除光液のふたが開いていた。少しなめたかも", "poisoning"),
    # a carer finds marks
    ("担任している男の子の背中に、複数のあざを見つけました", "abuse"),
    ("となりの こが ずっと ほうちされてる", "abuse"),
    # English
    ("If I die tonight I'm taking the kids with me", "with_child"),
    ("I keep thinking of driving into the river with my son", "with_child"),
    ("I just want everything to stop", "self_harm"),
    ("My family would be happier if I wasn't here", "self_harm"),
    ("I grabbed my daughter by the throat", "parent_harm"),
    ("He ran off in the park and we can't find him anywhere", "child_danger"),
    # a real emergency stays one though the writer asks what to do
    ("けいれんが止まらない。救急車を呼ぶべき？", "child_danger"),
    ("娘が漂白剤を飲んだ時に吐いた", "poisoning"),
    # other languages: polite particles and compound phrasings
    ("Nakainom ho ng lason ang anak ko", "poisoning"),
    ("我想带着孩子一起去死", "with_child"),
    # verb forms of the fear: 〜たくなる, 〜そうになった, the mouth covered or stuffed
    ("子どもを放り投げたくなる", "parent_harm"),
    ("泣きやまないと口を押さえたくなる", "parent_harm"),
    ("子どもを黙らせたくて、口にタオルを押し込みそうになった", "parent_harm"),
    # DV in less common words: a slap in two words, things thrown, out only with his permission
    ("夫にビンタされた", "dv"),
    ("夫に何度も平手打ちされた", "dv"),
    ("主人が機嫌が悪いと物を投げつけてきます", "dv"),
    ("夫の許可なしに外に出られません", "dv"),
    ("my husband broke my phone and punched the wall next to my head", "dv"),
    ("he smashed the furniture and said I was next", "dv"),
    # self-harm in indirect words: the slip form before the wish, いっそ
    ("もう全部終わらせてしまいたい", "self_harm"),
    ("いっそ消えてしまえたらと本気で思う", "self_harm"),
    ("娘と一緒に飛び降りたい", "with_child"),
    # a child writing: no particle, a parent at night in the child's room
    ("ぼく ごはん もらえない", "child_sos"),
    ("ぱぱが よる へやに くる いやだ", "child_sos"),
    # medical: 行方不明 is two words to the analyser; breathing in the progressive
    ("子どもが行方不明", "child_danger"),
    ("赤ちゃんがミルクを吐いて息ができていない", "child_danger"),
    # abuse reported by someone else: the child's own cry, not let in, a cage, not fed, the child named first
    ("隣に住む親子、毎日のように母親の怒鳴り声と子どもの泣き声がして、時々ガシャンと音がします", "abuse"),
    ("下の階から「痛い、やめて」という子どもの声が聞こえてきます", "abuse"),
    ("近くの家の男の子が、朝から晩まで家に入れてもらえずに外で待っています", "abuse"),
    ("友人の家で子どもがケージに入れられていた", "abuse"),
    ("元妻が子どもに食事を与えていないらしい", "abuse"),
    ("夫の連れ子に夫が手を上げている", "abuse"),
    ("夫が娘に性的なことをしているかもしれない", "abuse"),
    ("I saw a father kicking his kid in the parking lot", "abuse"),
    ("my friend leaves her toddler alone at home all day", "abuse"),
    ("the boy next door has burn marks on his arms", "abuse"),
    # DV going on, contact forbidden, money taken away
    ("夫の暴言と暴力に耐えられません", "dv"),
    ("夫がスマホを勝手に見て、友達と連絡を取るなと言われる", "dv"),
    ("夫にお金を取り上げられて、自由に使えるお金が全くない", "dv"),
    # dying together in other words
    ("子どもと一緒に楽になりたい", "with_child"),
    ("I want to take my daughter and end both our lives", "with_child"),
    # medical: anaphylaxis, a seizure that goes on, locked in the car, a collision, a duration is not opening hours
    ("アナフィラキシーで顔が腫れて息が苦しそう", "child_danger"),
    ("てんかんの発作が5分以上続いている", "child_danger"),
    ("車に子どもを乗せたまま鍵を閉めてしまった、暑い日", "child_danger"),
    ("息子が自転車で車とぶつかって倒れている", "child_danger"),
    ("子どもが迷子になって1時間見つからない、警察に電話すべき？", "child_danger"),
    ("my daughter is having an allergic reaction and her throat is swelling", "child_danger"),
    ("my kid locked himself in the hot car", "child_danger"),
    # self-harm: not wanting to be in this world, medicine hoarded
    ("この世にいたくない", "self_harm"),
    ("薬を溜め込んでいる、いつか全部飲む", "self_harm"),
    ("I wish I could just disappear", "self_harm"),
    # a history or a story mentioned beside a danger now keeps it urgent
    ("先週から熱が続いていて、今けいれんして反応がない", "child_danger"),
    ("以前にも誤飲したことがあるが、今また洗剤を飲んだ", "poisoning"),
    ("昔から元気な子なのに、さっきから呼んでも反応がない", "child_danger"),
    ("ドラマを見ていたら子どもと心中したくなった", "with_child"),
    ("子どもを車に残して出てきてしまった、どうしよう", "child_danger"),
    # English on the same kinds
    ("I lose it and hit my son, I can't stop myself", "parent_harm"),
    ("I nearly smothered my baby to stop the crying", "parent_harm"),
    ("I keep having thoughts of hurting my baby", "parent_harm"),
    ("I'm afraid of what I might do to my child", "parent_harm"),
    ("my grandson told me his mother burns him with cigarettes", "abuse"),
    ("my mom's boyfriend comes into my room at night", "child_sos"),
    ("please help my parents don't feed me", "child_sos"),
    ("my husband took my passport and my money", "dv"),
    ("my husband grabbed me by the throat", "dv"),
    ("I'm going to kill myself and my kids", "with_child"),
    ("my daughter fell and isn't waking up", "child_danger"),
    ("my 2 year old got out and we can't find her", "child_danger"),
    ("my son is burned badly with boiling water", "child_danger"),
    # kana with the particles dropped, a child touched or left alone
    ("こども たたいて しまう とまらない", "parent_harm"),
    ("こどもの くび しめ そう に なった", "parent_harm"),
    ("おっと が なぐる こわい", "dv"),
    ("わたし の からだ を さわる おじさん が いる いや", "child_sos"),
    ("しょうがく2ねん おかあさんが いない ずっと ひとり", "child_sos"),
    # abuse reported by neighbours and relatives in more words
    ("近所のお母さんが子どもを毎日のように怒鳴りつけて叩いている", "abuse"),
    ("隣の部屋の赤ちゃんが何時間も泣き続けているのに誰もあやしていない", "abuse"),
    ("夜中に隣の子どもが玄関の前で泣いていた、親は出てこない", "abuse"),
    ("孫が「お父さんが怖い」と言って家に帰りたがらない", "abuse"),
    ("隣のお宅、子どもの泣き声と大人の罵声が毎晩すごい", "abuse"),
    # a parent's acts become habits, the child shut in, food withheld, something over the face
    ("子どもの頭を叩くのが癖になってしまった", "parent_harm"),
    ("子どもを叩かずにいられない", "parent_harm"),
    ("言うことを聞かない息子をベランダに出してしまった", "parent_harm"),
    ("娘にご飯を食べさせないことがある、罰として", "parent_harm"),
    ("夜泣きがひどくて、赤ちゃんの顔にタオルをかけたくなる", "parent_harm"),
    # medical: foam at the mouth, a child not home after dark
    ("口から泡を吹いて倒れた", "child_danger"),
    ("娘が公園から帰ってこない、もう暗い", "child_danger"),
]


@pytest.mark.parametrize(("text", "category"), URGENT_KINDS)
def test_crisis_kinds_are_caught(detector: CrisisDetector, text: str, category: str) -> None:
    a = detector.assess(text)
    assert a.level == Level.URGENT, (text, a)
    assert category in a.categories, (text, a)


@pytest.mark.parametrize(
    "text",
    [
        "ワンオペ半年、まともに寝てない",
        "夜泣き続きで疲れ果てました",
        "いいママになれなくて毎日ごめんねって思う",
        "産後うつかもしれません",
        "気がつくとキッチンで泣いています",
        "誰かに話を聞いてほしいです",
        "I'm at my breaking point with the night feeds",
        "I'm scared I'm losing it with the kids",
        "I haven't spoken to another adult in days",
        "Some days I feel like a failure as a mum",
        "何もしたくない",
        "気分の落ち込みがひどいです",
        "笑えなくなりました",
        "ママやめたい",
        "朝が来るのが怖い",
        "毎日しんどうて、誰も分かってくれへん",
        "まいにち ないてばかり",
        "なんのために生きてるのか分からない",
        "I'm at the end of my tether",
        "I sit in the bathroom and cry every evening",
        # confidence as a parent gone, parenting felt as impossible, only enduring, tired past sleeping
        "子育てに自信がなくなった",
        "私には育児は無理だったのかも",
        "毎日ただ耐えているだけ",
        "つかれて ねむれない",
        "I feel like I'm failing my kids",
        "I'm terrified I'll lose my temper with the baby",
        "I'm barely holding it together",
        "I feel like giving up",
        "I'm not coping",
        "I hate being a mum",
        "I regret having kids",
    ],
)
def test_distress_kinds_are_offered_a_person(detector: CrisisDetector, text: str) -> None:
    assert detector.assess(text).level in (Level.DISTRESS, Level.URGENT), text


@pytest.mark.parametrize(
    "text",
    [
        "車で子どもを保育園に送っています",
        "車に子どもを乗せるときのチャイルドシートは？",
        "ソファから飛び降りる遊びをやめさせたい",
        "子どもを叩いたことはありません",
        "薬を飲んでくれない時のコツは？",
        "お酒を飲んだ後の授乳は何時間あければいい？",
        "子どもを連れて死ぬほど混んでる水族館に行った",
        "昨日ソファから落ちたけど、すぐに泣いて元気に遊んでいます",
        "My son likes to jump off the bed onto the pillows",
        "I'm taking the baby with me to the health check",
        # a danger framed as a what-if is a question about preparing
        "誤飲したときのために応急手当を覚えたい",
        "ひきつけを起こしたら病院に行くべきですか",
        "チャイルドシートに子どもを残すのは何歳まで？",
        "赤ちゃんが息をしていない場合の対処法を知りたい",
        "誤飲したときの相談先を知りたい",
        "子どもの行方不明に備えて写真を撮っておくべき？",
        # an emergency over, told as such
        "my son choked on water but coughed it up and is fine",
        # one child hurting another in the form of a slip: the writer is not the agent
        "娘が弟を蹴ってしまう",
        # a fear of an accident while holding the baby, not of harming it
        "赤ちゃんを落としそうで怖い、抱っこのコツ",
        # the new rules' look-alikes: a friend's house, a pet's cage, house rules, the window of a question
        "息子が友達の家に入れてもらえず帰ってきた",
        "ハムスターをケージに入れたら子どもが泣いた",
        "夫が子どもにご飯をあげてくれない日は私が作る",
        "夫のDVの相談窓口を教えて",
        "夫にゲームばかりするなって言われた",
        "子どもが「やめて」と言う声で起きた、兄弟げんか",
        "I feel like I'm drowning in laundry",
        "お酒を飲んだ後の授乳について",
        "アナフィラキシーが心配な子の給食",
        "薬を貯めておく場所",
        "てんかんの発作が続くときの対処法を知りたい",
        "息子が2時間昼寝している",
        # a history with the child well now, a story on the screen, hit by one's own child, a greeting unanswered
        "先週熱性けいれんを起こしたけど今は元気です",
        "去年誤飲したことがあって心配",
        "ドラマで心中のシーンがあって子どもに見せたくない",
        "子どもに蹴られてあざができた（笑）",
        "近所の子に挨拶しても返事がない",
        "鼻血が止まらない、どうしたらいい",
        "夫が子どもにゲームを禁止している",
        "子どもを車に残して買い物はダメだよね",
        "首が痛い、寝違えた",
        "I can't find him a good daycare",
        "my mom doesn't give me pocket money",
        "my husband keeps my passport in the safe",
        "our baby burned his hand with hot water, small blister",
        "あかちゃんの からだを なでると ねる",
        "ままが いない と ずっと なく",
        "こどもが ともだちを たたいて しまう",
        # neighbours' children in everyday life, a bruise from a fall
        "近所の子どもたちが毎晩遊んでいてにぎやか",
        "上の階の子どもの足音",
        "甥っ子が転んであざを作った",
        "子どもを外に出してしまった、寒くないかな",
        "子どもにご飯を食べさせない方がいい時間",
        "赤ちゃんの顔にタオルをかけて日よけしてもいい？",
        "カニが泡を吹いていた",
    ],
)
def test_look_alikes_are_not_urgent(detector: CrisisDetector, text: str) -> None:
    assert detector.assess(text).level != Level.URGENT, text


@pytest.mark.parametrize(
    "text",
    [
        "孫が来ると疲れ果てるけど楽しいです",
        "単身赴任で寂しいけど、なんとかやってます",
        "Can I go to the kids' plaza alone with both kids?",
        "もう無理！ってくらい笑った",
        "I'm exhausted from the trip but happy to be home",
    ],
)
def test_bright_side_and_plain_alone_are_not_distress(detector: CrisisDetector, text: str) -> None:
    assert detector.assess(text).level == Level.NONE, text
