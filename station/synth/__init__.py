"""Synthetic participants for the virtual D415: real face photos, FACS action units, ground truth.

``SyntheticParticipant(subject, seed)`` (participant.py) is the scene ``open_camera("virtual")``
films; the event dict stored in ``/ground_truth/events`` is documented in events.py and
docs/synth.md.
"""
