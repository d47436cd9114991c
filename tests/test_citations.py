"""Citation markers, sentence splitting and the support check, on text from the llm-notes corpus.

The labelled set below measures the support threshold (see zhiku/answer/citations.py): passages
copied from /work/shared/corpus/llm-notes/, each with sentences a model might write citing it —
quotations and faithful paraphrases (supported) and claims the passage does not make (unsupported).
"""
import json

import pytest

from zhiku.answer.citations import (
    SUPPORT_THRESHOLD,
    CitationReport,
    check_citations,
    clean_invalid,
    find_markers,
    split_sentences,
    support,
)

# excerpts of /work/shared/corpus/llm-notes/ files: lines cut, never reworded
PASSAGES = {
    "eval": (  # 过眼云烟-多模态与李沐讲座.md
        "3. **评估**非常难\n\n   1. 没有评估实际复杂场景\n   2. 想要做应用最最最首要的是要先把评估工作做好\n"
        "   3. 评估的角度有很多\n   4. 人评估：贵\n   5. 模型评估：出现偏差（GPT-4喜欢长文本）\n"
        "   6. 能评估好就解决很多问题了：有优化的方向；说明也有了一定量的数据了\n\n   数据决定上限，数据好模型好"
    ),
    "params": (  # 什么是大模型.md
        "### 大规模参数\n\n大模型通常包含数亿到数千亿个参数。参数的数量直接影响模型的表达能力，"
        "使其能够捕捉到更复杂的模式和特征。"
    ),
    "attention": (  # 什么是大模型.md
        "#### 自注意力机制\n\n变换器的核心在于自注意力机制，它允许模型在处理输入序列时对不同位置的单词进行加权，"
        "进而理解上下文关系。编码器和解码器的结合使得变换器能够有效地捕获语义信息。"
    ),
    "small": (  # 什么是大模型.md
        "小模型通常指的是参数较少、层数较浅的机器学习模型。由于其设计简单，小模型具有轻量级、高效率和易于部署的优点，"
        "特别适合于数据量较小或计算资源有限的场景，例如：\n\n"
        "- **移动端应用**：在手机或平板上运行，避免过度消耗电池和计算能力。\n"
        "- **嵌入式设备**：如智能家居设备、传感器等，这些设备通常计算能力较弱。"
    ),
    "chatgpt": (  # LLM到底能做啥.md
        "一个标志性的事件是 2022 年 11 月 30 日 OpenAI 公司发布了面向普通消费者的 ChatGPT 模型"
        "(Chat Generative Pre-trained Transformer),它能够记住先前的聊天内容真正像人类一样交流,"
        "甚至能撰写诗歌、论文、文案、代码等。发布后,ChatGPT 模型引起了巨大轰动,上线短短 5 天注册用户数就超过 100 万。"
        "2023 年一月末,ChatGPT 活跃用户数量已经突破 1 亿,成为史上增长最快的消费者应用。"
    ),
    "analog": (  # 行业笔记-辛顿-群聊-李宏毅.md
        "对于计算技术下一步该如何演进，辛顿提到自己一直在思考如何实现模拟计算（analog computation），"
        "这样就不用消耗兆瓦级的电力，而是像大脑一样只用30瓦就可以在模拟硬件上运行这些大语言模型。"
        "而且由于权重的可复制性和共享性，数字系统实际上是“永生”的，数字系统之间可以通过微小的学习更新，"
        "然后共享这些更新后的权重，实现集体知识的即时同步，这是人类目前无法做到的，不过这个目标现在还没有实现。"
    ),
    "future": (  # 行业笔记-辛顿-群聊-李宏毅.md
        "最后，辛顿认为未来AI最有前景的应用应该是在医疗保健和新材料的领域。他虽然担心不良分子会利用AI做坏事，"
        "但是他也认为AI领域不太可能会减速发展，因为国家之间存在着竞争。他之所以没有在暂停AI研究6个月的请愿书上签字，"
        "因为他认为那件事永远不会发生。我们永远不会放慢脚步。"
    ),
    "temperature": (  # 行业笔记-辛顿-群聊-李宏毅.md (群聊)
        "llm是输出下一个token的概率，这个概率是词表中每个词出现的概率\n灯夜 2024/3/7 12:03:33\n"
        "但一般不会在整个词表中采样，而且只在概率更高的侯选中采样。\n"
        "另外，temperature参数决定这个概率分布的平滑程度，越大，概率分布越平滑，越接近随机采样，"
        "越小概率分布越尖锐，采样更固定，输出也就越确定"
    ),
    "supervised": (  # MIT6.S087-基础模型如何工作.md
        "如果你想从世界中学习，如监督学习，当你从专家那里学习时，它不扩展得很好，因为你依赖于人类来标记整个世界，"
        "整个世界无法标记。\n\n所以它不能很好地概括，强化学习也不起作用，因为它太危险太慢，如果你没有起点"
    ),
    "automated": (  # 过眼云烟-多模态与李沐讲座.md
        "> Anything with enough data will be automated\n>\n> 只要能采集到足够到**数据**就可以实现自动化\n>\n"
        "> need to capture the data and need to have actuators/sensors"
    ),
    "larger": (  # 过眼云烟-多模态与李沐讲座.md
        "> LLM are still ML models, but 100x larger\n\n1. 预训练慢慢变成了一个工程问题（人力、算力），后训练是技术问题"
    ),
    "gpt_bert": (  # LLM到底能做啥.md
        "2017 年 Google 在《Attention Is All You Need》中提出了 Transformer 结构用于序列标注,"
        "在翻译任务上超过了之前最优秀的循环神经网络模型;\n这些具有开创性的工作促成了两个著名 Transformer 模型的出现:\n"
        "- GPT (the Generative Pretrained Transformer);\n"
        "- BERT (Bidirectional Encoder Representations from Transformers)。"
    ),
}

# (passage key, sentence as a model would write it citing that passage)
SUPPORTED = [
    ("eval", "想要做应用，最首要的是先把评估工作做好[1]。"),
    ("eval", "评估非常难，而且评估的角度有很多[1]。"),
    ("eval", "人工评估很贵，模型评估则会出现偏差，比如GPT-4喜欢长文本[1]。"),
    ("eval", "数据决定上限，数据好模型才好[1]。"),
    ("params", "大模型通常包含数亿到数千亿个参数[1]。"),
    ("params", "参数的数量直接影响模型的表达能力，使它能捕捉更复杂的模式和特征[1]。"),
    ("attention", "变换器的核心是自注意力机制，它对输入序列中不同位置的单词进行加权，从而理解上下文关系[1]。"),
    ("attention", "编码器和解码器结合，让变换器能够有效捕获语义信息[1]。"),
    ("small", "小模型指参数较少、层数较浅的机器学习模型[1]。"),
    ("small", "小模型轻量、高效率、易于部署，适合计算资源有限的场景，比如移动端应用和嵌入式设备[1]。"),
    ("chatgpt", "OpenAI 于 2022 年 11 月 30 日发布了面向普通消费者的 ChatGPT[1]。"),
    ("chatgpt", "ChatGPT 上线 5 天注册用户就超过 100 万，2023 年一月末活跃用户突破 1 亿[1]。"),
    ("analog", "辛顿一直在思考如何实现模拟计算，让大语言模型像大脑一样只用30瓦就能在模拟硬件上运行[1]。"),
    ("analog", "由于权重可以复制和共享，数字系统实际上是“永生”的[1]。"),
    ("future", "辛顿认为未来AI最有前景的应用在医疗保健和新材料领域[1]。"),
    ("future", "因为国家之间存在竞争，他认为AI领域不太可能减速发展，所以没有在暂停AI研究的请愿书上签字[1]。"),
    ("temperature", "temperature参数决定概率分布的平滑程度：越大分布越平滑，越接近随机采样[1]。"),
    ("temperature", "一般不会在整个词表中采样，而是只在概率更高的候选中采样[1]。"),
    ("supervised", "监督学习依赖人类来标记整个世界，而整个世界无法标记，所以它不能很好地扩展[1]。"),
    ("supervised", "强化学习也不起作用，因为它太危险、太慢[1]。"),
    ("automated", "Anything with enough data will be automated [1]."),
    ("automated", "To automate a task you need to capture the data and have actuators or sensors [1]."),
    ("larger", "LLMs are still ML models, only 100x larger [1]."),
    ("gpt_bert", "GPT stands for the Generative Pretrained Transformer, and BERT for Bidirectional Encoder Representations from Transformers [1]."),
    # looser paraphrases: other words for the same facts
    ("params", "模型的参数规模从几亿到几千亿不等，参数越多表达能力越强[1]。"),
    ("temperature", "温度越低，分布越尖锐，输出越确定[1]。"),
    ("chatgpt", "ChatGPT 能像人类一样聊天，还能写诗、写论文和代码[1]。"),
    ("future", "辛顿并不认为AI的发展会放慢[1]。"),
    ("analog", "数字系统之间可以共享更新后的权重，实现集体知识的即时同步，人类做不到这一点[1]。"),
    ("larger", "Large language models are basically ordinary machine learning models at a much bigger scale [1]."),
]

UNSUPPORTED = [
    ("eval", "李沐建议创业公司优先购买更多的GPU来训练自己的基座模型[1]。"),
    ("eval", "评估工作可以完全交给GPT-4自动完成，不需要任何人工参与[1]。"),
    ("params", "大模型的参数越少，推理速度和准确率就越高[1]。"),
    ("params", "GPT-3 拥有 1750 亿个参数，训练成本约为 460 万美元[1]。"),
    ("attention", "自注意力机制最早由谷歌大脑在 2014 年为图像识别任务提出[1]。"),
    ("attention", "卷积神经网络通过池化层来压缩特征图的尺寸[1]。"),
    ("small", "小模型通常需要上千张 A100 显卡才能完成训练[1]。"),
    ("small", "华为在 2021 年推出了盘古小模型用于手机语音助手[1]。"),
    ("chatgpt", "ChatGPT 是由微软研究院独立开发并开源的[1]。"),
    ("chatgpt", "发布首周 ChatGPT 就因服务器宕机而暂停注册[1]。"),
    ("analog", "辛顿认为量子计算机将在五年内取代所有GPU[1]。"),
    ("analog", "模拟芯片的制造良率目前已经超过了百分之九十九[1]。"),
    ("future", "辛顿在请愿书上签了字，呼吁各国暂停AI研究六个月[1]。"),
    ("future", "他预测自动驾驶会在2030年彻底取代出租车司机[1]。"),
    ("temperature", "top_p 采样会先把词表按字母顺序排序再截断[1]。"),
    ("temperature", "调高温度可以减少模型的幻觉并提高事实准确性[1]。"),
    ("supervised", "无监督学习需要专家为每张图片手工标注类别[1]。"),
    ("supervised", "AlphaGo 通过自我对弈击败了李世石[1]。"),
    ("gpt_bert", "BERT 是 OpenAI 在 2019 年发布的纯解码器模型[1]。"),
    ("gpt_bert", "Transformer 结构最初被用于蛋白质结构预测[1]。"),
    ("automated", "Robots will replace every blue-collar worker by the end of the decade [1]."),
    ("automated", "Li Mu recommends fine-tuning on synthetic data generated by GPT-4 [1]."),
    ("larger", "Pre-training now costs less than a thousand dollars on a single laptop [1]."),
    ("gpt_bert", "BERT was trained by OpenAI on a corpus of Reddit comments [1]."),
    # mixed: a true clause from the passage plus an invented one
    ("future", "辛顿认为AI最有前景的应用在医疗保健领域，他本人也在2023年离开了谷歌[1]。"),
    ("eval", "评估非常难，所以李沐团队专门开发了一个开源评测平台[1]。"),
    ("chatgpt", "ChatGPT 于 2022 年 11 月 30 日发布，底层使用的是 GPT-4 模型[1]。"),
    ("small", "小模型适合移动端应用，苹果的 Siri 就完全基于小模型[1]。"),
    ("attention", "自注意力机制让模型理解上下文关系，但它的计算量随序列长度线性增长[1]。"),
    ("automated", "Anything with enough data will be automated, as Li Mu showed with his self-driving startup [1]."),
]


# -- the threshold ------------------------------------------------------------------------------


def _scores():
    s = [support(t, [PASSAGES[k]]) for k, t in SUPPORTED]
    u = [support(t, [PASSAGES[k]]) for k, t in UNSUPPORTED]
    return s, u


def _accuracy(threshold, s, u):
    return (sum(x >= threshold for x in s) + sum(x < threshold for x in u)) / (len(s) + len(u))


def test_labelled_set_is_balanced_and_bilingual():
    assert len(SUPPORTED) == len(UNSUPPORTED) == 30
    english = [t for _, t in SUPPORTED + UNSUPPORTED if t.isascii()]
    assert 8 <= len(english) <= 12


def test_threshold_separates_the_labelled_set_with_the_reported_accuracy():
    s, u = _scores()
    assert _accuracy(SUPPORT_THRESHOLD, s, u) == pytest.approx(57 / 60)  # as the module docstring reports
    # no threshold does better on this set, and the chosen one sits inside the best interval
    assert max(_accuracy(t, s, u) for t in s + u) == pytest.approx(57 / 60)
    assert max(x for x in u if x < SUPPORT_THRESHOLD) < SUPPORT_THRESHOLD <= min(x for x in s if x >= SUPPORT_THRESHOLD)
    # the easy part (quotations, close paraphrases, invented facts) separates completely
    easy_s, easy_u = s[:24], u[:24]
    assert max(easy_u) < SUPPORT_THRESHOLD <= min(easy_s)


def test_check_citations_flags_exactly_what_the_threshold_says():
    for label, items in (("supported", SUPPORTED), ("unsupported", UNSUPPORTED)):
        for key, text in items:
            report = check_citations(text, {1: PASSAGES[key]})
            (sentence,) = report.sentences
            assert sentence.cited == (1,)
            assert sentence.support == pytest.approx(support(text, [PASSAGES[key]]))
            assert sentence.supported == (sentence.support >= SUPPORT_THRESHOLD), (label, text)


def test_known_limit_a_negation_reusing_the_passage_words_passes():
    assert support("数据不决定上限[1]。", ["数据决定上限，数据好模型好"]) >= SUPPORT_THRESHOLD


# -- markers ------------------------------------------------------------------------------------


def test_marker_forms():
    text = "评估最重要[1]。数据决定上限[1][2]，见[1, 2]与[3,4]、[2-4]。【5】［6］脚注[^7]。"
    found = [(text[s:e], nums) for s, e, nums in find_markers(text)]
    assert found == [("[1]", (1,)), ("[1]", (1,)), ("[2]", (2,)), ("[1, 2]", (1, 2)), ("[3,4]", (3, 4)),
                     ("[2-4]", (2, 3, 4)), ("【5】", (5,)), ("［6］", (6,)), ("[^7]", (7,))]


def test_full_width_digits_and_chinese_separators():
    assert [n for _, _, n in find_markers("见【１，２】和[1、3]")] == [(1, 2), (1, 3)]


def test_links_definitions_years_and_lists_are_not_markers():
    text = ("见 [论文](https://arxiv.org/abs/1706.03762) 和 [1](https://example.com)。\n"
            "[1]: https://example.com\n[^2]: 脚注定义\n- [ ] 待办\n1. 列表项\n"
            "发布于[2023]年，数组 a[0]，范围[1-100]。")
    assert find_markers(text) == []


def test_duplicate_numbers_in_one_marker_are_listed_once():
    assert find_markers("[2, 2, 1]") == [(0, 9, (2, 1))]


# -- clean_invalid ------------------------------------------------------------------------------


def test_clean_invalid_drops_dangling_markers_and_keeps_valid_numbers():
    answer = "要先把评估工作做好[1][9]。数据决定上限 [7]。见[1, 9]和【2，8】以及[^9]。"
    assert clean_invalid(answer, {1, 2}) == "要先把评估工作做好[1]。数据决定上限。见[1]和【2】以及。"


def test_clean_invalid_leaves_valid_answers_and_non_markers_alone():
    answer = "Data sets the ceiling [1, 2]. See [the paper](https://x.org) and item [2020]."
    assert clean_invalid(answer, {1, 2}) == answer
    assert clean_invalid("ranges [1-3] stay when valid", {1, 2, 3}) == "ranges [1-3] stay when valid"
    assert clean_invalid("ranges [1-3] shrink", {1, 3}) == "ranges [1, 3] shrink"


# -- sentences ----------------------------------------------------------------------------------


def test_marker_after_the_full_stop_belongs_to_the_sentence_it_ends():
    text = "数据决定上限……。[1]模型只是逼近这个上限！[2] Data matters. [3] Evaluation is hard? Yes\n\n最后；“引号。”[4]后面"
    assert [text[s:e] for s, e in split_sentences(text)] == [
        "数据决定上限……。[1]", "模型只是逼近这个上限！[2]", "Data matters. [3]", "Evaluation is hard?", "Yes",
        "最后；", "“引号。”[4]", "后面"]


def test_list_numbers_do_not_end_a_sentence():
    text = "原因如下：\n1. 评估很难[1]。\n  2. Data matters. Really.\n3.5 亿参数。"
    assert [text[s:e] for s, e in split_sentences(text)] == [
        "原因如下：", "1. 评估很难[1]。", "2. Data matters.", "Really.", "3.5 亿参数。"]


def test_decimals_urls_and_markers_do_not_split_sentences():
    text = "GPT-3.5 见 https://x.com/a?b=1.2 说明[1, 2]。下一句"
    assert [text[s:e] for s, e in split_sentences(text)] == ["GPT-3.5 见 https://x.com/a?b=1.2 说明[1, 2]。", "下一句"]


# -- check_citations ----------------------------------------------------------------------------

EVAL, PARAMS = PASSAGES["eval"], PASSAGES["params"]


def test_a_faithful_answer_is_fully_supported():
    answer = "想要做应用，最首要的是先把评估工作做好[1]。大模型通常包含数亿到数千亿个参数[2]。"
    report = check_citations(answer, {1: EVAL, 2: PARAMS})
    assert report.cited == (1, 2) and report.invalid == () and not report.uncited
    assert report.unsupported == () and report.supported_share == 1.0
    assert [answer[s.start:s.end] for s in report.sentences] == [s.text for s in report.sentences]


def test_a_claim_checked_against_the_wrong_passage_is_unsupported():
    answer = "想要做应用，最首要的是先把评估工作做好[2]。"  # true, but passage 2 is about parameters
    report = check_citations(answer, {1: EVAL, 2: PARAMS})
    assert [s.text for s in report.unsupported] == [answer] and report.supported_share == 0.0


def test_unmarked_sentences_inherit_the_next_marker_in_their_paragraph():
    answer = ("评估非常难，而且评估的角度有很多。人工评估很贵，模型评估会出现偏差。数据决定上限，数据好模型才好[1]。\n\n"
              "大模型通常包含数亿到数千亿个参数。")
    report = check_citations(answer, {1: EVAL, 2: PARAMS})
    assert [s.cited for s in report.sentences] == [(1,), (1,), (1,), ()]
    assert all(s.supported for s in report.sentences)  # the last: no citation, checked against all passages
    assert report.cited == (1,)


def test_inheritance_does_not_cross_a_paragraph_or_reach_forward():
    answer = "大模型通常包含数亿到数千亿个参数[2]。GPT-5 于二〇二五年八月七日在旧金山发布。\n\n想要做应用最首要的是先把评估做好[1]。"
    report = check_citations(answer, {1: EVAL, 2: PARAMS})
    assert [s.cited for s in report.sentences] == [(2,), (), (1,)]
    assert [s.text for s in report.unsupported] == ["GPT-5 于二〇二五年八月七日在旧金山发布。"]


def test_invalid_numbers_are_reported_and_ignored_for_support():
    report = check_citations("要先把评估工作做好[1][9]。", {1: EVAL})
    assert report.cited == (1,) and report.invalid == (9,)
    assert report.sentences[0].cited == (1,) and report.sentences[0].supported
    only_invalid = check_citations("要先把评估工作做好[9]。", {1: EVAL})
    assert only_invalid.uncited and only_invalid.invalid == (9,) and only_invalid.sentences[0].cited == ()


def test_short_sentences_and_headings_are_not_checked():
    answer = "## 结论\n是的。\n评估[3]。\nGPT-5 于二〇二五年八月七日在旧金山发布[1]。"
    report = check_citations(answer, {1: EVAL, 3: PARAMS})
    assert [(s.text, s.support, s.supported) for s in report.sentences[:3]] == [
        ("## 结论", 1.0, True), ("是的。", 1.0, True), ("评估[3]。", 1.0, True)]
    assert not report.sentences[3].supported


def test_an_answer_without_citations_is_uncited():
    report = check_citations("想要做应用，最首要的是先把评估工作做好。", {1: EVAL})
    assert report.uncited and report.cited == ()
    assert report.sentences[0].supported  # its content is in the passages all the same


def test_a_refusal_has_no_unsupported_sentences_and_is_not_uncited():
    answer = "资料中未提及 GPT-5 的发布日期，只讲了评估和数据。"
    report = check_citations(answer, {1: EVAL}, refusal=True)
    assert not report.uncited and report.unsupported == ()
    assert not check_citations(answer, {1: EVAL}).sentences[0].supported


def test_english_answer_from_chinese_notes_is_not_judged_by_overlap():
    report = check_citations("Li Mu says evaluation must come first when building applications [1].", {1: EVAL})
    assert report.sentences[0].supported and report.sentences[0].support == 1.0
    # an English passage with Chinese around it is still checked
    report = check_citations("Pre-training now costs less than a thousand dollars on a single laptop [1].",
                             {1: PASSAGES["larger"]})
    assert not report.sentences[0].supported


def test_empty_answer():
    report = check_citations("", {1: EVAL})
    assert report.sentences == () and report.uncited and report.supported_share == 1.0


def test_report_as_dict_is_json_ready():
    report = check_citations("要先把评估工作做好[1][9]。GPT-5 于二〇二五年八月七日在旧金山发布并开源了全部权重[1]。", {1: EVAL})
    assert isinstance(report, CitationReport)
    d = json.loads(json.dumps(report.as_dict(), ensure_ascii=False))
    assert d["cited"] == [1] and d["invalid"] == [9] and d["uncited"] is False
    assert d["supported_share"] == 0.5
    assert [s["text"] for s in d["unsupported"]] == ["GPT-5 于二〇二五年八月七日在旧金山发布并开源了全部权重[1]。"]
    assert {"text", "start", "end", "cited", "support", "supported"} == set(d["sentences"][0])


def test_a_restated_question_is_not_a_claim():
    report = check_citations("中文关键词检索为什么要先分词？如果不做分词，BM25 关键词检索几乎完全失效[1]。",
                             {1: "如果不做分词，BM25 关键词检索几乎完全失效。"})
    assert report.unsupported == () and len(report.sentences) == 2
