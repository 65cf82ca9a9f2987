"""The station's shared vocabularies, each defined once (issue #10).

Low-floor modules: they import nothing from the rest of the station except
:mod:`station.checks`, so every area (camera, elicit, record, process, evaluate, synth, deep)
can use them without an import cycle.

* :mod:`~station.vocab.classes` -- objective classes I-VII, emotion words and synonyms,
  the 3-class mapping, label-set names.
* :mod:`~station.vocab.facs` -- FACS action-unit notation (parse / format).
* :mod:`~station.vocab.landmarks` -- 68 / 49 / 23 landmark layouts, regions, rigid points.
* :mod:`~station.vocab.markers` -- marker (protocol / recorder event) names.
* :mod:`~station.vocab.participant` -- participant fields, sexes, id validation.

Extend a vocabulary here, never by spelling its words again where they are used.
"""
