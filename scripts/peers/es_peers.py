"""The hand-written scripts people use to move data between MySQL and OpenSearch, as the peer
benchmark (datatrace-server/benches/peers.rs, run by scripts/bench-peers.sh) runs them.

    python es_peers.py MODE

MODE is one of:
  mysql-es-bulk       pymysql (streaming cursor) -> opensearchpy.helpers.bulk
  mysql-es-parallel   pymysql (streaming cursor) -> opensearchpy.helpers.parallel_bulk (4 threads)
  es-es-reindex       opensearchpy.helpers.reindex (scroll + bulk through this client)
  es-es-server        the engine's own _reindex, started and awaited by opensearch-py
  es-mysql-scroll     opensearchpy.helpers.scan (scroll) -> pymysql executemany, a commit per page

Settings come from the environment: ES_URL, MYSQL_HOST, MYSQL_PORT, MYSQL_DB, TABLE (the MySQL
table), SRC_INDEX, DST_INDEX, CHUNK (documents per bulk request or page; 1000). Prints
`RESULT <documents or rows>` at the end. Installed by scripts/bench-peers.sh into a private
virtualenv (opensearch-py, pymysql from PyPI).
"""
import os
import sys
import time

import pymysql
import pymysql.cursors
from opensearchpy import OpenSearch, helpers

CHUNK = int(os.environ.get("CHUNK", "1000"))


def es():
    return OpenSearch(os.environ["ES_URL"], timeout=600)


def mysql():
    return pymysql.connect(
        host=os.environ["MYSQL_HOST"],
        port=int(os.environ["MYSQL_PORT"]),
        user="root",
        database=os.environ["MYSQL_DB"],
        charset="utf8mb4",
    )


def mysql_actions(index):
    """Every row of the table as an index action, streamed (SSDictCursor: no full fetch)."""
    conn = mysql()
    with conn.cursor(pymysql.cursors.SSDictCursor) as cur:
        cur.execute(f"SELECT * FROM `{os.environ['TABLE']}`")
        for row in cur:
            yield {"_index": index, "_id": str(row["id"]), "_source": row}
    conn.close()


def main(mode):
    client = es()
    src, dst = os.environ.get("SRC_INDEX"), os.environ.get("DST_INDEX")
    if mode == "mysql-es-bulk":
        n, errors = helpers.bulk(client, mysql_actions(dst), chunk_size=CHUNK, stats_only=True)
        assert errors == 0, errors
    elif mode == "mysql-es-parallel":
        n = 0
        for ok, item in helpers.parallel_bulk(client, mysql_actions(dst), thread_count=4, chunk_size=CHUNK):
            assert ok, item
            n += 1
    elif mode == "es-es-reindex":
        n, errors = helpers.reindex(
            client, src, dst, chunk_size=CHUNK, scroll="5m", bulk_kwargs={"stats_only": True}
        )
        assert errors == 0, errors
    elif mode == "es-es-server":
        body = {"source": {"index": src, "size": CHUNK}, "dest": {"index": dst}}
        # As a task, polled: a request held open for the whole reindex came back with more
        # headers than Python's http.client accepts ("got more than 100 headers").
        task = client.reindex(body=body, wait_for_completion=False)["task"]
        while True:
            t = client.tasks.get(task_id=task)
            if t.get("completed"):
                break
            time.sleep(0.05)
        assert "error" not in t, t["error"]
        r = t["response"]
        assert not r.get("failures"), r["failures"][:3]
        n = r["created"] + r["updated"]
    elif mode == "es-mysql-scroll":
        conn = mysql()
        table, n, page, cols = os.environ["TABLE"], 0, [], None
        with conn.cursor() as cur:
            for hit in helpers.scan(client, index=src, size=CHUNK, scroll="5m"):
                doc = hit["_source"]
                if cols is None:
                    cols = list(doc)
                    sql = f"INSERT INTO `{table}` ({', '.join(f'`{c}`' for c in cols)}) VALUES ({', '.join(['%s'] * len(cols))})"
                page.append([doc.get(c) for c in cols])
                if len(page) == CHUNK:
                    n += cur.executemany(sql, page)
                    conn.commit()
                    page = []
            if page:
                n += cur.executemany(sql, page)
                conn.commit()
        conn.close()
    else:
        sys.exit(f"unknown mode {mode!r}: see the top of {__file__}")
    print(f"RESULT {n}")


if __name__ == "__main__":
    main(sys.argv[1])
