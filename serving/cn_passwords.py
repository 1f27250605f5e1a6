"""Chinese-pattern passwords that zxcvbn's English lists miss: a pinyin name or phrase plus a
date, a year or a "love number" (zhangsan123456, woaini1314520, wangwei19880808, Beijing2008!!).

``chinese_pattern(password)`` names the pattern, or returns None. The rule: lower-cased, the
password splits into runs of letters, digits and other characters; it is a Chinese pattern when
its letters spell 2–5 pinyin syllables (at least 4 letters: a name or a phrase) with at most 3
other letters (abc, qq), it has at most two digit runs, each predictable (a year, a date,
520 / 1314 and their combinations, a repeat or a sequence, or at most 4 digits), and at most 3
other characters. A pinyin passphrase of more syllables, or any run of random
letters or digits, is left to zxcvbn.
"""

from __future__ import annotations

import re
from functools import lru_cache

# every syllable of Hanyu Pinyin, without tones (ü written v)
_SYLLABLES = frozenset(["a", "ai", "an", "ang", "ao", "ba", "bai", "ban", "bang", "bao", "bei", "ben", "beng", "bi", "bian", "biao", "bie", "bin", "bing", "bo", "bu", "ca", "cai", "can", "cang", "cao", "ce", "cen", "ceng", "cha", "chai", "chan", "chang", "chao", "che", "chen", "cheng", "chi", "chong", "chou", "chu", "chua", "chuai", "chuan", "chuang", "chui", "chun", "chuo", "ci", "cong", "cou", "cu", "cuan", "cui", "cun", "cuo", "da", "dai", "dan", "dang", "dao", "de", "dei", "den", "deng", "di", "dia", "dian", "diao", "die", "ding", "diu", "dong", "dou", "du", "duan", "dui", "dun", "duo", "e", "ei", "en", "eng", "er", "fa", "fan", "fang", "fei", "fen", "feng", "fo", "fou", "fu", "ga", "gai", "gan", "gang", "gao", "ge", "gei", "gen", "geng", "gong", "gou", "gu", "gua", "guai", "guan", "guang", "gui", "gun", "guo", "ha", "hai", "han", "hang", "hao", "he", "hei", "hen", "heng", "hong", "hou", "hu", "hua", "huai", "huan", "huang", "hui", "hun", "huo", "ji", "jia", "jian", "jiang", "jiao", "jie", "jin", "jing", "jiong", "jiu", "ju", "juan", "jue", "jun", "ka", "kai", "kan", "kang", "kao", "ke", "kei", "ken", "keng", "kong", "kou", "ku", "kua", "kuai", "kuan", "kuang", "kui", "kun", "kuo", "la", "lai", "lan", "lang", "lao", "le", "lei", "leng", "li", "lia", "lian", "liang", "liao", "lie", "lin", "ling", "liu", "lo", "long", "lou", "lu", "luan", "lun", "luo", "lv", "lve", "ma", "mai", "man", "mang", "mao", "me", "mei", "men", "meng", "mi", "mian", "miao", "mie", "min", "ming", "miu", "mo", "mou", "mu", "na", "nai", "nan", "nang", "nao", "ne", "nei", "nen", "neng", "ni", "nian", "niang", "niao", "nie", "nin", "ning", "niu", "nong", "nou", "nu", "nuan", "nuo", "nv", "nve", "o", "ou", "pa", "pai", "pan", "pang", "pao", "pei", "pen", "peng", "pi", "pian", "piao", "pie", "pin", "ping", "po", "pou", "pu", "qi", "qia", "qian", "qiang", "qiao", "qie", "qin", "qing", "qiong", "qiu", "qu", "quan", "que", "qun", "ran", "rang", "rao", "re", "ren", "reng", "ri", "rong", "rou", "ru", "rua", "ruan", "rui", "run", "ruo", "sa", "sai", "san", "sang", "sao", "se", "sen", "seng", "sha", "shai", "shan", "shang", "shao", "she", "shei", "shen", "sheng", "shi", "shou", "shu", "shua", "shuai", "shuan", "shuang", "shui", "shun", "shuo", "si", "song", "sou", "su", "suan", "sui", "sun", "suo", "ta", "tai", "tan", "tang", "tao", "te", "teng", "ti", "tian", "tiao", "tie", "ting", "tong", "tou", "tu", "tuan", "tui", "tun", "tuo", "wa", "wai", "wan", "wang", "wei", "wen", "weng", "wo", "wu", "xi", "xia", "xian", "xiang", "xiao", "xie", "xin", "xing", "xiong", "xiu", "xu", "xuan", "xue", "xun", "ya", "yan", "yang", "yao", "ye", "yi", "yin", "ying", "yo", "yong", "you", "yu", "yuan", "yue", "yun", "za", "zai", "zan", "zang", "zao", "ze", "zei", "zen", "zeng", "zha", "zhai", "zhan", "zhang", "zhao", "zhe", "zhei", "zhen", "zheng", "zhi", "zhong", "zhou", "zhu", "zhua", "zhuai", "zhuan", "zhuang", "zhui", "zhun", "zhuo", "zi", "zong", "zou", "zu", "zuan", "zui", "zun", "zuo"])
_LONGEST = max(map(len, _SYLLABLES))
# numbers people pick for meaning: 520/521 我爱你, 1314 一生一世, 168 一路发, 888, 666, 9999 …
_LOVE_NUMBERS = ("5201314", "1314520", "1314", "520", "521", "168", "188", "518", "888", "666", "999", "886")
_RUN = re.compile(r"[a-z]+|[0-9]+|[^a-z0-9]+")


@lru_cache(maxsize=4096)
def pinyin_syllables(letters: str) -> int | None:
    """The fewest pinyin syllables that spell ``letters`` exactly (None when they do not)."""
    best: list[int | None] = [0] + [None] * len(letters)
    for end in range(1, len(letters) + 1):
        for start in range(max(0, end - _LONGEST), end):
            if best[start] is not None and letters[start:end] in _SYLLABLES:
                candidate = best[start] + 1  # type: ignore[operator]
                if best[end] is None or candidate < best[end]:  # type: ignore[operator]
                    best[end] = candidate
    return best[-1]


def _pinyin_with_short_letters(letters: str) -> tuple[int, int] | None:
    """(syllables, other letters) of ``letters`` read as pinyin of at least two letters with at
    most 3 other letters before or after (zhangsanabc, qqwoaini); None when no such reading exists."""
    for extra in range(0, min(3, len(letters) - 2) + 1):  # the reading covering the most letters
        counts = [c for core in (letters[:len(letters) - extra], letters[extra:])
                  if (c := pinyin_syllables(core)) is not None]
        if counts:
            return min(counts), extra
    return None


def _predictable_digits(digits: str) -> bool:
    """At most 4 digits, or at most 3 predictable pieces (a love number, a year or date, a
    repeat, an ascending or descending sequence): 5201314, 19880808, 123456520 …"""
    if len(digits) <= 4:
        return True
    pieces: list[int | None] = [0] + [None] * len(digits)
    for end in range(1, len(digits) + 1):
        for start in range(end):
            if pieces[start] is not None and _piece(digits[start:end]):
                n = pieces[start] + 1  # type: ignore[operator]
                if pieces[end] is None or n < pieces[end]:  # type: ignore[operator]
                    pieces[end] = n
    return pieces[-1] is not None and pieces[-1] <= 3


def _piece(s: str) -> bool:
    if s in _LOVE_NUMBERS or _date_like(s):
        return True
    if len(s) >= 2 and len(set(s)) == 1:
        return True
    return len(s) >= 3 and (s in "0123456789" or s in "9876543210")


def _date_like(digits: str) -> bool:
    """A year, yyyymmdd, yyyymm, yymmdd, mmdd, ddmmyyyy, or a year followed by a short number."""
    def year(s: str) -> bool:
        return len(s) == 4 and 1900 <= int(s) <= 2099

    def month_day(s: str) -> bool:
        return len(s) == 4 and 1 <= int(s[:2]) <= 12 and 1 <= int(s[2:]) <= 31

    n = len(digits)
    if n == 4:
        return year(digits) or month_day(digits)
    if n == 6:
        return month_day(digits[2:]) or (year(digits[:4]) and 1 <= int(digits[4:]) <= 12) or year(digits[2:])
    if n == 8:
        return (year(digits[:4]) and (month_day(digits[4:]) or year(digits[4:]))) or \
            (year(digits[4:]) and (month_day(digits[:4]) or month_day(digits[2:4] + digits[:2])))
    return False


def chinese_pattern(password: str) -> str | None:
    """The Chinese pattern ``password`` follows (a message), or None."""
    syllables = pinyin_letters = other_letters = digit_runs = symbols = 0
    for run in _RUN.findall(password.lower()):
        if run[0].isalpha():
            reading = _pinyin_with_short_letters(run)
            if reading is None:
                other_letters += len(run)
            else:
                syllables += reading[0]
                pinyin_letters += len(run) - reading[1]
                other_letters += reading[1]
        elif run[0].isdigit():
            digit_runs += 1
            if not _predictable_digits(run):
                return None
        else:
            symbols += len(run)
    if 2 <= syllables <= 5 and pinyin_letters >= 4 and other_letters <= 3 and digit_runs <= 2 and symbols <= 3:
        return ("拼音姓名或词语加日期、年份或常见数字（如 zhangsan123456、woaini1314520）很容易被猜中 "
                "(a pinyin name or phrase with a date, year or common number is easy to guess)")
    return None
