"""Large user text: segments, the tokenizer-independent split, the on-disk token cache and memory-mapped reading."""

import pickle

import numpy as np
import pytest

import trainbook as tb
from trainbook.data import DataError, Tokenizer
from trainbook.data.cache import TokenStore, TokenWindows, window_bounds
from trainbook.data.corpus import split_records
from trainbook.data.textfile import iter_segments, segment_size
from trainbook.data.windows import byte_windows

LINES = [f"line {i}: the {'cat' if i % 3 else 'dog'} sat on mat number {i * 7}\n" for i in range(3000)]


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINBOOK_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("".join(LINES))
    return path


def test_segments_are_whole_lines_of_about_the_size_and_rebuild_the_text(corpus):
    segments = [text for _, text in iter_segments([corpus], None, 1000)]
    assert "".join(segments) == corpus.read_text()
    assert all(s.endswith("\n") for s in segments) and all(1000 <= len(s) < 1100 for s in segments[:-1])
    long_line = corpus.with_name("long.txt")
    long_line.write_text("x" * 2500)
    assert [len(t) for _, t in iter_segments([long_line], None, 1000)] == [1000, 1000, 500]


def test_segment_size_grows_with_the_corpus_within_bounds():
    assert [segment_size(n) for n in (0, 64 * 1000, 10**9)] == [256, 1000, 65536]


def test_window_bounds_match_byte_windows_inside_each_record(tmp_path):
    tok = Tokenizer("byte")
    texts = ["a" * 300, "b", "cd", "e" * 129, "f" * 130]
    store = TokenStore.build(tmp_path / "s", ((t, -1, 0) for t in texts), tok)
    starts, ends = window_bounds(store, np.arange(len(texts)), 128)
    got = [bytes(store.ids[s:e]).decode() for s, e in zip(starts, ends)]
    want = [bytes(w["input_ids"].tolist()).decode() for t in texts for w in byte_windows(t.encode(), 128)]
    assert got == want


def test_split_uses_the_sources_validation_and_test_groups_or_a_seeded_split():
    groups = np.array([0] * 20 + [1] * 5 + [2] * 3, np.int8)
    train, val, cur = split_records(groups, 0, "x")
    assert list(val) == list(range(20, 25)) and list(cur) == [25, 26, 27] and list(train) == list(range(20))
    train, val, cur = split_records(np.zeros(30, np.int8), 1, "x")
    assert (len(train), len(val), len(cur)) == (24, 3, 3) and sorted({*train, *val, *cur}) == list(range(30))
    assert [list(p) for p in split_records(np.zeros(30, np.int8), 1, "x")] == [list(train), list(val), list(cur)]
    with pytest.raises(DataError, match="only 2 record"):
        split_records(np.zeros(2, np.int8), 0, "tiny.txt")


def test_the_validation_text_is_the_same_for_every_tokenizer(corpus):
    def val_text_bytes(data):
        table = data.tokenizer.token_bytes
        return sum(int(table[e["input_ids"].numpy()].sum()) for e in data.val)

    byte, bpe = tb.load_task_data("lm", source=str(corpus)), tb.load_task_data("lm", source=str(corpus), tokenizer="bpe:400")
    assert val_text_bytes(byte) == val_text_bytes(bpe) > 0
    assert len(bpe.val) < len(byte.val)  # fewer, longer-reaching windows


def test_second_load_reads_the_cached_tokens_without_tokenizing(corpus, capsys, cache_dir):
    first = tb.load_task_data("lm", source=str(corpus), tokenizer="bpe:400", seed=1)
    out = capsys.readouterr().out
    assert first.info["cache"] == "built" and "tokenized" in out and "trained on" in out
    second = tb.load_task_data("lm", source=str(corpus), tokenizer="bpe:400", seed=1)
    assert second.info["cache"] == "hit" and capsys.readouterr().out == ""  # no training, no tokenizing
    assert [e["input_ids"].tolist() for e in first.train] == [e["input_ids"].tolist() for e in second.train]
    corpus.write_text("".join(LINES[:2000]))  # another file: another key
    assert tb.load_task_data("lm", source=str(corpus), tokenizer="bpe:400", seed=1).info["cache"] == "built"


def test_cache_is_keyed_by_tokenizer(corpus):
    a = tb.load_task_data("lm", source=str(corpus))
    b = tb.load_task_data("lm", source=str(corpus), tokenizer="bpe:400")
    assert a.info["cache_dir"] != b.info["cache_dir"] and b.train.store.dtype == np.uint16
    assert a.train.store.dtype == np.uint8 and isinstance(a.train.store.ids, np.memmap)


def test_token_datasets_pickle_without_their_ids(corpus):
    data = tb.load_task_data("lm", source=str(corpus))
    data.train[0]  # opens the memory map
    blob = pickle.dumps(data.train)
    assert len(blob) < 0.5 * data.train.store.offsets[-1]  # the file name travels, not the tokens
    again = pickle.loads(blob)
    assert again[3]["input_ids"].tolist() == data.train[3]["input_ids"].tolist()


def test_limit_and_seed_choose_windows(corpus):
    a, b = tb.load_task_data("lm", source=str(corpus), limit=10, seed=0), tb.load_task_data("lm", source=str(corpus), limit=10, seed=1)
    assert (len(a.train), len(a.val), len(a.current)) == (10, 2, 2)
    assert [e["input_ids"].tolist() for e in a.train] != [e["input_ids"].tolist() for e in b.train]


def test_a_store_is_written_whole_or_not_at_all(tmp_path):
    def records():
        yield "fine text", -1, 0
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        TokenStore.build(tmp_path / "s", records(), Tokenizer("byte"))
    assert not (tmp_path / "s").exists() and list(tmp_path.iterdir()) == []
    assert TokenStore.load(tmp_path / "s") is None


def test_windows_dataset_indexes_like_a_sequence(tmp_path):
    store = TokenStore.build(tmp_path / "s", [("abcdef", -1, 0)], Tokenizer("byte"))
    data = TokenWindows(store, np.array([0, 2]), np.array([3, 6]))
    assert [bytes(e["input_ids"].tolist()) for e in data] == [b"abc", b"cdef"]
    with pytest.raises(IndexError):
        data[2]
