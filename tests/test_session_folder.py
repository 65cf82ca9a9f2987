"""Session folders: numbered, never overwritten, session.json atomic and migratable."""

from __future__ import annotations

import json
import threading

import pytest

from station.checks import StationError
from station.session import SCHEMA_VERSION, create_session, load_session, migrate


def test_numbered_sessions_never_overwrite(tmp_path):
    s1 = create_session(tmp_path, "P01", age=25, sex="female", protocol={"name": "demo"})
    (s1.folder / "trial-01-x.h5").write_bytes(b"data")
    s2 = create_session(tmp_path, "P01")
    assert (s1.session_id, s2.session_id) == ("001", "002")
    assert s2.data["previous_sessions"] == ["001"]
    assert (s1.folder / "trial-01-x.h5").read_bytes() == b"data"
    data = json.loads((s1.folder / "session.json").read_text())
    assert data["participant"] == {"id": "P01", "age": 25, "sex": "female"}
    assert data["schema_version"] == SCHEMA_VERSION and "station" in data["software"]
    assert s2.trial_path(3, "clip-a").name == "trial-03-clip-a.h5"


def test_concurrent_creation_gets_distinct_folders(tmp_path):
    out = []
    threads = [threading.Thread(target=lambda: out.append(create_session(tmp_path, "P02").session_id)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(out) == [f"{i:03d}" for i in range(1, 7)]


def test_atomic_appends_survive_reload(tmp_path):
    s = create_session(tmp_path, "P03")
    s.log_event("clip_first_frame", 12.5, clip="a")
    s.add_self_report({"clip": "a", "emotion": "happiness", "intensity": 4})
    s.add_trial({"number": 1, "clip": "a"})
    again = load_session(s.folder)
    assert again.data["self_reports"][0]["emotion"] == "happiness"
    assert again.data["events"][0]["host_time"] == 12.5
    assert sorted(p.name for p in s.folder.iterdir()) == ["session.journal.jsonl", "session.json"]  # no temp files


@pytest.mark.parametrize("pid", ["", "John Smith", "../x", "a" * 40, "P/1"])
def test_bad_participant_ids(tmp_path, pid):
    with pytest.raises(StationError, match="participant id must be"):
        create_session(tmp_path, pid)


def test_bad_age_and_sex(tmp_path):
    with pytest.raises(StationError, match="age must be"):
        create_session(tmp_path, "P04", age=3)
    with pytest.raises(StationError, match="sex must be one of"):
        create_session(tmp_path, "P04", sex="m")


def test_migration_from_version_0_and_refusal_of_newer(tmp_path):
    old = {"participant": "P05", "reports": [{"clip": "a", "emotion": "anger"}], "events": []}
    new = migrate(old)
    assert new["schema_version"] == 1 and new["participant"]["id"] == "P05"
    assert new["self_reports"] == old["reports"] and new["trials"] == []
    folder = tmp_path / "P05" / "001"
    folder.mkdir(parents=True)
    (folder / "session.json").write_text(json.dumps(old))
    assert load_session(folder).participant == "P05"
    (folder / "session.json").write_text(json.dumps({"schema_version": 99}))
    with pytest.raises(StationError, match="schema_version 99"):
        load_session(folder)
    (folder / "session.json").write_text("{torn")
    with pytest.raises(StationError, match="cannot be read"):
        load_session(folder)
    with pytest.raises(StationError, match="not a session folder"):
        load_session(tmp_path)
