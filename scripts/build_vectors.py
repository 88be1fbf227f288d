"""Build the Japanese word vectors the matcher's semantic signal reads (knowledge/vectors.py), at setup time.

The vectors are chiVe's (Sudachi-normalised word2vec, 300 dimensions, pruned to 20,000 distinct vectors shared
by 480,443 words) as GiNZA's `ja_ginza` wheel ships them. The wheel cannot be installed beside our SudachiPy
pin (it needs an older one, and brings spaCy), so `make setup` fetches it from the package index with
`pip download --no-deps`, checks its SHA-256, and keeps only the vectors: the word keys (spaCy's 64-bit
MurmurHash of each word, sorted), the row of each key, and the rows normalised to unit length as float16.
Nothing is downloaded at run time; without the file the matcher runs without the semantic signal.

    .venv/bin/python scripts/build_vectors.py [--wheel PATH] [--out PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from knowledge.vectors import DEFAULT_PATH  # noqa: E402

PACKAGE = "ja-ginza==5.3.0"
SHA256 = "ac6479a805c5c5c23c270554934c1c1f344039560ef3a7e4b15a4275bea3c685"
VOCAB = "ja_ginza/ja_ginza-5.3.0/vocab/"


def fetch(into: Path) -> Path:
    subprocess.run(  # noqa: S603 - our own interpreter and a pinned requirement
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", str(into), PACKAGE], check=True
    )
    wheels = sorted(into.glob("ja_ginza-*.whl"))
    if not wheels:
        raise SystemExit(f"pip download {PACKAGE} left no wheel")
    return wheels[0]


def key2row(raw: bytes) -> tuple[np.ndarray, np.ndarray]:
    """spaCy's `key2row`: one msgpack map of unsigned 64-bit keys to row numbers."""
    if raw[0] != 0xDF:
        raise ValueError("key2row is not a msgpack map32")
    count = struct.unpack_from(">I", raw, 1)[0]
    pos = 5
    sizes = {0xCC: (1, ">B"), 0xCD: (2, ">H"), 0xCE: (4, ">I"), 0xCF: (8, ">Q")}
    out = np.empty(2 * count, dtype=np.uint64)
    for i in range(2 * count):
        tag = raw[pos]
        pos += 1
        if tag < 0x80:
            out[i] = tag
            continue
        size, fmt = sizes[tag]
        out[i] = struct.unpack_from(fmt, raw, pos)[0]
        pos += size
    keys, rows = out[0::2], out[1::2]
    order = np.argsort(keys)
    return keys[order], rows[order].astype(np.uint16)


def build(wheel: Path, out: Path) -> None:
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != SHA256:
        raise SystemExit(f"{wheel.name}: SHA-256 {digest} is not the pinned {SHA256}")
    with zipfile.ZipFile(wheel) as zf:
        keys, rows = key2row(zf.read(VOCAB + "key2row"))
        vectors = np.load(io.BytesIO(zf.read(VOCAB + "vectors")), allow_pickle=False)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = (vectors / np.maximum(norms, 1e-9)).astype(np.float16)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.npz")
    np.savez(tmp, keys=keys, rows=rows, vectors=unit, source=np.array(f"{PACKAGE} sha256:{SHA256}"))
    tmp.replace(out)
    print(f"word vectors: {len(keys):,} words, {unit.shape[0]:,} vectors of {unit.shape[1]} -> {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wheel", type=Path, help="a ja_ginza wheel already at hand (else pip download)")
    parser.add_argument("--out", type=Path, default=DEFAULT_PATH)
    args = parser.parse_args()
    if args.wheel is not None:
        build(args.wheel, args.out)
        return
    with tempfile.TemporaryDirectory() as tmp:
        build(fetch(Path(tmp)), args.out)


if __name__ == "__main__":
    main()
