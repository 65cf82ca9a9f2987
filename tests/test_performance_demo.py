"""The demo's short session is the demo protocol itself, one clip, baseline not recorded."""

from station.demo import DEMO_PROTOCOL, short_protocol
from station.elicit.protocol import load_protocol


def test_short_protocol_keeps_the_demo_protocol_but_one_clip_and_no_baseline_recording(tmp_path):
    full = load_protocol(DEMO_PROTOCOL)
    short = load_protocol(short_protocol(tmp_path))
    assert [c for c in short.clips] == [full.clips[0]]
    assert short.record.baseline is False and short.record.clip is True
    assert (short.camera, short.self_report, short.rest) == (full.camera, full.self_report, full.rest)
