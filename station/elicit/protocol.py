"""Elicitation protocols and the stimuli manifest: load, validate, explain errors.

A protocol (``protocols/*.yaml``) says what a participant sees, in which order, what is
recorded and when they answer forms; the stimuli manifest (``stimuli/manifest.yaml``) says
what each film is.  Both are hand-written by lab staff, so every error names the file, the
line and the field, and says what is allowed (see :mod:`station.elicit.yamlmarks`).
The format is documented with examples in docs/elicit.md.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from station.camera.settings import POWER_LINE, VISUAL_PRESETS, CameraSettings
from station.checks import StationError
from station.elicit.yamlmarks import Located, load_located
from station.vocab.classes import REPORT_EMOTIONS, TARGET_EMOTIONS

#: Questions a self-report form can ask.
QUESTIONS = ("emotion", "intensity", "movements")
ORDER_POLICIES = ("fixed", "random", "latin_square")
REST_MODES = ("fixed", "key")
GENERATED_KINDS = ("demo",)
PROTOCOL_SCHEMA = 1
MANIFEST_SCHEMA = 1

_MISSING = object()


def _get(loc: Located, path: tuple, types: type | tuple, default: Any = _MISSING, *,
         allowed: tuple | None = None, minimum: float | None = None, maximum: float | None = None) -> Any:
    """Fetch ``path`` from ``loc.data`` and check its type, choices and range."""
    node: Any = loc.data
    for part in path[:-1]:
        if isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = node.get(part, {}) if isinstance(node, dict) else {}
    if not isinstance(node, dict) or path[-1] not in node or node[path[-1]] is None and default is not _MISSING:
        if default is _MISSING:
            raise loc.error(path, "is required.")
        return default
    value = node[path[-1]]
    types_ = types if isinstance(types, tuple) else (types,)
    if float in types_ and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, types_) or (isinstance(value, bool) and bool not in types_):
        names = " or ".join(t.__name__ for t in types_)
        raise loc.error(path, f"must be {names}, got {value!r} ({type(value).__name__}).")
    if allowed is not None and value not in allowed:
        raise loc.error(path, f"must be one of {', '.join(map(repr, allowed))}, got {value!r}.")
    if minimum is not None and value < minimum or maximum is not None and value > maximum:
        rng = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise loc.error(path, f"must be {rng}, got {value!r}.")
    return value


def _no_unknown(loc: Located, path: tuple, mapping: Any, known: tuple) -> None:
    """Typos such as ``sesconds:`` must not be silently ignored."""
    if not isinstance(mapping, dict):
        raise loc.error(path, f"must be a mapping with keys {', '.join(known)}, got {type(mapping).__name__}.")
    for key in mapping:
        if key not in known:
            raise loc.error(path + (key,), f"is not a known field; allowed here: {', '.join(known)}.")


# ---------------------------------------------------------------------------------------------
# stimuli manifest
@dataclass(frozen=True)
class Clip:
    """One stimulus film as the manifest describes it."""

    id: str
    path: Path
    emotion: str
    intensity: float | None  # mean elicited intensity 1-5 from pilot raters
    duration: float | None  # seconds; checked against the decoded file
    source: str
    licence: str
    generated: str | None
    manifest: Located = field(repr=False, compare=False, hash=False)
    index: int = 0

    def where(self, name: str = "") -> str:
        path = ("clips", self.index) + ((name,) if name else ())
        return self.manifest.where(path)


@dataclass(frozen=True)
class Manifest:
    file: Path
    clips: dict[str, Clip]

    def get(self, clip_id: str) -> Clip:
        return self.clips[clip_id]


CLIP_FIELDS = ("id", "file", "emotion", "intensity", "duration", "source", "licence", "generated", "notes")


def load_manifest(path: str | Path) -> Manifest:
    """Read and validate a stimuli manifest; file paths are relative to the manifest."""
    loc = load_located(path, "stimuli manifest")
    _no_unknown(loc, (), loc.data, ("schema", "clips", "notes"))
    schema = _get(loc, ("schema",), int, MANIFEST_SCHEMA)
    if schema != MANIFEST_SCHEMA:
        raise loc.error(("schema",), f"must be {MANIFEST_SCHEMA} (this station's manifest format), got {schema}.")
    items = _get(loc, ("clips",), list)
    if not items:
        raise loc.error(("clips",), "must list at least one clip.")
    clips: dict[str, Clip] = {}
    for i, item in enumerate(items):
        p = ("clips", i)
        _no_unknown(loc, p, item, CLIP_FIELDS)
        clip_id = _get(loc, p + ("id",), str)
        if not clip_id.replace("-", "").replace("_", "").isalnum():
            raise loc.error(p + ("id",), f"must contain only letters, digits, '-' and '_', got {clip_id!r}.")
        if clip_id in clips:
            raise loc.error(p + ("id",), f"{clip_id!r} is already used by an earlier clip.")
        file = _get(loc, p + ("file",), str)
        clips[clip_id] = Clip(
            id=clip_id,
            path=(loc.file.parent / file).resolve() if not Path(file).is_absolute() else Path(file),
            emotion=_get(loc, p + ("emotion",), str, allowed=TARGET_EMOTIONS),
            intensity=_get(loc, p + ("intensity",), float, None, minimum=1, maximum=5),
            duration=_get(loc, p + ("duration",), float, None, minimum=0.1),
            source=_get(loc, p + ("source",), str, ""),
            licence=_get(loc, p + ("licence",), str, ""),
            generated=_get(loc, p + ("generated",), str, None, allowed=GENERATED_KINDS),
            manifest=loc,
            index=i,
        )
    return Manifest(loc.file, clips)


# ---------------------------------------------------------------------------------------------
# protocol
@dataclass(frozen=True)
class Instructions:
    welcome: str
    before_clip: str
    end: str


@dataclass(frozen=True)
class Order:
    policy: str
    seed: int


@dataclass(frozen=True)
class Baseline:
    seconds: float
    text: str


@dataclass(frozen=True)
class Rest:
    mode: str  # 'fixed': exactly `seconds`; 'key': at least `seconds`, then until the continue key
    seconds: float
    max_seconds: float | None
    text: str


@dataclass(frozen=True)
class SelfReport:
    after_each_clip: tuple[str, ...]
    at_end: tuple[str, ...]
    emotions: tuple[str, ...] = REPORT_EMOTIONS


@dataclass(frozen=True)
class RecordParts:
    baseline: bool
    clip: bool
    rest: bool
    after_clip_seconds: float


@dataclass(frozen=True)
class Keys:
    continue_: str
    abort: tuple[str, ...]
    pause: str
    yes: str
    no: str


@dataclass(frozen=True)
class Display:
    size: tuple[int, int]
    fullscreen: bool
    screen: int
    background: str
    movie_size: tuple[int, int] | None


@dataclass(frozen=True)
class CameraMode:
    width: int
    height: int
    fps: int
    #: How the D415 is configured (``camera.settings``): applied at start, read back, stored per trial.
    settings: CameraSettings = field(default_factory=CameraSettings)


@dataclass(frozen=True)
class Protocol:
    file: Path
    name: str
    description: str
    manifest: Manifest
    clips: tuple[Clip, ...]
    instructions: Instructions
    order: Order
    baseline: Baseline
    rest: Rest
    self_report: SelfReport
    record: RecordParts
    keys: Keys
    display: Display
    camera: CameraMode
    sound: bool
    raw: dict = field(repr=False, default_factory=dict)  # as written, copied into session.json
    text: str = field(repr=False, default="")


PROTOCOL_FIELDS = ("schema", "name", "description", "stimuli", "clips", "instructions", "order", "baseline",
                   "rest", "self_report", "record", "keys", "display", "camera", "sound")

DEFAULT_WELCOME = (
    "Welcome, and thank you for taking part.\n\n"
    "You will watch a few short films. While watching, please keep a neutral face and try to "
    "suppress any facial expression, even when you feel something strongly. Keep your head still "
    "and look at the screen.\n\n"
    "Good performance is rewarded with a prize. The films' contents are confidential.\n\n"
    "You may stop any film at any time by pressing ESCAPE, and you may end the session whenever you wish.\n\n"
    "Press SPACE to begin."
)


def load_protocol(path: str | Path) -> Protocol:
    """Read and validate a protocol and the manifest it names (one reader per section)."""
    loc = load_located(path, "protocol")
    d = loc.data
    _no_unknown(loc, (), d, PROTOCOL_FIELDS)
    schema = _get(loc, ("schema",), int, PROTOCOL_SCHEMA)
    if schema != PROTOCOL_SCHEMA:
        raise loc.error(("schema",), f"must be {PROTOCOL_SCHEMA} (this station's protocol format), got {schema}.")
    manifest = _read_manifest(loc)
    return Protocol(
        file=loc.file, name=_get(loc, ("name",), str, loc.file.stem), description=_get(loc, ("description",), str, ""),
        manifest=manifest, clips=_read_clips(loc, manifest), instructions=_read_instructions(loc),
        order=_read_order(loc), baseline=_read_baseline(loc), rest=_read_rest(loc),
        self_report=_read_self_report(loc), record=_read_record(loc), keys=_read_keys(loc),
        display=_read_display(loc), camera=_read_camera(loc),
        sound=_get(loc, ("sound",), bool, True), raw=d, text=loc.file.read_text(encoding="utf-8"),
    )


def _section(loc: Located, name: str, known: tuple) -> dict:
    """The mapping under ``name`` (empty when absent), with unknown fields refused."""
    section = loc.data.get(name) or {}
    _no_unknown(loc, (name,), section, known)
    return section


def _read_manifest(loc: Located) -> Manifest:
    stimuli = _get(loc, ("stimuli",), str)
    manifest_path = Path(os.path.normpath(loc.file.parent / stimuli))
    if not manifest_path.exists():
        raise loc.error(("stimuli",), f"names {str(manifest_path)!r}, which does not exist.")
    return load_manifest(manifest_path)


def _read_clips(loc: Located, manifest: Manifest) -> tuple[Clip, ...]:
    clip_ids = _get(loc, ("clips",), (list, str))
    if isinstance(clip_ids, str):
        if clip_ids != "all":
            raise loc.error(("clips",), f"must be a list of clip ids or 'all', got {clip_ids!r}.")
        clip_ids = list(manifest.clips)
    if not clip_ids:
        raise loc.error(("clips",), "must list at least one clip.")
    clips: list[Clip] = []
    for i, cid in enumerate(clip_ids):
        if not isinstance(cid, str):
            raise loc.error(("clips", i), f"must be a clip id (text), got {cid!r}.")
        if cid not in manifest.clips:
            raise loc.error(("clips", i), f"{cid!r} is not in the stimuli manifest {manifest.file}; "
                                          f"known clips: {', '.join(manifest.clips)}.")
        if manifest.clips[cid] in clips:
            raise loc.error(("clips", i), f"{cid!r} is listed twice.")
        clips.append(manifest.clips[cid])
    return tuple(clips)


def _read_instructions(loc: Located) -> Instructions:
    _section(loc, "instructions", ("welcome", "before_clip", "end"))
    return Instructions(
        welcome=_get(loc, ("instructions", "welcome"), str, DEFAULT_WELCOME),
        before_clip=_get(loc, ("instructions", "before_clip"), str, ""),
        end=_get(loc, ("instructions", "end"), str, "Thank you! The session is over."),
    )


def _read_order(loc: Located) -> Order:
    _section(loc, "order", ("policy", "seed"))
    return Order(_get(loc, ("order", "policy"), str, "fixed", allowed=ORDER_POLICIES),
                 _get(loc, ("order", "seed"), int, 0))


def _read_baseline(loc: Located) -> Baseline:
    _section(loc, "baseline", ("seconds", "text"))
    return Baseline(_get(loc, ("baseline", "seconds"), float, 5.0, minimum=0),
                    _get(loc, ("baseline", "text"), str, "Please relax, keep a neutral face and look at the cross."))


def _read_rest(loc: Located) -> Rest:
    _section(loc, "rest", ("mode", "seconds", "max_seconds", "text"))
    rest = Rest(
        mode=_get(loc, ("rest", "mode"), str, "fixed", allowed=REST_MODES),
        seconds=_get(loc, ("rest", "seconds"), float, 30.0, minimum=0),
        max_seconds=_get(loc, ("rest", "max_seconds"), float, None, minimum=0),
        text=_get(loc, ("rest", "text"), str, "Please rest and relax until you feel calm again."),
    )
    if rest.max_seconds is not None and rest.max_seconds < rest.seconds:
        raise loc.error(("rest", "max_seconds"), f"({rest.max_seconds}) must not be shorter than rest.seconds ({rest.seconds}).")
    return rest


def _read_self_report(loc: Located) -> SelfReport:
    _section(loc, "self_report", ("after_each_clip", "at_end", "emotions"))
    after = tuple(_get(loc, ("self_report", "after_each_clip"), list, ["emotion", "intensity", "movements"]))
    at_end = tuple(_get(loc, ("self_report", "at_end"), list, []))
    for name, qs in (("after_each_clip", after), ("at_end", at_end)):
        for i, q in enumerate(qs):
            if q not in QUESTIONS:
                raise loc.error(("self_report", name, i), f"must be one of {', '.join(map(repr, QUESTIONS))}, got {q!r}.")
    emotions = tuple(_get(loc, ("self_report", "emotions"), list, list(REPORT_EMOTIONS)))
    for i, e in enumerate(emotions):
        if e not in REPORT_EMOTIONS:
            raise loc.error(("self_report", "emotions", i), f"unknown emotion {e!r}; allowed: {', '.join(REPORT_EMOTIONS)}.")
    return SelfReport(after, at_end, emotions)


def _read_record(loc: Located) -> RecordParts:
    _section(loc, "record", ("baseline", "clip", "rest", "after_clip_seconds"))
    record = RecordParts(
        baseline=_get(loc, ("record", "baseline"), bool, True),
        clip=_get(loc, ("record", "clip"), bool, True),
        rest=_get(loc, ("record", "rest"), bool, False),
        after_clip_seconds=_get(loc, ("record", "after_clip_seconds"), float, 1.0, minimum=0),
    )
    if record.rest and not record.clip:
        raise loc.error(("record", "rest"), "can only be true when record.clip is true (one file per clip).")
    return record


KEY_FIELDS = ("continue", "abort", "pause", "yes", "no")


def _read_keys(loc: Located) -> Keys:
    """Key names are checked against PsychoPy's (``esc`` is not one: the participant could not stop)."""
    section = loc.data.get("keys") or {}
    if isinstance(section, dict) and (True in section or False in section):
        # YAML 1.1 reads an unquoted `yes:` / `no:` as true / false: accept them as meant
        section = {("yes" if k is True else "no" if k is False else k): v for k, v in section.items()}
        loc.data["keys"] = section
    _no_unknown(loc, ("keys",), section, KEY_FIELDS)
    abort = _get(loc, ("keys", "abort"), (list, str), ["escape"])
    keys = Keys(
        continue_=_get(loc, ("keys", "continue"), str, "space"),
        abort=tuple([abort] if isinstance(abort, str) else abort),
        pause=_get(loc, ("keys", "pause"), str, "f9"),
        yes=_get(loc, ("keys", "yes"), str, "y"),
        no=_get(loc, ("keys", "no"), str, "n"),
    )
    from station.elicit.keys import key_names

    allowed = key_names()
    named = [(("keys", "continue"), keys.continue_), (("keys", "pause"), keys.pause), (("keys", "yes"), keys.yes),
             (("keys", "no"), keys.no)] + [(("keys", "abort") + ((i,) if isinstance(abort, list) else ()), k)
                                          for i, k in enumerate(keys.abort)]
    for where, name in named:
        if not isinstance(name, str) or name not in allowed:
            raise loc.error(where, f"{name!r} is not a PsychoPy key name; allowed: {', '.join(sorted(allowed))}.")
    all_keys = [keys.continue_, *keys.abort, keys.pause]
    if len(set(all_keys)) != len(all_keys):
        raise loc.error(("keys",), f"continue, abort and pause keys must differ, got {all_keys}.")
    if keys.yes == keys.no:
        raise loc.error(("keys",), f"yes and no keys must differ, got {keys.yes!r} twice.")
    return keys


def _read_display(loc: Located) -> Display:
    _section(loc, "display", ("size", "fullscreen", "screen", "background", "movie_size"))
    return Display(
        size=_pair(loc, ("display", "size"), [1280, 720]),
        fullscreen=_get(loc, ("display", "fullscreen"), bool, True),
        screen=_get(loc, ("display", "screen"), int, 0, minimum=0),
        background=_get(loc, ("display", "background"), str, "black"),
        movie_size=_pair(loc, ("display", "movie_size"), None),
    )


def _read_camera(loc: Located) -> CameraMode:
    from station.camera.base import D415_FPS, D415_RESOLUTIONS

    _section(loc, "camera", ("width", "height", "fps", "settings"))
    camera = CameraMode(_get(loc, ("camera", "width"), int, 848), _get(loc, ("camera", "height"), int, 480),
                        _get(loc, ("camera", "fps"), int, 60), _read_camera_settings(loc))
    if (camera.width, camera.height) not in D415_RESOLUTIONS:
        raise loc.error(("camera",), f"resolution {camera.width}x{camera.height} is not a D415 mode; allowed: "
                                     f"{', '.join(f'{w}x{h}' for w, h in D415_RESOLUTIONS)}.")
    if camera.fps not in D415_FPS:
        raise loc.error(("camera", "fps"), f"must be one of {D415_FPS}, got {camera.fps}.")
    return camera


#: ``camera.settings`` fields: (types, allowed, minimum, maximum); units as in librealsense.
CAMERA_SETTING_FIELDS = {
    "visual_preset": (str, VISUAL_PRESETS, None, None),
    "advanced_json": (str, None, None, None),
    "laser_power": (float, None, 0, 360),
    "emitter": (bool, None, None, None),
    "color_exposure": (float, None, 1, 10000),
    "color_gain": (float, None, 0, 128),
    "color_auto_exposure": (bool, None, None, None),
    "power_line": (str, tuple(POWER_LINE), None, None),
    "depth_units": (float, None, 1e-6, 0.01),
}


def _read_camera_settings(loc: Located) -> CameraSettings:
    """``camera.settings``: the D415's preset, laser, emitter, colour exposure, power line, depth units.

    YAML reads an unquoted ``off`` as false, so ``power_line: off`` means 'off'.  An advanced
    JSON path is relative to the protocol.
    """
    section = (loc.data.get("camera") or {}).get("settings") or {}
    _no_unknown(loc, ("camera", "settings"), section, tuple(CAMERA_SETTING_FIELDS))
    if section.get("power_line") is False:
        section = {**section, "power_line": "off"}
    values = {}
    for name, (types, allowed, lo, hi) in CAMERA_SETTING_FIELDS.items():
        path = ("camera", "settings", name)
        if name == "power_line" and name in section:
            value = section[name]
            if value not in POWER_LINE:
                raise loc.error(path, f"must be one of {', '.join(map(repr, POWER_LINE))}, got {value!r}.")
            values[name] = value
            continue
        values[name] = _get(loc, path, types, None, allowed=allowed, minimum=lo, maximum=hi)
    if values["advanced_json"] is not None:
        json_path = Path(values["advanced_json"])
        json_path = json_path if json_path.is_absolute() else (loc.file.parent / json_path).resolve()
        if not json_path.is_file():
            raise loc.error(("camera", "settings", "advanced_json"),
                            f"names {str(json_path)!r}, which does not exist (a realsense-viewer JSON export).")
        values["advanced_json"] = str(json_path)
    manual = [n for n in ("color_exposure", "color_gain") if values[n] is not None]
    if manual and values["color_auto_exposure"] is True:
        raise loc.error(("camera", "settings", "color_auto_exposure"),
                        f"is true while {' and '.join(manual)} set a manual exposure; remove one of them.")
    try:
        return CameraSettings(**values)
    except StationError as err:
        raise loc.error(("camera", "settings"), str(err)) from None


def _pair(loc: Located, path: tuple, default):
    value = _get(loc, path, list, default)
    if value is None:
        return None
    if len(value) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
        raise loc.error(path, f"must be [width, height] in pixels, got {value!r}.")
    return (value[0], value[1])
