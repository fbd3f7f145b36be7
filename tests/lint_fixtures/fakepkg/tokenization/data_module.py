"""Tokenising text (the data module lives in fakepkg.data.universal)."""


def tokenize(text: str, /) -> list:
    return list(text.encode("utf-8"))
