"""decode_text: BOMs, UTF-8, GB18030 vs Big5, binary refusal, newline normalisation."""
from __future__ import annotations

import random

import pytest

from zhiku.errors import ParseError
from zhiku.ingest.decode import decode_text

SIMPLIFIED = (
    "知识库是一个私人的离线知识管理工具。它可以帮助你搜索中文和英文文档，并且回答问题。"
    "我们希望这个工具简单、快速、可靠。所有数据都保存在你自己的电脑上，不会上传到网络。"
)
TRADITIONAL = (
    "知識庫是一個私人的離線知識管理工具。它可以幫助你搜尋中文和英文文件，並且回答問題。"
    "我們希望這個工具簡單、快速、可靠。所有資料都保存在你自己的電腦上，不會上傳到網路。"
)


def test_empty_is_empty_utf8() -> None:
    assert decode_text(b"") == ("", "utf-8")


def test_plain_utf8() -> None:
    assert decode_text("héllo 世界".encode()) == ("héllo 世界", "utf-8")


def test_utf8_bom_is_removed() -> None:
    assert decode_text(b"\xef\xbb\xbf" + "标题".encode()) == ("标题", "utf-8-sig")


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_with_bom(codec: str) -> None:
    bom = b"\xff\xfe" if codec.endswith("le") else b"\xfe\xff"
    data = bom + "第一行\r\nline two\n".encode(codec)
    assert decode_text(data) == ("第一行\nline two\n", "utf-16")


def test_newlines_are_normalised() -> None:
    assert decode_text(b"a\r\nb\rc\n\r\nd") == ("a\nb\nc\n\nd", "utf-8")


def test_gbk_simplified_round_trips() -> None:
    text, codec = decode_text(SIMPLIFIED.encode("gbk"))
    assert (text, codec) == (SIMPLIFIED, "gb18030")


def test_big5_traditional_round_trips() -> None:
    data = TRADITIONAL.encode("big5")
    data.decode("gb18030")  # the trap: Big5 bytes are also valid GB18030
    assert decode_text(data) == (TRADITIONAL, "big5")


def test_gb2312_with_crlf_and_ascii() -> None:
    source = "会议记录\r\n时间：2024年3月1日\r\n地点：北京\r\n"
    assert decode_text(source.encode("gb2312")) == ("会议记录\n时间：2024年3月1日\n地点：北京\n", "gb18030")


@pytest.mark.parametrize("word", ["系统", "学习", "谢谢"])
def test_short_gbk_that_is_accidentally_valid_utf8(word: str) -> None:
    data = word.encode("gbk")
    data.decode("utf-8")  # valid UTF-8 by accident (e.g. 'ϵͳ')
    assert decode_text(data) == (word, "gb18030")


def test_latin_script_utf8_is_not_reinterpreted() -> None:
    for word in ("Привет, мир", "Καλημέρα", "café crème"):
        assert decode_text(word.encode()) == (word, "utf-8")


def test_large_gbk_detects_on_prefix_and_decodes_everything() -> None:
    source = (SIMPLIFIED + "\n") * 20000 + "结尾。"
    data = source.encode("gbk")
    assert len(data) > 1 << 20
    assert decode_text(data) == (source, "gb18030")


def test_large_big5() -> None:
    source = (TRADITIONAL + "\r\n") * 15000
    assert decode_text(source.encode("big5")) == (source.replace("\r\n", "\n"), "big5")


@pytest.mark.parametrize(
    "data, kind",
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(100), "PNG image"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "PDF document"),
        (b"PK\x03\x04\x14\x00\x06\x00", "zip archive or Office document"),
        (b"\x7fELF\x02\x01\x01", "ELF executable"),
        (b"GIF89a\x01\x00", "GIF image"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "JPEG image"),
        (b"text\x00with a NUL", "contains NUL bytes"),
    ],
)
def test_binary_is_refused(data: bytes, kind: str) -> None:
    with pytest.raises(ParseError) as err:
        decode_text(data)
    assert err.value.message == f"looks like a binary file ({kind})"
    assert "extension" in err.value.hint


def test_many_control_bytes_is_binary() -> None:
    with pytest.raises(ParseError, match="looks like a binary file .*control bytes"):
        decode_text(b"ab\x01\x02\x03\x04cd\x05\x06" * 50)


def test_random_bytes_are_refused() -> None:
    data = random.Random(7).randbytes(4096)
    with pytest.raises(ParseError, match="looks like a binary file"):
        decode_text(data)


def test_undecodable_names_the_encodings_tried() -> None:
    with pytest.raises(ParseError) as err:
        decode_text(b"caf\xe9 au lait \x80\xff")
    message = str(err.value)
    assert "UTF-8" in message and "GB18030" in message and "Big5" in message
    assert "UTF-8" in err.value.hint and "convert" in err.value.hint


def test_broken_utf16_after_bom() -> None:
    with pytest.raises(ParseError, match="utf-16"):
        decode_text(b"\xff\xfe\x00\xd8")  # lone surrogate
