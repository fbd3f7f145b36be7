"""Tokenizers: byte, bpe:<n> trained on the train split (seeded, cached), hf:<dir> via AutoTokenizer."""

import csv
import math

import numpy as np
import pytest
import torch

import trainbook as tb
from trainbook.data import DataError, Tokenizer, parse_tokenizer, tokenizer_for
from trainbook.data.tokenizers import train_bpe

CORPUS = [f"def function_{i}(value):\n    return value * {i} + offset_{i % 7}\n" for i in range(400)]


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINBOOK_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _hf_wordpiece_dir(path):
    """A BERT-style WordPiece tokenizer built here and written by save_pretrained (no download)."""
    from tokenizers import Tokenizer as Backend
    from tokenizers import decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Backend(models.WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.decoder = decoders.WordPiece()
    backend.train_from_iterator(CORPUS, trainers.WordPieceTrainer(vocab_size=300, special_tokens=["[PAD]", "[UNK]"],
                                                                  show_progress=False))
    PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]").save_pretrained(str(path))
    return path


@pytest.mark.parametrize("value,parsed", [("byte", ("byte", "")), (None, ("byte", "")), ("bpe:2000", ("bpe", "2000")),
                                          ("hf:gpt2", ("hf", "gpt2")), ("hf:./my tok", ("hf", "./my tok"))])
def test_parse_tokenizer_accepts_the_three_forms(value, parsed):
    assert parse_tokenizer(value) == parsed


@pytest.mark.parametrize("value", ["bpe", "bpe:abc", "bpe:100", "hf:", "sentencepiece", "BYTE"])
def test_parse_tokenizer_rejects_anything_else_with_the_forms(value):
    with pytest.raises(DataError, match=r"tokenizer must be 'byte', 'bpe:<vocab_size>' .* or 'hf:<name-or-folder>'"):
        parse_tokenizer(value)


def test_byte_tokenizer_is_utf8_bytes():
    tok = Tokenizer("byte")
    assert tok.vocab_size == 256 and tok.sha == "" and tok.dtype == np.uint8
    assert tok.encode("h\u00e9").tolist() == [104, 0xC3, 0xA9] and tok.decode([104, 0xC3, 0xA9]) == "h\u00e9"


def test_bpe_has_the_vocab_asked_for_and_round_trips_text():
    tok = train_bpe(lambda: CORPUS, 400, seed=0)
    assert tok.vocab_size == 400 and tok.name == "bpe:400" and tok.dtype == np.uint16
    text = "def function_3(value):\n    return caf\u00e9 * 3\n"
    ids = tok.encode(text)
    assert tok.decode(ids) == text and len(ids) < len(text.encode()) / 2
    assert int(tok.token_bytes[ids].sum()) == len(text.encode("utf-8"))  # exact for byte-level BPE


def test_bpe_training_is_deterministic_and_cached(tmp_path, capsys):
    a = train_bpe(lambda: CORPUS, 400, seed=0, cache_dir=tmp_path / "a")
    b = train_bpe(lambda: CORPUS, 400, seed=0, cache_dir=tmp_path / "b")
    assert a.sha == b.sha  # same inputs, same tokenizer, in another cache
    assert capsys.readouterr().out.count("tokenizer bpe:400: trained on") == 2
    again = train_bpe(lambda: CORPUS, 400, seed=0, cache_dir=tmp_path / "a")
    assert again.sha == a.sha and "trained on" not in capsys.readouterr().out  # read from the cache
    assert train_bpe(lambda: CORPUS[:200], 400, seed=0, cache_dir=tmp_path / "a").sha != a.sha  # other text


def test_bpe_learns_from_the_train_split_only(tmp_path):
    import datasets

    train = [f"the quokka number {i} hops around" for i in range(300)]
    val = [f"the zyzzyva number {i} crawls around" for i in range(40)]
    datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": train}),
                          "validation": datasets.Dataset.from_dict({"text": val})}).save_to_disk(str(tmp_path / "d"))
    data = tb.load_task_data("lm", source=f"hf:{tmp_path / 'd'}", tokenizer="bpe:300")
    vocab = data.tokenizer.backend.get_vocab()
    assert "\u0120quokka" in vocab  # a train word became one token ('\u0120' is the byte-level space)
    assert not any("zyzz" in token for token in vocab)  # a validation-only word did not


def test_bpe_lm_on_the_builtin_corpus_sets_the_vocabulary_and_counts_bytes():
    data = tb.load_task_data("lm", limit=40, tokenizer="bpe:600")
    assert data.spec.vocab_size == 600 and data.spec.tokenizer == "bpe:600" and len(data.spec.tokenizer_sha) == 64
    window = data.train[0]
    assert len(window["input_ids"]) == data.spec.max_seq_len and int(window["input_ids"].max()) < 600
    text = data.tokenizer.decode(window["input_ids"][1:])
    assert window["n_bytes"] == len(text.encode("utf-8"))
    model = tb.build_model(data.spec, size="tiny")
    assert model(window["input_ids"][None]).shape == (1, data.spec.max_seq_len, 600)


def test_hf_tokenizer_from_a_local_folder_encodes_like_autotokenizer(tmp_path):
    from transformers import AutoTokenizer

    folder = _hf_wordpiece_dir(tmp_path / "wp")
    with open(tmp_path / "c.csv", "w", newline="") as fh:  # texts with commas and newlines, quoted
        csv.writer(fh).writerows([("text", "label")] + [(t, i % 2) for i, t in enumerate(CORPUS)])
    data = tb.load_task_data("text-cls", source=str(tmp_path / "c.csv"), tokenizer=f"hf:{folder}")
    hf = AutoTokenizer.from_pretrained(str(folder))
    assert data.spec.vocab_size == len(hf) and data.spec.tokenizer == f"hf:{folder}"
    text = CORPUS[5]
    assert data.tokenizer.encode(text).tolist() == hf(text, add_special_tokens=False)["input_ids"]
    assert data.tokenizer.token_bytes[hf.convert_tokens_to_ids("[PAD]")] == 0  # special tokens are no text


def test_hf_tokenizer_that_cannot_be_loaded_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"tokenizer 'hf:.*empty': cannot load it .*HINT: a hub name needs the network"):
        tb.load_task_data("lm", tokenizer=f"hf:{tmp_path / 'empty'}", limit=8)


def test_vision_task_refuses_a_tokenizer():
    with pytest.raises(DataError, match="tokenizer='bpe:500' applies to text tasks"):
        tb.load_task_data("vision-cls", tokenizer="bpe:500")


def test_tokenizer_for_finds_the_specs_tokenizer_or_says_how_to_get_it(tmp_path, monkeypatch):
    data = tb.load_task_data("text-cls", limit=30, tokenizer="bpe:300")
    assert tokenizer_for(data.spec) is data.tokenizer
    assert tokenizer_for(tb.TaskSpec.preset("lm")).is_byte
    stranger = data.spec.replace(tokenizer_sha="0" * 64)
    with pytest.raises(DataError, match=r"tokenizer of this task \(bpe:300, sha256 000000000000\.\.\.\) is not loaded"):
        tokenizer_for(stranger)


def test_val_bits_per_byte_uses_the_texts_bytes_for_any_tokenizer(tmp_path):
    cfg = tb.TrainingConfig(wandb_mode="disabled", output_dir=str(tmp_path), progress_bar=False, batch_size=8)
    for tokenizer in ("byte", "bpe:500"):
        data = tb.load_task_data("lm", limit=16, tokenizer=tokenizer)
        trainer = tb.Trainer(tb.build_model(data.spec, size="tiny", seed=0), training_config=cfg, task_spec=data.spec)
        metrics = trainer.evaluate(data.val)
        targets = sum(len(e["input_ids"]) - 1 for e in data.val)
        text_bytes = sum(e.get("n_bytes", len(e["input_ids"]) - 1) for e in data.val)
        loss_sum = metrics["val_loss"] * targets
        assert metrics["val_bits_per_byte"] == pytest.approx(loss_sum / text_bytes / math.log(2), rel=1e-9)
        assert (text_bytes == targets) == (tokenizer == "byte")
        # an untrained model guesses uniformly: loss per token ~ ln(vocab)
        assert abs(metrics["val_loss"] - math.log(data.spec.vocab_size)) < 1.0


def test_trainer_saves_the_tokenizer_in_the_run_folder(tmp_path):
    from transformers import AutoTokenizer

    data = tb.load_task_data("text-cls", limit=24, tokenizer="bpe:300")
    cfg = tb.TrainingConfig(wandb_mode="disabled", output_dir=str(tmp_path), run_name="r", epochs=1, batch_size=8,
                            progress_bar=False)
    result = tb.Trainer(tb.build_model(data.spec, size="tiny"), training_config=cfg, task_spec=data.spec).train(
        data.train, data.val)
    folder = tmp_path / "r" / "tokenizer"
    assert Tokenizer.from_file(folder / "tokenizer.json", "bpe:300").sha == data.spec.tokenizer_sha
    again = AutoTokenizer.from_pretrained(str(folder))  # the run's tokenizer is a Hugging Face folder too
    assert again("def f(x):", add_special_tokens=False)["input_ids"] == data.tokenizer.encode("def f(x):").tolist()
    assert result.run_dir == str(tmp_path / "r")


def test_byte_runs_write_no_tokenizer_folder(tmp_path):
    data = tb.load_task_data("lm", limit=8)
    cfg = tb.TrainingConfig(wandb_mode="disabled", output_dir=str(tmp_path), run_name="b", epochs=1, batch_size=8,
                            progress_bar=False)
    tb.Trainer(tb.build_model(data.spec, size="tiny"), training_config=cfg, task_spec=data.spec).train(data.train)
    assert not (tmp_path / "b" / "tokenizer").exists()


def test_builtin_byte_data_is_unchanged_by_the_tokenizer_machinery():
    data = tb.load_task_data("lm", limit=20, seed=3)
    assert data.spec == tb.TaskSpec.preset("lm") and "n_bytes" not in data.train[0]
    assert all(torch.equal(e["input_ids"], e["input_ids"].clamp(0, 255)) for e in data.train)
