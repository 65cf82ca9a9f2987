"""The trial format's one reader (station.record.schema): readable frames, file names, identity,
the find_trial resolver, and sample naming/identity through a real export (issues #10, #13, #15)."""

import subprocess
import sys
import uuid
from pathlib import Path

import h5py
import numpy as np
import pytest

from station.checks import StationError
from station.record import schema

REPO = Path(__file__).resolve().parents[1]


# -- readable frames -----------------------------------------------------------------------------
def test_readable_frames_is_the_rows_present_in_frames_colour_and_depth(tmp_path):
    """A killed recording resizes the tables one after the other: only rows in all three count."""
    path = tmp_path / "trial-01.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset(schema.FRAMES, data=np.zeros(5, schema.FRAME_DTYPE))
        f.create_dataset(schema.COLOR, data=np.zeros((4, 2, 2, 3), np.uint8))
        f.create_dataset(schema.DEPTH, data=np.zeros((3, 2, 2), np.uint16))
    with h5py.File(path, "r") as f:
        assert schema.readable_frames(f) == 3
        assert len(schema.frames_table(f)) == 3
    with h5py.File(path, "r+") as f:  # depth complete, colour one behind
        del f[schema.DEPTH]
        f.create_dataset(schema.DEPTH, data=np.zeros((6, 2, 2), np.uint16))
    with h5py.File(path, "r") as f:
        assert schema.readable_frames(f) == 4


# -- trial file names ------------------------------------------------------------------------------
def test_trial_file_names_make_and_parse_one_pattern(tmp_path):
    assert schema.trial_file_name(3, "joy_1") == "trial-03-joy_1.h5"
    assert schema.trial_file_name(12) == "trial-12.h5"
    assert schema.parse_trial_file_name("trial-03-joy_1.h5") == (3, "joy_1")
    assert schema.parse_trial_file_name("trial-07.h5.writing") == (7, "")
    assert schema.parse_trial_file_name("sessions/P1/001/trial-101-a-b.h5") == (101, "a-b")
    assert schema.parse_trial_file_name("notes.h5") is None
    with pytest.raises(ValueError, match="non-negative integer"):
        schema.trial_file_name(-1)
    assert schema.next_trial_number(tmp_path) == 1
    (tmp_path / "trial-01.h5").touch()
    (tmp_path / "trial-04-x.h5.writing").touch()  # a killed recording still holds its number
    assert schema.next_trial_number(tmp_path) == 5


# -- identity ------------------------------------------------------------------------------------
def test_writer_stamps_a_uuid4_trial_id_and_identity_attributes(tmp_path):
    from station.process.demo import write_demo_trial

    folder = tmp_path / "sessions" / "P07" / "002"
    folder.mkdir(parents=True)
    (tmp_path / "other").mkdir()
    path = write_demo_trial(folder / "trial-03-funny.h5", n_frames=4,
                            attrs=schema.identity_attrs("P07", "002", 3, "funny"))
    with schema_open(path) as f:
        ident = schema.read_identity(f, path)
    assert uuid.UUID(ident.trial_id).version == 4
    assert (ident.participant, ident.session, ident.trial, ident.clip, ident.source) == ("P07", "002", 3, "funny",
                                                                                          "attributes")
    again = write_demo_trial(tmp_path / "other" / "trial-03-funny.h5", n_frames=4)
    with schema_open(again) as f:
        assert schema.read_identity(f).trial_id != ident.trial_id


def schema_open(path):
    from station.record.writer import open_trial

    return open_trial(path)


def test_identity_of_files_older_than_trial_ids_comes_from_the_path(tmp_path):
    old = tmp_path / "sessions" / "P07" / "002" / "trial-03-funny.h5"
    old.parent.mkdir(parents=True)
    with h5py.File(old, "w"):
        pass
    with h5py.File(old, "r") as f:
        ident = schema.read_identity(f, old)
    assert (ident.trial_id, ident.participant, ident.session, ident.trial, ident.clip) == ("", "P07", "002", 3, "funny")
    assert ident.source == "path"
    synth = tmp_path / "ds" / "sub04" / "trial-02.h5"
    synth.parent.mkdir(parents=True)
    with h5py.File(synth, "w") as f:
        f.attrs[schema.LEGACY_SUBJECT] = 4  # synthetic trials before identities
    with h5py.File(synth, "r") as f:
        assert (schema.read_identity(f, synth).participant, schema.read_identity(f, synth).trial) == ("sub04", 2)
    assert schema.read_identity(None, old).participant == "P07"  # unreadable file: the path only


def _ident(participant, session, name="trial-01-funny.h5", trial_id=None):
    return schema.TrialIdentity(trial_id if trial_id is not None else str(uuid.uuid4()), participant, session, 1,
                                "funny", f"/s/{participant}/{session}/{name}")


def test_find_trial_by_id_and_legacy_names_only_when_unambiguous():
    a, b, c = _ident("P1", "001"), _ident("P2", "001"), _ident("P1", "002", name="trial-02-sad.h5")
    trials = [a, b, c]
    assert schema.find_trial(b.trial_id, trials) is b
    assert schema.find_trial({"trial_id": a.trial_id, "trial": "renamed.h5"}, trials) is a  # the id decides
    assert schema.find_trial("trial-02-sad.h5", trials) is c  # a legacy name matching one trial
    assert schema.find_trial({"trial": "trial-01-funny.h5", "participant": "P2"}, trials) is b
    with pytest.raises(StationError, match=r"matches 2 trials.*P1.*P2.*add the columns trial_id"):
        schema.find_trial({"trial": "trial-01-funny.h5"}, trials)
    with pytest.raises(StationError, match="not among the 3 trial file"):
        schema.find_trial(str(uuid.uuid4()), trials)
    copy = schema.TrialIdentity(a.trial_id, "P1", "001", 1, "funny", "/backup/trial-01-funny.h5")
    with pytest.raises(StationError, match="in 2 files.*copied twice"):
        schema.find_trial(a.trial_id, trials + [copy])


# -- sample names ---------------------------------------------------------------------------------
def test_sample_names_unique_across_participants_and_sessions():
    from station.process.export import plan_names, subject_numbers

    trials = [_ident("sub01", "001"), _ident("sub02", "001"), _ident("sub01", "002")]
    names = plan_names(trials)
    got = {(t.participant, t.session): (names[t.path].subject, names[t.path].prefix) for t in trials}
    assert got == {("sub01", "001"): ("1", "s1_1"), ("sub01", "002"): ("1", "s2_1"), ("sub02", "001"): ("2", "1")}
    assert subject_numbers(["P07", "P10", "A3"]) == {"A3": "1", "P07": "2", "P10": "3"}  # pseudonyms: 1..N
    assert subject_numbers(["7", "sub12"]) == {"7": "7", "sub12": "12"}
    twins = [_ident("x", ""), schema.TrialIdentity("", "x", "", 1, "", "/other/trial-01.h5")]
    assert sorted(n.prefix for n in plan_names(twins).values()) == ["1", "1-2"]  # never the same name


# -- end to end: the exported database ------------------------------------------------------------
@pytest.mark.slow
def test_export_puts_every_sample_on_its_participant_and_session(tmp_path):
    """Three trials all named trial-01-funny.h5 (two participants, one with two sessions)."""
    from codingtrials import coding_trial

    from station.dataset import read_index, read_sample
    from station.process.coding import Annotation, write_coding

    sessions = tmp_path / "sessions"
    keys = [("sub01", "001"), ("sub02", "001"), ("sub01", "002")]
    onsets = {("sub01", "001"): 12, ("sub02", "001"): 14, ("sub01", "002"): 13}
    paths, idents = {}, {}
    for key in keys:
        paths[key] = coding_trial(sessions / key[0] / key[1] / "trial-01-funny.h5", key[0], key[1])
        with schema_open(paths[key]) as f:
            idents[key] = schema.read_identity(f, paths[key])
    rows = [Annotation("final", "trial-01-funny.h5", 1, onsets[k], onsets[k] + 4, onsets[k] + 12, "1+2",
                       trial_id=idents[k].trial_id) for k in keys]
    rows.append(Annotation("final", "trial-01-funny.h5", 2, 30, 32, 36, "12"))  # no trial id: whose?
    coding = tmp_path / "final.csv"
    write_coding(coding, rows)
    db = tmp_path / "db"
    cmd = [sys.executable, "-m", "station.cli", "process", str(sessions), "--coding", str(coding), "--out", str(db),
           "--no-ply"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the ambiguous legacy row is an error, reported
    out = " ".join((proc.stdout + proc.stderr).split())
    assert "matches 3 trials" in out and "trial_id" in out
    index = read_index(db)
    assert len(index) == 3
    got = {(r.participant, r.session): (r.subject, r.sample, r.onset, r.trial_id) for r in index}
    assert got == {("sub01", "001"): ("1", "s1_1_1", 12, idents["sub01", "001"].trial_id),
                   ("sub01", "002"): ("1", "s2_1_1", 13, idents["sub01", "002"].trial_id),
                   ("sub02", "001"): ("2", "1_1", 14, idents["sub02", "001"].trial_id)}
    for r in index:
        sample = read_sample(db, r)
        assert sample.frame_numbers[0] == r.onset
        assert (db / "samples" / f"sub0{r.subject}" / f"{r.sample}.h5").exists()
        assert (db / "2d" / "cropped" / f"sub0{r.subject}" / r.sample / f"reg_img{r.apex}.png").exists()
        with h5py.File(db / r.relpath, "r") as f:
            assert f.attrs["trial_id"] == r.trial_id and Path(f.attrs["trial_file"]) == paths[r.participant, r.session]
    header = (db / "micro-expression.csv").read_text(encoding="utf-8").splitlines()[0].split(",")
    assert header[:8] == ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units",
                          "Objective Class", "Estimated Emotion"]
    # nothing is ever overwritten: a second export into the same folder is refused
    again = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert again.returncode == 2 and "never overwritten" in " ".join(again.stderr.split())


def test_candidates_are_matched_by_trial_id_not_by_file_name(tmp_path):
    from station.process.spotting import Candidate, SpotResult, read_candidates, write_candidates

    a, b = _ident("P1", "001"), _ident("P2", "001")  # both trial-01-funny.h5
    results = [SpotResult(t.name, t.path, [Candidate(onset, onset + 2, onset + 6, 5.0, "micro")], np.zeros(0),
                          np.zeros(0), [], t.trial_id) for t, onset in ((a, 10), (b, 40))]
    path = write_candidates(tmp_path / "candidates.csv", results)
    assert [c.onset for c in read_candidates(path, b)] == [40]
    assert [c.onset for c in read_candidates(path, a.trial_id)] == [10]
    assert len(read_candidates(path)) == 2


def test_an_export_from_before_casme_headers_and_sub01_folders_still_reads(tmp_path):
    from station.dataset import read_index, sample_path

    (tmp_path / "micro-expression.csv").write_text(
        "subject,sample,onset,apex,offset,aus,objective_class,nonobjective_class,trial\n"
        "1,1_1_1,6,15,29,1+2+4,VI,surprise,trial-01.h5\n", encoding="utf-8")
    (tmp_path / "samples" / "1").mkdir(parents=True)
    (tmp_path / "samples" / "1" / "1_1_1.h5").touch()
    (record,) = read_index(tmp_path)
    assert (record.subject, record.sample, record.apex, record.objective_class) == ("1", "1_1_1", 15, "VI")
    assert record.folder == "sub01" and sample_path(tmp_path, record) == tmp_path / "samples" / "1" / "1_1_1.h5"
