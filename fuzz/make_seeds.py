"""Write the seed inputs of the fuzz targets for files ooc writes itself (`spill_read`,
`cache_read`, `index_read`) into corpus/<target>/.

Run from the repository root, after `cargo build --release` (the sidecars come from `ooc index
create`), with a Python that has pyarrow:

    benches/.venv/bin/python fuzz/make_seeds.py

The seeds are committed; this script is how they were made, and remakes them when a format
changes. Spill seeds use the framing of `ooc_engine::fuzzing::spill_read`: one byte choosing
the narrowing, then each message as a little-endian u32 length and its bytes.
"""

import datetime
import decimal
import os
import struct
import subprocess
import sys
import tempfile

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def write(target, name, data):
    os.makedirs(os.path.join(CORPUS, target), exist_ok=True)
    with open(os.path.join(CORPUS, target, name), "wb") as f:
        f.write(data)


def stream_messages(schema, batches, compression):
    """The encapsulated IPC messages of a stream: the schema, then each batch with the
    dictionaries it needs (as the spill writer's checks group them)."""
    sink = pa.BufferOutputStream()
    options = ipc.IpcWriteOptions(compression=compression)
    with ipc.new_stream(sink, schema, options=options) as writer:
        for batch in batches:
            writer.write_batch(batch)
    reader = ipc.MessageReader.open_stream(sink.getvalue())
    messages, pending = [], b""
    for message in reader:
        data = message.serialize().to_pybytes()
        if message.type == "dictionary batch":
            pending += data
        else:
            messages.append(pending + data)
            pending = b""
    return messages


def framed(choice, messages):
    out = bytes([choice])
    for m in messages:
        out += struct.pack("<I", len(m)) + m
    return out


def spill_seeds():
    # Choice 0: narrowed by type (DECIMAL(15,2) as Int64, Utf8View as Utf8).
    stored = pa.schema(
        [("a", pa.int64()), ("d", pa.int64()), ("s", pa.utf8()), ("t", pa.date32())]
    )
    day = datetime.date(1995, 3, 15)
    batches = [
        pa.record_batch(
            [
                pa.array([1, None, 3, 2**40]),
                pa.array([1234, -5, None, 99999999]),
                pa.array(["x", None, "a longer string value", ""]),
                pa.array([day, None, day, day]),
            ],
            schema=stored,
        ),
        pa.record_batch([pa.array([], t) for t in stored.types], schema=stored),
    ]
    for compression, name in [("zstd", "by_type_zstd"), (None, "by_type_plain")]:
        write("spill_read", name, framed(0, stream_messages(stored, batches, compression)))
    # Choice 1: fitted to small values (Int16 for `a` and `d`).
    fitted = pa.schema(
        [("a", pa.int16()), ("d", pa.int16()), ("s", pa.utf8()), ("t", pa.date32())]
    )
    batch = pa.record_batch(
        [
            pa.array([1, -2, None], pa.int16()),
            pa.array([7, None, 300], pa.int16()),
            pa.array(["p", "q", None]),
            pa.array([day, day, None]),
        ],
        schema=fitted,
    )
    write("spill_read", "fitted_zstd", framed(1, stream_messages(fitted, [batch], "zstd")))
    # Choice 2: a dictionary column (its dictionary message before each batch).
    dictionary = pa.schema([("k", pa.dictionary(pa.int32(), pa.utf8()))])
    batch = pa.record_batch(
        [pa.array(["red", "green", None, "red"]).dictionary_encode()], schema=dictionary
    )
    write("spill_read", "dictionary", framed(2, stream_messages(dictionary, [batch, batch], "zstd")))


def cache_seeds():
    table = pa.table(
        {
            "k": pa.array([1, 2, None, 4], pa.int64()),
            "price": pa.array(
                [decimal.Decimal("1.25"), None, decimal.Decimal("-3.50"), decimal.Decimal("0")],
                pa.decimal128(15, 2),
            ),
            "name": pa.array(["alpha", "beta", None, "delta"], pa.string_view()),
            "tag": pa.array(["a", "b", "a", None]).dictionary_encode(),
            "day": pa.array([datetime.date(1998, 12, 1)] * 4),
        }
    )
    for compression, name in [("zstd", "zstd"), (None, "plain")]:
        sink = pa.BufferOutputStream()
        options = ipc.IpcWriteOptions(compression=compression)
        with ipc.new_file(sink, table.schema, options=options) as writer:
            for batch in table.to_batches(max_chunksize=2):
                writer.write_batch(batch)
        write("cache_read", name, sink.getvalue().to_pybytes())
    empty = pa.BufferOutputStream()
    with ipc.new_file(empty, pa.schema([("x", pa.int32())])):
        pass
    write("cache_read", "empty", empty.getvalue().to_pybytes())


def index_seeds(ooc):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "data.parquet")
        n = 600
        table = pa.table(
            {
                "id": pa.array(range(n), pa.int64()),
                "few": pa.array([i % 7 for i in range(n)], pa.int32()),
                "name": pa.array([None if i % 11 == 0 else f"n{i % 50:03}" for i in range(n)]),
                "day": pa.array([datetime.date(1995, 1, 1) + datetime.timedelta(i % 400) for i in range(n)]),
            }
        )
        pq.write_table(table, path, row_group_size=200)
        subprocess.run(
            [ooc, "index", "create", path, "--columns", "id,few,name,day"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        with open(os.path.join(tmp, ".data.parquet.ooc-index"), "rb") as f:
            write("index_read", "four_columns", f.read())
        subprocess.run([ooc, "index", "drop", path], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(
            [ooc, "index", "create", path, "--columns", "few"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        with open(os.path.join(tmp, ".data.parquet.ooc-index"), "rb") as f:
            write("index_read", "frequent_values", f.read())


def main():
    ooc = os.path.join(ROOT, "target", "release", "ooc")
    if not os.path.exists(ooc):
        sys.exit(f"{ooc} is missing: run `cargo build --release` first")
    spill_seeds()
    cache_seeds()
    index_seeds(ooc)


if __name__ == "__main__":
    main()
