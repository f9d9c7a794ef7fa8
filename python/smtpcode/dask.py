"""smtpcode.dask: batch verification on a Dask cluster, politeness kept across the cluster.

    import smtpcode.dask
    out = smtpcode.dask.verify(ddf, column="email", mail_from="probe@you.example",
                               helo="probe1.you.example")      # lazy: a Dask DataFrame
    out.to_parquet("results.parquet")

Why it is shaped this way. smtpcode.verify() keeps its politeness (sessions per MX address,
pauses, rejection budget) inside one call. Spread one MX's addresses over several workers and
each worker keeps the limits on its own, so the MX sees N times as much. Instead, every row
is given to a *lane* by its group (the primary MX address of its domain), so all rows of one
MX meet in one task, which runs one verify() over them: the limits then hold cluster-wide with
no coordination between workers. Groups are dealt to lanes by a deterministic rule over the
whole input's row counts per group (biggest first, to the least loaded lane), which every task
computes alike from the same resolved counts.

The graph, built by hand from delayed calls so that its shape is exactly this:
  1. per input partition: its domains with row counts, split into buckets by a domain hash;
  2. per bucket: resolve those domains (threads; resolve() releases the GIL) -> group keys;
  3. per input partition: each row's slot = (lane of its group, round), split by slot;
  4. per slot: the rows of every input partition for it, through one smtpcode.verify().
A lane is cut into `rounds` slots that run one after another (slot k waits for slot k-1 of
its lane): a group too big for one task is split in time, never across workers at once.
A worker lost mid-slot is Dask's to handle: the slot is recomputed elsewhere, and only the
run that finishes supplies the rows, so there is exactly one result per input row.

Dask is imported here only: `import smtpcode` never needs it.
"""
import collections
import concurrent.futures
import heapq
import zlib

import smtpcode

__all__ = ["verify", "group_key", "assign_lanes", "RESULT_COLUMNS"]

# Result columns added to every input row, with their pandas dtypes (nullable where the
# engine may say "none": no reply, catch-all undecided, ...).
RESULT_COLUMNS = (
    ("verdict", "object"), ("reason", "object"), ("code", "Int64"), ("status", "object"),
    ("text", "object"), ("mx", "object"), ("mx_address", "object"), ("catch_all", "boolean"),
    ("tls", "bool"), ("greylisted", "bool"), ("error", "object"), ("detail", "object"),
    ("duration", "float64"), ("disposable", "bool"), ("role", "bool"),
    ("free_provider", "bool"), ("suggestion", "object"), ("worker", "object"),
)
TRANSCRIPT = ("transcript", "object")



def _stable_hash(text):
    # crc32, not hash(): Python salts str hashes per process, and every worker must agree.
    return zlib.crc32(text.encode("utf-8", "surrogatepass"))


def _domain_of(address):
    """The A-label domain of an address, or None when it is not a valid address (the engine
    then answers syntaxerror without any traffic)."""
    try:
        return smtpcode.parse_address(address).ascii_domain
    except (ValueError, TypeError):
        return None


def group_key(route):
    """The politeness group of a resolved domain: the lowest address of its most preferred MX
    host(s). Keyed by address, not name, because the engine's per-host limits are per address
    and hosted mail puts many MX names on one address. Domains that will not be probed (null
    MX, lookup errors, no address) are their own group."""
    if route.null_mx or route.error or not route.mx:
        return "domain:" + route.domain
    best = min(mx.preference for mx in route.mx)
    addrs = [a for mx in route.mx if mx.preference == best for a in mx.addresses]
    if addrs:
        return "ip:" + min(addrs)
    return "host:" + min(mx.host for mx in route.mx if mx.preference == best)


# --- the tasks (module-level functions: the workers import them by name) ---------------------

def _as_frame(part, column):
    """An input partition (pandas DataFrame, Series or a bag's list) as a DataFrame."""
    import pandas as pd
    if isinstance(part, pd.DataFrame):
        return part
    if isinstance(part, pd.Series):
        return part.to_frame(name=column)
    rows = list(part)
    if rows and all(isinstance(r, dict) for r in rows):
        return pd.DataFrame.from_records(rows)
    return pd.DataFrame({column: pd.Series(rows, dtype=object)})


def _addresses(frame, column):
    """The address column as text; a missing value becomes "" (a syntax error, one result)."""
    return ["" if v is None or v != v else str(v) for v in frame[column].tolist()]


def _domain_buckets(part, column, nbuckets):
    """Step 1: (the partition's valid domains with their row counts, as nbuckets Counters split
    by domain; each row's domain or None, kept for step 3 so that it parses no address again)."""
    frame = _as_frame(part, column)
    domains = [_domain_of(a) for a in _addresses(frame, column)]
    out = [collections.Counter() for _ in range(nbuckets)]
    for d, n in collections.Counter(domains).items():
        if d is not None:
            out[_stable_hash(d) % nbuckets][d] = n
    return out, domains


def _resolve_bucket(resolve_options, *buckets_lists_and_index):
    """Step 2: resolve the domains of bucket j gathered from every input partition;
    {domain: (group key, rows)}."""
    *parts, j = buckets_lists_and_index
    rows = collections.Counter()
    for p in parts:
        rows.update(p[j])
    domains = sorted(rows)

    def key(d):
        try:
            return d, group_key(smtpcode.resolve(d, **resolve_options))
        except ValueError:                 # a name the resolver refuses: its own group
            return d, "domain:" + d
    if not domains:
        return {}
    with concurrent.futures.ThreadPoolExecutor(min(32, len(domains))) as ex:
        return {d: (k, rows[d]) for d, k in ex.map(key, domains)}


def assign_lanes(loads, lanes):
    """{group key: lane} for {group key: rows}: the biggest groups first, each to the least
    loaded lane (ties: the lower lane). Deterministic, so every task that computes it from the
    same loads agrees, with no coordination; a group is in exactly one lane."""
    heap = [(0, i) for i in range(lanes)]     # (rows so far, lane): a valid heap already
    out = {}
    for k in sorted(loads, key=lambda k: (-loads[k], _stable_hash(k), k)):
        rows, lane = heapq.heappop(heap)
        out[k] = lane
        heapq.heappush(heap, (rows + loads[k], lane))
    return out


def _split_slots(part, column, lanes, rounds, domains, *key_maps):
    """Step 3: the partition's rows split into lanes*rounds frames (slot = lane*rounds + round).
    Groups go to lanes by their whole-input row counts (assign_lanes). Invalid addresses have
    no group: they are spread by a hash of their text (no traffic anyway). The round of a row
    is a hash of its address, so duplicates of an address meet in one slot."""
    frame = _as_frame(part, column)
    keys, loads = {}, collections.Counter()
    for m in key_maps:
        for d, (k, n) in m.items():
            keys[d] = k
            loads[k] += n
    lane_of = assign_lanes(loads, lanes)
    slots = []
    for a, d in zip(_addresses(frame, column), domains):
        lane = lane_of.get(keys.get(d)) if d is not None else None
        if lane is None:
            lane = _stable_hash("invalid:" + a) % lanes
        slots.append(lane * rounds + _stable_hash(a) % rounds)
    out = [[] for _ in range(lanes * rounds)]
    for i, s in enumerate(slots):
        out[s].append(i)
    return [frame.iloc[idx] for idx in out]


def _empty_result(meta):
    return meta.iloc[0:0].copy()


def _worker_name():
    try:
        from distributed import get_worker
        w = get_worker()
    except (ImportError, ValueError):
        return None, None
    return w.name, w.address


def _egress_options(egress, name, address):
    """The verify options of this worker from the egress map: by worker name, full address,
    or host part of the address, else the "*" entry. A map that names no entry for this
    worker is an error: probing from the wrong IP is what the map is there to prevent."""
    if not egress:
        return {}
    host = address.rsplit(":", 1)[0].split("://")[-1] if address else None
    for k in (name, str(name) if name is not None else None, address, host, "*"):
        if k is not None and k in egress:
            return dict(egress[k])
    raise ValueError("smtpcode.dask: no egress entry for worker %r (%s); add one or a '*' "
                     "default" % (name, address))


def _run_slot(column, options, egress, meta, rename, after, *frames):
    """Step 4: one verify() over the slot's rows; one output row per input row. `after` is the
    previous slot of the lane's completion marker: only waited for, never used."""
    import pandas as pd
    frames = [f for f in frames if len(f)]
    if not frames:
        return _empty_result(meta)
    rows = pd.concat(frames) if len(frames) > 1 else frames[0]
    addrs = _addresses(rows, column)
    name, address = _worker_name()
    opts = dict(options)
    opts.update(_egress_options(egress, name, address))
    pending = collections.defaultdict(collections.deque)
    for i, a in enumerate(addrs):
        pending[a].append(i)
    found = [None] * len(addrs)
    with smtpcode.verify(addrs, **opts) as it:
        for r in it:
            q = pending.get(r.address)
            if q:                          # duplicates: first in, first out
                found[q.popleft()] = r
    want_transcript = bool(opts.get("transcript"))
    cols = {c: [] for c, _ in RESULT_COLUMNS}
    if want_transcript:
        cols["transcript"] = []
    for r in found:
        reply = r.reply if r is not None else None
        vals = dict(
            verdict=r.verdict if r else "unknown", reason=r.reason if r else "undefined",
            code=reply.code if reply is not None else None,
            status=reply.status if reply is not None else None,
            text=reply.text if reply is not None else None,
            mx=r.mx if r else None, mx_address=r.mx_address if r else None,
            catch_all=r.catch_all if r else None, tls=bool(r.tls) if r else False,
            greylisted=bool(r.greylisted) if r else False,
            # the engine promises a result per address; if one ever went missing, the row
            # still gets exactly one, marked as such
            error=r.error if r else "no-result", detail=r.detail if r else None,
            duration=float(r.duration) if r and r.duration is not None else 0.0,
            disposable=bool(r.disposable) if r else False, role=bool(r.role) if r else False,
            free_provider=bool(r.free_provider) if r else False,
            suggestion=r.suggestion if r else None,
            worker=None if name is None else str(name))
        if want_transcript:
            vals["transcript"] = r.transcript if r else None
        for c in cols:
            cols[c].append(vals[c])
    out = rows.rename(columns=rename)
    for c, dtype in RESULT_COLUMNS + ((TRANSCRIPT,) if want_transcript else ()):
        # by position (.array), not by label: rows from several partitions may share labels
        out[c] = pd.Series(cols[c], dtype=dtype).array
    return out.astype(meta.dtypes.to_dict())[list(meta.columns)]


def _done(frame):
    """A slot's tiny completion marker: the next slot of its lane waits on this, not on the
    rows, so no result data moves between workers for the ordering."""
    return len(frame)


# --- building the graph ---------------------------------------------------------------------

def _cluster_threads():
    """The worker threads of the cluster this process is a client of (0 when none): with
    fewer lanes than that, some threads would have nothing to do."""
    try:
        from distributed import default_client
        return sum(default_client().nthreads().values())
    except (ImportError, ValueError):
        return 0


def _input_partitions(collection, column, npartitions):
    """(list of delayed or plain partitions, pandas meta of the input)."""
    import pandas as pd
    import dask.bag as db
    import dask.dataframe as dd
    if isinstance(collection, dd.Series):
        collection = collection.to_frame(name=column)
    if isinstance(collection, dd.DataFrame):
        meta = collection._meta
        if column not in meta.columns:
            raise ValueError("smtpcode.dask.verify: no column %r (columns: %s)"
                             % (column, ", ".join(map(str, meta.columns)) or "none"))
        return collection.to_delayed(), meta
    if isinstance(collection, db.Bag):
        # a bag of strings (addresses) or of dicts (records with the address under `column`)
        first = collection.take(1, npartitions=-1, warn=False)
        if first and isinstance(first[0], dict):
            if column not in first[0]:
                raise ValueError("smtpcode.dask.verify: the bag's records have no key %r"
                                 % column)
            meta = pd.DataFrame.from_records(list(first)).iloc[0:0]
        else:
            meta = pd.DataFrame({column: pd.Series([], dtype=object)})
        return collection.to_delayed(), meta
    if isinstance(collection, pd.Series):
        collection = collection.to_frame(name=column)
    if isinstance(collection, pd.DataFrame):
        frame = collection
        if column not in frame.columns:
            raise ValueError("smtpcode.dask.verify: no column %r" % column)
    else:
        if isinstance(collection, (str, bytes)):
            raise TypeError("smtpcode.dask.verify: give a collection of addresses, not one string")
        frame = pd.DataFrame({column: pd.Series(list(collection), dtype=object)})
    n = max(1, min(npartitions or 1, len(frame) or 1))
    step = -(-len(frame) // n) if len(frame) else 1
    parts = [frame.iloc[i:i + step] for i in range(0, max(len(frame), 1), step)]
    return parts, frame.iloc[0:0]


def _result_meta(input_meta, transcript):
    import pandas as pd
    names = {c for c, _ in RESULT_COLUMNS} | ({TRANSCRIPT[0]} if transcript else set())
    rename, used = {}, set(names)
    for c in input_meta.columns:
        if c in names:                     # the CLI's rule: input columns give way
            new, n = "input_%s" % c, 1
            while new in used:
                n += 1
                new = "input_%s_%d" % (c, n)
            rename[c] = new
            used.add(new)
        else:
            used.add(c)
    meta = input_meta.rename(columns=rename).copy()
    for c, dtype in RESULT_COLUMNS + ((TRANSCRIPT,) if transcript else ()):
        meta[c] = pd.Series([], dtype=dtype, index=meta.index)
    return meta, rename


def verify(collection, column="email", *, lanes=None, rounds=1, egress=None,
           dns_timeout=5.0, npartitions=None, **options):
    """Verify every address of `collection` on the current Dask scheduler; lazy.

    collection: a Dask DataFrame or Series, a Dask Bag (of address strings, or of dicts with
      the address under `column`), a pandas DataFrame/Series, or any iterable of addresses.
    column: the address column (default "email"); every input column is carried through
      (one that collides with a result column is renamed input_<name>), the index too.
    lanes: how many groups of MX work in parallel at most (default: the input's partition
      count, or the current cluster's worker threads if more); rounds: how many slots, run one after another, each lane is cut into (default 1:
      raise it when a lane holds more rows than one task should).
    egress: {worker name | worker address | worker host | "*": {verify options}} applied on
      the worker that runs a slot, e.g. {"10.0.0.5": {"source_address": "198.51.100.5",
      "helo": "probe5.example.net"}} -- each machine probes from its own IP under its own name.
    npartitions: for an in-memory collection, how many input partitions to cut it into.
    **options: smtpcode.verify() options (mail_from and helo are required).

    Returns a Dask DataFrame: the input columns plus RESULT_COLUMNS (and transcript if asked),
    exactly one row per input row, in no particular order.
    """
    import dask

    for req in ("mail_from", "helo"):
        if not options.get(req) and not (egress and all(req in v for v in egress.values())):
            raise ValueError("smtpcode.dask.verify: %s is required" % req)
    if rounds < 1 or (lanes is not None and lanes < 1):
        raise ValueError("smtpcode.dask.verify: lanes and rounds must be positive")
    if egress is not None:
        egress = {k: dict(v) for k, v in dict(egress).items()}

    parts, input_meta = _input_partitions(collection, column, npartitions)
    lanes = lanes or max(1, len(parts), _cluster_threads())
    meta, rename = _result_meta(input_meta, bool(options.get("transcript")))
    delayed = dask.delayed

    resolve_options = {"timeout": dns_timeout}
    if options.get("dns_servers") is not None:
        resolve_options["dns_servers"] = options["dns_servers"]
    nbuckets = max(1, min(len(parts), 64))
    step1 = [delayed(_domain_buckets, pure=True, nout=2)(p, column, nbuckets) for p in parts]
    keymaps = [delayed(_resolve_bucket, pure=True)(resolve_options, *[b for b, _ in step1], j)
               for j in range(nbuckets)]
    splits = [delayed(_split_slots, pure=True, nout=lanes * rounds)(
        p, column, lanes, rounds, doms, *keymaps) for p, (_, doms) in zip(parts, step1)]
    results = []
    for lane in range(lanes):
        after = None
        for rnd in range(rounds):
            s = lane * rounds + rnd
            # pure=False: a slot probes the network; two calls are two runs, never merged
            r = delayed(_run_slot, pure=False)(column, options, egress, meta, rename, after,
                                              *[sp[s] for sp in splits])
            results.append(r)
            after = delayed(_done, pure=False)(r) if rounds > 1 else None
    import dask.dataframe as dd
    return dd.from_delayed(results, meta=meta, verify_meta=False)
