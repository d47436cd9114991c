"""Bytes → text: BOMs, UTF-8, then GB18030 vs Big5; refuses binary data."""
from __future__ import annotations

import codecs
import re

from zhiku.errors import ParseError

BINARY_HINT = (
    "zhiku reads text, Markdown, HTML, PDF, DOCX and CSV files; "
    "check that the file's extension matches its content"
)
UNDECODABLE_HINT = "convert the file to UTF-8 (e.g. `iconv -f GBK -t UTF-8 in.txt > out.txt`) and add it again"

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "PDF document"),
    (b"PK\x03\x04", "zip archive or Office document"),
    (b"\x89PNG", "PNG image"),
    (b"\x7fELF", "ELF executable"),
    (b"GIF8", "GIF image"),
    (b"\xff\xd8\xff", "JPEG image"),
)
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_SNIFF_BYTES = 8192
_CONTROL_SHARE = 0.10  # more control bytes than this in the first 8 KiB → binary
_ALLOWED_CONTROLS = frozenset(b"\t\n\r\x0b\x0c\x1b")
_PREFIX_LIMIT = 1 << 20  # over 1 MiB: detect on a prefix, then decode the whole
_SCORE_CHARS = 1 << 16  # characters scored per candidate
_ABOVE_2_BYTES = re.compile("[^\x00-\u07ff]")  # characters UTF-8 encodes in 3+ bytes
_LEGACY = ("gb18030", "big5", "cp950")  # cp950: Microsoft's Big5, tried when strict Big5 fails

# Very frequent characters in Simplified and Traditional Chinese running text (plus punctuation).
# A correct decoding is full of them; a GBK↔Big5 mis-decoding hits them only by chance.
_COMMON = frozenset(
    "的一是不了在人有我他这个们中来上大为和国地到以说时要就出也得里后自会家可下而过天去能对小多"
    "然于心学么之都好看起发当没成只如事把还用第样道想作种开美总从无情己面最女但现前些所同日手又行"
    "意动方期它头经长儿回位分爱老因很给名法间知世什两次使身者被高已亲其进此话常与活正感见明问力理"
    "点文几定本公特做外孩相西果走将月十实向声车全信重三机工物气每并别真打太新比才便夫再书部水像眼"
    "等体却加电主界门利海受听表德少代员许先口由死安写性马光白或住难望教命花结乐色更东神记处让母父"
    "应直字场平报友关放至张认接告入笑内英军候民岁往何度山觉路带万男边风解叫任金快原吃妈变通师立象"
    "数四失满战远格士音轻目条呢病始达深完今提求清王化空业思切怎非找片钱吗语元喜曾离飞科言干流欢约"
    "各即指合反题必该论交终林请医晚制球决传画保读运及则房早院量苦火布品近坐产答星精视五连司奇管类"
    "未朋且婚台夜青北队久乎越观落尽形影红百令周吧识步希术留市半热送兴造谈容极随演收首根讲整式取照"
    "办强石古华拿计您装似足双转诉称客南领节衣站黑刻统断福城故历惊脸选包紧争另建维绝树系伤示愿持千"
    "史谁准联纪基买志静诗独复痛消社算义竟确需单治幸念举仅钟怕共句息功官待究跟穿室易游程号居考突皮"
    "哪费价图具刚脑永歌响商礼细专黄块脚味灵改据般破引食仍存众注笔某备习校务须试怀料调广显查密议底"
    "列富梦错座参八除亮设线温虽京初养香停际致阳纸验助够严证帝饭忘支春集研班普导获艺六波察群段急创"
    "区器谢店否害排背止组州朝板角况曲馆育忙质河续若推境遇标充围案护冷警著雪索剧险依值帮汉慢闻局族"
    "低资屋击速顾团堂七园旅劳型陈异宝权简态级票寻杀律胜份右范秘楼贵责例追较职属渐左录党继章智冲叶"
    "卖坚遗救修松临藏担戏善卫药敢靠村词差短规散旧适乡投弹铁府压超负杂醒采既状乱景席派素脱农疑练野"
    "按犯坏骨余承置彩灯环暗换技增缺忆判层付阵岛项懂武革良恶恋委拥探营退熟宣银势奖宫套康供优课降困"
    "罪健模败守财禁恐迹遍盖副牌江顺秋菜划授归浪凡预升编典含盛济端释介误网络系统数据搜索文件库档"
    "這個們來為國時說裡後會過對於學麼發當沒還樣種開總從無現動頭經長兒愛給間兩親進話與見問點幾實聲"
    "車機氣別書體卻電聽許寫馬難結樂東記處讓應場報關張認內軍歲覺帶萬邊風師數滿戰遠輕條達業錢嗎語離"
    "飛歡約題該論終請醫決傳畫讀運則產視連類隊觀盡紅熱興談極隨講辦強華計裝雙轉訴稱領節統斷歷驚臉選"
    "緊爭維絕樹傷願誰準聯紀買靜詩獨復義確單幸舉僅鐘號費價圖剛腦響禮細專黃塊腳靈據備習務須試懷調廣"
    "顯議夢錯參設線溫雖養際陽紙驗夠嚴證飯藝導獲創區謝組況館質續標圍護劇險幫漢聞資擊顧團園勞陳異寶"
    "權簡態級尋殺勝範樓貴責職屬漸錄黨繼衝葉賣堅遺鬆臨擔戲衛藥詞規舊適鄉彈鐵壓負雜採狀亂農練壞餘燈"
    "環換憶層陣島項懂擁營優課財網絡統據檔庫搜"
    "你她您啊嘛哦户功配装运误讯服务版输返删添询页击按钮登账码戶務輸刪詢頁擊鈕錄帳碼妳"
    "，。、；：？！“”‘’（）《》「」『』…—"
)


def normalize_newlines(text: str) -> str:
    """Turn \\r\\n and lone \\r into \\n."""
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def decode_text(data: bytes) -> tuple[str, str]:
    """Decode ``data`` to text; return (text, encoding name). Raise ParseError for binary data."""
    if not data:
        return "", "utf-8"
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return normalize_newlines(_strict(data, codec)), codec
    _check_binary(data)
    text = _try(data, "utf-8")
    if text is None:
        text, codec = _decode_legacy(data)
    else:
        text, codec = _accidental_utf8(text, data) or (text, "utf-8")
    return normalize_newlines(text), codec


def _accidental_utf8(text: str, data: bytes) -> tuple[str, str] | None:
    """A GBK/Big5 reading of a file that is valid UTF-8 only by accident, else None.

    Short GBK text can be valid UTF-8 (GBK 系统 reads as UTF-8 'ϵͳ'). Taken only when the UTF-8
    reading has nothing above U+07FF and the legacy reading is mostly very common CJK.
    """
    non_ascii = len(text) - len(text.encode("ascii", "ignore"))
    if not 0 < non_ascii <= 256 or _ABOVE_2_BYTES.search(text):
        return None
    try:
        legacy, codec = _decode_legacy(data)
    except ParseError:
        return None
    wide = [ch for ch in legacy[:_SCORE_CHARS] if ord(ch) >= 0x80]
    return (legacy, codec) if sum(ch in _COMMON for ch in wide) >= 0.6 * len(wide) else None


def _strict(data: bytes, codec: str) -> str:
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        message = f"the file starts with a {codec} byte-order mark but is not valid {codec}"
        raise ParseError(f"{message}: {exc.reason} at byte {exc.start}", hint=UNDECODABLE_HINT) from None


def _check_binary(data: bytes) -> None:
    """Raise ParseError if ``data`` looks like a binary file."""
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            raise ParseError(f"looks like a binary file ({kind})", hint=BINARY_HINT)
    head = data[:_SNIFF_BYTES]
    if b"\x00" in head:
        raise ParseError("looks like a binary file (contains NUL bytes)", hint=BINARY_HINT)
    controls = sum(1 for b in head if b < 0x20 and b not in _ALLOWED_CONTROLS)
    if controls > _CONTROL_SHARE * len(head):
        reason = f"{controls} control bytes in the first {len(head)}"
        raise ParseError(f"looks like a binary file ({reason})", hint=BINARY_HINT)


def _safe_prefix(data: bytes, limit: int) -> bytes:
    """A prefix of at most ``limit`` bytes ending just after a byte < 0x30.

    Such bytes never occur inside a GB18030 or Big5 multi-byte sequence.
    """
    cut = max(data.rfind(bytes([b]), 0, limit) for b in b"\n ,.")
    return data[: cut + 1] if cut > 0 else data[:limit]


def _try(data: bytes, codec: str) -> str | None:
    try:
        return data.decode(codec)
    except UnicodeDecodeError:
        return None


def _decode_legacy(data: bytes) -> tuple[str, str]:
    """Choose between GB18030 and Big5 (detect on a prefix for large data), decode the whole strictly."""
    sample = _safe_prefix(data, _PREFIX_LIMIT) if len(data) > _PREFIX_LIMIT else data
    decoded: dict[str, str] = {}
    for codec in _LEGACY:
        if codec == "cp950" and "big5" in decoded:
            continue
        text = _try(sample, codec)
        if text is not None:
            decoded[codec] = text
    for codec in _rank(sample, decoded):
        text = decoded[codec] if sample is data else _try(data, codec)
        if text is not None:
            return text, codec
    raise ParseError(
        "could not decode the file as text: tried UTF-8, GB18030 (GBK/GB2312) and Big5",
        hint=UNDECODABLE_HINT,
    )


def _rank(sample: bytes, decoded: dict[str, str]) -> list[str]:
    """Candidates best first: by CJK plausibility, charset-normalizer's choice breaking ties."""
    if len(decoded) < 2:
        return list(decoded)
    scores = {codec: _plausibility(text) for codec, text in decoded.items()}
    guess = _charset_normalizer_guess(_safe_prefix(sample, _SCORE_CHARS * 2), tuple(decoded))
    return sorted(decoded, key=lambda c: (scores[c], c == guess), reverse=True)


def _plausibility(text: str) -> int:
    """+1 per very common CJK character or punctuation, -3 per rare or private-use one."""
    score = 0
    for ch in text[:_SCORE_CHARS]:
        o = ord(ch)
        if o < 0x80:
            continue
        if ch in _COMMON:
            score += 1
        elif _is_rare(o):
            score -= 3
    return score


def _is_rare(o: int) -> bool:
    return (
        0xE000 <= o <= 0xF8FF  # private use
        or 0x3400 <= o <= 0x4DBF  # CJK extension A
        or 0xF900 <= o <= 0xFAFF  # CJK compatibility ideographs
        or o > 0xFFFF  # supplementary planes (GB18030 four-byte forms)
        or 0x80 <= o <= 0x9F  # C1 controls
    )


def _charset_normalizer_guess(sample: bytes, candidates: tuple[str, ...]) -> str | None:
    """charset-normalizer's pick among ``candidates`` (None if unavailable or undecided)."""
    try:
        from charset_normalizer import from_bytes
    except ImportError:
        return None
    best = from_bytes(sample, cp_isolation=list(candidates)).best()
    if best is None:
        return None
    name = best.encoding.replace("_", "").lower()
    return next((c for c in candidates if c.replace("_", "") == name), None)
