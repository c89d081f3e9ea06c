"""Text in scripts written without spaces (Chinese, Japanese, Thai), mixed with English, and in scripts the
tokenizer never saw: each reads as more than one token, nothing is all [UNK], a Chinese table trains from a
minimal spec, and a tokenizer saved before all this gives the ids it gave."""

from __future__ import annotations

import json
import logging
import warnings

import numpy as np
import pandas as pd
import pytest

import sw2
from sw2.data.encode import looks_like_text
from sw2.data.text import BYTES, load_tokenizer, token_ids, train_tokenizer
from sw2.evaluation import plots
from sw2.spec import TextSpec
from tests.conftest import write_spec

# short sentences written for these tests, thirty of each class (sport, food, weather) in the Chinese table
SPORT = """昨晚的足球比赛主队三比一获胜 他在篮球场上投进了关键的三分球 这支球队终于拿到了联赛冠军
马拉松比赛将在下个月举行 教练对球员们的表现非常满意 乒乓球世界杯今天在北京开幕 她打破了一百米短跑的全国纪录
下半场比赛客队连进两球 网球公开赛的决赛非常精彩 运动员们正在为奥运会刻苦训练 守门员扑出了对方的点球
这场排球比赛打满了五局 球迷们在体育场外排起了长队 他是本赛季进球最多的前锋 游泳队在接力比赛中获得金牌
裁判的判罚引起了很大争议 两支球队在加时赛中战成平局 新赛季的篮球联赛下周开始 她在决赛中发挥出色赢得冠军
球队主力因伤缺席了这场比赛 体育馆里坐满了观看比赛的观众 他每天早上都去跑步锻炼身体
这名小将在比赛中表现非常亮眼 羽毛球男单决赛将在今晚进行 足球队的新教练昨天正式上任
国家队在预选赛中以二比零取胜 滑雪比赛因为场地问题推迟举行 他在跳高比赛中越过了两米三
这位老将宣布赛季结束后退役 主场球迷为球队的胜利欢呼""".split()
FOOD = """这家餐厅的红烧肉特别好吃 妈妈做的饺子味道非常鲜美 这道菜有点太咸了但是汤很好喝
我最喜欢吃四川的麻辣火锅 早餐吃了豆浆和油条还有鸡蛋 这家店的蛋糕甜而不腻 厨师把鱼蒸得又嫩又香
周末我们去吃了北京烤鸭 这碗牛肉面的汤头很浓 新开的面包店每天都排长队 奶奶炒的青菜清淡可口
这里的小笼包皮薄汁多 他学会了做番茄炒鸡蛋 夏天喝一碗绿豆汤很解暑 这家饭馆的菜量很大价格便宜
我们点了一份宫保鸡丁和米饭 烤羊肉串撒上孜然特别香 这款咖啡的味道有点苦 她用新鲜水果做了一盘沙拉
饭后来一碗甜汤真舒服 这家火锅店的牛肉很新鲜 中秋节我们一起吃月饼 他煮的米饭有点太软了
街边小吃的煎饼果子很受欢迎 这道糖醋排骨酸甜适中 餐厅的服务员推荐了招牌菜 爸爸周末做了一桌好菜
这种辣椒酱配面条特别下饭 刚出锅的包子热气腾腾 这家店的寿司做得很地道""".split()
WEATHER = """明天北京有大雨出门记得带伞 今天气温很高最高三十五度 冷空气南下周末将明显降温
早上起了大雾能见度很低 台风预计今晚在沿海登陆 这几天一直是晴朗的好天气 下午可能会有雷阵雨和大风
北方地区迎来了今年第一场雪 夜里风很大气温降到零下 连续的高温让人很难受 天气预报说明天多云转晴
春天来了天气渐渐暖和起来 今年的梅雨季节来得比较早 山区局部有暴雨请注意安全 空气湿度很大衣服晾不干
寒潮来袭最低气温零下十度 今天阳光明媚适合出门散步 气象台发布了大风蓝色预警 雨停之后天空出现了彩虹
这个冬天比往年更加寒冷 沙尘天气影响了北方多个城市 傍晚的时候开始下起小雨 未来三天以阴天为主
高温橙色预警今天继续生效 南方持续降雨部分河流水位上涨 早晚温差大注意添加衣服 今晚有中到大雪道路结冰
秋高气爽天空特别蓝 冰雹砸坏了不少农作物 这周气温回升天气转暖""".split()
JAPANESE = ["東京は今日とても暑いです。", "このラーメンはおいしかった", "明日は雨が降るでしょう"]
THAI = ["วันนี้อากาศร้อนมาก", "อาหารร้านนี้อร่อย", "พรุ่งนี้ฝนจะตก"]
MIXED = ["我们用Python写了一个模型", "这个API很好用, really great", "iPhone的电池不太耐用"]
ENGLISH = ["a great film, warm and funny", "a dull film, slow and long", "the plot is great", "the acting is dull"]
# a tokenizer saved by sw2 before scripts without spaces and byte tokens (its word vocabulary trained on ENGLISH),
# and the ids it gave for ["A great, warm film!", "dull 中文 acting"] cut at 8 tokens
OLD_WORD_TOKENIZER = (
    '{"version":"1.0","truncation":null,"padding":null,"added_tokens":[{"id":0,"content":"[PAD]","single_word":false,'
    '"lstrip":false,"rstrip":false,"normalized":false,"special":true},{"id":1,"content":"[UNK]","single_word":false,'
    '"lstrip":false,"rstrip":false,"normalized":false,"special":true},{"id":2,"content":"[CLS]","single_word":false,'
    '"lstrip":false,"rstrip":false,"normalized":false,"special":true},{"id":3,"content":"[SEP]","single_word":false,'
    '"lstrip":false,"rstrip":false,"normalized":false,"special":true},{"id":4,"content":"[MASK]","single_word":false,'
    '"lstrip":false,"rstrip":false,"normalized":false,"special":true}],"normalizer":{"type":"Sequence","normalizers":'
    '[{"type":"NFKC"},{"type":"Lowercase"}]},"pre_tokenizer":{"type":"BertPreTokenizer"},"post_processor":{"type":'
    '"TemplateProcessing","single":[{"SpecialToken":{"id":"[CLS]","type_id":0}},{"Sequence":{"id":"A","type_id":0}}],'
    '"pair":[{"SpecialToken":{"id":"[CLS]","type_id":0}},{"Sequence":{"id":"A","type_id":0}},{"SpecialToken":{"id":'
    '"[SEP]","type_id":0}},{"Sequence":{"id":"B","type_id":1}}],"special_tokens":{"[CLS]":{"id":"[CLS]","ids":[2],'
    '"tokens":["[CLS]"]},"[SEP]":{"id":"[SEP]","ids":[3],"tokens":["[SEP]"]}}},"decoder":{"type":"WordPiece","prefix":'
    '"##","cleanup":true},"model":{"type":"WordLevel","vocab":{"[PAD]":0,"[UNK]":1,"[CLS]":2,"[SEP]":3,"[MASK]":4,'
    '",":5,"a":6,"and":7,"dull":8,"film":9,"great":10,"is":11,"the":12,"acting":13,"funny":14,"long":15,"plot":16,'
    '"slow":17,"warm":18},"unk_token":"[UNK]"}}'
)
OLD_IDS = [[2, 6, 10, 5, 18, 9, 1, 0], [2, 8, 1, 13, 0, 0, 0, 0]]


def _tokens(state: str, text: str) -> list[str]:
    tok = load_tokenizer(state)
    return [tok.id_to_token(i) for i in token_ids(state, [text], 64)[0].tolist() if i > 2]  # after [CLS]


@pytest.mark.parametrize("kind", ["word", "bpe", "wordpiece"])
def test_scripts_without_spaces_read_as_characters_and_unseen_ones_as_bytes(kind):
    corpus = SPORT + FOOD + JAPANESE + THAI + MIXED + ENGLISH
    state = train_tokenizer(corpus, TextSpec(tokenizer=kind, vocab_size=300))
    for text in JAPANESE + THAI + MIXED:
        got = _tokens(state, text)
        assert len(got) >= 5 and "[UNK]" not in got, (text, got)
    assert _tokens(state, "我们用Python写")[:3] == ["我", "们", "用"]  # one token per Chinese character
    assert "python" in "".join(_tokens(state, "我们用Python写")).replace("##", "")  # English stays words
    if kind == "word":
        assert _tokens(state, "the acting is dull") == ["the", "acting", "is", "dull"]
    # scripts never seen in training (Devanagari, Hangul, an emoji): their UTF-8 bytes, never one [UNK]
    unseen = ["नमस्ते दुनिया", "안녕하세요", "🙂"]
    ids = token_ids(state, unseen, 64)
    first_byte = load_tokenizer(state).token_to_id(BYTES[0])
    for row, text in zip(ids.tolist(), unseen):
        assert bytes(i - first_byte for i in row if i > 2) == text.replace(" ", "").encode()
    assert len({tuple(r) for r in ids.tolist()}) == 3  # each text its own ids


def test_a_tokenizer_saved_before_gives_the_same_ids():
    ids = token_ids(OLD_WORD_TOKENIZER, ["A great, warm film!", "dull 中文 acting"], 8)
    assert ids.tolist() == OLD_IDS  # its own pre-tokenizer, and [UNK] where it gave [UNK]
    assert json.loads(OLD_WORD_TOKENIZER)["pre_tokenizer"] == {"type": "BertPreTokenizer"}


def test_text_columns_are_recognised_without_spaces():
    assert looks_like_text(pd.Series(SPORT))
    assert looks_like_text(pd.Series([f"{t} {i}" for i, t in enumerate(THAI * 10)]))
    assert not looks_like_text(pd.Series(["北京", "上海", "广州", "深圳"] * 10))  # categories
    assert not looks_like_text(pd.Series([f"张三{i}" for i in range(40)]))  # short distinct names
    assert not looks_like_text(pd.Series([f"北京市朝阳区{i}号" for i in range(40)]))  # addresses, not prose


def test_a_chinese_table_trains_from_a_minimal_spec(tmp_path, caplog):
    """data + target only: read as text, the pre-flight passes, the bag beats chance on test, and the report
    and plots carry the Chinese class names (one warning at most where no CJK font is installed)."""
    rng = np.random.default_rng(0)
    rows = [(t, c) for c, texts in (("体育", SPORT), ("美食", FOOD), ("天气", WEATHER)) for t in texts]
    frame = pd.DataFrame(rows, columns=["text", "类别"]).iloc[rng.permutation(len(rows))]
    frame.to_csv(tmp_path / "zh.csv", index=False)
    spec = write_spec(tmp_path, {"data": {"path": "zh.csv"}, "target": "类别"})
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING, "sw2"):
        warnings.simplefilter("always")
        bundle = sw2.train(spec, tmp_path / "b", verbose=False)
    assert bundle.encoder.text_columns == ["text"] and bundle.spec.model.name == "bag"
    assert bundle.metrics["test"]["accuracy"] >= 0.7, bundle.metrics["test"]  # chance: 1/3
    assert not [w for w in caught if "missing from font" in str(w.message)]
    assert sum("no font here draws" in r.message for r in caplog.records) <= 1
    report = (bundle.path / "report.html").read_text(encoding="utf-8")
    assert '<meta charset="utf-8">' in report and "体育" in report and "天气" in report
    probs = bundle.predict_proba(pd.DataFrame({"text": ["今天下午有大雨和大风", "这家店的面条很好吃"]}))
    assert np.argmax(probs, 1).tolist() == [list(bundle.encoder.classes).index(c) for c in ("天气", "美食")]


def test_one_font_warning_instead_of_one_per_glyph(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(plots, "_missing_told", False)
    monkeypatch.setattr(plots, "_families", lambda: ("DejaVu Sans",))  # as on a machine without CJK fonts
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING, "sw2"):
        warnings.simplefilter("always")
        plots.confusion([[3, 1], [0, 4]], ["正面", "负面"], tmp_path / "a.png")
        plots.bars(["中文", "日本語"], [1.0, 2.0], tmp_path / "b.png", "重要")
    assert (tmp_path / "a.png").stat().st_size > 0 and (tmp_path / "b.png").stat().st_size > 0
    assert not [w for w in caught if "missing from font" in str(w.message)]
    told = [r.message for r in caplog.records if "no font here draws" in r.message]
    assert len(told) == 1 and "fonts-noto-cjk" in told[0]


def test_a_streamed_character_split_across_tokens_comes_out_whole(monkeypatch):
    """Byte-level BPE may cut a Chinese character (3 UTF-8 bytes) across tokens: the stream holds the piece back
    until the token that completes it, instead of sending U+FFFD and losing the character."""
    from types import SimpleNamespace

    from sw2.tasks import generate_text

    text = "明月几时有？饕餮"
    pieces = [bytes([b]) for b in text.encode()]  # the cruellest cut: one byte per token
    encoder = SimpleNamespace(decode=lambda ids: b"".join(pieces[i] for i in ids).decode("utf-8", "replace"))
    monkeypatch.setattr(generate_text, "_new_tokens", lambda bundle, prompt, **o: iter(range(len(pieces))))
    task = generate_text.GenerateText.__new__(generate_text.GenerateText)  # stream reads nothing of the task
    streamed = list(task.stream(SimpleNamespace(encoder=encoder)))
    assert "".join(streamed) == text and "\ufffd" not in "".join(streamed)


def test_one_outlier_text_does_not_set_every_row_s_width():
    from sw2.data.text import longest

    texts = ["这是一个普通的段落，长度大约二十个字符左右。"] * 300 + ["表" * 20_000]
    state = train_tokenizer(texts, TextSpec(tokenizer="word"))
    width = longest(state, texts)
    assert 128 <= width < 1000  # not 4,096 for one run-together table among short paragraphs
    assert longest(state, texts[:300]) == len(token_ids(state, texts[:1], 4096)[0].nonzero())  # no outlier: whole
