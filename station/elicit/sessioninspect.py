"""`station inspect SESSION_DIR`: what a session really holds, read from its journal.

Prints per planned clip its outcome (complete / incomplete / not shown), how much of the
film was shown, the trial files and the reasons, then the session's status and how it
ended.  The journal is the truth (``session.json`` can be stale after a hard stop); trial
files found in the folder but missing from the journal (a SIGKILL while recording) are
listed too, with how many frames they hold.
"""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from station.console import console
from station.elicit.verdict import COMPLETE, RUNNING_STATUSES, session_verdict
from station.session import load_session

#: `station inspect SESSION_DIR` exit codes: 0 complete, 3 incomplete (same as `station run`).
EXIT_COMPLETE, EXIT_INCOMPLETE = 0, 3


def inspect_session(folder: str | Path) -> int:
    session = load_session(folder)
    data = session.data
    status, verdicts = session_verdict(data)
    info = session.journal_info
    table = Table(title=f"session {session.participant}/{session.session_id}: {status}", title_justify="left")
    for col in ("clip", "outcome", "film shown", "files", "reasons"):
        table.add_column(col, overflow="fold")
    for v in verdicts:
        style = "green" if v.outcome == COMPLETE else "yellow" if v.outcome == "not shown" else "red"
        table.add_row(v.clip, f"[{style}]{v.outcome}[/]", v.shown, ", ".join(v.files) or "—",
                      "; ".join(v.reasons) or "—")
    console.print(table)
    ended = data.get("stop_reason") or ""
    if data.get("status") in RUNNING_STATUSES:
        ended = f"hard stop: the journal ends while the session was {data.get('status')!r}"
    console.print(f"ended: {ended or '—'}   exit code recorded: {data.get('exit_code', '—')}")
    console.print(f"journal: {session.journal_path.name if info else '(none: session.json only)'}"
                  + (f", {info.get('lines')} lines" if info else "")
                  + (f", last line {info['torn_line']} torn by the hard stop (skipped)" if info.get("torn_line") else "")
                  + f"; {len(data.get('events', []))} events, {len(data.get('self_reports', []))} self-reports")
    listed = {t.get("file") for t in data.get("trials", [])}
    for path in sorted(session.folder.glob("trial-*.h5*")):
        if path.name not in listed:
            console.print(f"[yellow]trial file not in the journal[/] (recording cut by a hard stop): {path.name}"
                          f"  {_frames(path)}")
    return EXIT_COMPLETE if status == COMPLETE else EXIT_INCOMPLETE


def _frames(path: Path) -> str:
    try:
        from station.record.inspect import summarize

        s = summarize(path)
        return f"{s.frames} readable frames" + ("" if s.complete else " (not finalised)")
    except Exception as err:  # noqa: BLE001 - a damaged file is reported, not fatal
        return f"(unreadable: {err})"
