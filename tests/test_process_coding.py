"""Coding files: keyed by trial identity, saved on every change, undo, any common encoding."""

import pytest
from conftest import fill_disk

from station.checks import StationError
from station.process import coding

SUB01 = {"trial_id": "0b7e-sub01", "participant": "sub01", "session": "1", "name": "trial-01-funny.h5"}
SUB02 = {"trial_id": "44c1-sub02", "participant": "sub02", "session": "1", "name": "trial-01-funny.h5"}


def test_store_keeps_trials_with_the_same_file_name_apart_and_resumes(tmp_path):
    path = tmp_path / "codings" / "alice.csv"  # the folder does not exist yet
    store = coding.CodingStore(path, "alice")
    store.add(SUB01, 10, 14, 20, "1+2", "brows")
    store.set_cursor(SUB01, 33)
    again = coding.CodingStore(path, "alice")
    assert [(a.onset, a.participant, a.trial_id) for a in again.for_trial(SUB01)] == [(10, "sub01", "0b7e-sub01")]
    assert again.for_trial(SUB02) == []  # same file name, another participant: nothing leaks
    assert again.cursor(SUB01) == 33 and again.cursor(SUB02) is None
    with pytest.raises(StationError, match="belongs to coder"):
        coding.CodingStore(path, "bob")
    with pytest.raises(StationError, match="field apex"):
        store.add(SUB01, 10, 30, 20, "1")


def test_edit_delete_and_undo_are_saved_at_once(tmp_path):
    path = tmp_path / "c.csv"
    store = coding.CodingStore(path, "alice")
    store.add(SUB01, 10, 14, 20, "1+2")
    store.add(SUB01, 40, 44, 50, "12")
    store.update(SUB01, 1, aus="1+2+5", offset=22)
    store.remove(SUB01, 2)
    assert [(a.sample, a.offset, a.aus) for a in coding.read_coding(path)] == [(1, 22, "1+2+5")]
    assert store.undo()  # the delete
    assert [(a.sample, a.aus) for a in coding.read_coding(path)] == [(1, "1+2+5"), (2, "12")]
    assert store.undo()  # the edit
    assert [(a.sample, a.offset, a.aus) for a in coding.read_coding(path)] == [(1, 20, "1+2"), (2, 50, "12")]
    assert store.undo() and store.undo() and not store.undo()
    assert coding.read_coding(path) == []


def test_legacy_rows_without_trial_id_are_adopted_only_when_unambiguous(tmp_path):
    path = tmp_path / "old.csv"
    coding.write_coding(path, [coding.Annotation("alice", "trial-01-funny.h5", 1, 5, 6, 9, "1")])
    store = coding.CodingStore(path, "alice")
    assert store.for_trial(SUB01) == [] and len(store.legacy_rows(SUB01)) == 1
    assert store.adopt_legacy(SUB01, unambiguous=False) == 0
    assert store.adopt_legacy(SUB01, unambiguous=True) == 1
    assert [a.participant for a in coding.read_coding(path)] == ["sub01"]


HEADER = "coder;trial;sample;onset;apex;offset;aus;notes\n"
ROW = "alice;trial-01.h5;1;10;14;20;1+2;sourcils levés\n"


@pytest.mark.parametrize("encoding,sep,eol", [("utf-8", ",", "\n"), ("utf-8-sig", ",", "\r\n"), ("utf-16", ",", "\r\n"),
                                              ("latin-1", ",", "\n"), ("cp1252", ";", "\r\n"), ("utf-8-sig", ";", "\r\n"),
                                              ("utf-16", "\t", "\r\n")])
def test_coding_csv_in_any_common_encoding_and_separator(tmp_path, encoding, sep, eol):
    path = tmp_path / "excel.csv"
    path.write_bytes((HEADER + ROW).replace(";", sep).replace("\n", eol).encode(encoding))
    (ann,) = coding.read_coding(path)
    assert (ann.coder, ann.onset, ann.apex, ann.offset, ann.aus, ann.notes) == (
        "alice", 10, 14, 20, "1+2", "sourcils levés")


def test_onset_after_offset_is_refused_with_file_row_and_field(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(HEADER.replace(";", ",") + "alice,t.h5,1,10,12,20,1,\nalice,t.h5,2,30,25,20,1,\n")
    with pytest.raises(StationError, match=r"bad.csv:3, field onset: onset 30 is after offset 20"):
        coding.read_coding(path)
    path.write_text(HEADER.replace(";", ",") + "alice,t.h5,1,ten,12,20,1,\n")
    with pytest.raises(StationError, match=r"bad.csv:2, field onset: 'ten' is not a frame number"):
        coding.read_coding(path)
    path.write_text("coder,trial,onset\nalice,t.h5,1\n")
    with pytest.raises(StationError, match="lacks the column"):
        coding.read_coding(path)


def test_trials_recorded_before_ids_are_told_apart_by_name_participant_and_session(tmp_path):
    old01 = {"trial_id": "", "participant": "sub01", "session": "1", "name": "trial-01-funny.h5"}
    old02 = {**old01, "participant": "sub02"}
    store = coding.CodingStore(tmp_path / "c.csv", "alice")
    store.add(old01, 10, 12, 14, "1")
    again = coding.CodingStore(tmp_path / "c.csv", "alice")
    assert [a.onset for a in again.for_trial(old01)] == [10] and again.for_trial(old02) == []
    assert again.legacy_rows(old02) == []  # the row says whose it is: not "legacy"


def test_a_change_the_full_disk_refuses_is_not_made_and_is_reported(tmpfs):
    """A real tmpfs that fills up while coding: the change is refused, the file keeps what was saved."""
    mount = tmpfs("64k")
    store = coding.CodingStore(mount / "alice.csv", "alice")
    store.add(SUB01, 10, 14, 20, "1+2")
    fill_disk(mount)  # what else fills a lab disk
    with pytest.raises(StationError, match="cannot save the coding file"):
        store.add(SUB01, 30, 34, 40, "12", "a long note " * 50)
    assert [a.onset for a in store.for_trial(SUB01)] == [10]
    assert [a.onset for a in coding.read_coding(mount / "alice.csv")] == [10]


def test_an_edit_made_elsewhere_meanwhile_is_not_overwritten(tmp_path):
    path = tmp_path / "alice.csv"
    store = coding.CodingStore(path, "alice")
    store.add(SUB01, 10, 14, 20, "1+2")
    text = path.read_text().replace("1+2", "1+2+5")  # the coder fixes an AU in a spreadsheet
    path.write_text(text + "")
    import os

    os.utime(path, ns=(1, 1))  # a different modification time, whatever the clock resolution
    with pytest.raises(StationError, match="changed by another program"):
        store.add(SUB01, 30, 34, 40, "12")
    assert [a.aus for a in coding.read_coding(path)] == ["1+2+5"]
    assert [a.onset for a in coding.CodingStore(path, "alice").for_trial(SUB01)] == [10]
