"""A lexicon prior for review sentiment: what a language scores when the shop labelled too few
reviews in it for its own model to know the language (pure Python, no training data).

- English: the VADER-derived word list of ``tailor.sentiment.lexicon`` (MIT, notice there).
- Chinese: the project's own list of common review words below (written for Tailor, no third-party
  source), matched longest first, since Chinese has no spaces ("不错" before "不").
- A negation ("not", "n't", "never", "no"; 不 没 没有 无 别 未 非) flips the next sentiment word
  within three tokens (English) or four characters (Chinese); a degree word ("very"; 很 非常 太 超
  特别 十分 真) before one scales it by 1.5.

P(positive) = sigmoid(0.9 · summed valence); a text with no lexicon word is 0.5 / 0.5.
"""

from __future__ import annotations

import math
import re

from tailor.sentiment.lexicon import WORDS_BY_VALENCE

# Chinese review words by valence (-3 .. 3): the project's own list.
_CHINESE = {
    3: "完美 超值 惊喜 太棒 超级好 非常满意 强烈推荐 五星 爱了",
    2: "很好 满意 喜欢 推荐 值得 不错 漂亮 舒服 好用 精致 精细 实惠 划算 耐心 热情 给力 好评 开心 "
       "超出预期 物美价廉 质量好 好看 好吃 好评如潮 正品 方便 干净 合适 贴心 周到 专业 细心 快速 及时",
    1: "好 快 便宜 可以 还行 挺好 新鲜 结实 耐用 柔软 轻便 准时 清楚 信赖 放心",
    -1: "慢 贵 一般 凑合 小 旧 难 晚 久 麻烦 脏",
    -2: "差 失望 坏 坏了 破 破损 糟糕 难闻 难吃 难看 粗糙 退货 退款 不值 后悔 假货 掉色 起球 "
        "异味 投诉 不舒服 不推荐 不满意 不好 不行 不能用 不一样 不理人 不对 太慢 很慢 漏 缺 错 假 臭 烂 "
        "问题 质量差 做工差 态度差 欺骗 敷衍 坑",
    -3: "垃圾 太差 极差 最差 恶心 骗子 再也不买 上当 非常不满意 差评",
}
_CHINESE_NEGATIONS = ("没有", "不", "没", "无", "别", "未", "非")
_CHINESE_DEGREE = ("非常", "特别", "十分", "很", "太", "超", "真", "最")
_ENGLISH_NEGATIONS = {"not", "no", "never", "nothing", "nobody", "none", "neither", "nor", "without", "cannot"}
_ENGLISH_DEGREE = {"very", "really", "so", "extremely", "super", "too", "totally", "absolutely"}
_WORD = re.compile(r"[a-z']+")
_HAN = re.compile(r"[\u3400-\u9fff]")
SCALE = 0.9


def _english_valence() -> dict[str, float]:
    valence: dict[str, float] = {}
    for value, words in WORDS_BY_VALENCE.items():
        for word in words.split():
            valence[word] = float(value)
    return valence


_EN = _english_valence()
_ZH = {word: float(value) for value, words in _CHINESE.items() for word in words.split()}
_ZH_LONGEST = max(len(w) for w in _ZH)


def valence(text: str) -> tuple[float, int]:
    """Summed valence of the text and how many lexicon words it holds."""
    return _chinese(text) if _HAN.search(text) else _english(text)


def _english(text: str) -> tuple[float, int]:
    total, hits, negate, degree = 0.0, 0, 0, 1.0
    for token in _WORD.findall(text.lower()):
        if token in _ENGLISH_NEGATIONS or token.endswith("n't"):
            negate = 3
            continue
        if token in _ENGLISH_DEGREE:
            degree = 1.5
            continue
        value = _EN.get(token)
        if value is not None:
            total += value * degree * (-0.75 if negate else 1.0)  # "not great" is milder than "awful"
            hits += 1
            negate, degree = 0, 1.0
        else:
            negate = max(negate - 1, 0)
    return total, hits


def _chinese(text: str) -> tuple[float, int]:
    total, hits, i, negate_until, degree = 0.0, 0, 0, -1, 1.0
    while i < len(text):
        for size in range(min(_ZH_LONGEST, len(text) - i), 0, -1):
            word = text[i:i + size]
            if word in _ZH:
                negated = i <= negate_until
                total += _ZH[word] * degree * (-0.75 if negated else 1.0)
                hits += 1
                negate_until, degree = -1, 1.0
                i += size
                break
        else:
            negation = next((n for n in _CHINESE_NEGATIONS if text.startswith(n, i)), None)
            degree_word = next((d for d in _CHINESE_DEGREE if text.startswith(d, i)), None)
            if degree_word:  # first: 非常 ("very") starts with the negation 非
                degree = 1.5
                i += len(degree_word)
            elif negation:
                negate_until = i + len(negation) + 3
                i += len(negation)
            else:
                if not _HAN.match(text[i]):
                    degree = 1.0  # punctuation ends a clause
                i += 1
    return total, hits


def probabilities(text: str) -> tuple[float, float]:
    """(P(positive), P(negative)) of the prior."""
    total, hits = valence(text)
    if not hits:
        return 0.5, 0.5
    positive = 1.0 / (1.0 + math.exp(-SCALE * total))
    return positive, 1.0 - positive
