#!/usr/bin/env python3
"""The h2o.ai db-benchmark groupby data (G1_<N>_<K>_0_0: no nulls, unsorted), written as
Parquet: id1..id3 strings of K, K and N/K values, id4..id6 integers of K, K and N/K
values, v1 (1..5) and v2 (1..15) integers, v3 a float with 6 decimals in [0, 100).
The same distributions as the benchmark's R generator, drawn with numpy.

    python3 benches/sql/h2o_data.py 10000000 100 /tmp/h2o/G1_1e7_1e2_0_0.parquet
"""
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def main():
    n, k, out = int(float(sys.argv[1])), int(float(sys.argv[2])), sys.argv[3]
    rng = np.random.default_rng(108)
    nk = max(n // k, 1)

    def ids(count, width):
        values = np.array([f"id{i:0{width}d}" for i in range(1, count + 1)])
        return pa.array(values[rng.integers(0, count, n)])

    table = pa.table(
        {
            "id1": ids(k, 3),
            "id2": ids(k, 3),
            "id3": ids(nk, 10),
            "id4": pa.array(rng.integers(1, k + 1, n, dtype=np.int64)),
            "id5": pa.array(rng.integers(1, k + 1, n, dtype=np.int64)),
            "id6": pa.array(rng.integers(1, nk + 1, n, dtype=np.int64)),
            "v1": pa.array(rng.integers(1, 6, n, dtype=np.int64)),
            "v2": pa.array(rng.integers(1, 16, n, dtype=np.int64)),
            "v3": pa.array(np.round(rng.uniform(0, 100, n), 6)),
        }
    )
    pq.write_table(table, out, row_group_size=1 << 20, compression="snappy")
    print(out, table.num_rows, "rows")


if __name__ == "__main__":
    main()
