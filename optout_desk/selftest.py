"""`optout-desk --self-test`: checks what breaks only in a packaged build. (Filled in by the
installer work; until then it reports that it has nothing to check.)"""

from __future__ import annotations


def run_self_test() -> int:
    print("self-test: no checks yet")
    return 1
