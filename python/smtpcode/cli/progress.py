"""Progress of `smtpcode verify`: a tqdm bar on stderr when stderr is a terminal, and the
summary printed at the end (counts by verdict and by reason, time taken)."""
import collections
import os
import sys
import time

VERDICTS = ("deliverable", "undeliverable", "risky", "unknown")


class Progress:
    def __init__(self, total=None, enabled=None, stream=None):
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            enabled = self.stream.isatty()
        self.verdicts = collections.Counter()
        self.reasons = collections.Counter()
        self.started = time.monotonic()
        self.bar = None
        if enabled:
            from tqdm import tqdm  # only when drawn: the import costs ~50 ms
            self._tqdm = tqdm
            # follow the terminal's size, unless it reports none (a bare pty, 0x0, where tqdm
            # would hide the bar as "outside the screen"): then assume 80x24
            try:
                size = os.get_terminal_size(self.stream.fileno())
                sized = size.columns > 0 and size.lines > 0
            except (OSError, ValueError):
                sized = False
            self.bar = tqdm(total=total, unit="addr", file=self.stream, dynamic_ncols=sized,
                            ncols=None if sized else 80, nrows=None if sized else 24,
                            smoothing=0.1, mininterval=0.2, leave=True)

    @property
    def done(self):
        return sum(self.verdicts.values())

    def count(self, verdict, reason):
        self.verdicts[verdict] += 1
        self.reasons[reason] += 1
        if self.bar is not None:
            self.bar.set_postfix_str(" ".join("%s=%d" % (v, self.verdicts[v]) for v in VERDICTS
                                              if self.verdicts[v]), refresh=False)
            self.bar.update(1)

    def emit(self, write, out):
        """Run write() so that its output to `out` does not tear the bar (stdout and stderr
        on one terminal)."""
        if self.bar is not None and out.isatty():
            with self._tqdm.external_write_mode(file=out):
                write()
        else:
            write()

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def summary(self):
        took = time.monotonic() - self.started
        n = self.done
        rate = " (%.1f/s)" % (n / took) if took > 0 and n else ""
        counts = ", ".join("%d %s" % (self.verdicts[v], v) for v in VERDICTS)
        others = sorted(set(self.verdicts) - set(VERDICTS))
        if others:
            counts += "".join(", %d %s" % (self.verdicts[v], v) for v in others)
        lines = ["%d address%s in %.1f s%s: %s" % (n, "" if n == 1 else "es", took, rate, counts)]
        if self.reasons:
            lines.append("by reason: " + ", ".join(
                "%s %d" % (r, c) for r, c in sorted(self.reasons.items(),
                                                    key=lambda rc: (-rc[1], str(rc[0])))))
        return "\n".join(lines) + "\n"
