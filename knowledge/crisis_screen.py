"""A cheap first look at a message: could an urgent signal of the crisis detector fire on it?

The LINE intake uses it to pick the queue lane while the webhook waits for its acknowledgement; the full
assessment (the Japanese analyser and every rule) still runs in the engine on every message, so the screen
only decides how soon a message is taken up. It must never say no to a message the detector would call
urgent, and it is cheap because it never runs the analyser:
- curated phrases, the rules over the folded surface and the English rules are checked as they are
  (without their guards: a superset);
- the rules over the analyser's lemma stream are stood in for by the surface stems of the words they need
  (every spelling the analyser folds into those words: kanji, kana, conjugation stems), `JA_STEMS`;
- a message written in kana alone always goes on to the detector (the analyser reads kana freely).
tests/knowledge/test_crisis_screen.py checks the superset on every urgent message of the bench sets, the
training examples and the tests.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# Stems of the words the urgent lemma rules need, as written (folded to hiragana before matching). Each rule
# is covered by the stems of one of the parts it cannot match without (its act, its danger, its substance).
JA_STEMS = """
死 しにた しにそ しぬ しね しのう しのか しんで しんだ しんじゃ 殺 ころす ころし ころさ ころそ ころせ
逝 消え きえ 心中 しんじゅう 道連 みちづれ 自傷 自殺 自死 遺書 希死 リスト リスカ 首 くび 吊 飛び降
飛び下 飛びお 飛び込 とびお とびこ 身投 練炭 ロープ 縄 手首 腕 うで 生き いきて いきる いきら いきれ
終わ おわら おわり おわれ 目が覚め めがさめ 朝が来 あさがこ 楽に らくに 楽にな いなくな 居なくな
いないほう いない方 居ない方 がいな もいな はいな が居な も居な は居な おらんく いずに 憎 にくい 叩
たた 殴 なぐ 蹴 けっ けら けり けと けろ をけ 打 ぶっ ぶた ぶつ ぶち しばか しばく しばき しばい
どつ ど突 抓 つねっ つねら つねる 揺さ 揺す ゆさぶ ゆすっ ゆすら ゆする 投げ なげ 突 つきとば
つきおと 絞 締 しめる しめた しめら しめて しめそ しめちゃ 傷 痛め 押し付 押しつ 押し倒 おしつけ
おしたお 押さえ おさえつ 踏み ふみつ 引きず ひきず 引っ叩 引っぱた ひっぱた 引っ張 ひっぱ 虐 いじめ 沈
しずめ しずん 塞 ふさい ふさが ふさぎ ふさぐ 窒息 ちっそく 体罰 びんた 平手 張り倒 はりたお はたい
はたく はたか 手を上 手をあげ 手を挙 手を出 手をだ 手が出 手がで 手をかけ 手を掛 怒鳴 どな 悲鳴 ひめい
叫 さけ 隣 となり 近所 きんじょ 上の階 下の階 向かい マンション アパート 団地 よそ 出さ ださ 締め出
しめだ 立たさ 立たせ たたさ 待たさ 待たせ またさ 放置 ほうち 追い出 おいだ あざ 痣 火傷 やけど 跡
ご飯 ごはん 御飯 食事 食べ物 痩せ やせ ガリガリ がりがり 同じ服 おなじふく ネグレクト 育児放棄 性的 触
さわ 撫で なで 脱が ぬが 入って来 入ってく はいってく はいって来 帰って 帰ら 帰れ 帰り 帰宅 かえって
かえら かえれ かえり 暴 ぼうりょく dv 脅 おどさ おどし おどす 監視 掴 つかま つかん 包丁 ほうちょう
刃物 はもの ナイフ 壊 こわ 壁 火を 禁止 チェック 取り上げ とりあげ 取られ とられ 隠さ かくさ 怖 恐
お前 おまえ 御前 てめえ 貴様 くれな 呉れな もらえな 貰えな 渡さ わたさ 渡して 管理さ 使わせ つかわせ
暴言 人格 付きまと 付き纏 つきまと ストーカー 待ち伏 逃げ にげ シェルター 強要 役立 馬鹿 ばか くず 屑
ゴミ ごみ 能無し ぶす でぶ 出ていけ 出て行け でていけ 出てけ でてけ 息を 息が 息し 息も 息で 息苦
いきを いきが いきし 呼吸 こきゅう 反応 はんのう 意識 いしき 返事 へんじ 動か うごか 事故 ひかれ はね
轢 撥 落ち おちる おちた おちて おちそ おちか 落っこ おっこ ぶら下 ぶらさ ぐったり 痙攣 けいれん
引き付 引きつ ひきつ 喉 のど 詰ま 浮 ういて うかん うかぶ 紫 むらさき 青 あおい まっさお 真っ青 転ん
転ば 転び 転ぶ 転落 転げ 転倒 ころん ころび ころぶ ころげ 倒れ たおれ ぶつか ぶつけ 溺 おぼれ 流さ
ながさ さらわ 攫 飲まれ のまれ 呑まれ 誘拐 連れ去 つれさ 連れ込 つれこ 知らない 不審 水ぶくれ 水膨れ
水脹れ 熱湯 迷子 まいご 行方 見つから 見付から みつから 目を離 めをはな 置き去 閉じ込 とじこ 残し 残さ
残す 置い 置き 寝たまま 寝てるまま 寝ているまま 崖 線路 踏切 樹海 橋 湖 血 出血 目を開け 目をあけ
めをあけ 目を覚ま めをさま 呼んでも よんでも 手ぇ てぇ 洗剤 せんざい ジェル 漂白 ハイター カビキラー
柔軟剤 消臭 芳香剤 除光液 防虫 ナフタリン 入浴剤 殺虫 乾燥剤 保冷剤 灯油 とうゆ 農薬 電池 でんち 磁石
じしゃく マグネット タバコ たばこ 煙草 吸い殻 すいがら マニキュア 香水 化粧 シャンプー 薬 くすり 錠 剤
毒 酒 ビール ワイン 焼酎 ウイスキー アルコール 液 スプレー シロップ クリーナー オイル 誤飲 誤食 中毒
ビー玉 おはじき 硬貨 コイン 小銭 円玉 画鋲 ピン ネジ 釘 ピアス イヤリング 指輪 ボタン ビーズ クリップ
ホッチキス 針 部品 キャップ 吸い込 根性焼 od オーバードーズ 何をするか なにをするか 抑え 押し込 おしこ
許可 許し いっそ 部屋 へや 入れても いれても ケージ 檻 押し入れ 押入れ 物置 納戸 るなと るなって 暴言
性的 連れ子 アナフィラキシー 発作 鍵 ロック きー 衝突 接触 此の世 この世 このよ 溜め 貯め ためこ
ベランダ べらんだ タオル たおる 泡 癖 くせ 被せ かぶせ 産ま 生ま 産ん 生ん うまな うまなきゃ
うまれてこな 見当たら みあたら 命 いのち 見失 みうしな 姿 すがた 皮膚 ひふ 丸飲 丸呑 まるのみ 飲み込
のみこ ソープ 石鹸 せっけん 除菌 消毒 落とし おとし 衝動 はさみ ハサミ 鋏 カッター ホーム 電車 屋上
ビル 車道 飛び出 ぼこぼこ めちゃくちゃ 滅茶苦茶 戻ら もどら 自信 音 見つかり 見付かり みつかり 天国
てんごく あの世 あのよ お空 おそら 突っ込 つっこ 突き込 ガス 元栓 枕 まくら クッション ビニール おむつ
オムツ 襁褓 ミルク 与え 秘密 ひみつ 内緒 ないしょ 腫れ はれ ゼーゼー ぜーぜー ぜいぜい ゼイゼイ
ヒューヒュー ひゅーひゅー 蕁麻疹 じんましん 曲が まが シート クローゼット トイレ 帰る かえる 怒ら おこら
元夫 元彼 元旦那 元妻 居場所 住所 ばれ バレ 任せ まかせ 今まで いままで 今迄 硼酸 ホウ酸 ほう酸
ゴキブリ ごきぶり 殺鼠 防腐 虫除 蚊取 何かして なにかして 何かしちゃ なにかしちゃ 亡くな 死んだ はぐれ
逸れ 無理やり 無理矢理 むりやり 強引 参ろ まいろ 残して 置いて 可哀想 かわいそう 機嫌 顔色 土下座
カッター 剃刀 カミソリ 太もも 太腿 離し はなし 背中 揺さぶ 押さえ 皿 再婚 同居人 布団 じんましん 麻疹
シッター
"""
# 海 and 川 as words of their own (北海道, 石川 and 湯の川 are ordinary): followed by a particle or a stop.
_WATER = " ".join(w + p for w in "海川" for p in "にへでまのかをがとはも、。!！")
# Hiragana and the long-vowel mark only (no kanji, no katakana after folding is checked on the raw text).
_KANA_ONLY = re.compile(r"^[\u3040-\u309f\u30a0-\u30ff\uff66-\uff9f\u30fc\s\d、。,.!?！？…ー〜~]+$")


def ja_stem_pattern(fold: Callable[[str], str]) -> re.Pattern[str]:
    """The stems, folded the way the detector folds a message (kana to hiragana, width and case)."""
    folded = {fold(w) for w in (JA_STEMS + _WATER).split()}
    return re.compile("|".join(re.escape(w) for w in sorted(folded, key=len, reverse=True) if w))


def kana_only(text: str) -> bool:
    return bool(_KANA_ONLY.match(text))
