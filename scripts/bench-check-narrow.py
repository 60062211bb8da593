#!/usr/bin/env python3
"""`datatrace check` on scattered differences, beside pt-table-sync, in the same run.

    python3 scripts/bench-check-narrow.py [--rows 1000000] [--rounds 2] [--bin target/release/datatrace]

Starts a private MariaDB (data in a temporary directory, removed at the end), builds the
1,000,000-row, 10-column table of the check benchmark (datatrace-server/benches/check.rs)
and its copy, then puts 3,000 scattered differences in the copy: 1,000 rows changed, 1,000
deleted, 1,000 extra (one of each kind every 1,000 keys, so every 10,000-row chunk
differs). Then, interleaved, `--rounds` times each:

- `datatrace check` (sub-range narrowing, the default),
- `datatrace check --narrow-rows 0` (whole differing chunks read row by row: before),
- `pt-table-sync --print` (finds the same rows and prints the statements that fix them),

and once each the repairs: `datatrace check --repair --delete-extra` and
`pt-table-sync --execute`, each on a freshly corrupted copy, with an exact comparison
afterwards. Prints wall seconds, client CPU seconds (user + system of the process and its
children), CPU seconds per million rows and the server's CPU seconds (mariadbd, from
/proc). pt-table-sync comes from Debian's percona-toolkit (`apt-get install
percona-toolkit`).
"""

import argparse
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time

DDL = """CREATE TABLE t (
  id BIGINT NOT NULL PRIMARY KEY, a INT NOT NULL, b BIGINT, c VARCHAR(64), d DECIMAL(18,4),
  e DATETIME(6), f TEXT, g INT UNSIGNED, h VARCHAR(32), i DOUBLE) DEFAULT CHARSET=utf8mb4"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="dt-bench-check-")
        data = os.path.join(self.dir, "data")
        tmp = os.path.join(self.dir, "tmp")
        os.mkdir(tmp)
        user = ["--user=root"] if os.geteuid() == 0 else []
        subprocess.run(
            ["mariadb-install-db", "--no-defaults", f"--datadir={data}", f"--tmpdir={tmp}",
             "--auth-root-authentication-method=normal", "--skip-test-db"] + user,
            check=True, capture_output=True)
        self.port = free_port()
        self.socket = os.path.join(self.dir, "sock")
        self.proc = subprocess.Popen(
            ["mariadbd", "--no-defaults", f"--datadir={data}", f"--tmpdir={tmp}",
             f"--socket={self.socket}", f"--port={self.port}", "--bind-address=127.0.0.1",
             "--innodb-buffer-pool-size=1G", "--innodb-flush-log-at-trx-commit=2",
             "--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci",
             "--skip-name-resolve", "--max-connections=500"] + user,
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "log"), "w"))
        for _ in range(600):
            if subprocess.run(self.client() + ["-e", "SELECT 1"], capture_output=True).returncode == 0:
                return
            time.sleep(0.2)
        sys.exit("mariadbd did not start: " + open(os.path.join(self.dir, "log")).read())

    def client(self):
        return ["mariadb", "--no-defaults", "-h127.0.0.1", f"-P{self.port}", "-uroot", "-N", "-B"]

    def sql(self, text):
        r = subprocess.run(self.client() + ["-e", text], capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"SQL failed: {r.stderr}\n{text[:300]}")
        return r.stdout

    def cpu(self):
        """mariadbd's CPU seconds so far."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def run(cmd, db, cwd=None):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server = db.cpu()
    t = time.monotonic()
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    wall = time.monotonic() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, db.cpu() - server, r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--bin", default="target/release/datatrace")
    args = ap.parse_args()
    bin_path = os.path.abspath(args.bin)
    rows = args.rows
    db = Server()
    try:
        # Source keys are even: extra target rows take odd keys between them.
        db.sql(f"CREATE DATABASE src; CREATE DATABASE dst; USE src; {DDL}; "
               f"INSERT INTO t SELECT seq * 2, seq % 1000, seq * 7919, CONCAT('name-', seq), seq / 3, "
               f"'2024-01-01' + INTERVAL seq SECOND + INTERVAL (seq % 1000000) MICROSECOND, "
               f"RPAD(CONCAT('text ', MD5(seq)), 200, ' lorem ipsum'), seq % 65536, LEFT(SHA1(seq), 20), seq / 7 "
               f"FROM seq_1_to_{rows};")

        def corrupt():
            db.sql("DROP TABLE IF EXISTS dst.t; CREATE TABLE dst.t LIKE src.t; "
                   "INSERT INTO dst.t SELECT * FROM src.t; "
                   "UPDATE dst.t SET c = CONCAT(c, '!') WHERE id DIV 2 % 1000 = 17; "
                   "DELETE FROM dst.t WHERE id DIV 2 % 1000 = 517; "
                   "INSERT INTO dst.t SELECT id + 1, a, b, c, d, e, f, g, h, i FROM src.t "
                   "WHERE id DIV 2 % 1000 = 917; "
                   "CHECKSUM TABLE src.t; CHECKSUM TABLE dst.t;")

        work = tempfile.mkdtemp(prefix="dt-bench-check-job-")
        url = f"mysql://root@127.0.0.1:{db.port}"
        with open(os.path.join(work, "job.toml"), "w") as f:
            f.write(f'name = "bench"\n[source]\ntype = "mysql"\nurl = "{url}/src"\ntables = ["t"]\n'
                    f'[target]\ntype = "mysql"\nurl = "{url}/dst"\ncreate_table = false\n')
        dsn_src = f"h=127.0.0.1,P={db.port},u=root,D=src,t=t"
        dsn_dst = "D=dst,t=t"
        check = [bin_path, "check", "job.toml", "--recheck-delay", "0"]
        pt = ["pt-table-sync", "--no-version-check", "--no-check-triggers", "--no-foreign-key-checks"]
        tools = [
            ("datatrace check (narrowing, default)", check),
            ("datatrace check --narrow-rows 0 (before)", check + ["--narrow-rows", "0"]),
            ("pt-table-sync --print", pt + ["--print", dsn_src, dsn_dst]),
        ]
        corrupt()
        k = rows // 1000
        print(f"{rows} rows x 10 columns; {3 * k} differences ({k} changed, {k} missing, {k} extra)")
        print(f"{'':45} {'wall s':>7} {'client CPU s':>13} {'CPU s/1M rows':>14} {'server CPU s':>13}")
        results = {}
        for rnd in range(args.rounds):
            for name, cmd in tools:
                wall, cpu, server, r = run(cmd, db, cwd=work)
                if "datatrace" in name:
                    ok = r.returncode == 1 and f"{k} missing, {k} extra, {k} different" in r.stdout
                else:
                    # pt-table-sync exits 2 when it found differences.
                    ok = r.returncode == 2 and r.stdout.count("\n") >= 3 * k
                if not ok:
                    sys.exit(f"{name}: unexpected result ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
                results.setdefault(name, []).append((wall, cpu, server))
                print(f"{name:45} {wall:7.2f} {cpu:13.2f} {cpu * 1e6 / rows:14.2f} {server:13.2f}", flush=True)
        # Repairs, each on a freshly corrupted copy, compared exactly afterwards.
        exact = ("SELECT COUNT(*) FROM src.t s JOIN dst.t d USING (id) WHERE s.a <=> d.a AND "
                 "s.b <=> d.b AND BINARY s.c <=> BINARY d.c AND s.d <=> d.d AND s.e <=> d.e AND "
                 "BINARY s.f <=> BINARY d.f AND s.g <=> d.g AND BINARY s.h <=> BINARY d.h AND s.i <=> d.i; "
                 "SELECT COUNT(*) FROM dst.t")
        for name, cmd in [
            ("datatrace check --repair --delete-extra", check + ["--repair", "--delete-extra"]),
            ("pt-table-sync --execute", pt + ["--execute", dsn_src, dsn_dst]),
        ]:
            corrupt()
            wall, cpu, server, r = run(cmd, db, cwd=work)
            same = db.sql(exact).split()
            if r.returncode not in (0, 2):
                sys.exit(f"{name}: failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
            verdict = "exact" if same == [str(rows), str(rows)] else \
                f"NOT exact: {rows - int(same[0])} rows differ, {same[1]} rows"
            print(f"{name:45} {wall:7.2f} {cpu:13.2f} {cpu * 1e6 / rows:14.2f} {server:13.2f}  {verdict}", flush=True)
        shutil.rmtree(work, ignore_errors=True)
    finally:
        db.stop()


if __name__ == "__main__":
    main()
