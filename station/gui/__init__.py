"""The station's desktop windows on PyQt6: the coding tool (``station code``) and the trial viewer
(``station view``).

Qt is the toolkit because PsychoPy already installs PyQt6 (no new dependency), its widgets give
coders what they expect from ELAN or Pupil Player (text fields that show validation where they
type, lists, docks, overlays), and its key events carry the key itself (``Qt.Key_Up``), not
whatever a HighGUI build reports for Shift.  The timeline is a plain ``QPainter`` widget rather
than pyqtgraph: it needs mark handles to drag and per-pixel min/max curve drawing for hour-long
trials, both a few lines in ``paintEvent``, and pyqtgraph is not installed with the station.
"""
