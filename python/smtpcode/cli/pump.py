"""Run smtpcode.verify() on a worker thread and hand its results to the command's thread.

Why a thread: the engine waits inside uv_run() with the GIL released, and one wait can last as
long as a greylisting delay; a Ctrl-C reaches Python code only between two waits. The main
thread waits on a queue instead, which a signal interrupts at once, so Ctrl-C stops the command
straight away (the process then exits: no mail is ever sent, so there is nothing to undo).

The input's bookkeeping (which row a result belongs to) lives on the worker thread only, beside
the generator the engine pulls from, so the two threads share nothing but the queue. Results
name their address, not their row: rows are matched back by address, first in first out, which
keeps duplicates apart.
"""
import collections
import queue
import threading


class Pump:
    def __init__(self, verify, source, options, window=1024):
        self.q = queue.Queue(maxsize=window)
        self.pending = collections.defaultdict(collections.deque)  # address -> indexes in flight
        self.rows = {}                                             # index -> CSV row
        self.fed = 0
        self.stop = False
        self.thread = threading.Thread(target=self._run, args=(verify, source, options),
                                       name="smtpcode-verify", daemon=True)
        self.thread.start()

    def _feed(self, source):
        for i, (address, row) in enumerate(source):
            self.pending[address].append(i)
            if row is not None:
                self.rows[i] = row
            self.fed = i + 1
            yield address

    def _run(self, verify, source, options):
        try:
            for r in verify(self._feed(source), **options):
                q = self.pending.get(r.address)
                i = q.popleft() if q else None
                if q is not None and not q:
                    del self.pending[r.address]
                self.q.put(("result", (r, i, self.rows.pop(i, None))))
                if self.stop:              # the reader has gone: leaving the loop cancels
                    break
        except BaseException as e:         # noqa: B036 -- handed over, raised in the reader
            self.q.put(("error", e))
            return
        self.q.put(("end", None))

    def __iter__(self):
        """(result, input index or None, CSV row or None) as each completes; the engine's
        exception, if any, is raised here."""
        try:
            while True:
                kind, value = self.q.get()
                if kind == "end":
                    self.thread.join()
                    return
                if kind == "error":
                    self.thread.join()
                    raise value
                yield value
        finally:
            self.stop = True

    def missing(self):
        """Addresses fed but never reported (only meaningful once the iteration ended)."""
        return sum(len(q) for q in self.pending.values())
