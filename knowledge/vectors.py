"""Japanese word vectors for the matcher's semantic signal: chiVe's, as GiNZA's `ja_ginza` wheel ships them.

`make setup` builds the file (scripts/build_vectors.py): spaCy's 64-bit keys of 480,443 Sudachi-normalised words,
sorted, the row of each, and 20,000 unit vectors of 300 dimensions (float16). A word is looked up by the same
key spaCy uses (MurmurHash64A of its UTF-8 bytes, seed 1) with a binary search; no word list is kept in memory.
The file lives in the environment (`sys.prefix/share/kosodate-concierge/`), like the Sudachi dictionary it goes
with, and is mapped once per process (`shared_vectors()`). Without it, `shared_vectors()` is None and the
matcher leaves the semantic signal out.
"""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

log = logging.getLogger(__name__)

DEFAULT_PATH = Path(sys.prefix) / "share" / "kosodate-concierge" / "ja-vectors.npz"
_M = 0xC6A4A7935BD1E995
_MASK = (1 << 64) - 1


def word_key(word: str) -> int:
    """spaCy's key of a word: MurmurHash64A (Austin Appleby's, 64-bit) of its UTF-8 bytes with seed 1."""
    data = word.encode("utf-8")
    n = len(data)
    h = (1 ^ (n * _M)) & _MASK
    blocks = n // 8
    for i in range(blocks):
        k = int.from_bytes(data[8 * i : 8 * i + 8], "little")
        k = (k * _M) & _MASK
        k ^= k >> 47
        k = (k * _M) & _MASK
        h ^= k
        h = (h * _M) & _MASK
    tail = data[8 * blocks :]
    if tail:
        h ^= int.from_bytes(tail, "little")
        h = (h * _M) & _MASK
    h ^= h >> 47
    h = (h * _M) & _MASK
    h ^= h >> 47
    return h


class WordVectors:
    """Unit vectors by word; `vector(word)` is None for a word chiVe does not know."""

    def __init__(self, keys: NDArray[np.uint64], rows: NDArray[np.uint16], vectors: NDArray[np.float16]) -> None:
        self._keys = keys
        self._rows = rows
        self._vectors = vectors
        self.dims = int(vectors.shape[1])

    @classmethod
    def load(cls, path: Path) -> WordVectors:
        with np.load(path, allow_pickle=False) as data:
            return cls(data["keys"], data["rows"], data["vectors"])

    def __len__(self) -> int:
        return len(self._keys)

    def row(self, word: str) -> int | None:
        key = np.uint64(word_key(word))
        at = int(np.searchsorted(self._keys, key))
        if at < len(self._keys) and self._keys[at] == key:
            return int(self._rows[at])
        return None

    def vector(self, word: str) -> NDArray[np.float32] | None:
        row = self.row(word)
        return None if row is None else self._vectors[row].astype(np.float32)


_SHARED: WordVectors | None = None
_LOADED = False
_LOCK = threading.Lock()


def shared_vectors(path: Path = DEFAULT_PATH) -> WordVectors | None:
    """The process's one copy (loaded on first use, never at import time); None when not built."""
    global _SHARED, _LOADED
    if not _LOADED:
        with _LOCK:
            if not _LOADED:
                if path.is_file():
                    _SHARED = WordVectors.load(path)
                else:
                    log.warning("word vectors not found (make setup builds them): semantic matching is off")
                _LOADED = True
    return _SHARED
