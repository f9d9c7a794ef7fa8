#!/usr/bin/env python3
"""Total the results of the C (cmocka via ctest), Lua (busted) and Python (pytest) suites.

Reads the logs the suites wrote and prints one line per suite, then the total as
'N passed, N failed, N skipped'. A suite that crashed or printed no counts is a failure:
a missing log is never a pass.
"""
import re
import sys


def cmocka(text):
    """ctest -V output: each test program's lines carry its number as a prefix ("3: ...")."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(\d+): (.*)$", line)
        if m:
            out[m.group(1)] = out.get(m.group(1), "") + m.group(2) + "\n"
    passed = failed = 0
    results = re.findall(r"Test\s+#(\d+): (\S+) \.*\s*(\S.*?)\s+[\d.]+ sec", text)
    if not results:
        return 0, 1, 0
    for num, _name, status in results:
        body = out.get(num, "")
        p = sum(int(n) for n in re.findall(r"\[  PASSED  \] (\d+) test", body))
        f = sum(int(n) for n in re.findall(r"\[  FAILED  \] (\d+) test", body))
        if not status.startswith("Passed") and f == 0:
            f = 1  # crashed, timed out or failed before cmocka could count
        passed += p
        failed += f
    return passed, failed, 0


def busted(text):
    m = re.findall(r"(\d+) successes? / (\d+) failures? / (\d+) errors? / (\d+) pending", text)
    if not m:
        return 0, 1, 0
    p = sum(int(x[0]) for x in m)
    f = sum(int(x[1]) + int(x[2]) for x in m)
    s = sum(int(x[3]) for x in m)
    return p, f, s


def pytest(text):
    lines = [ln for ln in text.splitlines() if re.search(r"\d+ (passed|failed|error)", ln) and " in " in ln]
    if not lines:
        return 0, 1, 0
    last = lines[-1]
    get = lambda word: sum(int(n) for n in re.findall(r"(\d+) %s" % word, last))
    return get("passed"), get("failed") + get("errors?"), get("skipped")


def plain(text):
    """Scripts that print one 'PASS ...' or 'FAIL ...' line per check (fuzzing, valgrind)."""
    p = len(re.findall(r"^PASS ", text, re.M))
    f = len(re.findall(r"^FAIL ", text, re.M))
    return (p, f, 0) if p + f else (0, 1, 0)


def main(argv):
    kinds = {"cmocka": cmocka, "busted": busted, "pytest": pytest, "plain": plain}
    total = [0, 0, 0]
    for spec in argv[1:]:
        kind, label, path = spec.split(":", 2)
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
            counts = kinds[kind](text)
        except OSError:
            counts = (0, 1, 0)
        print("%-8s %d passed, %d failed, %d skipped" % (label + ":", *counts))
        for i in range(3):
            total[i] += counts[i]
    print("%d passed, %d failed, %d skipped" % tuple(total))
    return 1 if total[1] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
