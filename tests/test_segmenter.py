from zhiku.backends.segmenter import Segmenter


def test_chinese_is_segmented_and_english_lowercased():
    terms = Segmenter().doc_terms("Transformers库里最基础的对象是Pipeline。")
    assert "transformers" in terms and "pipeline" in terms and "基础" in terms
    assert "。" not in terms


def test_query_drops_stopwords_but_never_everything():
    seg = Segmenter()
    terms = seg.query_terms("什么是大模型？")
    assert "模型" in terms and "什么" not in terms and "是" not in terms
    assert seg.query_terms("什么") == ["什么"]


def test_user_dictionary_keeps_terms_whole(tmp_path):
    text = "他在蓝鲸智算平台工作"
    assert "蓝鲸智算平台" not in Segmenter().doc_terms(text)
    ud = tmp_path / "userdict.txt"
    ud.write_text("# domain words\n蓝鲸智算平台\n", encoding="utf-8")
    seg = Segmenter(ud)
    assert "蓝鲸智算平台" in seg.doc_terms(text)
    assert seg.user_words == ("蓝鲸智算平台",)


def test_terms_are_single_fts_tokens():
    terms = Segmenter().doc_terms("GPT-4 的 max_tokens 设为 3.5k，见 https://example.com/a_b")
    assert "gpt" in terms and "4" in terms and "max" in terms and "tokens" in terms
    assert all(t.isalnum() for t in terms), terms
