"""Write cvcourse/data/digits.npz, the 8x8 handwritten digits ``load_digits`` reads.

Run once, from the repository, with scikit-learn installed (the dev extra has it); commit
the output:

    python scripts/make_digits.py [--source digits.csv.gz] [--output cvcourse/data/digits.npz]

Source: ``sklearn/datasets/data/digits.csv.gz`` as scikit-learn ships it (found without
importing scikit-learn; checked against :data:`SOURCE_SHA256`, the file of scikit-learn
1.9.1, which made the committed output). It is the test part of the UCI "Optical
Recognition of Handwritten Digits" data set (E. Alpaydin, C. Kaynak, 1998,
https://archive.ics.uci.edu/dataset/80, CC BY 4.0): 1797 rows, each 64 pixel values 0..16
(an 8x8 image, row-major, row 0 the top) then the label 0..9.

Output: the two arrays ``pixels`` uint8 (1797, 8, 8) and ``labels`` uint8 (1797,), in the
CSV's row order, written by :func:`cvcourse.data.digits.write_digits_file` (atomic; fixed
entry dates, so rerunning gives the same bytes). ``tests/data/test_offline_sets.py`` checks
the committed file against ``sklearn.datasets.load_digits()``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.util
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's cvcourse, whatever is installed

from cvcourse.data.digits import write_digits_file  # noqa: E402

#: SHA-256 of scikit-learn's digits.csv.gz (57523 bytes).
SOURCE_SHA256 = "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22"
N_DIGITS = 1797


def sklearn_digits_csv() -> Path:
    """``sklearn/datasets/data/digits.csv.gz`` of the installed scikit-learn (not imported)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("scikit-learn is not installed: pip install -e '.[dev]' (or --source)")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets/data/digits.csv.gz"


def read_csv(source: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(pixels uint8 (1797, 8, 8), labels uint8 (1797,))`` from the CSV, after checking
    its SHA-256 and that every value is a whole number in range."""
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    if digest != SOURCE_SHA256:
        raise SystemExit(f"{source}: sha256 {digest}, expected {SOURCE_SHA256}")
    with gzip.open(source, "rt", encoding="ascii") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float64)
    if table.shape != (N_DIGITS, 65) or not np.array_equal(table, np.round(table)):
        raise SystemExit(f"{source}: expected {N_DIGITS} rows of 65 whole numbers")
    pixels, labels = table[:, :64], table[:, 64]
    if pixels.min() < 0 or pixels.max() > 16 or labels.min() < 0 or labels.max() > 9:
        raise SystemExit(f"{source}: values outside pixels 0..16 / labels 0..9")
    return pixels.astype(np.uint8).reshape(N_DIGITS, 8, 8), labels.astype(np.uint8)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, help="digits.csv.gz (default: scikit-learn's)")
    parser.add_argument("--output", type=Path, default=REPO / "cvcourse/data/digits.npz")
    args = parser.parse_args(argv)
    source = args.source or sklearn_digits_csv()
    pixels, labels = read_csv(source)
    path = write_digits_file(args.output, pixels, labels)
    print(f"wrote {path} ({path.stat().st_size} bytes, {len(labels)} digits) from {source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
