"""`smtpcode verify --scheduler ADDR | --workers N`: the same verification on a Dask cluster
(smtpcode.dask), and Parquet output (pyarrow) for either mode.

On a cluster the workers read the input file and write a Parquet output themselves, so both
paths must be ones every worker sees (a shared filesystem, or an fsspec URL such as s3://...).
Standard input, and the jsonl/csv/table formats, go through this process instead: the input is
read here and sent to the cluster, the results come back here, partition by partition.
"""
import json
import math
import os
import sys

from . import formats
from .main import Failure
from .progress import Progress

PARQUET_BATCH = 10000


def add_arguments(sp):
    g = sp.add_argument_group("on a Dask cluster (pip install 'smtpcode[dask]')")
    g.add_argument("--scheduler", metavar="ADDR",
                   help="run on the Dask cluster of this scheduler (tcp://host:8786); each MX "
                        "group is probed by one worker at a time, so --per-host holds cluster-wide")
    g.add_argument("--workers", type=_count, metavar="N",
                   help="start a local Dask cluster of N worker processes for this run")
    g.add_argument("--lanes", type=_count, metavar="N",
                   help="MX groups worked on in parallel at most (default: input partitions "
                        "or the cluster's worker threads, the more)")
    g.add_argument("--rounds", type=_count, metavar="N", default=1,
                   help="cut each lane into N tasks run one after another (default 1)")
    g.add_argument("--egress", metavar="FILE",
                   help="JSON file mapping a worker (name, address or host, or \"*\") to verify "
                        "options, e.g. {\"10.0.0.5\": {\"helo\": \"probe5.example.net\"}}")
    g.add_argument("--partition-size", metavar="BYTES", default="16MiB",
                   help="input bytes per partition when the workers read the file (default 16MiB)")


def _count(s):
    import argparse
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a positive integer" % s) from None
    if v < 1:
        raise argparse.ArgumentTypeError("%r is not a positive integer" % s)
    return v


def wanted(a):
    return bool(a.scheduler or a.workers)


def _imports():
    try:
        import dask.dataframe  # noqa: F401
        import distributed  # noqa: F401
        import pandas  # noqa: F401
    except ImportError as e:
        raise Failure("--scheduler/--workers need Dask: pip install 'dask[distributed]' pandas "
                      "pyarrow (%s)" % e)


def _egress(path):
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            m = json.load(f)
    except (OSError, ValueError) as e:
        raise Failure("--egress %s: %s" % (path, e))
    if not isinstance(m, dict) or not all(isinstance(v, dict) for v in m.values()):
        raise Failure("--egress %s: want an object of objects: {worker: {option: value}}" % path)
    return m


def _collection(a, column):
    """The input as a Dask collection: read by the workers from a file, or here from stdin."""
    import dask.bag as db
    import dask.dataframe as dd
    import pandas as pd
    if a.input == "-":
        from .verify import Source
        src = Source(sys.stdin.buffer, "<stdin>", a.column)
        rows = list(src)
        if src.error:
            raise Failure(src.error)
        if a.column is None:
            frame = pd.DataFrame({column: pd.Series([r for r, _ in rows], dtype=object)})
        else:
            frame = pd.DataFrame([row for _, row in rows], columns=src.header, dtype=object)
        return dd.from_pandas(frame, npartitions=max(1, min(64, math.ceil(len(frame) / 50000))))
    path = a.input if "://" in a.input else os.path.abspath(a.input)
    if "://" not in path and not os.path.isfile(path):
        raise Failure("cannot read %s" % a.input)
    if a.column is not None:
        ddf = dd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False,
                          blocksize=a.partition_size)
        if a.column not in ddf.columns:
            raise Failure("%s: no column %r in the header (columns: %s)"
                          % (a.input, a.column, ", ".join(ddf.columns) or "none"))
        return ddf
    lines = db.read_text(path, blocksize=a.partition_size, encoding="utf-8")
    # as a one-column DataFrame with its shape given, so that nothing is read before the run
    return lines.map(str.strip).filter(lambda s: s and not s.startswith("#")).map(
        lambda s: (s,)).to_dataframe(meta=pd.DataFrame({column: pd.Series([], dtype=object)}))


def _client(a):
    import distributed
    if a.scheduler:
        try:
            # how long to try: dask's distributed.comm.timeouts.connect (default 30 s)
            return distributed.Client(a.scheduler), None
        except (OSError, TimeoutError) as e:
            raise Failure("cannot reach the scheduler %s: %s" % (a.scheduler, e))
    cluster = distributed.LocalCluster(n_workers=a.workers, threads_per_worker=1,
                                       processes=True, dashboard_address=None)
    return distributed.Client(cluster), cluster


def _plain(v):
    """A pandas/numpy cell as a plain Python value (None for missing)."""
    try:
        import pandas as pd
        if v is None or v is pd.NA or (isinstance(v, float) and v != v):
            return None
    except ImportError:
        pass
    return v.item() if hasattr(v, "item") else v


def address_column(column):
    """The address column's name in smtpcode.dask's result (renamed when it is also the name
    of a result column, as --column text would be)."""
    from .. import dask as sdask
    names = {c for c, _ in sdask.RESULT_COLUMNS} | {"transcript"}
    return "input_" + column if column in names else column


def records(frame, column, transcript):
    """The CLI's flat records (formats.FIELDS order, carried columns first) of a result frame."""
    from .. import dask as sdask
    result_cols = {c for c, _ in sdask.RESULT_COLUMNS} | {"transcript"}
    column = address_column(column)
    carried = [c for c in frame.columns if c not in result_cols and c != column]
    for row in frame.itertuples(index=False, name=None):
        cell = dict(zip(frame.columns, row))
        rec = {c: _plain(cell[c]) for c in carried}
        rec["address"] = _plain(cell[column])
        for f in formats.FIELDS[1:]:
            rec[f] = _plain(cell[f])
        if rec["duration"] is not None:
            rec["duration"] = round(rec["duration"], 3)
        if transcript:
            rec[formats.TRANSCRIPT] = _plain(cell.get("transcript"))
        yield rec


def run(a, options, fmt):
    """Verify on the cluster; write `fmt` to a.output (or stdout). Returns the Progress."""
    _imports()
    import distributed
    from .. import dask as sdask
    for flag, on in (("--ordered", a.ordered), ("--dedupe", getattr(a, "dedupe", False)),
                     ("--cache", getattr(a, "cache", None))):
        # --cache: each worker would keep a file of its own; $SMTPCODE_CACHE counts as --cache
        if on:
            raise Failure("%s is not available with --scheduler/--workers (--no-cache turns "
                          "$SMTPCODE_CACHE off)" % flag if flag == "--cache" else
                          "%s is not available with --scheduler/--workers" % flag)
    column = a.column or "address"
    egress = _egress(a.egress)
    client, cluster = _client(a)
    progress = Progress(enabled=False)
    try:
        coll = _collection(a, column)
        out = sdask.verify(coll, column=column, lanes=a.lanes, rounds=a.rounds, egress=egress,
                           **options)
        if fmt == "parquet":
            path = a.output if "://" in a.output else os.path.abspath(a.output)
            out.to_parquet(path, write_index=False)
            # the summary from what was written: computing it beside the write could probe
            # again if a graph optimisation ever split the two
            import dask.dataframe as dd
            vc = dd.read_parquet(path, columns=["verdict", "reason"]).groupby(
                ["verdict", "reason"]).size().compute()
            for (verdict, reason), n in vc.items():
                progress.verdicts[verdict] += int(n)
                progress.reasons[reason] += int(n)
            return progress
        stream = sys.stdout if a.output is None else open(a.output, "w", encoding="utf-8",
                                                           newline="")
        try:
            skip = {x for x, _ in sdask.RESULT_COLUMNS} | {"transcript", address_column(column)}
            columns = [c for c in out.columns if c not in skip] + list(formats.FIELDS)
            if options.get("transcript"):
                columns.append(formats.TRANSCRIPT)
            w = formats.writer(fmt, stream, columns)
            futures = client.compute(out.to_delayed())
            for fut in distributed.as_completed(futures):
                frame = fut.result()
                fut.release()
                for rec in records(frame, column, options.get("transcript")):
                    progress.count(rec["verdict"], rec["reason"])
                    w.write(rec)
            w.close()
        finally:
            if stream is not sys.stdout:
                stream.close()
        return progress
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


class ParquetWriter:
    """Records to one Parquet file (pyarrow), in row groups of PARQUET_BATCH, for the
    single-process mode; the types are taken from the first batch."""

    def __init__(self, path, columns):
        try:
            import pyarrow  # noqa: F401
            import pyarrow.parquet  # noqa: F401
        except ImportError:
            raise Failure("Parquet output needs pyarrow: pip install pyarrow")
        self.path, self.columns = path, columns
        self.batch, self.writer, self.schema = [], None, None

    def write(self, rec, result=None):
        self.batch.append(rec)
        if len(self.batch) >= PARQUET_BATCH:
            self._flush()

    def _flush(self):
        import pyarrow as pa
        import pyarrow.parquet as pq
        if not self.batch and self.writer is not None:
            return
        cols = {c: [r.get(c) for r in self.batch] for c in self.columns}
        if self.schema is None:
            fields = []
            for c in self.columns:
                if c == "code":
                    t = pa.int64()
                elif c in ("catch_all", "tls", "disposable", "role", "free_provider", "cached"):
                    t = pa.bool_()
                elif c in ("duration", "age"):
                    t = pa.float64()
                else:
                    t = pa.string()
                fields.append(pa.field(c, t))
            self.schema = pa.schema(fields)
            self.writer = pq.ParquetWriter(self.path, self.schema)
        self.writer.write_table(pa.Table.from_pydict(cols, schema=self.schema))
        self.batch = []

    def close(self):
        self._flush()
        self.writer.close()
