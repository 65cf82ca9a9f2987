"""The databases ``station evaluate`` reads, each as it is shipped (see docs/evaluate.md).

* ``station``: the station's own export (``micro-expression.csv`` + ``samples/``), 2D + 3D;
* ``casme2``, ``samm``: FACS coding sheet + raw / cropped image sets (:mod:`.coded`);
* ``smic``: HS / VIS / NIR folders labelled by folder name (:mod:`.smic`);
* ``casme3``: CAS(ME)^3 Part A, RGB + depth through the station's 3D pipeline (:mod:`.casme3`).

:func:`station.evaluate.loaders.load_database` picks one; every loader returns a
:class:`~.base.Database` whose ``notes`` list each fallback with its sample.
"""

from station.evaluate.databases.base import Camera, Database, Note, SampleRef

__all__ = ["Camera", "Database", "Note", "SampleRef"]
