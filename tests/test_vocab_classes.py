"""Objective classes, emotion words, the 3-class mapping: one table, class VII one meaning."""

from station.vocab import classes
from station.process import selection


def test_every_objective_class_has_an_emotion_and_a_rules_row():
    rules = selection.load_rules()
    assert tuple(rules.objective) == classes.OBJECTIVE_CLASSES
    assert set(classes.CLASS_EMOTION) == set(classes.OBJECTIVE_CLASSES)
    assert set(classes.CLASS_EMOTION.values()) <= set(classes.EMOTIONS)
    assert classes.OTHERS not in classes.OBJECTIVE_CLASSES


def test_class_vii_is_contempt_and_negative_and_never_others():
    assert classes.CLASS_EMOTION["VII"] == "contempt"
    assert classes.three_class("VII") == classes.three_class("7") == classes.three_class("contempt") == "negative"
    assert classes.three_class("Others") is None and classes.is_other(" others ")
    # the rules' VII row is the contempt row of the non-objective table (unilateral 12 / 14)
    rules = selection.load_rules()
    contempt = {c.units for c in rules.nonobjective["contempt"]}
    assert contempt <= {c.units for c in rules.objective["VII"]}


def test_three_class_mapping_and_synonyms():
    assert classes.three_class(" Happiness") == classes.three_class("happy") == classes.three_class("I") == "positive"
    assert classes.three_class("II") == classes.three_class("surprised") == "surprise"
    assert {classes.three_class(c) for c in ("III", "IV", "V", "VI", "repression", "tense")} == {"negative"}
    assert classes.three_class("3.0") == "negative"  # a spreadsheet number
    assert classes.canonical_emotion("Scared ") == "fear"
    assert classes.canonical_emotion("glee", {"glee": "happiness"}) == "happiness"
    assert set(classes.TARGET_EMOTIONS) <= set(classes.EMOTIONS)


def test_the_default_rules_speak_the_vocabulary():
    rules = selection.load_rules()
    assert set(rules.nonobjective) <= set(classes.EMOTIONS)
    assert set(classes.EMOTION_SYNONYMS.values()) <= set(classes.EMOTIONS)
    assert rules.others == classes.OTHERS and rules.objective_fallback == "VII"
