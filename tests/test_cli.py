"""The one ``station`` command: every area's verbs are there, and bad options are explained."""

from __future__ import annotations

from conftest import run_station

VERBS = ("record", "inspect", "export-pointclouds", "synth", "run", "check", "selfreport", "code", "view", "spot",
         "agree", "process", "evaluate", "demo")


def test_help_lists_every_verb():
    proc = run_station("--help", check=True)
    for verb in VERBS:
        assert f"    {verb}" in proc.stdout, verb


def test_demo_refuses_unknown_steps_naming_the_allowed_ones(tmp_path):
    proc = run_station("demo", "--out", str(tmp_path), "--skip", "session,coffee")
    assert proc.returncode == 2
    assert "--skip accepts session, check, synth, spot, process, evaluate; got coffee" in proc.stderr
    assert "Traceback" not in proc.stderr
