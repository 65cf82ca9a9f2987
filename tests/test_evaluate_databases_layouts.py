"""CASME II, SAMM and SMIC folders in their published layouts, with each quirk: what is loaded and noted."""

from __future__ import annotations

import shutil

import pytest

import dblayouts
from station.checks import StationError
from station.evaluate.loaders import LoadOptions, detect_format, load_database


def _notes_of(db, subject, sample):
    return [n.text for n in db.notes if n.sample == f"{subject}/{sample}"]


def _record(db, subject, sample):
    return next(r for r in db.refs if r.record.subject == subject and r.record.sample == sample)


@pytest.fixture(scope="module")
def casme2(tmp_path_factory):
    root = tmp_path_factory.mktemp("CASME2")
    return root, dblayouts.casme2(root)


def test_casme2_coding_sheet_found_next_to_objective_classes_and_both_read(casme2):
    root, quirks = casme2
    assert detect_format(root) == "casme2"
    db = load_database(root)
    assert db.title == "CASME II" and db.fps == 200.0
    assert db.images == "cropped (Cropped)"  # the stated default
    assert len(db.refs) == 18  # 3 subjects x 3 classes x 2; the row without a folder is skipped
    assert {r.subject for r in db.records} == {"sub01", "sub02", "sub03"}  # spelled as the database does
    rec = _record(db, "sub01", "EP06_01f").record  # a disgust sample, objective class 4 in the other file
    assert (rec.nonobjective_class, rec.objective_class) == ("disgust", "IV")
    assert "objective class I-VII (CASME2-ObjectiveClasses.xlsx)" == db.label_sources["objective"]
    assert db.label_sources["nonobjective"].startswith("estimated emotion")
    assert any("no folder" in n.text for n in db.notes if n.sample == "sub03/EP99_99")


def test_casme2_fallbacks_are_applied_and_listed_per_sample(casme2):
    root, quirks = casme2
    db = load_database(root)
    subject, sample, mid = quirks["apex /"]
    ref = _record(db, subject, sample)
    assert ref.record.apex == mid and len(ref.frames) == 10
    assert any("apex '/'" in t and f"middle frame {mid}" in t for t in _notes_of(db, subject, sample))
    subject, sample, last = quirks["offset 0"]
    ref = _record(db, subject, sample)
    assert ref.record.offset == last and len(ref.frames) == 10  # the folder's 10 frames, not more
    assert any("offset '0'" in t for t in _notes_of(db, subject, sample))
    subject, sample, last = quirks["offset < onset"]
    ref = _record(db, subject, sample)
    assert ref.record.offset == last
    assert any("< onset" in t and "typo" in t for t in _notes_of(db, subject, sample))
    subject, sample, lost = quirks["missing frame"]
    ref = _record(db, subject, sample)
    assert len(ref.frames) == 9 and not any(f.endswith(f"reg_img{lost}.jpg") for f in ref.frames)
    assert any("1 frame(s) missing" in t and f"({lost})" in t for t in _notes_of(db, subject, sample))
    assert ref.load().frame_numbers.tolist() == [n for n in range(lost - 3, lost + 7) if n != lost]
    subject, sample, aus = quirks["AU12"]
    assert _record(db, subject, sample).record.aus == aus
    assert {r.aus for r in db.records} >= {"4+L10", "R12", "12"}
    # a sample without any quirk has no note at all
    assert _notes_of(db, "sub03", "EP02_03f") == []
    loaded = _record(db, "sub02", "EP02_02f").load()
    assert loaded.timestamps_ms[1] - loaded.timestamps_ms[0] == pytest.approx(5.0)  # 200 fps: real times


def test_casme2_raw_set_is_chosen_explicitly_never_mixed(casme2, tmp_path):
    root, _ = casme2
    raw = load_database(root, options=LoadOptions(images="raw"))
    assert raw.images == "raw (CASME2_RAW_selected)"
    assert all("CASME2_RAW_selected" in f for ref in raw.refs for f in ref.frames)
    assert all("/Cropped/" in f for ref in load_database(root).refs for f in ref.frames)
    assert raw.refs[0].load().cropped.shape[1:] == (48, 48)  # the raw pictures, not the crops
    assert load_database(root).refs[0].load().cropped.shape[1:] == (32, 32)
    partial = tmp_path / "CASME2"
    shutil.copytree(root, partial)
    shutil.rmtree(partial / "Cropped" / "sub02")  # one subject only in the raw set
    with pytest.raises(StationError, match=r"cropped image set 'Cropped' has no folder for subject\(s\) 2"):
        load_database(partial)
    assert len(load_database(partial, options=LoadOptions(images="raw")).refs) == 18
    shutil.rmtree(partial / "Cropped")
    with pytest.raises(StationError, match="no cropped image set.*--images raw"):
        load_database(partial)


def test_casme2_without_objective_file_says_so(tmp_path):
    dblayouts.casme2(tmp_path, n_subjects=2, per_class=1, objective_file=False, raw=False)
    db = load_database(tmp_path)
    assert "objective" not in db.label_sources
    assert all(r.objective_class == "" for r in db.records)
    assert any("no objective classes" in n for n in db.notes)


def test_samm_title_rows_text_subjects_and_objective_column(tmp_path):
    quirks = dblayouts.samm(tmp_path)
    assert detect_format(tmp_path) == "samm"
    db = load_database(tmp_path)
    assert db.images == "cropped (SAMM_CROP)"
    assert {r.subject for r in db.records} == {"006", "007", "008"}
    rec = _record(db, "006", "006_3_1").record
    assert (rec.onset, rec.apex, rec.offset) == (5200, 5204, 5209)
    assert (rec.nonobjective_class, rec.objective_class, rec.aus) == ("Surprise", "II", "12A")
    subject, sample, text = quirks["or AUs"]
    assert _record(db, subject, sample).record.aus == text
    assert any("not FACS notation" in t for t in _notes_of(db, subject, sample))
    assert load_database(tmp_path, options=LoadOptions(images="raw")).images == "raw (SAMM)"


def test_samm_without_objective_column_loads_for_three_classes(tmp_path):
    dblayouts.samm(tmp_path, n_subjects=2, per_class=1, objective_column=False)
    db = load_database(tmp_path)
    assert len(db.refs) == 6 and "objective" not in db.label_sources
    assert db.label_sources["3class"].startswith("positive / negative / surprise")


def test_smic_folder_names_give_labels_and_subsets(tmp_path):
    dblayouts.smic(tmp_path, subsets=("HS", "NIR"))
    assert detect_format(tmp_path) == "smic"
    db = load_database(tmp_path)
    assert db.title == "SMIC-HS" and db.fps == 100.0 and db.images.startswith("cropped")
    assert len(db.refs) == 18 and {r.subject for r in db.records} == {"s1", "s2", "s3"}
    rec = _record(db, "s1", "s1_ne_01").record
    assert rec.nonobjective_class == "negative" and (rec.onset, rec.offset) == (20200, 20209)
    assert rec.apex == 20205 and any("no apex" in t for t in _notes_of(db, "s1", "s1_ne_01"))
    nir = load_database(tmp_path, options=LoadOptions(smic_set="nir", images="raw"))
    assert nir.title == "SMIC-NIR" and nir.fps == 25.0
    assert nir.refs[0].load().timestamps_ms[1] - nir.refs[0].load().timestamps_ms[0] == pytest.approx(40.0)
    with pytest.raises(StationError, match="no VIS folder"):
        load_database(tmp_path, options=LoadOptions(smic_set="vis"))


def test_station_export_is_casme2_shaped(tmp_path):
    """The station's index and 2d/cropped folders are what a CASME II script reads (issue 15, item 5)."""
    from station.dataset import read_index, read_sample, write_sample_images
    from station.evaluate.synthetic import make_database

    make_database(tmp_path, n_subjects=2, n_samples=6, classes=("I", "II", "IV"), size=32, n_frames=8)
    for rec in read_index(tmp_path):
        sample = read_sample(tmp_path, rec)
        write_sample_images(tmp_path, rec, sample.cropped, sample.cropped, sample.frame_numbers)
    assert detect_format(tmp_path) == "station"
    as_casme = load_database(tmp_path, "casme2")
    station = load_database(tmp_path)
    assert [(r.subject, r.sample, r.onset, r.apex, r.offset, r.objective_class, r.nonobjective_class)
            for r in as_casme.records] == [(r.subject, r.sample, r.onset, r.apex, r.offset, r.objective_class,
                                            r.nonobjective_class) for r in station.records]
    assert as_casme.images == "cropped (cropped)" and "station export read as CASME II" in as_casme.notes[0]
    assert load_database(tmp_path, "casme2", LoadOptions(images="raw")).images == "raw (uncropped)"


def test_smic_hs_folder_without_its_set_parent(tmp_path):
    dblayouts.smic(tmp_path / "SMIC", n_subjects=2, per_class=1, cropped=False)
    assert len(load_database(tmp_path / "SMIC" / "SMIC_all_raw", "smic", LoadOptions(images="raw")).refs) == 6
    shutil.move(str(tmp_path / "SMIC" / "SMIC_all_raw" / "HS"), str(tmp_path / "HS"))
    db = load_database(tmp_path / "HS", "smic")
    assert len(db.refs) == 6 and db.images.startswith("image set as given")
    assert "raw or cropped is unknown" in db.notes[0]
