"""Text tokenizers: bytes (the default), a byte-level BPE trained on the train split, or a pretrained one.

    tok = resolve_tokenizer("bpe:2000", train_texts=lambda: iter(texts), seed=0); ids = tok.encode("hello")

- "byte": every UTF-8 byte is a token (vocab 256); nothing to train or save.
- "bpe:<vocab_size>": a byte-level BPE (Hugging Face `tokenizers`) trained on at most
  BPE_SAMPLE_BYTES of the train split's text, sampled in an order fixed by the seed. The trained
  tokenizer is cached under <cache_dir>/tokenizers, keyed by the sha256 of everything it was
  trained from, so a second run with the same data and seed does not train again.
- "hf:<name-or-dir>": a pretrained fast tokenizer through transformers' AutoTokenizer (a hub
  name, or a local folder written by `save_pretrained`).

A Tokenizer is identified by `sha` (sha256 of its tokenizer.json; "" for bytes). Every tokenizer
made here is registered under its sha and written to the cache, so `tokenizer_for(spec)` finds
the one a TaskSpec was built with (spec.tokenizer_sha): the Trainer saves it in the run folder and
export bundles carry it as tokenizer.json. Text is encoded without special tokens.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path

import numpy as np

from .types import DataError

BPE_SAMPLE_BYTES = 8 * 1024 * 1024  # bpe trains on at most this much of the train split's text
TOKENIZER_FILE, INFO_FILE = "tokenizer.json", "trainbook_tokenizer.json"
_REGISTRY: dict[str, "Tokenizer"] = {}  # sha -> tokenizer made or loaded in this process


def cache_root(cache_dir=None) -> Path:
    """The cache folder: cache_dir, else $TRAINBOOK_CACHE_DIR, else ~/.cache/trainbook."""
    return Path(cache_dir or os.environ.get("TRAINBOOK_CACHE_DIR") or Path.home() / ".cache" / "trainbook")


class Tokenizer:
    """Encodes text to token ids and back. `backend` is a `tokenizers.Tokenizer` (None: bytes).

    Args:
        name: what was asked for: "byte", "bpe:2000", "hf:gpt2".
        backend: the Hugging Face tokenizer, or None for the byte tokenizer.
    """

    def __init__(self, name: str = "byte", backend=None):
        self.name, self.backend = name, backend
        if backend is not None:
            backend.no_truncation()
            backend.no_padding()
        self.vocab_size = 256 if backend is None else backend.get_vocab_size(with_added_tokens=True)
        self.sha = "" if backend is None else hashlib.sha256(backend.to_str().encode("utf-8")).hexdigest()
        self._token_bytes = self._names = None

    def __repr__(self):
        return f"Tokenizer({self.name!r}, vocab_size={self.vocab_size})"

    @property
    def is_byte(self) -> bool:
        return self.backend is None

    @property
    def dtype(self):
        """The smallest unsigned integer type that holds every id (for token files on disk)."""
        return np.uint8 if self.vocab_size <= 256 else np.uint16 if self.vocab_size <= 65536 else np.uint32

    def encode(self, text: str) -> np.ndarray:
        """Token ids of `text` as an int64 array."""
        return self.encode_batch([text])[0]

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        if self.backend is None:
            return [np.frombuffer(t.encode("utf-8"), dtype=np.uint8).astype(np.int64) for t in texts]
        fast = getattr(self.backend, "encode_batch_fast", self.backend.encode_batch)  # no offsets: faster
        return [np.asarray(e.ids, dtype=np.int64) for e in fast(list(texts), add_special_tokens=False)]

    def decode(self, ids) -> str:
        ids = [int(i) for i in ids]
        if self.backend is None:
            return bytes(ids).decode("utf-8", "replace")
        return self.backend.decode(ids, skip_special_tokens=False)

    @property
    def token_bytes(self) -> np.ndarray:
        """Bytes of text per token id: exact for bytes and byte-level BPE; for other tokenizers the
        length of the token's text ('\u2581' counts as a space, a '##' prefix as nothing); special tokens 0."""
        if self._token_bytes is None:
            self._token_bytes = _token_bytes(self)
        return self._token_bytes

    def token_names(self) -> list[str]:
        """A readable name per id (the token's text), for drift plots."""
        if self._names is None:
            self._names = ([repr(bytes([i]))[2:-1] for i in range(256)] if self.backend is None else
                           [self.decode([i]) or self.backend.id_to_token(i) or str(i) for i in range(self.vocab_size)])
        return self._names

    def save(self, folder) -> Path:
        """Write tokenizer.json (loadable by `tokenizers` and by AutoTokenizer) and trainbook_tokenizer.json."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if self.backend is not None:
            self.backend.save(str(folder / TOKENIZER_FILE))
            config = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 1_000_000_000}
            if not (folder / "tokenizer_config.json").exists():
                (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
        info = {"name": self.name, "vocab_size": self.vocab_size, "sha256": self.sha}
        (folder / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
        return folder

    @classmethod
    def from_file(cls, path, name: str) -> "Tokenizer":
        """A tokenizer from a tokenizer.json file; registered so tokenizer_for() finds it."""
        from tokenizers import Tokenizer as Backend

        return register(cls(name, Backend.from_file(str(path))), persist=False)

    def save_file(self, path) -> Path:
        """Write only tokenizer.json (what `from_file` reads), e.g. into an export bundle."""
        self.backend.save(str(path))
        return Path(path)


def register(tok: Tokenizer, cache_dir=None, persist: bool = True) -> Tokenizer:
    """Remember `tok` under its sha so tokenizer_for(spec) finds it; persist: also write it to the cache."""
    if tok.sha and tok.sha not in _REGISTRY:
        _REGISTRY[tok.sha] = tok
        target = cache_root(cache_dir) / "tokenizers" / tok.sha[:32]
        if persist and not (target / TOKENIZER_FILE).exists():
            _atomic_save(tok, target)
    return _REGISTRY.get(tok.sha, tok)


def tokenizer_for(spec, cache_dir=None) -> Tokenizer:
    """The tokenizer a text TaskSpec was built with (spec.tokenizer, spec.tokenizer_sha).

    Raises:
        DataError: it was neither made in this process nor found in the cache.
    """
    sha = getattr(spec, "tokenizer_sha", "") or ""
    if not sha:
        return Tokenizer("byte")
    if sha in _REGISTRY:
        return _REGISTRY[sha]
    path = cache_root(cache_dir) / "tokenizers" / sha[:32] / TOKENIZER_FILE
    if path.is_file():
        tok = Tokenizer.from_file(path, spec.tokenizer)
        if tok.sha == sha:
            return tok
    raise DataError(f"the tokenizer of this task ({spec.tokenizer}, sha256 {sha[:12]}...) is not loaded and not in "
                    f"{path.parent.parent}. HINT: load the data again with load_task_data(..., "
                    f"tokenizer={spec.tokenizer!r}), or load the bundle or run folder that holds its tokenizer.json")


def save_tokenizer(spec, folder) -> Path | None:
    """Save the tokenizer of a text TaskSpec into `folder` (tokenizer.json, loadable by AutoTokenizer).

    Returns:
        The folder, or None for bytes and vision tasks (nothing to save).
    """
    if not getattr(spec, "tokenizer_sha", ""):
        return None
    return tokenizer_for(spec).save(folder)


def parse_tokenizer(value) -> tuple[str, str]:
    """'byte' -> ('byte', ''); 'bpe:2000' -> ('bpe', '2000'); 'hf:gpt2' -> ('hf', 'gpt2').

    Raises:
        DataError: anything else, with the accepted forms.
    """
    text = str(value or "byte").strip()
    kind, _, arg = text.partition(":")
    if text == "byte":
        return "byte", ""
    if kind == "bpe" and arg.isdigit() and 257 <= int(arg) <= 1_000_000:
        return "bpe", arg
    if kind == "hf" and arg.strip():
        return "hf", arg.strip()
    raise DataError(f"tokenizer must be 'byte', 'bpe:<vocab_size>' (vocab_size >= 257, e.g. 'bpe:2000') or "
                    f"'hf:<name-or-folder>' (e.g. 'hf:gpt2'); got {value!r}")


def resolve_tokenizer(value, train_texts, seed: int = 0, fingerprint: str = "", cache_dir=None) -> Tokenizer:
    """Make the tokenizer `value` asks for.

    Args:
        value: "byte" | "bpe:<vocab_size>" | "hf:<name-or-dir>".
        train_texts: a callable returning an iterable of the train split's texts (bpe only; called at
            most once, and not at all when `fingerprint` finds a cached tokenizer).
        seed: orders the texts a bpe tokenizer samples from.
        fingerprint: a stable id of the train texts (e.g. file hashes and the split); with it a cached
            bpe tokenizer is found without reading the texts. Empty: the texts are hashed.
        cache_dir: see cache_root.
    Returns:
        The Tokenizer (registered; see tokenizer_for).
    Raises:
        DataError: a bad value, a train split without text, or an unusable pretrained tokenizer.
    """
    kind, arg = parse_tokenizer(value)
    if kind == "byte":
        return Tokenizer("byte")
    if kind == "hf":
        return register(_pretrained(arg), cache_dir)
    return register(train_bpe(train_texts, int(arg), seed, fingerprint, cache_dir), cache_dir)


def train_bpe(train_texts, vocab_size: int, seed: int = 0, fingerprint: str = "", cache_dir=None) -> Tokenizer:
    """A byte-level BPE trained on a seeded sample of the texts (at most BPE_SAMPLE_BYTES), cached.

    The cache key is the sha256 of the sampled texts (or of `fingerprint`), vocab_size and the sample size.
    """
    from tokenizers import Tokenizer as Backend
    from tokenizers import decoders, models, pre_tokenizers, trainers

    name = f"bpe:{vocab_size}"
    folder = cache_root(cache_dir) / "tokenizers"
    settings = f"{name}|{BPE_SAMPLE_BYTES}|seed={seed}"
    if fingerprint:
        cached = folder / f"bpe-{vocab_size}-{_sha(settings + '|' + fingerprint)[:24]}.json"
        if cached.is_file():
            return Tokenizer(name, Backend.from_file(str(cached)))
    sample = _sample(train_texts(), seed)
    if not any(t.strip() for t in sample):
        raise DataError(f"tokenizer {name!r}: the train split has no text to train it on")
    key = _sha(settings + "|" + fingerprint) if fingerprint else _sha(settings + "|" + _sha_texts(sample))
    cached = folder / f"bpe-{vocab_size}-{key[:24]}.json"
    if cached.is_file():
        return Tokenizer(name, Backend.from_file(str(cached)))
    backend = Backend(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    backend.train_from_iterator(sample, trainer)
    tok = Tokenizer(name, backend)
    n_bytes = sum(len(t.encode("utf-8")) for t in sample)
    print(f"tokenizer {name}: trained on {n_bytes / 1e6:.2f} MB of the train split; vocab {tok.vocab_size}")
    folder.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(f".tmp{os.getpid()}")
    backend.save(str(tmp))
    os.replace(tmp, cached)
    return tok


def _sample(texts, seed: int) -> list[str]:
    """At most BPE_SAMPLE_BYTES of the texts. A list is shuffled by the seed first; an iterator is taken
    in its own order (the caller's seeded choice, e.g. corpus.sample_records)."""
    if isinstance(texts, list):
        texts = list(texts)
        random.Random(seed).shuffle(texts)
    out, total = [], 0
    for t in texts:
        if total >= BPE_SAMPLE_BYTES:
            break
        if t:
            out.append(t[: BPE_SAMPLE_BYTES - total])
            total += len(out[-1])
    return out


def _pretrained(name: str) -> Tokenizer:
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise ImportError("tokenizer='hf:...' needs transformers: pip install transformers") from None
    try:
        hf = AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as e:
        raise DataError(f"tokenizer 'hf:{name}': cannot load it ({str(e).splitlines()[0][:300]}). HINT: a hub name "
                        "needs the network; a local folder must hold what save_pretrained writes") from None
    if not getattr(hf, "is_fast", False):
        raise DataError(f"tokenizer 'hf:{name}' has no fast (Rust) version; trainbook needs one (a tokenizer.json). "
                        "HINT: use another tokenizer, or 'bpe:<vocab_size>' to train one on your data")
    return Tokenizer(f"hf:{name}", hf.backend_tokenizer)


def _token_bytes(tok: Tokenizer) -> np.ndarray:
    if tok.backend is None:
        return np.ones(256, dtype=np.int64)
    config = json.loads(tok.backend.to_str())
    byte_level = "ByteLevel" in json.dumps([config.get("pre_tokenizer"), config.get("decoder")])
    special = {t["id"] for t in config.get("added_tokens", []) if t.get("special")}
    out = np.zeros(tok.vocab_size, dtype=np.int64)
    for i in range(tok.vocab_size):
        token = tok.backend.id_to_token(i)
        if token is None or i in special:
            continue
        if byte_level:
            out[i] = len(token)  # each character stands for one byte
        elif token.startswith("<0x") and token.endswith(">") and len(token) == 6:
            out[i] = 1  # sentencepiece byte fallback
        else:
            out[i] = len(token.replace("\u2581", " ").removeprefix("##").encode("utf-8"))
    return out


def _atomic_save(tok: Tokenizer, folder: Path):
    tmp = folder.with_name(f"{folder.name}.tmp{os.getpid()}")
    tok.save(tmp)
    try:
        os.replace(tmp, folder)
    except OSError:  # another process wrote it first; the content is the same (same sha)
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _sha_texts(texts) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()
