import math

import pytest
import torch

import trainbook as tb
from trainbook.data import DataError, parse_shift


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    """Tokenized data and tokenizers go to a fresh folder per test."""
    monkeypatch.setenv("TRAINBOOK_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_lm_builtin_splits_by_file_and_windows_are_bytes():
    data = tb.load_task_data("lm", limit=200, seed=1)
    assert len(data.train) == 200 and len(data.val) == 50 and len(data.current) == 50
    ids = data.train[0]["input_ids"]
    assert ids.dtype == torch.long and 2 <= len(ids) <= data.spec.max_seq_len and int(ids.max()) < 256
    assert data.info["train_files"] > data.info["val_files"] > 0


def test_lm_builtin_is_deterministic_per_seed():
    a, b = tb.load_task_data("lm", limit=20, seed=3), tb.load_task_data("lm", limit=20, seed=3)
    assert all(torch.equal(x["input_ids"], y["input_ids"]) for x, y in zip(a.train, b.train))
    c = tb.load_task_data("lm", limit=20, seed=4)
    assert not all(torch.equal(x["input_ids"], y["input_ids"]) for x, y in zip(a.train, c.train))


def test_text_cls_is_balanced_and_labelled():
    data = tb.load_task_data("text-cls", limit=120)
    balance = data.info["class_balance"]
    assert set(balance) == set(data.spec.class_names) and max(balance.values()) - min(balance.values()) <= 1
    assert {int(e["labels"]) for e in data.val} == set(range(6))


def test_vision_builtin_is_digits_in_unit_range():
    data = tb.load_task_data("vision-cls")
    assert len(data.train) + len(data.val) + len(data.current) == 1797
    x = data.train[0]["pixel_values"]
    assert x.shape == (1, 8, 8) and 0.0 <= float(x.min()) and float(x.max()) <= 1.0


@pytest.mark.parametrize("task,shift", [("vision-cls", "brightness"), ("vision-cls", "noise:0.5"),
                                        ("vision-cls", "rotation"), ("lm", "noise"), ("lm", "truncate"),
                                        ("lm", "packages"), ("text-cls", "packages")])
def test_shift_changes_only_the_current_split(task, shift):
    base, shifted = tb.load_task_data(task, limit=80), tb.load_task_data(task, limit=80, shift=shift)
    key = base.spec.input_key
    assert all(torch.equal(a[key], b[key]) for a, b in zip(base.train, shifted.train))
    assert not all(a[key].shape == b[key].shape and torch.equal(a[key], b[key])
                   for a, b in zip(base.current, shifted.current))
    assert shifted.info["current"].startswith("shift ")


def test_brightness_shift_raises_mean_pixel():
    base, shifted = tb.load_task_data("vision-cls", shift=None), tb.load_task_data("vision-cls", shift="brightness:0.2")
    mean = lambda ds: torch.stack([e["pixel_values"] for e in ds]).mean().item()  # noqa: E731
    assert mean(shifted.current) > mean(base.current) + 0.1


def test_bad_shift_is_rejected():
    with pytest.raises(DataError, match="shift must be 'none' or one of .* for vision tasks"):
        parse_shift("truncate", tb.TaskSpec.preset("vision-cls"))
    with pytest.raises(DataError, match="shift strength must be a number"):
        parse_shift("noise:lots", tb.TaskSpec.preset("lm"))


# --- user sources and bad input ---

def test_user_text_file_for_lm(tmp_path):
    f = tmp_path / "corpus.txt"
    f.write_text("hello world, " * 200)
    data = tb.load_task_data("lm", source=str(f))
    assert len(data.train) > 0 and data.info["source"] == str(f)


def test_missing_path_names_the_file(tmp_path):
    with pytest.raises(DataError, match=r"nope\.txt: does not exist"):
        tb.load_task_data("lm", source=str(tmp_path / "nope.txt"))


@pytest.mark.parametrize("task,name,content,message", [
    ("lm", "empty.txt", "", r"empty\.txt: file is empty"),
    ("lm", "one.txt", "x", r"one\.txt: text is shorter than 2 tokens"),
    ("text-cls", "bad.csv", "a,b,c\nhi,1,2\n",
     r"bad\.csv: cannot tell which columns hold the text and the label; found \['a', 'b', 'c'\]. "
     r"HINT: pass text_column="),
    ("text-cls", "one.csv", "text,label\na,x\nb,x\n", r"one\.csv: only one class \('x'\)"),
    ("text-cls", "empty.csv", "", r"empty\.csv: file is empty"),
])
def test_bad_user_file_names_the_file_and_the_problem(task, name, content, message, tmp_path):
    f = tmp_path / name
    f.write_text(content)
    with pytest.raises(DataError, match=message):
        tb.load_task_data(task, source=str(f))


def test_csv_for_text_classification(tmp_path):
    f = tmp_path / "reviews.csv"
    f.write_text("text,label\n" + "".join(f"sample {i},{'pos' if i % 2 else 'neg'}\n" for i in range(40)))
    data = tb.load_task_data("text-cls", source=str(f))
    assert data.spec.num_classes == 2 and data.spec.class_names == ("neg", "pos")
    assert len(data.train) + len(data.val) + len(data.current) == 40


def _write_images(folder, n, value):
    from PIL import Image
    folder.mkdir(parents=True)
    for i in range(n):
        Image.new("RGB", (10, 10), (value, i * 10, 0)).save(folder / f"{i}.png")


def test_image_folder_for_vision(tmp_path):
    _write_images(tmp_path / "cats", 12, 10)
    _write_images(tmp_path / "dogs", 12, 200)
    data = tb.load_task_data("vision-cls", source=str(tmp_path))
    assert data.spec.class_names == ("cats", "dogs") and data.spec.channels == 3
    assert data.train[0]["pixel_values"].shape == (3, 32, 32)
    assert all(math.isfinite(s) and s > 0 for s in data.spec.std)


def test_unreadable_image_names_the_file(tmp_path):
    _write_images(tmp_path / "a", 3, 10)
    _write_images(tmp_path / "b", 3, 10)
    (tmp_path / "b" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"broken\.png: unreadable image"):
        tb.load_task_data("vision-cls", source=str(tmp_path))


def test_image_folder_with_one_class(tmp_path):
    _write_images(tmp_path / "only", 3, 10)
    with pytest.raises(DataError, match="found 1 class folder"):
        tb.load_task_data("vision-cls", source=str(tmp_path))


# --- the user's messy tables: each row of the table in issue 17 ---

ROWS = "".join(f"sample number {i} says {'great' if i % 2 else 'awful'} things,{'pos' if i % 2 else 'neg'}\n"
               for i in range(40))


def _texts_by_label(data):
    """{label name: set of texts} over every split (byte tokenizer: ids are the UTF-8 bytes)."""
    out = {}
    for split in (data.train, data.val, data.current):
        for e in split:
            out.setdefault(data.spec.class_names[e["labels"]], set()).add(bytes(e["input_ids"].tolist()).decode())
    return out


def test_csv_with_one_latin1_byte_names_the_file_line_and_byte(tmp_path):
    content = ("text,label\n" + ROWS).encode() + "caf\xe9 au lait,pos\n".encode("latin-1") + ROWS.encode()
    f = tmp_path / "latin.csv"
    f.write_bytes(content)
    offset = content.index(b"\xe9")
    with pytest.raises(DataError, match=rf"latin\.csv:42: byte 0xe9 at byte offset {offset} is not valid utf-8 .*"
                                        r"HINT: .*encoding='cp1252'"):
        tb.load_task_data("text-cls", source=str(f))


def test_csv_in_latin1_loads_with_encoding_given(tmp_path):
    f = tmp_path / "latin.csv"
    f.write_bytes(("text,label\n" + ROWS + "caf\xe9 au lait,pos\n").encode("latin-1"))
    data = tb.load_task_data("text-cls", source=str(f), encoding="latin-1")
    assert "caf\u00e9 au lait" in _texts_by_label(data)["pos"]  # decoded, then UTF-8 bytes


def test_utf16_with_bom_is_detected(tmp_path):
    f = tmp_path / "wide.csv"
    f.write_bytes(("text,label\n" + ROWS).encode("utf-16"))
    data = tb.load_task_data("text-cls", source=str(f))
    assert data.spec.class_names == ("neg", "pos") and "sample number 1 says great things" in _texts_by_label(data)["pos"]


def test_csv_with_utf8_bom_reads_the_header_without_it(tmp_path, capsys):
    f = tmp_path / "bom.csv"
    f.write_bytes(b"\xef\xbb\xbf" + ("text,label\n" + ROWS).encode())
    data = tb.load_task_data("text-cls", source=str(f))
    assert data.info["text_column"] == "text" and data.spec.class_names == ("neg", "pos")
    assert len(data.train) + len(data.val) + len(data.current) == 40


def test_columns_sentence_category_are_found_by_name_and_the_choice_printed(tmp_path, capsys):
    f = tmp_path / "cols.csv"
    f.write_text("sentence,category\n" + ROWS)
    data = tb.load_task_data("text-cls", source=str(f))
    assert "cols.csv: text_column='sentence', label_column='category' (auto" in capsys.readouterr().out
    assert _texts_by_label(data)["pos"] == {f"sample number {i} says great things" for i in range(1, 40, 2)}


def test_text_and_label_columns_can_be_named(tmp_path):
    f = tmp_path / "named.csv"
    f.write_text("id,body_text,stars\n" + "".join(f"{i},{line}" for i, line in enumerate(ROWS.splitlines(True))))
    with pytest.raises(DataError, match="cannot tell which columns"):
        tb.load_task_data("text-cls", source=str(f))
    data = tb.load_task_data("text-cls", source=str(f), text_column="body_text", label_column="stars")
    assert data.spec.class_names == ("neg", "pos") and data.info["label_column"] == "stars"
    with pytest.raises(DataError, match=r"text_column='body' is not a column; found \['id', 'body_text', 'stars'\] "
                                        r"\(did you mean 'body_text'\?\)"):
        tb.load_task_data("text-cls", source=str(f), text_column="body", label_column="stars")


def test_empty_text_after_blank_lines_and_a_multiline_field_names_the_real_line(tmp_path):
    lines = ["text,label", '"a review\nover three\nlines",pos'] + ROWS.splitlines()[:30] + ["", "", ""]
    lines += ["  ,neg"] + ROWS.splitlines()[30:]
    (tmp_path / "blank.csv").write_text("\n".join(lines) + "\n")
    assert "\n".join(lines).splitlines()[37] == "  ,neg"  # physical line 38 (1-based)
    with pytest.raises(DataError, match=r"blank\.csv: 1 bad row\(s\) of 42:\n  .*blank\.csv:38: empty text\n"):
        tb.load_task_data("text-cls", source=str(tmp_path / "blank.csv"))


def test_empty_label_is_a_bad_row_not_a_third_class(tmp_path):
    (tmp_path / "nolabel.csv").write_text("text,label\n" + ROWS + "a row without a label,\n")
    with pytest.raises(DataError, match=r"nolabel\.csv:42: empty label"):
        tb.load_task_data("text-cls", source=str(tmp_path / "nolabel.csv"))


def test_a_row_with_one_field_names_its_line(tmp_path):
    (tmp_path / "short.csv").write_text("text,label\n" + ROWS[:200].rsplit("\n", 1)[0] + "\nonly one field\n" + ROWS)
    with pytest.raises(DataError, match=r"short\.csv:\d+: 1 field\(s\); the header has 2"):
        tb.load_task_data("text-cls", source=str(tmp_path / "short.csv"))


def test_bad_rows_are_one_error_listing_five_lines_and_the_total(tmp_path):
    (tmp_path / "many.csv").write_text("text,label\n" + ROWS + "".join(f"row {i},\n" for i in range(7)))
    with pytest.raises(DataError) as err:
        tb.load_task_data("text-cls", source=str(tmp_path / "many.csv"))
    message = str(err.value)
    assert "many.csv: 7 bad row(s) of 47:" in message and "... and 2 more" in message
    assert [f"many.csv:{n}: empty label" in message for n in range(42, 49)] == [True] * 5 + [False] * 2
    assert "skip_bad_rows=True" in message


def test_skip_bad_rows_drops_them_with_a_one_line_count(tmp_path, capsys):
    (tmp_path / "skip.csv").write_text("text,label\n" + ROWS + "only one field\n ,neg\nno label,\n")
    data = tb.load_task_data("text-cls", source=str(tmp_path / "skip.csv"), skip_bad_rows=True)
    out = capsys.readouterr().out
    assert "skip.csv: skipped 3 bad row(s) of 43 (skip_bad_rows=True): " in out
    assert "wrong field count 1" in out and "empty text 1" in out and "empty label 1" in out
    assert data.spec.class_names == ("neg", "pos") and len(data.train) + len(data.val) + len(data.current) == 40


def test_jsonl_and_tsv_tables(tmp_path):
    rows = [line.rsplit(",", 1) for line in ROWS.splitlines()]
    (tmp_path / "t.tsv").write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows))
    (tmp_path / "t.jsonl").write_text("".join(f'{{"text": "{t}", "label": "{y}"}}\n' for t, y in rows)
                                      + "\n{not json\n")
    assert _texts_by_label(tb.load_task_data("text-cls", source=str(tmp_path / "t.tsv")))["neg"] \
        == {t for t, y in rows if y == "neg"}
    with pytest.raises(DataError, match=r"t\.jsonl:42: invalid JSON"):
        tb.load_task_data("text-cls", source=str(tmp_path / "t.jsonl"))


def test_integer_labels_are_ordered_numerically(tmp_path):
    (tmp_path / "n.csv").write_text("text,label\n" + "".join(f"text {i},{i % 11}\n" for i in range(66)))
    assert tb.load_task_data("text-cls", source=str(tmp_path / "n.csv")).spec.class_names == tuple(map(str, range(11)))


def test_lm_text_file_with_a_bad_byte_names_its_line(tmp_path):
    (tmp_path / "c.txt").write_bytes(b"line one\nline two\n\xff three\n" * 1)
    with pytest.raises(DataError, match=r"c\.txt:3: byte 0xff at byte offset 18"):
        tb.load_task_data("lm", source=str(tmp_path / "c.txt"))


# --- Hugging Face datasets (built here, no download) ---

TEXTS = [f"review number {i} says {'great' if i % 2 else 'awful'} things" for i in range(80)]


def test_hf_save_to_disk_folder_with_string_labels(tmp_path, capsys):
    import datasets

    sentiment = ["positive" if i % 2 else "negative" for i in range(80)]
    datasets.Dataset.from_dict({"sentence": TEXTS, "sentiment": sentiment}).save_to_disk(str(tmp_path / "ds"))
    data = tb.load_task_data("text-cls", source=f"hf:{tmp_path / 'ds'}")
    assert data.spec.class_names == ("negative", "positive") and data.spec.num_classes == 2
    assert _texts_by_label(data)["positive"] == {t for t in TEXTS if "great" in t}
    assert "text_column='sentence', label_column='sentiment' (auto" in capsys.readouterr().out


def test_hf_classlabel_names_and_validation_split_are_kept(tmp_path, capsys):
    import datasets

    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])})
    make = lambda texts, labels: datasets.Dataset.from_dict({"text": texts, "label": labels}, features=features)  # noqa: E731
    datasets.DatasetDict({"train": make(TEXTS, [i % 2 for i in range(80)]),
                          "validation": make(TEXTS[:12], [i % 2 for i in range(12)]),
                          "test": make(TEXTS[:10], [-1] * 10)}).save_to_disk(str(tmp_path / "dd"))
    data = tb.load_task_data("text-cls", source=f"hf:{tmp_path / 'dd'}")
    assert data.spec.class_names == ("neg", "pos")
    assert len(data.val) == 12 and len(data.train) + len(data.current) == 80  # current: 10% of train
    assert "split 'test' has no labels (all missing); not using it" in capsys.readouterr().out


def test_hf_folder_of_parquet_files_and_lm_on_its_text(tmp_path):
    import datasets

    (tmp_path / "pq").mkdir()
    datasets.Dataset.from_dict({"text": TEXTS, "label": [i % 2 for i in range(80)]}).to_parquet(str(tmp_path / "pq" / "train.parquet"))
    datasets.Dataset.from_dict({"text": TEXTS[:8], "label": [1] * 8}).to_parquet(str(tmp_path / "pq" / "validation.parquet"))
    data = tb.load_task_data("text-cls", source=f"hf:{tmp_path / 'pq'}")
    assert data.spec.class_names == ("0", "1") and len(data.val) == 8
    lm = tb.load_task_data("lm", source=f"hf:{tmp_path / 'pq'}")
    assert sum(len(e["input_ids"]) for e in lm.val) == sum(len(t) + 1 for t in TEXTS[:8])  # rows + newlines


def test_hf_bad_rows_name_the_split_and_row(tmp_path):
    import datasets

    texts = TEXTS[:20] + [" "]
    datasets.Dataset.from_dict({"text": texts, "label": ["a", "b"] * 10 + ["a"]}).save_to_disk(str(tmp_path / "ds"))
    with pytest.raises(DataError, match=r"hf:.*ds: 1 bad row\(s\) of 21:\n  hf:.*ds train row 20: empty text"):
        tb.load_task_data("text-cls", source=f"hf:{tmp_path / 'ds'}")


def test_hf_hub_name_without_network_is_a_clear_error(monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    with pytest.raises(DataError, match=r"hf:nobody/no-such-dataset: cannot load it .*HINT: a hub name needs the network"):
        tb.load_task_data("text-cls", source="hf:nobody/no-such-dataset")


def test_a_binary_file_is_refused_as_lm_text_and_8_bit_text_needs_its_encoding(tmp_path):
    with pytest.raises(tb.DataError, match=r"/bin/ls: not a text file \(it holds NUL bytes"):
        tb.load_task_data("lm", source="/bin/ls")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9 cr\xe8me br\xfbl\xe9e\n".encode("latin-1") * 100)
    with pytest.raises(tb.DataError, match=r"latin1\.txt:1: byte 0xe9 at byte offset 3 is not valid utf-8"):
        tb.load_task_data("lm", source=str(latin1))
    data = tb.load_task_data("lm", source=str(latin1), encoding="latin-1")
    ids = data.train[0]["input_ids"].tolist() + data.val[0]["input_ids"].tolist()
    assert bytes([0xC3, 0xA9]) in bytes(ids)  # decoded as latin-1, then the UTF-8 bytes of 'é


def test_a_limit_that_leaves_no_training_example_is_a_data_error():
    with pytest.raises(tb.DataError, match="builtin: no training examples left with data_limit=4"):
        tb.load_task_data("text-cls", limit=4)
