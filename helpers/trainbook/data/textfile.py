"""Reading the user's text files: encodings, decode errors with file, line and byte, and lm segments.

    with open_text(path, encoding=None) as fh: ...      # UTF-8, a BOM's encoding, or the one given

Encodings: `encoding=None` reads UTF-8, and a byte-order mark picks UTF-8 (the BOM is dropped),
UTF-16 or UTF-32. Any other encoding is given by name (`encoding="cp1252"`). A byte that is not
valid in the encoding is a DataError naming the file, the 1-based line, the byte and its offset.
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
from pathlib import Path

from .types import DataError

_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def detect_encoding(path: Path, encoding: str | None = None) -> str:
    """The codec to read `path` with: `encoding` when given (UTF-8 with a BOM: utf-8-sig), else the BOM's, else UTF-8.

    Raises:
        DataError: an encoding name Python does not know.
    """
    with open(path, "rb") as fh:
        head = fh.read(4)
    bom = next((name for mark, name in _BOMS if head.startswith(mark)), None)
    if encoding is None:
        return bom or "utf-8"
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise DataError(f"{path}: encoding={encoding!r} is not an encoding Python knows. HINT: e.g. 'utf-8', "
                        "'cp1252' (Windows, Excel), 'latin-1', 'utf-16'") from None
    return "utf-8-sig" if name == "utf-8" and bom == "utf-8-sig" else encoding


@contextlib.contextmanager
def open_text(path: Path, encoding: str | None = None, newline: str | None = None):
    """A text stream of `path` (see detect_encoding); a decode error becomes a DataError with the line."""
    codec = detect_encoding(path, encoding)
    with open(path, encoding=codec, newline=newline) as fh:
        try:
            yield fh
        except UnicodeDecodeError:
            raise decode_error(path, codec) from None


def decode_error(path: Path, codec: str) -> DataError:
    """A DataError naming the first byte of `path` that `codec` cannot decode: line, byte and offset."""
    decoder = codecs.getincrementaldecoder(codec)()
    offset, lines = 0, 0
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            pending = len(decoder.getstate()[0])
            try:
                lines += decoder.decode(chunk).count("\n")
            except UnicodeDecodeError as e:
                start = offset - pending + e.start
                lines += codecs.decode(e.object[: e.start], codec, "replace").count("\n")
                bad = e.object[e.start:e.end]
                return DataError(
                    f"{path}:{lines + 1}: byte 0x{bad[0]:02x} at byte offset {start} is not valid {codec} "
                    f"({e.reason}). HINT: if the file is not UTF-8, pass its encoding, e.g. encoding='cp1252' "
                    "(Windows, Excel) or encoding='latin-1'; or save it as UTF-8")
            offset += len(chunk)
    return DataError(f"{path}: cannot be decoded as {codec}. HINT: pass the file's encoding, e.g. encoding='cp1252'")


def sha256_files(paths) -> str:
    """One sha256 over the contents of `paths` (in order), read in 1 MiB blocks."""
    h = hashlib.sha256()
    for p in paths:
        h.update(str(Path(p).name).encode("utf-8") + b"\x00")
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def segment_size(total_bytes: int) -> int:
    """Characters per lm segment: about 1/64 of the corpus, between 256 and 65536."""
    return min(65536, max(256, total_bytes // 64))


def iter_segments(files, encoding: str | None, size: int):
    """The text of `files` as segments of whole lines of about `size` characters (longer lines are cut).

    Segments are the unit of the lm split: they depend on the text only, never on the tokenizer,
    so every tokenizer sees the same validation text. Yields (file index, segment text).
    """
    for index, path in enumerate(files):
        with open_text(Path(path), encoding) as fh:
            parts, length = [], 0
            for line in fh:
                while len(line) > size:  # a very long line (or a file without newlines)
                    if parts:
                        yield index, "".join(parts)
                        parts, length = [], 0
                    yield index, line[:size]
                    line = line[size:]
                parts.append(line)
                length += len(line)
                if length >= size:
                    yield index, "".join(parts)
                    parts, length = [], 0
            if parts:
                yield index, "".join(parts)
