"""A long fuzz run: thousands of mutated MIDI files and patches through `render`'s MIDI reader
and `check`'s validation, counting outcomes.

Run: .venv/bin/python benchmarks/fuzz_inputs.py [--cases 3000] [--seed 1]
Prints, for each kind: cases, accepted, refused with a clear message, crashes (any other
exception, with the seed to reproduce), hangs (over 2 s), the slowest case and the largest
memory peak. Asserts only that there are no crashes and no hangs.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fuzz_cases import (  # noqa: E402
    bundled_texts,
    check_midi,
    check_patch,
    mutate_midi,
    mutate_patch,
)

HANG_SECONDS = 2.0


def run(kind, cases, seed, one_case):
    counts = {"cases": 0, "accepted": 0, "refused": 0, "crashes": 0, "hangs": 0}
    slowest = 0.0
    peak = 0
    first_crash = None
    for case in range(cases):
        rng = random.Random(seed * 1_000_003 + case)
        counts["cases"] += 1
        try:
            out = one_case(rng, case)
        except Exception:
            counts["crashes"] += 1
            if first_crash is None:
                first_crash = (case, traceback.format_exc(limit=3))
            continue
        counts["accepted" if out.accepted else "refused"] += 1
        counts["hangs"] += out.seconds > HANG_SECONDS
        slowest = max(slowest, out.seconds)
        peak = max(peak, out.peak_bytes)
    print(f"{kind:8s} " + "  ".join(f"{k} {v}" for k, v in counts.items())
          + f"  slowest {1e3 * slowest:.1f} ms  peak memory {peak / 2**20:.1f} MB")
    if first_crash is not None:
        print(f"  first crash: case {first_crash[0]} (seed {seed})\n{first_crash[1]}")
    return counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=3000, help="cases of each kind")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    texts = bundled_texts()
    for text in texts:  # first-use imports and compilation are not any case's time
        check_patch(text)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.mid"
        midi = run("midi", args.cases, args.seed,
                   lambda rng, case: check_midi(mutate_midi(rng), path))
    patches = run("patches", args.cases, args.seed,
                  lambda rng, case: check_patch(mutate_patch(rng, texts)))
    bad = sum(c["crashes"] + c["hangs"] for c in (midi, patches))
    print("ok: no crash, no hang" if not bad else f"FAILED: {bad} crashes or hangs")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
