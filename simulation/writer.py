"""Every file the simulator writes is written here (CSV or Parquet, truth, dirt, manifest).

Deterministic: no timestamps, fixed Parquet options, sorted JSON keys — the same inputs give
byte-identical files.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

_PARQUET_OPTIONS = {"compression": "zstd", "compression_level": 3, "use_dictionary": True, "write_statistics": True}
_MARKER = re.compile(rb"@@GBK(\d+)@@")


def _mis_encode(table: pa.Table, rows: np.ndarray, file_format: str) -> tuple[pa.Table, dict[int, bytes]]:
    """text_encoding dirt: Parquet gets U+FFFD characters; CSV gets a marker replaced by GBK bytes later."""
    if len(rows) == 0:
        return table, {}
    desc = table.column("description").combine_chunks()
    texts = desc.take(pa.array(rows)).to_pylist()
    gbk: dict[int, bytes] = {}
    if file_format == "parquet":
        new = ["\ufffd\ufffd" + t[2:] for t in texts]
    else:
        new = []
        for row, text in zip(rows.tolist(), texts, strict=True):
            raw = text.encode("gbk")
            try:
                raw.decode("utf-8")
                raw = "罚".encode("gbk") + raw  # 0xB7 cannot start a UTF-8 sequence
            except UnicodeDecodeError:
                pass
            gbk[row] = raw
            new.append(f"@@GBK{row}@@")
    mask = np.zeros(len(desc), dtype=bool)
    mask[rows] = True
    replaced = pc.replace_with_mask(desc, pa.array(mask), pa.array(new, type=pa.string()))
    return table.set_column(table.schema.get_field_index("description"), "description", replaced), gbk


def _csv_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _csv_bytes(data: pa.Table) -> bytes:
    """CSV rows without header: unquoted (fast path, pyarrow), or minimally quoted where a value needs it."""
    buffer = io.BytesIO()
    try:
        pcsv.write_csv(data, buffer, pcsv.WriteOptions(include_header=False, quoting_style="none"))
        return buffer.getvalue()
    except pa.ArrowInvalid:
        # a value holds a comma or quote (only in the small static tables): RFC 4180 minimal quoting
        text = io.StringIO()
        out = csv.writer(text, lineterminator="\n")
        for row in data.to_pylist():
            out.writerow([_csv_cell(v) for v in row.values()])
        return text.getvalue().encode("utf-8")


class CityWriter:
    """Streams the tables of a city into ``out_dir`` as CSV or Parquet, chunk by chunk."""

    def __init__(self, out_dir: Path, file_format: str) -> None:
        self.out_dir = Path(out_dir)
        self.file_format = file_format
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / "truth").mkdir(exist_ok=True)
        self._parquet: dict[str, pq.ParquetWriter] = {}
        self._csv: dict[str, io.BufferedWriter] = {}
        self.rows: dict[str, int] = {}

    def file_name(self, table: str) -> str:
        """File name of a table in the chosen format (``records.csv``)."""
        return f"{table}.{self.file_format}"

    def write(self, table: str, data: pa.Table, text_encoding_rows: np.ndarray | None = None) -> None:
        """Append ``data`` to ``table``; rows listed in text_encoding_rows get mis-encoded descriptions."""
        gbk: dict[int, bytes] = {}
        if text_encoding_rows is not None:
            data, gbk = _mis_encode(data, text_encoding_rows, self.file_format)
        self.rows[table] = self.rows.get(table, 0) + data.num_rows
        if self.file_format == "parquet":
            self._write_parquet(table, self.out_dir / self.file_name(table), data)
            return
        fh = self._csv.get(table)
        if fh is None:
            fh = open(self.out_dir / self.file_name(table), "wb")  # noqa: SIM115 (closed in close())
            fh.write((",".join(data.schema.names) + "\n").encode("utf-8"))
            self._csv[table] = fh
        payload = _csv_bytes(data)
        if gbk:
            payload = _MARKER.sub(lambda m: gbk[int(m.group(1))], payload)
        fh.write(payload)

    def write_truth(self, data: pa.Table) -> None:
        """Append rows to truth/true_risk.parquet (always Parquet)."""
        self.rows["truth/true_risk"] = self.rows.get("truth/true_risk", 0) + data.num_rows
        self._write_parquet("truth/true_risk", self.out_dir / "truth" / "true_risk.parquet", data)

    def _write_parquet(self, key: str, path: Path, data: pa.Table) -> None:
        writer = self._parquet.get(key)
        if writer is None:
            writer = pq.ParquetWriter(path, data.schema, **_PARQUET_OPTIONS)
            self._parquet[key] = writer
        writer.write_table(data, row_group_size=1_000_000)

    def write_dirt(self, rows: list[tuple[str, int, str, str, str]]) -> None:
        """truth/dirt.csv: file, row (1-based data row), record_id (uscc for subject rows), field, rule."""
        with open(self.out_dir / "truth" / "dirt.csv", "w", encoding="utf-8", newline="") as fh:
            out = csv.writer(fh, lineterminator="\n")
            out.writerow(["file", "row", "record_id", "field", "rule"])
            out.writerows(rows)

    def close(self) -> None:
        """Finish every open file."""
        for writer in self._parquet.values():
            writer.close()
        for fh in self._csv.values():
            fh.close()
        self._parquet.clear()
        self._csv.clear()

    def write_manifest(self, manifest: dict) -> dict:
        """manifest.json with the sha256 of every other file (sorted keys, no timestamps). Returns it."""
        files = {}
        for path in sorted(p for p in self.out_dir.rglob("*") if p.is_file() and p.name != "manifest.json"):
            digest = hashlib.sha256()
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
            files[path.relative_to(self.out_dir).as_posix()] = digest.hexdigest()
        manifest = {**manifest, "sha256": files}
        (self.out_dir / "manifest.json").write_text(
            json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        return manifest
