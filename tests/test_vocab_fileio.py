"""Atomic writes and tables as Excel, LibreOffice and Numbers save them."""

import codecs
import os

import pytest

from station.checks import StationError
from station.fileio import (append_line_fsync, atomic_path, atomic_write_bytes, atomic_write_json, atomic_write_text,
                            digest, file_identity, is_temp, read_table, temp_path)


def test_atomic_write_replaces_whole_and_leaves_no_temp(tmp_path):
    path = tmp_path / "s.json"
    atomic_write_text(path, "old")
    atomic_write_json(path, {"a": 1})
    assert path.read_text() == '{\n "a": 1\n}\n'
    assert sorted(os.listdir(tmp_path)) == ["s.json"]
    assert temp_path(path).name == f".s.{os.getpid()}.tmp.json" and is_temp(temp_path(path)) and not is_temp(path)


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "x.txt"
    atomic_write_text(path, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert path.read_text() == "old" and sorted(os.listdir(tmp_path)) == ["x.txt"]


def test_append_line_fsync(tmp_path):
    path = tmp_path / "j.jsonl"
    append_line_fsync(path, '{"op": 1}')
    append_line_fsync(path, '{"op": 2}\n')
    assert path.read_text() == '{"op": 1}\n{"op": 2}\n'


@pytest.mark.parametrize("encoding,sep", [("utf-8", ","), ("utf-8-sig", ";"), ("utf-16", "\t"), ("cp1252", ";")])
def test_tables_in_every_common_encoding_and_separator(tmp_path, encoding, sep):
    path = tmp_path / "t.csv"
    text = sep.join(["Onset", "Emotion"]) + "\r\n" + sep.join(["12", "Überraschung"]) + "\r\n\r\n"
    path.write_bytes(text.encode(encoding))
    table = read_table(path, required=["onset"])
    assert table.columns == ["onset", "Emotion"] and len(table) == 1
    row = table.rows[0]
    assert row["Emotion"] == "Überraschung" and row.value("onset", int) == 12 and row.line == 2
    if encoding == "utf-16":
        assert path.read_bytes().startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))


def test_table_errors_name_file_line_and_column(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("onset,apex\n1,2\n3,x\n")
    with pytest.raises(StationError, match=r"c.csv:1: .*lacks the column\(s\) offset"):
        read_table(path, required=["onset", "offset"])
    row = read_table(path, required=["onset", "apex"]).rows[1]
    with pytest.raises(StationError, match=r"c.csv:3, column apex: 'x' is not a frame number"):
        row.value("apex", int, "a frame number")
    with pytest.raises(StationError, match="does not exist"):
        read_table(tmp_path / "none.csv")


def test_cache_identity_follows_rewrites_and_digest_separates_parts(tmp_path):
    path = tmp_path / "s.h5"
    atomic_write_bytes(path, b"one")
    first = file_identity(path)
    atomic_write_bytes(path, b"two!")  # an atomic replace: new size and inode time
    assert file_identity(path) != first and str(path.resolve()) in first
    assert digest("ab", "c") != digest("a", "bc") and len(digest(b"x")) == 32
    with pytest.raises(StationError, match="sample file .*none.h5"):
        file_identity(tmp_path / "none.h5", "sample file")
