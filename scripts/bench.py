#!/usr/bin/env python3
"""The whole-process benchmark suite: agentsync against what users would otherwise run.

Called by scripts/bench (which builds the binaries and installs the tools). Every scenario times
whole processes with /usr/bin/time (wall seconds, peak RSS), takes the median of --runs runs, and
reports a ratio to a baseline measured in the same run on the same bytes.

How it is put together: scenario functions (`Bench.publish`, `Bench.incremental`, ...) measure
and store named measurements (`self.m["publish"] = M(...)`); the table is `ROWS`, one line per
(scenario, agentsync measurement, baseline, baseline measurement, goal). Adding a target (a new
transport, the viewer) or a baseline is one line in ROWS, plus the measurement if it is new.

    scripts/bench.py --sizes 10MB,100MB,1GB --runs 5 --work DIR --bin target/release \\
        [--component C.wasm] [--doc docs/benchmarks.md] [--svg docs/benchmarks-throughput.svg]

The largest size runs every scenario; smaller sizes run only what the throughput plot needs
(ingest, first publish, import, and the zstd + BLAKE3 pipeline as a reference).
"""

import argparse
import datetime
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

BEGIN = "<!-- bench-cli:begin -->"
END = "<!-- bench-cli:end -->"

# The table. goal: ("ratio", x) means agentsync/baseline must be <= x; ("max", x) means the
# agentsync value must be <= x (in its unit); ("min", x) that it must be >= x; None: reported,
# no goal (issue 6 named the first goals, issue 14 the ones here now).
ROWS = [
    ("1. first publish (ingest + first sync)", "publish",
     "{pipeline_label} over the JSONL", "pipeline", ("ratio", 4.0)),
    ("1. first sync alone (after ingest)", "first_sync",
     "{pipeline_label} over the JSONL", "pipeline", ("ratio", 2.0)),
    ("1. ingest throughput (parse, SQLite, FTS5)", "ingest_rate",
     "{pipeline_label} over the JSONL", "pipeline_rate", ("min", 100e6)),
    ("1. first publish (ingest + first sync)", "publish",
     "`restic backup` to a new local repo", "restic_first", None),
    ("1. the local archive after ingest (`archive.db`)", "archive_size",
     "the raw JSONL", "raw", None),
    ("2. append 1 message, sync (incl. ingest)", "incr",
     "`restic backup` of the same change", "restic_incr", ("ratio", 0.15)),
    ("2. bytes added to the target", "incr_bytes",
     "restic repo growth", "restic_incr_bytes", None),
    ("2. bytes added to the target", "incr_bytes",
     "the appended JSONL", "append_bytes", None),
    ("3. no-op sync, 5 origins, {sessions5} sessions", "noop5",
     "`rsync -a` no-op over the 5 raw trees", "rsync_noop", ("max", 0.05)),
    ("3. no-op sync: store requests", "noop5_requests",
     "same, {sessions5_small} sessions", "noop5_small_requests", ("ratio", 1.0)),
    ("4. import into an empty machine", "import",
     "bare SQLite + FTS5 insert of the same rows", "sqlite", ("ratio", 1.2)),
    ("5. bytes a new machine downloads", "download",
     "raw JSONL (Syncthing of the raw folders)", "raw", ("ratio", 0.2)),
    ("5. bytes a new machine downloads", "download",
     "`rsync -az` of the raw folders, bytes sent", "rsync_bytes", None),
    ("6. first sync of a third machine, core in wasmtime", "wasm",
     "the same, core native", "native", None),
    ("7. first sync into an empty HTTP peer (`serve`), export done", "first_http",
     "the same into an empty folder", "first_folder", None),
    ("7. first sync into an empty S3 bucket (moto), export done", "first_s3",
     "the same into an empty folder", "first_folder", None),
    ("7. no-op sync with an HTTP peer", "noop_http",
     "the same with a folder", "noop_folder", None),
    ("7. no-op sync with an S3 bucket (moto)", "noop_s3",
     "the same with a folder", "noop_folder", None),
    ("peak RSS, any agentsync process (native core)", "rss",
     "`restic backup` (first)", "restic_rss", ("max", 150e6)),
]

THROUGHPUT = [  # (measurement, label, colour, dashed)
    ("ingest", "ingest (parse, SQLite, FTS5)", "#1f77b4", False),
    ("publish", "first publish (ingest + first sync)", "#d62728", False),
    ("import", "import on an empty machine", "#2ca02c", False),
    ("pipeline", "zstd -3 + b3sum (reference)", "#7f7f7f", True),
]


STARTED = time.monotonic()


def log(msg):
    print(f"bench [{time.monotonic() - STARTED:6.1f} s]: {msg}", file=sys.stderr, flush=True)


# Agents the generated corpus has no logs of (docs/ingest.md lists every agent).
OTHER_AGENTS = ("gemini", "copilot", "cursor", "amp", "opencode", "aider")


class M:
    """One measurement: value (seconds, bytes, requests...) in `unit`, or skipped (a tool is
    missing) or failed (a command failed), with why."""

    def __init__(self, value, unit, note="", skipped=None, rss=None, failed=None):
        self.value = value
        self.unit = unit
        self.note = note
        self.skipped = skipped
        self.rss = rss
        self.failed = failed


class CommandFailed(Exception):
    """A measured or setup command failed; `reason` is its last line of stderr."""

    def __init__(self, cmd, code, stderr):
        lines = [line for line in stderr.splitlines() if line.strip()]
        self.reason = f"exit {code}: {lines[-1].strip() if lines else 'no message'}"
        super().__init__(f"{cmd} failed ({code}):\n{stderr[-2000:]}")


class Timed:
    def __init__(self, seconds, rss_mb, stdout):
        self.seconds = seconds
        self.rss_mb = rss_mb
        self.stdout = stdout


def timed(cmd, env=None, shell=False, ok_codes=(0,)):
    """Runs a command under /usr/bin/time: wall seconds, peak RSS (MB), stdout. Dirty pages
    are flushed first, so that no process pays for writing back an earlier one's files (agentsync
    calls syncfs before a checkpoint, which would otherwise flush the just-written corpus)."""
    os.sync()
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        argv = ["/usr/bin/time", "-f", "%e %M", "-o", tf.name]
        argv += ["sh", "-c", cmd] if shell else cmd
        proc = subprocess.run(argv, capture_output=True, text=True, env=env)
        if proc.returncode not in ok_codes:
            raise CommandFailed(cmd, proc.returncode, proc.stderr)
        fields = tf.read().split()
        return Timed(float(fields[-2]), int(fields[-1]) / 1024, proc.stdout)


def run(cmd, env=None):
    """Runs an untimed setup command; fails the suite if it fails."""
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise CommandFailed(cmd, proc.returncode, proc.stderr)
    return proc.stdout


def median(xs):
    return statistics.median(xs)


def du(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            total += os.path.getsize(os.path.join(dirpath, f))
    return total


def files_under(path):
    out = []
    for dirpath, _, files in os.walk(path):
        for f in files:
            out.append(os.path.join(dirpath, f))
    out.sort()
    return out


# Folders the run is done with, deleted when it ends. Deleting tens of thousands of files in
# the middle of a run slows every file created after it for minutes on a file system without
# a journal (ext4 then passes over recently freed inodes one by one: on this machine a third
# of a first sync went to `recently_deleted`), which would charge our own clean-up to the
# next timed process.
TRASH = []


def discard(path):
    """Moves `path` out of the way, to be deleted when the run ends."""
    if os.path.exists(path):
        aside = f"{path}.trash-{len(TRASH)}"
        os.rename(path, aside)
        TRASH.append(aside)


def empty_trash():
    while TRASH:
        shutil.rmtree(TRASH.pop(), ignore_errors=True)


def fresh(path):
    discard(path)
    return path


# How long ext4 treats freed inodes as recently deleted when their table block is dirty
# (RECENTCY_DIRTY in fs/ext4/ialloc.c): a run started sooner after the last one deleted its
# work folder (~25 GB at 1 GB) creates its files among them, and its first sync took twice as
# long.
SETTLE_S = 300


def settled_mark(work):
    """Beside the work folder (a new one per run of scripts/bench), so that the next run finds
    it."""
    return os.path.join(os.path.dirname(work.rstrip("/")), ".agentsync-bench-cleaned")


def wait_for_last_cleanup(work):
    """Waits until the last large run's clean-up is SETTLE_S old."""
    try:
        cleaned = os.path.getmtime(settled_mark(work))
    except OSError:
        return
    wait = cleaned + SETTLE_S - time.time()
    if wait > 0:
        log(f"waiting {wait:.0f} s: the last run deleted its work folder {SETTLE_S - wait:.0f} s "
            "ago, and file creation is slow among recently freed inodes")
        time.sleep(wait)


def db_size(path):
    """A SQLite database's bytes, its write-ahead log included."""
    return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))


def copy_tree(src, dst):
    """A private copy of a shared folder (real copies: a store may replace files), flushed so
    that its writeback does not land inside the next timed process."""
    fresh(dst)
    shutil.copytree(src, dst)
    os.sync()


def mb(n):
    return n / 1e6


def check_free_space(args, large):
    """Fails at once, not ten minutes in, when the work folder's disk cannot hold the run.
    Every scenario's folders are kept until the run ends (deleting them sooner slows the next
    scenario's file creation, see `discard`): a full 100 MB run peaked at 1.7 GB, and a full
    1 GB run failed with 24 GB free and passed with 35 GB."""
    factor = lambda i: 30 if large and i == len(args.sizes) - 1 else 17
    needs = [factor(i) * parse_size(size) for i, size in enumerate(args.sizes)]
    need = sum(needs) if args.keep else max(needs)
    where = os.path.abspath(args.work)
    while not os.path.exists(where):
        where = os.path.dirname(where)
    free = shutil.disk_usage(where).free
    if free < need:
        raise SystemExit(
            f"bench: a {args.sizes[-1]} run needs about {need / 1e9:.0f} GB free under {where}; "
            f"{free / 1e9:.1f} GB are (cargo's target/ folder is the usual reason: "
            f"`cargo clean`, or set AGENTSYNC_BENCH_DIR to a roomier disk)")


def parse_size(s):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMG]i?B|B)?", s.strip(), re.I)
    if not m:
        raise SystemExit(f"bench: bad size {s}")
    unit = (m.group(2) or "B").upper()
    mult = {"B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "KIB": 1024, "MIB": 1024**2, "GIB": 1024**3}
    return int(float(m.group(1)) * mult[unit])


def plural(n, word):
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def fmt(value, unit):
    if value is None:
        return ""
    if unit == "s":
        return f"{value:.2f} s" if value < 100 else f"{value:.0f} s"
    if unit == "B":
        if value >= 1e6:
            return f"{mb(value):.1f} MB"
        if value >= 1e4:
            return f"{value / 1e3:.1f} KB"
        return f"{value:.0f} B"
    if unit == "rss":
        return f"{mb(value):.0f} MB"
    if unit == "req":
        return f"{value:.0f}"
    if unit == "B/s":
        return f"{mb(value):.0f} MB/s"
    return f"{value}"


class Bench:
    """One corpus size: generates the corpus and runs the scenarios into self.m."""

    def __init__(self, args, name, work, full):
        self.args = args
        self.name = name
        self.size = parse_size(name)
        self.work = work
        self.full = full
        self.runs = args.runs
        self.bin = os.path.join(args.bin, "agentsync")
        self.generator = os.path.join(args.bin, "agentsync-bench")
        self.sqlite_baseline = os.path.join(args.bin, "agentsync-bench-sqlite")
        self.corpus = os.path.join(work, "corpus")
        self.shared = os.path.join(work, "shared")
        self.published = os.path.join(work, "published")
        self.m = {}
        # The pipeline step names its hasher; without that step (`--only`) the usual one.
        self.labels = {"pipeline_label": "`zstd -3` + `b3sum`"}
        self.agentsync_rss = []
        self.failures = []  # (step, reason)
        self.env = dict(os.environ, RESTIC_PASSWORD="agentsync-bench",
                        RESTIC_CACHE_DIR=os.path.join(work, "restic-cache"))
        self.env.pop("RESTIC_REPOSITORY", None)

    # -- helpers ---------------------------------------------------------------------------

    def agentsync(self, machine, *args, ok_codes=(0,), env=None):
        cmd = [self.bin, "--data-dir", self.path(machine), "--json", *args]
        t = timed(cmd, ok_codes=ok_codes, env=env)
        if "wasm" not in args:
            # Which process it was, for the notes: `sync s3://…` of machine o1, …
            what = " ".join(a if "/" not in a or "://" in a else os.path.basename(a)
                            for a in args[:2])
            self.agentsync_rss.append((t.rss_mb, f"`{what}` of machine {machine}"))
        return t

    def path(self, *parts):
        return os.path.join(self.work, *parts)

    def machine(self, name, origin, corpus=None):
        """A fresh data folder with its origin; its agents' logs are `corpus` if given."""
        fresh(self.path(name))
        self.agentsync(name, "init", "--origin", origin)
        logs = corpus or self.path("no-logs")
        os.makedirs(logs, exist_ok=True)
        with open(self.path(name, "config.toml"), "w") as f:
            # The corpus's agents only: no other agent's default folders of this user.
            f.write(f'claude_projects = ["{logs}/claude/projects"]\n'
                    f'codex_sessions = ["{logs}/codex/sessions"]\n'
                    '[agents]\n' + ''.join(f'{agent} = []\n' for agent in OTHER_AGENTS))

    def generate(self, out, seed, size):
        gen = timed([self.generator, "corpus", "--seed", str(seed), "--size", str(size),
                     "--out", out, "--json"])
        return json.loads(gen.stdout)

    def tool(self, name):
        return shutil.which(name)

    # -- scenarios -------------------------------------------------------------------------

    def prepare(self):
        fresh(self.work)
        os.makedirs(self.work)
        log(f"{self.name}: generating the corpus")
        self.summary = self.generate(self.corpus, 1, self.size)
        self.corpus_bytes = du(self.corpus)
        self.m["raw"] = M(self.corpus_bytes, "B")
        log(f"{self.name}: {self.summary['sessions']} sessions, {self.summary['messages']} "
            f"messages, {mb(self.corpus_bytes):.0f} MB")

    def publish(self):
        """1. First publish: machine A ingests the corpus (its agents' logs) and syncs into an
        empty folder; every run starts from a fresh data folder and an empty target."""
        ingest, sync, total = [], [], []
        for _ in range(self.runs):
            self.machine("a", "bench-a00001", self.corpus)
            os.makedirs(fresh(self.shared))
            i = self.agentsync("a", "ingest", self.corpus)
            archive_size = db_size(self.path("a", "archive.db"))
            s = self.agentsync("a", "sync", self.shared, "--no-ingest")
            ingest.append(i)
            sync.append(s)
            total.append(i.seconds + s.seconds)
        report = json.loads(sync[-1].stdout)
        self.m["ingest"] = M(median(t.seconds for t in ingest), "s",
                             rss=max(t.rss_mb for t in ingest))
        self.m["first_sync"] = M(median(t.seconds for t in sync), "s",
                                 rss=max(t.rss_mb for t in sync))
        self.m["ingest_rate"] = M(self.corpus_bytes / self.m["ingest"].value, "B/s")
        self.m["archive_size"] = M(archive_size, "B",
                                   "sessions, messages and their search index, in one file")
        self.m["publish"] = M(
            median(total), "s",
            f"ingest {self.m['ingest'].value:.2f} s (peak RSS {self.m['ingest'].rss:.0f} MB) + "
            f"sync {self.m['first_sync'].value:.2f} s ({report['exported']} artifacts, "
            f"{mb(du(self.shared)):.1f} MB, peak RSS {self.m['first_sync'].rss:.0f} MB); "
            f"{self.mbps(median(total)):.0f} MB/s")
        copy_tree(self.shared, self.published)

    def pipeline(self):
        """1. Baseline: read every log once, compress with zstd -3 and hash with BLAKE3."""
        hasher = "b3sum" if self.tool("b3sum") else "sha256sum"
        self.labels["pipeline_label"] = f"`zstd -3` + `{hasher}`"
        listing = self.path("files.txt")
        with open(listing, "w") as f:
            f.write("\n".join(files_under(self.corpus)))
        cmd = f"xargs -a {listing} -d '\\n' cat | zstd -3 -T1 -q -c | {hasher} >/dev/null"
        seconds = median(timed(cmd, shell=True).seconds for _ in range(self.runs))
        note = f"{self.mbps(seconds):.0f} MB/s (`cat | zstd -3 -T1 | {hasher}`)"
        if hasher != "b3sum":
            note += "; b3sum could not be installed, sha256sum instead (slower than BLAKE3)"
        self.m["pipeline"] = M(seconds, "s", note)
        self.m["pipeline_rate"] = M(self.corpus_bytes / seconds, "B/s")

    def restic_first(self):
        """1. Baseline: restic backup of the corpus into a new local repository."""
        if not self.tool("restic"):
            self.m["restic_first"] = self.m["restic_rss"] = M(None, "s", skipped="restic missing")
            return
        repo = self.path("restic")
        times = []
        for _ in range(self.runs):
            fresh(repo)
            run(["restic", "init", "-q", "--repo", repo], env=self.env)
            times.append(timed(["restic", "backup", "-q", "--repo", repo, self.corpus],
                               env=self.env))
        size = du(repo)
        self.m["restic_first"] = M(median(t.seconds for t in times), "s",
                                   f"repo {mb(size):.1f} MB, uses every core; peak RSS "
                                   f"{max(t.rss_mb for t in times):.0f} MB")
        self.m["restic_rss"] = M(max(t.rss_mb for t in times) * 1e6, "rss")

    def import_all(self):
        """4, 5. A second machine's first sync: fetch, verify and import the whole archive.
        Every run gets its own copy of the published folder and a fresh data folder."""
        times = []
        for _ in range(self.runs):
            copy_tree(self.published, self.path("shared-b"))
            self.machine("b", "bench-b00001")
            times.append(self.agentsync("b", "sync", self.path("shared-b"), "--no-ingest",
                                        "--engine", "native"))
        report = json.loads(times[-1].stdout)
        seconds = median(t.seconds for t in times)
        self.m["import"] = M(seconds, "s",
                             f"{report['imported_sessions']} sessions (subagent logs included), "
                             f"{report['imported_messages']} messages, {report['fetched']} "
                             f"artifacts ({report['requests']} requests); "
                             f"{self.mbps(seconds):.0f} MB/s of JSONL; peak RSS "
                             f"{max(t.rss_mb for t in times):.0f} MB")
        store = self.path("b", "store")
        own = du(os.path.join(store, "bench-b00001")) + du(os.path.join(store, "roots",
                                                                        "bench-b00001"))
        self.m["download"] = M(du(store) - own, "B",
                               "every artifact it fetched (its own checkpoint excluded)")

    def sqlite(self):
        """4. Baseline: the same sessions and messages inserted into a fresh SQLite with FTS5
        (agentsync-bench-sqlite, reading them from machine B's archive)."""
        db = self.path("baseline.db")
        times = []
        for _ in range(self.runs):
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(db + suffix):
                    os.remove(db + suffix)
            times.append(timed([self.sqlite_baseline, "--from", self.path("b", "archive.db"),
                                "--db", db, "--json"]))
        out = json.loads(times[-1].stdout)
        self.m["sqlite"] = M(median(t.seconds for t in times), "s",
                             f"{out['messages']} messages, {mb(out['bytes']):.0f} MB of text, "
                             f"{out['transactions']} transactions")

    def rsync_bytes(self):
        """5. Baseline: what rsync -az sends to copy the raw folders into an empty one."""
        if not self.tool("rsync"):
            self.m["rsync_bytes"] = M(None, "B", skipped="rsync missing")
            return
        dst = fresh(self.path("rsync-copy"))
        t = timed(["rsync", "-az", "--stats", self.corpus + "/", dst + "/"])
        sent = re.search(r"Total bytes sent: ([\d,]+)", t.stdout)
        self.m["rsync_bytes"] = M(int(sent.group(1).replace(",", "")), "B",
                                  f"{t.seconds:.1f} s")
        discard(dst)

    def engines(self):
        """6. The same first sync on two more empty machines, core native and in wasmtime."""
        native, wasm = [], []
        for _ in range(self.runs):
            copy_tree(self.published, self.path("shared-c"))
            self.machine("c", "bench-c00001")
            native.append(self.agentsync("c", "sync", self.path("shared-c"), "--no-ingest",
                                         "--engine", "native"))
        self.m["native"] = M(median(t.seconds for t in native), "s",
                             f"peak RSS {max(t.rss_mb for t in native):.0f} MB")
        component = self.args.component
        if not component or not os.path.exists(component):
            self.m["wasm"] = M(None, "s", skipped="no component (build agentsync-component "
                                                  "for wasm32-wasip2)")
            return
        try:
            for _ in range(self.runs):
                copy_tree(self.published, self.path("shared-d"))
                self.machine("d", "bench-d00001")
                wasm.append(self.agentsync("d", "sync", self.path("shared-d"), "--no-ingest",
                                           "--engine", "wasm", "--component", component))
            noop = self.agentsync("d", "sync", self.path("shared-d"), "--no-ingest",
                                  "--engine", "wasm", "--component", component)
        except CommandFailed as e:
            log(f"{self.name}: the wasm engine failed: {e}")
            self.m["wasm"] = M(None, "s", failed=f"`sync --engine wasm` {e.reason}")
            self.failures.append(("engines (wasm)", e.reason))
            return
        same = (json.loads(wasm[-1].stdout)["imported_messages"]
                == json.loads(native[-1].stdout)["imported_messages"])
        seconds = median(t.seconds for t in wasm)
        self.m["wasm"] = M(seconds, "s",
                           f"includes loading and compiling the component: a no-op wasm sync "
                           f"takes {noop.seconds:.2f} s, so {seconds - noop.seconds:.2f} s of "
                           f"import work; peak RSS "
                           f"{max(t.rss_mb for t in wasm):.0f} MB"
                           + ("" if same else "; IMPORTED A DIFFERENT NUMBER OF MESSAGES"))
        for name in ("shared-c", "shared-d", "c", "d"):
            discard(self.path(name))

    def transports(self):
        """7. Machine A's exported archive (its mirror) synced into an empty folder, an empty
        HTTP peer (`agentsync serve` of another data folder on loopback) and an empty S3 bucket
        (moto on loopback): the first sync, then a no-op sync; time and store requests."""
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        moto_dir = self.path("t-moto")
        endpoint = run([os.path.join(root, "scripts", "moto"), "start", moto_dir]).strip()
        server = None
        try:
            import urllib.request
            urllib.request.urlopen(urllib.request.Request(f"{endpoint}/bench", method="PUT"))
            s3_env = dict(os.environ, AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="bench",
                          AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1")
            self.machine("srv", "bench-srv001")
            server = subprocess.Popen(
                [self.bin, "--data-dir", self.path("srv"), "--json", "serve", "--listen",
                 "127.0.0.1:0", "--token", "bench"],
                stdout=subprocess.PIPE, text=True)
            url = json.loads(server.stdout.readline())["url"]
            http_env = dict(os.environ, AGENTSYNC_TOKEN="bench")
            folder = self.path("t-folder")
            os.makedirs(fresh(folder))
            for name, target, env in (("folder", folder, None), ("http", url, http_env),
                                      ("s3", "s3://bench/archive", s3_env)):
                first = self.agentsync("a", "sync", target, "--no-ingest", env=env)
                noop = [self.agentsync("a", "sync", target, "--no-ingest", env=env)
                        for _ in range(self.runs)]
                sent = json.loads(first.stdout)["sent"]
                requests = json.loads(noop[-1].stdout)["requests"]
                self.m[f"first_{name}"] = M(first.seconds, "s",
                                            f"{sent} artifacts sent, "
                                            f"{json.loads(first.stdout)['requests']} requests")
                self.m[f"noop_{name}"] = M(median(t.seconds for t in noop), "s",
                                           f"{requests} store requests")
        finally:
            if server:
                server.terminate()
                server.wait()
            run([os.path.join(root, "scripts", "moto"), "stop", moto_dir])
            for name in ("t-folder", "t-moto", "srv"):
                discard(self.path(name))

    def five_origins(self, tag, size):
        """Five machines, each with its own logs (a fifth of `size`, its own seed), publish into
        one folder; the first then imports the others. Returns (machine, folder, sessions)."""
        folder = self.path(f"shared5{tag}")
        os.makedirs(fresh(folder))
        sessions = 0
        for k in range(1, 6):
            corpus = self.path(f"corpora5{tag}", f"o{k}")
            sessions += self.generate(corpus, 10 + k, size // 5)["sessions"]
            self.machine(f"o{k}{tag}", f"bench-o{k}{tag}00", corpus)
            self.agentsync(f"o{k}{tag}", "sync", folder)
        for _ in range(3):  # settle: import the others, then nothing left to do
            report = json.loads(self.agentsync(f"o1{tag}", "sync", folder).stdout)
            if not (report["exported"] or report["fetched"] or report["exchanged"]):
                break
        return f"o1{tag}", folder, sessions

    def noop5(self):
        """3. No-op sync of a settled machine, 5 origins through one folder; and the same at a
        tenth of the sessions, to show the request count does not follow the session count."""
        counts = {}
        for tag, size in (("", self.size), ("s", self.size // 10)):
            machine, folder, sessions = self.five_origins(tag, size)
            times = [self.agentsync(machine, "sync", folder) for _ in range(self.runs)]
            report = json.loads(times[-1].stdout)
            work = sum(report[k] for k in ("exported", "exchanged", "fetched",
                                           "imported_sessions"))
            counts[tag] = (sessions, report["requests"], times, work)
        sessions, requests, times, work = counts[""]
        small_sessions, small_requests, small_times, _ = counts["s"]
        self.labels["sessions5"] = sessions
        self.labels["sessions5_small"] = small_sessions
        self.m["noop5"] = M(median(t.seconds for t in times), "s",
                            "`sync` with ingest (a stat per log) of one machine; "
                            f"{sessions // 5} sessions each; "
                            + ("nothing to do" if not work else f"DID WORK ({work} items)")
                            + f"; peak RSS {max(t.rss_mb for t in times):.0f} MB")
        self.m["noop5_requests"] = M(
            requests, "req",
            "`requests` of `sync --json`: every store request of the run (export, exchange, "
            f"self-heal, import); at {small_sessions} sessions the no-op took "
            f"{median(t.seconds for t in small_times):.2f} s")
        self.m["noop5_small_requests"] = M(small_requests, "req")
        if self.tool("rsync"):
            raw = self.path("rsync-raw5")
            run(["rsync", "-a", self.path("corpora5") + "/", raw + "/"])
            t = [timed(["rsync", "-a", self.path("corpora5") + "/", raw + "/"])
                 for _ in range(self.runs)]
            self.m["rsync_noop"] = M(median(x.seconds for x in t), "s")
            discard(raw)
        else:
            self.m["rsync_noop"] = M(None, "s", skipped="rsync missing")
        for tag in ("", "s"):
            discard(self.path(f"corpora5{tag}"))
            discard(self.path(f"shared5{tag}"))
            for k in range(1, 6):
                discard(self.path(f"o{k}{tag}"))

    def incremental(self):
        """2. One message appended to one session, then a sync (with its ingest) of machine A,
        and a restic backup of the same change: time and bytes added to each target."""
        self.agentsync("a", "sync", self.shared)  # settle
        repo = self.path("restic")
        has_restic = self.tool("restic") and os.path.isdir(repo)
        ours, bytes_ours, appended, theirs, bytes_theirs, files = [], [], [], [], [], []
        for i in range(self.runs):
            out = run([self.generator, "append", "--out", self.corpus, "--seed", str(7 + i),
                       "--messages", "1", "--json"])
            appended.append(json.loads(out)["bytes"])
            before, count = du(self.shared), len(files_under(self.shared))
            t = self.agentsync("a", "sync", self.shared)
            ours.append(t.seconds)
            bytes_ours.append(du(self.shared) - before)
            files.append(len(files_under(self.shared)) - count)
            report = json.loads(t.stdout)
            if has_restic:
                before = du(repo)
                theirs.append(timed(["restic", "backup", "-q", "--repo", repo, self.corpus],
                                    env=self.env).seconds)
                bytes_theirs.append(du(repo) - before)
        self.m["incr"] = M(median(ours), "s",
                           f"{report['ingest']['messages']} message ingested, "
                           f"{report['exported']} artifacts exported; "
                           f"the corpus has {self.summary['sessions']} sessions")
        self.m["incr_bytes"] = M(median(bytes_ours), "B",
                                 f"{median(files):.0f} new files in the target")
        self.m["append_bytes"] = M(median(appended), "B")
        if has_restic:
            self.m["restic_incr"] = M(median(theirs), "s")
            self.m["restic_incr_bytes"] = M(median(bytes_theirs), "B")
        else:
            self.m["restic_incr"] = M(None, "s", skipped="restic missing")
            self.m["restic_incr_bytes"] = M(None, "B", skipped="restic missing")

    def finish(self):
        rss, what = max(self.agentsync_rss, default=(0, "none"))
        self.m["rss"] = M(rss * 1e6, "rss",
                          "over every agentsync process of the run with the native core "
                          f"(wasm: see 6), corpus {mb(self.corpus_bytes):.0f} MB; "
                          f"the largest: {what}")

    def mbps(self, seconds):
        return mb(self.corpus_bytes) / seconds if seconds else 0.0

    def throughput(self):
        return {name: self.mbps(self.m[name].value) for name, *_ in THROUGHPUT
                if name in self.m and self.m[name].value}

    def all(self):
        self.prepare()
        steps = [self.publish, self.pipeline, self.import_all]
        if self.full:
            steps += [self.restic_first, self.sqlite, self.rsync_bytes, self.engines,
                      self.noop5, self.incremental, self.transports]
        if self.args.only:
            wanted = {w.strip() for w in self.args.only.split(",")}
            steps = [self.publish] + [s for s in steps if s.__name__ in wanted]
        for step in steps:
            log(f"{self.name}: {step.__name__}")
            try:
                step()
            except CommandFailed as e:
                log(f"{self.name}: {step.__name__} failed: {e}")
                self.failures.append((step.__name__, e.reason))
        self.finish()


# -- output ----------------------------------------------------------------------------------


def goal_text(goal, unit):
    if goal is None:
        return ""
    kind, x = goal
    if kind == "ratio":
        return f"≤ {x:g}×"
    return ("≥ " if kind == "min" else "≤ ") + fmt(x, unit)


def goal_met(goal, ours, base):
    if goal is None or ours.value is None:
        return None
    kind, x = goal
    if kind == "ratio":
        if base.value in (None, 0):
            return None
        return ours.value / base.value <= x, ours.value / base.value / x
    if kind == "min":
        return ours.value >= x, x / ours.value if ours.value else float("inf")
    return ours.value <= x, ours.value / x


class Labels(dict):
    """Row labels; one whose scenario did not run (`--only`) keeps its placeholder."""

    def __missing__(self, key):
        return "{" + key + "}"


def table_rows(bench):
    out = []
    seen = set()
    for scenario, ours_key, base_label, base_key, goal in ROWS:
        missing = M(None, "s", skipped="not run")
        if bench.failures:
            missing = M(None, "s", failed="not measured: "
                        + "; ".join(f"{step} failed ({why})" for step, why in bench.failures))
        ours = bench.m.get(ours_key, missing)
        first = ours_key not in seen
        seen.add(ours_key)
        base = bench.m.get(base_key, missing)
        ratio = ""
        if ours.value is not None and base.value not in (None, 0):
            ratio = f"{ours.value / base.value:.2f}×"
        met = goal_met(goal, ours, base)
        notes = "; ".join(n for n in (first and ours.note, base.note and f"baseline: {base.note}",
                                      ours.skipped and f"skipped: {ours.skipped}",
                                      ours.failed and f"FAILED: {ours.failed}",
                                      base.skipped and f"baseline skipped: {base.skipped}",
                                      base.failed and f"baseline FAILED: {base.failed}") if n)
        out.append({
            "scenario": scenario.format_map(Labels(bench.labels)),
            "ours": ours, "base": base, "baseline": base_label.format_map(Labels(bench.labels)),
            "ratio": ratio, "goal": goal, "met": met, "notes": notes,
        })
    return out


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def render(main, benches, svg, doc):
    when, cpu = now(), cpu_name()
    s = main.summary
    rows = table_rows(main)
    lines = [
        BEGIN,
        f"Run {when} on {os.cpu_count()} cores ({cpu}), {platform.system().lower()}; load "
        f"average before the run {' '.join(f'{x:.2f}' for x in os.getloadavg())}. Corpus "
        f"{main.args.sizes[-1]}: {s['sessions']} sessions (+{s['subagent_sessions']} subagent "
        f"logs), {s['messages']} messages, {mb(main.corpus_bytes):.0f} MB of JSONL, seed 1. "
        f"Median of {plural(main.runs, 'run')}; every file in the page cache (the corpus was just "
        "written). Ratio = agentsync / baseline: below 1 agentsync is faster or smaller.",
        "",
        "| scenario | agentsync | baseline | baseline value | ratio | goal | notes |",
        "|---|---:|---|---:|---:|---|---|",
    ]
    gaps = []
    for r in rows:
        mark = ""
        if r["met"] is not None:
            ok, gap = r["met"]
            mark = " ✓" if ok else " ✗"
            if not ok:
                gaps.append((gap, r))
        cells = [r["scenario"], fmt(r["ours"].value, r["ours"].unit), r["baseline"],
                 fmt(r["base"].value, r["base"].unit), r["ratio"],
                 goal_text(r["goal"], r["ours"].unit) + mark, r["notes"]]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines.append("")
    if gaps:
        gap, r = max(gaps, key=lambda g: g[0])
        missed = ", ".join(f"{g['scenario']} vs {g['baseline']}"
                           for _, g in sorted(gaps, key=lambda g: -g[0]))
        lines.append(f"Biggest gap to the goals: {r['scenario']} vs {r['baseline']}: "
                     f"{r['ratio'] or fmt(r['ours'].value, r['ours'].unit)} where the goal is "
                     f"{goal_text(r['goal'], r['ours'].unit)} ({gap:.1f}× off). Goals missed: {missed}.")
    else:
        lines.append("Every goal with a number is met.")
    for b in benches:
        for step, why in b.failures:
            lines.append(f"**Failed** at {mb(b.corpus_bytes):.0f} MB: {step}: {why}.")
    lines += [
        "",
        "Throughput by corpus size (MB of JSONL per second of wall time, median of "
        f"{plural(main.runs, 'run')}):",
        "",
        "| corpus | sessions | " + " | ".join(label for _, label, *_ in THROUGHPUT) + " |",
        "|---|---:|" + "---:|" * len(THROUGHPUT),
    ]
    for b in benches:
        tp = b.throughput()
        lines.append(f"| {mb(b.corpus_bytes):.0f} MB | {b.summary['sessions']} | "
                     + " | ".join(f"{tp[n]:.0f}" if n in tp else "" for n, *_ in THROUGHPUT)
                     + " |")
    if svg:
        rel = os.path.relpath(svg, os.path.dirname(os.path.abspath(doc))) if doc else svg
        lines += ["", f"![Throughput by corpus size]({rel})"]
    lines.append(END)
    return "\n".join(lines) + "\n"


def plot_svg(benches, path):
    """Throughput (MB/s) by corpus size, both axes log-scale, as hand-written SVG."""
    W, H, L, R, T, B = 720, 420, 70, 250, 50, 60
    pts = [(b.corpus_bytes, b.throughput()) for b in benches]
    values = [v for _, tp in pts for v in tp.values() if v > 0] or [1.0]
    y0 = math.floor(math.log10(min(values)))
    y1 = max(math.ceil(math.log10(max(values))), y0 + 1)
    xs = [math.log10(mb(n)) for n, _ in pts]
    x0, x1 = math.floor(min(xs) + 0.01), math.ceil(max(xs) - 0.01)
    if x0 == x1:
        x1 += 1

    def X(n):
        return L + (math.log10(mb(n)) - x0) / (x1 - x0) * (W - L - R)

    def Y(v):
        return T + (1 - (math.log10(v) - y0) / (y1 - y0)) * (H - T - B)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           f'viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{L}" y="22" font-size="15">agentsync throughput by corpus size '
           f'(MB of JSONL per second)</text>',
           f'<text x="{L}" y="36" font-size="10" fill="#555">{now()}, {os.cpu_count()} cores '
           f'({cpu_name()}), median of {plural(benches[-1].runs, "run")}; '
           f'scripts/bench</text>']
    for e in range(y0, y1 + 1):
        for m in (1, 2, 5):
            v = m * 10.0 ** e
            if v > 10.0 ** y1 * 1.0001:
                break
            y = Y(v)
            shade = "#ccc" if m == 1 else "#eee"
            out.append(f'<line x1="{L}" y1="{y:.1f}" x2="{W - R}" y2="{y:.1f}" '
                       f'stroke="{shade}"/>')
            out.append(f'<text x="{L - 8}" y="{y + 4:.1f}" text-anchor="end">{v:g}</text>')
    for e in range(x0, x1 + 1):
        x = L + (e - x0) / (x1 - x0) * (W - L - R)
        label = f"{10 ** e:g} MB" if e < 3 else f"{10 ** (e - 3):g} GB"
        out.append(f'<line x1="{x:.1f}" y1="{T}" x2="{x:.1f}" y2="{H - B}" stroke="#eee"/>')
        out.append(f'<text x="{x:.1f}" y="{H - B + 18}" text-anchor="middle">{label}</text>')
    out.append(f'<line x1="{L}" y1="{H - B}" x2="{W - R}" y2="{H - B}" stroke="black"/>')
    out.append(f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H - B}" stroke="black"/>')
    out.append(f'<text x="{(L + W - R) / 2:.0f}" y="{H - 15}" text-anchor="middle">'
               'corpus size (log scale)</text>')
    out.append(f'<text transform="translate(18 {(T + H - B) / 2:.0f}) rotate(-90)" '
               'text-anchor="middle">MB/s (log scale)</text>')
    for i, (name, label, colour, dashed) in enumerate(THROUGHPUT):
        series = [(X(n), Y(tp[name])) for n, tp in pts if tp.get(name, 0) > 0]
        if not series:
            continue
        dash = ' stroke-dasharray="6 4"' if dashed else ""
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2"{dash} points="'
                   + " ".join(f"{x:.1f},{y:.1f}" for x, y in series) + '"/>')
        for x, y in series:
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}"/>')
        ly = T + 10 + i * 22
        out.append(f'<line x1="{W - R + 15}" y1="{ly}" x2="{W - R + 45}" y2="{ly}" '
                   f'stroke="{colour}" stroke-width="2"{dash}/>')
        out.append(f'<text x="{W - R + 52}" y="{ly + 4}">{label}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def write_doc(doc, block):
    text = open(doc).read() if os.path.exists(doc) else "# Benchmarks\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + block.rstrip("\n") + tail
    else:
        text = (text.rstrip("\n") + "\n\n## Whole-process benchmarks: agentsync vs restic, rsync "
                "and raw pipelines\n\n"
                "What is measured: the `agentsync` binary as a user runs it, each command a whole "
                "process timed with `/usr/bin/time` (wall time, peak RSS), beside the tools a "
                "user would otherwise run on the same corpus in the same run: `zstd -3` + "
                "`b3sum`, `restic backup` to a local repository, `rsync`, and a bare SQLite + "
                "FTS5 insert (`agentsync-bench-sqlite`). The corpus comes from "
                "`agentsync-bench corpus` (Claude Code and Codex logs, fixed seeds).\n\n"
                "Reproduce: `./scripts/bench` (10 MB, 100 MB and 1 GB; the table is the 1 GB "
                "run), `./scripts/bench --size 100MB --runs 3 --no-doc`, or `./scripts/bench "
                "--quick` (10 MB, one run: what CI runs). A 1 GB run needs ~30 GB of free disk "
                "(it says so before it starts).\n\n" + block)
    with open(doc, "w") as f:
        f.write(text)


def check(bench):
    """--quick: every row has agentsync's number (the wasm row may lack a component) and a
    baseline number unless its tool could not be installed."""
    bad = []
    for (_, ours_key, *_), r in zip(ROWS, table_rows(bench)):
        if r["ours"].failed or r["base"].failed:
            bad.append(f"{r['scenario']}: {r['ours'].failed or r['base'].failed}")
        elif r["ours"].value is None:
            if r["ours"].skipped and ours_key == "wasm":
                log(f"skipped: {r['scenario']}: {r['ours'].skipped}")
            else:
                bad.append(f"{r['scenario']}: no agentsync number")
        if r["base"].value is None and not r["base"].failed:
            if r["base"].skipped and r["base"].skipped != "not run":
                log(f"skipped: {r['scenario']} vs {r['baseline']}: {r['base'].skipped}")
            else:
                bad.append(f"{r['scenario']}: no number for {r['baseline']}")
    if bad:
        for b in bad:
            log(f"check failed: {b}")
        raise SystemExit(1)
    log(f"check: every row of the 6 scenarios has numbers ({len(ROWS)} rows)")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1GB", help="comma-separated; the largest runs everything")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--work", default="/var/tmp/agentsync-bench")
    p.add_argument("--bin", required=True, help="folder with agentsync, agentsync-bench, "
                                                "agentsync-bench-sqlite")
    p.add_argument("--component", help="the core's wasm component (scenario 6)")
    p.add_argument("--doc", help="write the table into this Markdown file")
    p.add_argument("--svg", help="write the throughput plot here")
    p.add_argument("--check", action="store_true", help="fail unless every row has a number")
    p.add_argument("--keep", action="store_true", help="keep the work folder")
    p.add_argument("--only", help="run only these scenario steps (comma-separated method "
                                  "names, e.g. transports), after the corpus and publish")
    args = p.parse_args()
    args.sizes = sorted((s.strip() for s in args.sizes.split(",") if s.strip()), key=parse_size)
    large = parse_size(args.sizes[-1]) >= parse_size("1GB")
    check_free_space(args, large)
    if large:
        wait_for_last_cleanup(args.work)
    try:
        run_suite(args)
    finally:
        empty_trash()
        if not args.keep:  # also after a failure or ^C: the 1 GB work folder holds ~25 GB
            shutil.rmtree(args.work, ignore_errors=True)
        if large:
            with open(settled_mark(args.work), "w"):
                pass


def run_suite(args):
    benches = []
    for i, size in enumerate(args.sizes):
        full = i == len(args.sizes) - 1
        bench = Bench(args, size, os.path.join(args.work, size), full)
        bench.all()
        benches.append(bench)
        if not args.keep:
            discard(bench.work)
    main_bench = benches[-1]
    block = render(main_bench, benches, args.svg, args.doc)
    print(block)
    if args.check:
        check(main_bench)
    if args.svg:
        plot_svg(benches, args.svg)
        log(f"wrote {args.svg}")
    if args.doc:
        write_doc(args.doc, block)
        log(f"wrote {args.doc}")
    failures = [(b.name, step, why) for b in benches for step, why in b.failures]
    for name, step, why in failures:
        log(f"FAILED: {name}: {step}: {why} (details above)")
    if failures:
        raise SystemExit(1)

if __name__ == "__main__":
    main()
