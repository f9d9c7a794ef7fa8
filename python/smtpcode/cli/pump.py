"""Run smtpcode.verify() on a worker thread and hand its results to the command's thread.

Why a thread: the engine waits inside uv_run() with the GIL released, and one wait can last as
long as a greylisting delay; a Ctrl-C reaches Python code only between two waits. The main
thread waits on a queue instead, which a signal interrupts at once, so Ctrl-C stops the command
straight away (the process then exits: no mail is ever sent, so there is nothing to undo).

The input's bookkeeping (which row a result belongs to) lives on the worker thread only, beside
the generator the engine pulls from, so the two threads share nothing but the queue. Results
name their address, not their row: rows are matched back by address, first in first out, which
keeps duplicates apart. With dedupe, an address whose normalised form was fed already is not
fed again: its row waits for the first one's result, or takes it at once when it is among
the last DEDUPE_KEEP results, so each row gets a record and the address one probe.
"""
import collections
import queue
import threading

DEDUPE_KEEP = 200000   # finished results remembered for later duplicates (--dedupe)


class Pump:
    def __init__(self, verify, source, options, window=1024, dedupe=None):
        self.q = queue.Queue(maxsize=window)
        self.pending = collections.defaultdict(collections.deque)  # address -> indexes in flight
        self.rows = {}                                             # index -> CSV row
        self.dedupe = dedupe              # address -> key (normalised form), or None
        self.fed_as = {}                  # key -> the address fed for it (dedupe)
        self.own = {}                     # index -> its own text, when another's was fed
        self.done = collections.OrderedDict()  # key -> finished result (the last DEDUPE_KEEP)
        self.probed = 0
        self.fed = 0
        self.stop = False
        self.thread = threading.Thread(target=self._run, args=(verify, source, options),
                                       name="smtpcode-verify", daemon=True)
        self.thread.start()

    def _feed(self, source):
        for i, (address, row) in enumerate(source):
            if row is not None:
                self.rows[i] = row
            self.fed = i + 1
            if self.dedupe is not None:
                key = self.dedupe(address)
                if key in self.done:                     # answered already: the same answer
                    self.done.move_to_end(key)
                    r = self.done[key]
                    self.q.put(("result", (r, i, self.rows.pop(i, None),
                                           None if address == r.address else address)))
                    continue
                first = self.fed_as.get(key)
                if first is not None and self.pending.get(first):
                    self.pending[first].append(i)        # rides on the first one's probe
                    self.own[i] = address
                    continue
                self.fed_as[key] = address
            self.pending[address].append(i)
            self.probed += 1
            yield address

    def _run(self, verify, source, options):
        try:
            for r in verify(self._feed(source), **options):
                q = self.pending.get(r.address)
                i = q.popleft() if q else None
                self.q.put(("result", (r, i, self.rows.pop(i, None), None)))
                while self.dedupe is not None and q:     # the rows that rode on it
                    j = q.popleft()
                    self.q.put(("result", (r, j, self.rows.pop(j, None), self.own.pop(j, None))))
                if self.dedupe is not None:
                    key = self.dedupe(r.address)
                    self.fed_as.pop(key, None)
                    self.done[key] = r
                    if len(self.done) > DEDUPE_KEEP:
                        self.done.popitem(last=False)
                if q is not None and not q:
                    del self.pending[r.address]
                if self.stop:              # the reader has gone: leaving the loop cancels
                    break
        except BaseException as e:         # noqa: B036 -- handed over, raised in the reader
            self.q.put(("error", e))
            return
        self.q.put(("end", None))

    def __iter__(self):
        """(result, input index or None, CSV row or None, the row's own address when it
        differs from the result's) as each completes; the engine's exception, if any, is
        raised here."""
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
