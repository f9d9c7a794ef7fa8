"""Line wrapping by display width, for English and Japanese alike.

textwrap counts code points and breaks only at spaces: Japanese has no spaces, and each kana or
kanji takes two terminal columns. Here widths come from wcwidth (East Asian Width, maintained
upstream), and a line may break between any two wide characters as well as at spaces. Closing
punctuation (、。）」...) stays with the character before it and opening brackets with the one
after, so no line starts with 。 or ends with （ (the usual kinsoku rule).
"""
from wcwidth import wcswidth, wcwidth

_OPEN = frozenset("（「『【〔［｛〈《“‘")
_CLOSE = frozenset("、。，．）」』】〕］｝〉》”’・ー！？：；…")


def width(s):
    """Terminal columns s takes; a control character counts as one."""
    w = wcswidth(s)
    return w if w >= 0 else sum(max(wcwidth(c), 1) for c in s)


def _units(text):
    """The unbreakable pieces of text: [piece, space_before] pairs."""
    units, word, word_space, space = [], "", False, False
    for ch in text:
        if ch.isspace():
            if word:
                units.append([word, word_space])
                word = ""
            space = True
            continue
        if wcwidth(ch) == 2 or ch in _OPEN or ch in _CLOSE:
            if word:
                units.append([word, word_space])
                word = ""
            units.append([ch, space])
        else:
            if not word:
                word_space = space
            word += ch
        space = False
    if word:
        units.append([word, word_space])
    merged = []
    for piece, sp in units:
        if merged and not sp and (piece[0] in _CLOSE or merged[-1][0][-1] in _OPEN):
            merged[-1][0] += piece
        else:
            merged.append([piece, sp])
    return merged


def wrap(text, columns, first="", rest=""):
    """text as lines of at most `columns` display columns (a piece longer than a line, such as
    a URL, gets a line of its own), the first prefixed by `first`, the others by `rest`."""
    lines, cur, cur_w, empty = [], first, width(first), True
    for piece, sp in _units(text):
        w = width(piece)
        gap = 1 if sp and not empty else 0
        if not empty and cur_w + gap + w > columns:
            lines.append(cur.rstrip())
            cur, cur_w, empty, gap = rest, width(rest), True, 0
        cur += " " * gap + piece
        cur_w += gap + w
        empty = False
    lines.append(cur.rstrip())
    return lines


def fill(text, columns, first="", rest=""):
    return "\n".join(wrap(text, columns, first, rest))


def fill_items(items, sep, columns, first="", rest=""):
    """Short phrases joined by sep ("、" or ", "), a line breaking only between two of them."""
    lines, cur = [], first
    for i, item in enumerate(items):
        piece = item + (sep.rstrip() if i < len(items) - 1 else "")
        gap = " " if sep.endswith(" ") and cur != first and cur != rest else ""
        if cur not in (first, rest) and width(cur + gap + piece) > columns:
            lines.append(cur)
            cur, gap = rest, ""
        cur += gap + piece
    lines.append(cur)
    return "\n".join(lines)
