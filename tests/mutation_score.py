"""The summary of `make mutation`: mutmut's results (`mutmut results --all true`) counted by outcome, the share
killed, and the survivors by function.

    python -m tests.mutation_score mutants/results.txt
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

KILLED = {"killed", "timeout", "segfault"}  # a mutant that makes the tests fail, hang or crash is caught


def main(path: str) -> None:
    outcomes: dict[str, str] = {}
    for line in Path(path).read_text().splitlines():
        name, sep, outcome = line.strip().rpartition(": ")
        if sep and "__mutmut_" in name:
            outcomes[name] = outcome
    counts = Counter(outcomes.values())
    killed = sum(n for outcome, n in counts.items() if outcome in KILLED)
    print(f"{len(outcomes)} mutants: " + ", ".join(f"{n} {outcome}" for outcome, n in counts.most_common()))
    print(f"killed: {killed}/{len(outcomes)} = {killed / max(len(outcomes), 1):.1%}")
    survivors = Counter(name.partition("__mutmut_")[0] for name, outcome in outcomes.items()
                        if outcome not in KILLED)
    for function, n in survivors.most_common():
        print(f"  not killed: {n:4d}  {function}")


if __name__ == "__main__":
    main(sys.argv[1])
