"""The no-model answer: matching sentences of the top hits, cited; chunks are excerpts of the llm-notes corpus."""
import json
import time

import pytest

from zhiku.answer.citations import check_citations, find_markers
from zhiku.answer.extractive import ExtractiveAnswer, extractive_answer
from zhiku.backends.segmenter import Segmenter
from zhiku.types import Hit, StoredChunk, Trace

LIMU = (  # 过眼云烟-多模态与李沐讲座.md
    "### 大模型目前的能力\n\n> Anything with enough data will be automated\n>\n"
    "> 只要能采集到足够到**数据**就可以实现自动化\n\n"
    "3. **评估**非常难\n\n   1. 没有评估实际复杂场景\n   2. 想要做应用最最最首要的是要先把评估工作做好\n"
    "   3. 评估的角度有很多\n   4. 人评估：贵\n   5. 模型评估：出现偏差（GPT-4喜欢长文本）\n\n"
    "   数据决定上限，数据好模型好"
)
SAMPLING = (  # 行业笔记-辛顿-群聊-李宏毅.md (群聊)
    "### llm输出下一个token的概率\n灯夜 2024/3/7 11:57:48\n不是随机采样，是从top_k中依概率采样(如果用的是top_k的话)\n"
    "灯夜 2024/3/7 12:00:20\nllm是输出下一个token的概率，这个概率是词表中每个词出现的概率\n"
    "但一般不会在整个词表中采样，而且只在概率更高的侯选中采样。\n"
    "另外，temperature参数决定这个概率分布的平滑程度，越大，概率分布越平滑，越接近随机采样，"
    "越小概率分布越尖锐，采样更固定，输出也就越确定"
)
HINTON = (  # 行业笔记-辛顿-群聊-李宏毅.md
    "#### **3 模拟计算的前景**\n\n辛顿探讨了模拟计算（analog computation）的可能性，希望以低能耗实现大语言模型的运行。"
    "他认为数字系统的权重可复制性和共享性使其具有“永生”潜力。\n\n"
    "对于计算技术下一步该如何演进，辛顿提到自己一直在思考如何实现模拟计算（analog computation），"
    "这样就不用消耗兆瓦级的电力，而是像大脑一样只用30瓦就可以在模拟硬件上运行这些大语言模型。"
)
CHATGPT = (  # LLM到底能做啥.md
    "5.1 大语言模型\n除了优化模型结构,研究者发现扩大模型规模也可以提高性能。"
    "一个标志性的事件是 2022 年 11 月 30 日 OpenAI 公司发布了面向普通消费者的 ChatGPT 模型"
    "(Chat Generative Pre-trained Transformer),它能够记住先前的聊天内容真正像人类一样交流,"
    "甚至能撰写诗歌、论文、文案、代码等。"
)
TRANSCRIPT = (  # MIT6.S087-基础模型如何工作.md: a transcript, commas and no full stop for 300+ characters
    "因为数学无法拯救我们，这就是新网络和新型AI出现的地方，并帮助解决这个问题，如果你想从世界中学习，如监督学习，"
    "当你从专家那里学习时，它不扩展得很好，因为你依赖于人类来标记整个世界，整个世界无法标记，"
    "所以它不能很好地概括，强化学习也不起作用，因为它太危险太慢，如果你没有起点，我们可以在这堂课上讨论，"
    "比如如果你有，如果你有一些起点，你可以做到，但如果你对世界没有任何理解，你不能进行强化学习，"
    "因为你甚至不知道从哪里开始，你将无法取得进步，不幸的是，你将在取得任何进步之前死亡，这是关键，"
    "有些人称此为无监督学习，这就是我们如何获得这些技术的，那么，我们从无标签数据中学习。"
)


@pytest.fixture(scope="module")
def seg():
    return Segmenter()


def hit(rank, text, source="a.md", start=0):
    chunk = StoredChunk(rank, f"c{rank}", source, f"/kb/{source}", rank, text, ("笔记",), start, start + len(text))
    return Hit(rank, 1.0 / rank, chunk, Trace())


def lines(answer: ExtractiveAnswer) -> list[str]:
    return answer.text.split("\n") if answer.text else []


def test_the_sentence_with_the_question_terms_is_the_answer(seg):
    a = extractive_answer(seg.query_terms("做应用首先要做好什么？"), [hit(1, LIMU, "讲座.md"), hit(2, SAMPLING, "群聊.md")])
    assert lines(a) == ["想要做应用最最最首要的是要先把评估工作做好[1]。"]
    (p,) = a.passages
    assert p.n == 1 and p.hit.chunk.source == "讲座.md"
    assert "评估工作做好" in LIMU[p.spans[0][0]:p.spans[0][1]]


def test_sentences_from_several_passages_are_numbered_by_passage(seg):
    hits = [hit(1, HINTON, "辛顿.md"), hit(2, SAMPLING, "群聊.md"), hit(3, LIMU, "讲座.md")]
    a = extractive_answer(seg.query_terms("模拟计算和temperature参数"), hits)
    assert [p.hit.chunk.source for p in a.passages] == ["辛顿.md", "群聊.md"]  # the uncited hit is left out
    assert [p.n for p in a.passages] == [1, 2]
    assert any("temperature参数决定" in line and line.endswith("[2]。") for line in lines(a))
    assert any("模拟计算" in line and "[1]" in line for line in lines(a))
    assert {n for _, _, ns in find_markers(a.text) for n in ns} == {1, 2}


def test_best_sentences_first_and_at_most_max_sentences(seg):
    terms = seg.query_terms("评估工作")  # 评估 + 工作 in one sentence; 评估 alone in five others
    a = extractive_answer(terms, [hit(1, LIMU)], max_sentences=2)
    # the best first, then ties in the chunk's order
    assert lines(a) == ["想要做应用最最最首要的是要先把评估工作做好[1]。", "评估非常难[1]。"]
    everything = extractive_answer(terms, [hit(1, LIMU)], max_sentences=10)
    assert lines(everything)[:2] == lines(a) and len(lines(everything)) == 6
    assert len(everything.passages[0].spans) == 6  # every matching sentence is highlighted
    assert a.passages[0].spans == everything.passages[0].spans
    assert lines(everything)[-1] == "模型评估：出现偏差（GPT-4喜欢长文本）[1]。"  # no end mark: one is added


def test_matching_is_case_insensitive_and_nfkc_folded(seg):
    text = "ＯｐｅｎＡＩ 在 2022 年发布了 ＣｈａｔＧＰＴ。别的句子与此无关。"
    a = extractive_answer(seg.query_terms("chatgpt 是谁发布的"), [hit(1, text)])
    assert lines(a) == ["ＯｐｅｎＡＩ 在 2022 年发布了 ＣｈａｔＧＰＴ[1]。"]  # shown as written


def test_english_words_match_whole_and_next_to_chinese(seg):
    chunk = "A database is not the point here. Anything with enough data will be automated.\n另外，temperature参数决定平滑程度。"
    a = extractive_answer(seg.query_terms("data"), [hit(1, chunk)])
    assert lines(a) == ["Anything with enough data will be automated [1]."]
    b = extractive_answer(seg.query_terms("temperature"), [hit(1, chunk)])
    assert lines(b) == ["另外，temperature参数决定平滑程度[1]。"]


def test_headings_and_weak_matches_are_not_answers(seg):
    a = extractive_answer(seg.query_terms("模拟计算的前景"), [hit(1, HINTON)])
    assert not any(line.startswith("#") for line in lines(a))  # "#### **3 模拟计算的前景**" matches best
    assert len(lines(a)) == 2 and all("模拟计算" in line for line in lines(a))
    weak = extractive_answer(seg.query_terms("模拟计算的功耗和权重"), [hit(1, HINTON)])
    # "权重" alone scores under half of "模拟计算" + "计算" + "模拟": that sentence is left out
    assert not any("永生" in line for line in lines(weak))


def test_no_match_falls_back_to_the_first_sentence_of_the_top_passage(seg):
    a = extractive_answer(seg.query_terms("量子纠错码怎么设计"), [hit(1, HINTON), hit(2, LIMU)])
    assert lines(a) == ["辛顿探讨了模拟计算（analog computation）的可能性，希望以低能耗实现大语言模型的运行[1]。"]
    assert [p.n for p in a.passages] == [1] and a.passages[0].hit.rank == 1
    s, e = a.passages[0].spans[0]
    assert HINTON[s:e].startswith("辛顿探讨了")
    assert extractive_answer([], [hit(1, HINTON)]).text == a.text


def test_no_hits_is_an_empty_answer(seg):
    a = extractive_answer(seg.query_terms("评估"), [])
    assert a == ExtractiveAnswer("", ()) and a.as_dict() == {"text": "", "passages": []}


def test_overlapping_chunks_do_not_repeat_a_sentence(seg):
    first, second = LIMU[:200], LIMU[60:]
    a = extractive_answer(seg.query_terms("评估工作"), [hit(1, first), hit(2, second, start=60)])
    texts = [line.rsplit("[", 1)[0] for line in lines(a)]
    assert len(texts) == len(set(texts))


def test_a_run_on_transcript_sentence_is_cut_to_the_matching_clauses(seg):
    a = extractive_answer(seg.query_terms("为什么强化学习不起作用"), [hit(1, TRANSCRIPT)], max_sentences=1)
    (line,) = lines(a)
    assert "强化学习也不起作用" in line and len(line) <= 170
    assert not line.startswith("因为数学")  # the piece starts near its first match, not at the sentence start
    assert line.endswith("你不能进行强化学习[1]。")  # the clause's comma gives way to a full stop
    assert all(e - s <= 160 for s, e in a.passages[0].spans)


def test_the_extractive_answer_passes_its_own_citation_check(seg):
    hits = [hit(1, HINTON), hit(2, SAMPLING), hit(3, CHATGPT)]
    a = extractive_answer(seg.query_terms("ChatGPT 是什么时候发布的，temperature 有什么用？"), hits)
    report = check_citations(a.text, {p.n: p.hit.chunk.text for p in a.passages})
    assert [p.hit.rank for p in a.passages] == [2, 3]  # HINTON has none of the terms
    assert lines(a)[0].startswith("一个标志性的事件是 2022 年 11 月 30 日 OpenAI 公司发布了") and lines(a)[0].endswith("[2]。")
    assert lines(a)[1].startswith("另外，temperature参数决定") and lines(a)[1].endswith("[1]。")
    assert not report.uncited and report.invalid == () and report.unsupported == ()
    assert set(report.cited) == {1, 2}


def test_fast_on_large_chunks(seg):
    big = [hit(i, (LIMU + "\n\n" + SAMPLING + "\n\n" + TRANSCRIPT) * 5, f"{i}.md") for i in range(1, 4)]
    terms = seg.query_terms("评估和temperature参数以及强化学习")
    t = time.perf_counter()
    extractive_answer(terms, big)
    assert time.perf_counter() - t < 0.1


def test_as_dict_is_json_ready(seg):
    a = extractive_answer(seg.query_terms("做应用首先要做好什么？"), [hit(1, LIMU, "讲座.md")])
    d = json.loads(json.dumps(a.as_dict(), ensure_ascii=False))
    assert d["text"] == a.text
    assert {"n", "source", "chunk_id", "heading_path", "text", "rank", "score", "spans"} <= set(d["passages"][0])
    assert d["passages"][0]["spans"] == [list(s) for s in a.passages[0].spans]
