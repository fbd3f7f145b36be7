import math

import pytest
import torch

import trainbook as tb
from trainbook.data import DataError, parse_shift


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
    ("text-cls", "bad.csv", "sentence,target\nhi,1\n",
     r"bad\.csv: needs columns 'text' and 'label'; found \['sentence', 'target'\]"),
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


def test_a_binary_file_is_refused_as_lm_text_but_any_8_bit_text_is_read(tmp_path):
    with pytest.raises(tb.DataError, match=r"/bin/ls: not a text file \(it holds NUL bytes"):
        tb.load_task_data("lm", source="/bin/ls")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9 cr\xe8me br\xfbl\xe9e\n".encode("latin-1") * 100)
    data = tb.load_task_data("lm", source=str(latin1))
    assert 0xE9 in data.train[0]["input_ids"].tolist() or 0xE9 in data.val[0]["input_ids"].tolist()


def test_a_csv_that_is_not_utf8_names_the_file_and_line(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_bytes(("text,label\n" + "".join(f"row {i},{i % 2}\n" for i in range(3000)) + "caf\xe9,1\n").encode("latin-1"))
    with pytest.raises(tb.DataError, match=rf"{path}:3002: not UTF-8 text \(invalid continuation byte\)"):
        tb.load_task_data("text-cls", source=str(path))


def test_a_limit_that_leaves_no_training_example_is_a_data_error():
    with pytest.raises(tb.DataError, match="builtin: no training examples left with data_limit=4"):
        tb.load_task_data("text-cls", limit=4)
