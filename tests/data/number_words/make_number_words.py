"""Write number_words.csv: English number words -> their digits, for the seq2seq translation test.

Deterministic (no randomness): every number from 0 to 999, written as British English words
("four hundred and twelve") in column ``source`` and as digits separated by spaces ("4 1 2") in
column ``target``. Run from the repository root: ``python tests/data/number_words/
make_number_words.py``. The file is the project's own work (Apache-2.0, like the code).
"""

from __future__ import annotations

import csv
from pathlib import Path

ONES = "zero one two three four five six seven eight nine".split()
TEENS = "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def words(n: int) -> str:
    """``n`` (0-999) in words."""
    if n < 10:
        return ONES[n]
    if n < 20:
        return TEENS[n - 10]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else "-" + ONES[n % 10])
    rest = n % 100
    return ONES[n // 100] + " hundred" + ("" if rest == 0 else " and " + words(rest))


def main() -> None:
    """Write the CSV beside this script."""
    path = Path(__file__).with_name("number_words.csv")
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["source", "target"])
        for n in range(1000):
            writer.writerow([words(n), " ".join(str(n))])


if __name__ == "__main__":
    main()
