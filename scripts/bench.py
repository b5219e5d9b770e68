#!/usr/bin/env python3
"""The whole-process benchmark suite: agentsync against what users would otherwise run.

Called by scripts/bench (which builds the binaries and installs the tools). Every scenario times
whole processes with /usr/bin/time (wall seconds, peak RSS), takes the median of --runs runs
where a run can be repeated, and reports a ratio to a baseline measured in the same run on the
same bytes. A scenario is one function returning rows; adding a target is adding a row.

    scripts/bench.py --size 1GB --runs 5 --work /var/tmp/agentsync-bench --doc docs/benchmarks.md
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile

BEGIN = "<!-- bench-cli:begin -->"
END = "<!-- bench-cli:end -->"


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


class Timed:
    def __init__(self, seconds, rss_mb, stdout):
        self.seconds = seconds
        self.rss_mb = rss_mb
        self.stdout = stdout


def timed(cmd, env=None, shell=False, ok_codes=(0,)):
    """Runs a command under /usr/bin/time: wall seconds, peak RSS (MB), stdout."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        argv = ["/usr/bin/time", "-f", "%e %M", "-o", tf.name]
        argv += ["sh", "-c", cmd] if shell else cmd
        proc = subprocess.run(argv, capture_output=True, text=True, env=env)
        if proc.returncode not in ok_codes:
            log(f"failed ({proc.returncode}): {cmd}\n{proc.stderr[-2000:]}")
            raise SystemExit(1)
        fields = tf.read().split()
        return Timed(float(fields[-2]), int(fields[-1]) / 1024, proc.stdout)


def median_of(runs, make):
    results = [make() for _ in range(runs)]
    return statistics.median(r.seconds for r in results), max(r.rss_mb for r in results), results


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


def mb(n):
    return n / 1e6


class Suite:
    def __init__(self, args):
        self.args = args
        self.bin = args.agentsync
        self.work = args.work
        self.corpus = os.path.join(self.work, "corpus")
        self.shared = os.path.join(self.work, "shared")
        self.rows = []

    def agentsync(self, machine, *args, ok_codes=(0,)):
        cmd = [self.bin, "--data-dir", os.path.join(self.work, machine), "--json", *args]
        return timed(cmd, ok_codes=ok_codes)

    def row(self, scenario, ours, baseline_name, baseline, unit, note=""):
        """ours/baseline: numbers where lower is better (seconds, bytes, requests)."""
        ratio = ""
        if baseline not in (None, 0) and ours is not None:
            ratio = f"{ours / baseline:.2f}×"
        self.rows.append((scenario, fmt(ours, unit), baseline_name, fmt(baseline, unit), ratio, note))

    def prepare(self):
        if os.path.exists(self.work):
            shutil.rmtree(self.work)
        os.makedirs(self.work)
        log(f"generating a {self.args.size} corpus")
        gen = timed([self.args.generator, "corpus", "--seed", "1", "--size", self.args.size,
                     "--out", self.corpus, "--json"])
        self.summary = json.loads(gen.stdout)
        self.corpus_bytes = du(self.corpus)
        log(f"corpus: {self.summary['sessions']} sessions, {mb(self.corpus_bytes):.0f} MB")

    def publish(self):
        """First publish: ingest + first sync on machine A, against zstd -3 + BLAKE3 over the
        same JSONL (the practical limit of reading, compressing and hashing the bytes once)."""
        self.agentsync("a", "init", "--origin", "bench-a00001")
        # Machine A's agents write into the corpus: `sync` (without --no-ingest) reads it.
        with open(os.path.join(self.work, "a", "config.toml"), "w") as f:
            f.write(f'claude_projects = ["{self.corpus}/claude/projects"]\n'
                    f'codex_sessions = ["{self.corpus}/codex/sessions"]\n')
        ingest = self.agentsync("a", "ingest", self.corpus)
        first = self.agentsync("a", "sync", self.shared, "--no-ingest")
        report = json.loads(first.stdout)
        total = ingest.seconds + first.seconds
        files = files_under(self.corpus)
        listing = os.path.join(self.work, "files.txt")
        with open(listing, "w") as f:
            f.write("\n".join(files))
        hasher = "b3sum" if shutil.which("b3sum") else "sha256sum"
        pipeline = f"xargs -a {listing} -d '\\n' cat | zstd -3 -T1 -q -c | {hasher} >/dev/null"
        base = statistics.median(timed(pipeline, shell=True).seconds for _ in range(self.args.runs))
        mbps = mb(self.corpus_bytes) / ingest.seconds if ingest.seconds else 0
        self.row("ingest (parse, SQLite, FTS5)", ingest.seconds, "", None, "s",
                 f"{mbps:.0f} MB/s, peak RSS {ingest.rss_mb:.0f} MB")
        self.row("first sync: export + exchange", first.seconds, "", None, "s",
                 f"{report['exported']} artifacts, peak RSS {first.rss_mb:.0f} MB")
        self.row("first publish (ingest + sync)", total, f"zstd -3 + {hasher}", base, "s",
                 f"throughput {mb(self.corpus_bytes) / total:.0f} MB/s vs "
                 f"{mb(self.corpus_bytes) / base:.0f} MB/s")
        self.peak_rss = max(ingest.rss_mb, first.rss_mb)

    def noop(self):
        """No-op sync of a machine that is up to date: cost must not grow with the archive."""
        seconds, rss, results = median_of(
            self.args.runs, lambda: self.agentsync("a", "sync", self.shared, "--no-ingest"))
        requests = json.loads(results[-1].stdout)["requests"]
        self.row("no-op sync (publisher)", seconds, "", None, "s",
                 f"{requests} import requests, peak RSS {rss:.0f} MB")

    def import_all(self):
        """A second machine's first sync: fetch, verify and import the whole archive."""
        self.agentsync("b", "init", "--origin", "bench-b00001")
        first = self.agentsync("b", "sync", self.shared, "--no-ingest")
        report = json.loads(first.stdout)
        fetched = du(os.path.join(self.work, "b", "store"))
        self.row("import on an empty machine", first.seconds, "", None, "s",
                 f"{report['imported_sessions']} sessions, {report['imported_messages']} messages, "
                 f"peak RSS {first.rss_mb:.0f} MB")
        self.row("bytes a new machine downloads", fetched, "raw JSONL", self.corpus_bytes, "MB")
        seconds, rss, _ = median_of(
            self.args.runs, lambda: self.agentsync("b", "sync", self.shared, "--no-ingest"))
        self.row("no-op sync (importer)", seconds, "", None, "s", f"peak RSS {rss:.0f} MB")
        self.peak_rss = max(self.peak_rss, first.rss_mb, rss)

    def incremental(self):
        """One message appended to one session, then a sync: bytes written must follow the
        new message, not the session or the archive."""
        before = du(self.shared)
        count_before = len(files_under(self.shared))
        timed([self.args.generator, "append", "--out", self.corpus, "--seed", "7",
               "--messages", "1"])
        run = self.agentsync("a", "sync", self.shared)
        added = du(self.shared) - before
        new_files = len(files_under(self.shared)) - count_before
        self.row("append 1 message + sync (incl. ingest)", run.seconds, "", None, "s",
                 f"{new_files} new files, {added} bytes added to the target")

    def render(self):
        when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        cpu = platform.processor() or platform.machine()
        lines = [
            BEGIN,
            f"Run {when} on {os.cpu_count()} cores ({cpu}), corpus {self.args.size}: "
            f"{self.summary['sessions']} sessions, {self.summary.get('messages', '?')} messages, "
            f"{mb(self.corpus_bytes):.0f} MB of JSONL; median of {self.args.runs} runs where "
            f"repeatable; peak RSS of any agentsync process {self.peak_rss:.0f} MB.",
            "",
            "| scenario | agentsync | baseline | baseline value | ratio | notes |",
            "|---|---:|---|---:|---:|---|",
        ]
        for r in self.rows:
            lines.append("| " + " | ".join(str(c) for c in r) + " |")
        lines.append(END)
        return "\n".join(lines) + "\n"


def fmt(value, unit):
    if value is None:
        return ""
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "MB":
        return f"{mb(value):.1f} MB"
    return f"{value}"


def write_doc(doc, block):
    text = open(doc).read() if os.path.exists(doc) else "# Benchmarks\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + block.rstrip("\n") + tail
    else:
        text = text.rstrip("\n") + "\n\n## Whole-process benchmarks (scripts/bench)\n\n" + block
    with open(doc, "w") as f:
        f.write(text)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="1GB")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--work", default="/var/tmp/agentsync-bench")
    p.add_argument("--agentsync", required=True)
    p.add_argument("--generator", required=True)
    p.add_argument("--doc", help="write the table into this Markdown file")
    p.add_argument("--check", action="store_true", help="fail unless every row has a number")
    args = p.parse_args()
    suite = Suite(args)
    suite.prepare()
    for scenario in (suite.publish, suite.noop, suite.import_all, suite.incremental):
        log(scenario.__name__)
        scenario()
    block = suite.render()
    print(block)
    if args.check:
        empty = [r[0] for r in suite.rows if not r[1]]
        if empty:
            log(f"scenarios without numbers: {empty}")
            raise SystemExit(1)
    if args.doc:
        write_doc(args.doc, block)
    shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    main()
