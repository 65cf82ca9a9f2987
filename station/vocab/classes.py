"""Classes and labels: objective classes I-VII, emotion words, the 3-class mapping, label sets.

Objective classes (Davison et al. 2018, "Objective classes for micro-facial expression
recognition"; the DSME-3D paper's Table 3) group AU combinations, not emotions; each class is
*linked* to one emotion.  Which AU combinations make which class is data a lab may edit, so it
lives in the rules file (``station/process/rules.yaml``, read by
:mod:`station.process.selection`); this module names the classes and what they stand for.

Class VII -- one meaning everywhere
-----------------------------------
Two meanings were in use: "others" (``synth/events.py``, ``synth/preview.py``) and "contempt"
(``evaluate/synthetic.py``, the label docstring).  We decide **VII = contempt and the other
coded AU movements**, linked emotion ``contempt``:

* The paper's Table 3 lists, per objective class, its *standard AUs* and sample count: VII is
  a class with its own AUs, like I-VI, not a bin for unlabelled samples.  The rules file's VII
  row is exactly the contempt AUs of FACS/EMFACS -- unilateral lip-corner pull and dimpler
  (``L12``, ``R12``, ``L14``, ``R14``), ``14``, ``12+15`` -- and Davison's seven classes follow
  Ekman's seven universal emotions, the seventh being contempt.
* Davison's class VII also gathers coded movements that fit none of I-VI, which is why the
  rules file sends such movements to VII (``objective_fallback: VII``; a test pins
  ``"24" -> VII``).  That is an AU statement ("coded, but not I-VI"), not an emotion.
* A sample is ``Others`` (:data:`OTHERS`) when no AU is coded or its emotion cannot be
  determined -- the paper's "Others" (section 3.4).  ``Others`` is never class VII.
* In the 3-class set (MEGC 2019 composite) VII is ``negative``, as contempt is there.

So a synthetic VII event is labelled ``contempt``, and a coded VII sample's non-objective
emotion still comes from the AU / self-report rules (it may be ``repression``, ``tense``...).
"""

from __future__ import annotations

#: Objective classes in order (Davison et al.); the AU rows are in ``process/rules.yaml``.
OBJECTIVE_CLASSES = ("I", "II", "III", "IV", "V", "VI", "VII")

#: The label of a sample with no coded AU, or whose emotion cannot be determined (paper 3.4).
OTHERS = "Others"

#: Objective class -> the emotion it is linked to (see the module docstring for VII).
CLASS_EMOTION = {"I": "happiness", "II": "surprise", "III": "anger", "IV": "disgust", "V": "sadness",
                 "VI": "fear", "VII": "contempt"}

#: Every emotion word the station uses as a label (non-objective classes, CASME II / SAMM style).
EMOTIONS = ("happiness", "surprise", "anger", "disgust", "sadness", "fear", "contempt", "repression", "tense")

#: Emotions a film may target (the paper's five, plus fear for labs that add films).
TARGET_EMOTIONS = ("happiness", "anger", "sadness", "surprise", "disgust", "fear")
#: Choices on the self-report form: "main emotion felt" (section 3.2 of the paper).
REPORT_EMOTIONS = ("happiness", "sadness", "anger", "fear", "surprise", "disgust", "other/none")

#: Words clip manifests, self-report forms and databases use for the same emotion.
EMOTION_SYNONYMS = {
    "happy": "happiness", "joy": "happiness", "amusement": "happiness",
    "sad": "sadness",
    "surprised": "surprise",
    "disgusted": "disgust",
    "afraid": "fear", "scared": "fear",
    "angry": "anger",
}

#: Spellings that mean "no class" (compared lower-case).
OTHER_WORDS = frozenset({"others", "other", "", "other/none", "none"})

#: The 3-class label set (paper 4.3.3, MEGC 2019 composite).
THREE_CLASSES = ("negative", "positive", "surprise")
#: Emotion -> 3-class label.
EMOTION_THREE_CLASS = {"happiness": "positive", "surprise": "surprise",
                       **{e: "negative" for e in EMOTIONS if e not in ("happiness", "surprise")}}

_ROMAN_ARABIC = {c: str(i) for i, c in enumerate(OBJECTIVE_CLASSES, start=1)}

#: Any canonical label (objective class as roman or arabic numeral, emotion word or synonym,
#: a 3-class label itself) -> 3-class label; compare with :func:`canonical` keys.
THREE_CLASS: dict[str, str] = {
    **{cls.lower(): EMOTION_THREE_CLASS[CLASS_EMOTION[cls]] for cls in OBJECTIVE_CLASSES},
    **{_ROMAN_ARABIC[cls]: EMOTION_THREE_CLASS[CLASS_EMOTION[cls]] for cls in OBJECTIVE_CLASSES},
    **EMOTION_THREE_CLASS,
    **{word: EMOTION_THREE_CLASS[emotion] for word, emotion in EMOTION_SYNONYMS.items()},
    **{label: label for label in THREE_CLASSES},
}

#: Label sets of the baseline (paper 4.3) and how reports title them.
LABEL_SETS = ("objective", "nonobjective", "3class")
LABEL_SET_TITLES = {"objective": "objective classes", "nonobjective": "non-objective classes",
                    "3class": "3 classes (positive / negative / surprise)"}


def canonical(label: object) -> str:
    """Labels compared case- and blank-insensitively (``' Happiness'`` == ``'happiness'``).

    Spreadsheet numbers are read as text without their ``.0`` (``3.0`` -> ``'3'``).
    """
    text = str(label).strip()
    if text.endswith(".0") and text[:-2].isdigit():
        text = text[:-2]
    return text.lower()


def canonical_emotion(word: object, synonyms: dict[str, str] | None = None) -> str:
    """The emotion a word means (``'Happy '`` -> ``'happiness'``); unknown words come back canonical.

    ``synonyms`` (lower-case keys) are consulted before :data:`EMOTION_SYNONYMS`, so a lab's
    rules file can add its own words.
    """
    text = canonical(word)
    if synonyms and text in synonyms:
        return synonyms[text]
    return EMOTION_SYNONYMS.get(text, text)


def three_class(label: object) -> str | None:
    """3-class label of an objective class or emotion (``'VII'`` -> ``'negative'``); ``None`` if none."""
    return THREE_CLASS.get(canonical(label))


def is_other(label: object) -> bool:
    """True for the spellings of "no class" (``Others``, ``other``, empty)."""
    return canonical(label) in OTHER_WORDS
