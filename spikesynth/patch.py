"""Patches: YAML → validated :class:`Patch` → the engine's parameter vector and controller table.

The only module that imports ``yaml``. Every key has a default and a documented range;
unknown keys, wrong types and out-of-range values are errors that name the file, the line,
the key path and what was expected (:class:`PatchError`), never a traceback.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from . import models
from . import params as P
from .listen import EAR_KEYS, LISTEN_KEYS
from .listen import validate as validate_listen
from .models.izhikevich import IZH_PRESETS
from .models.izhikevich import PRESET_FIELDS as _IZH_FIELDS
from .schema import COMMON_SCHEMA, Spec

__all__ = ["IZH_PRESETS", "SCHEMA", "Patch", "PatchError", "Spec", "load_patch",
           "patch_from_dict", "patch_from_text", "param_index"]

PATCH_DIR = Path(__file__).resolve().parent.parent / "patches"
DEFAULT_PATCH = PATCH_DIR / "default.yaml"


class PatchError(ValueError):
    """A patch that cannot be used: says where (file, line, key path) and what was expected."""

    def __init__(self, file, message, line=None, key=None):
        self.file = str(file)
        self.line = line
        self.key = key
        self.message = message
        where = self.file + (f":{line}" if line else "")
        super().__init__(f"{where}: {key + ': ' if key else ''}{message}")


# The schema: dotted key path -> Spec, musical units: the keys every model shares, ``model``,
# and each registered voice model's own keys (it grows when a model is registered).
SCHEMA: dict[str, Spec] = {**COMMON_SCHEMA, **LISTEN_KEYS, **EAR_KEYS}
_SECTION_SPEC_KEYS: dict[str, tuple] = {}  # section -> keys that hold a spec of their own


def _add_model(model) -> None:
    SCHEMA["model"] = Spec("choice", "spiking", choices=models.names(), doc="voice model",
                           controllable=False)
    for key, spec in model.keys.items():
        if key in SCHEMA and SCHEMA[key] != spec:
            raise ValueError(f"voice model {model.name!r} redefines patch key {key}")
        SCHEMA[key] = spec
        if "." in key:
            _SECTIONS.add(key.split(".")[0])
    if model.section_keys:
        section = next(iter(model.keys)).split(".")[0]
        _SECTION_SPEC_KEYS[section] = tuple(model.section_keys)


def param_index(model_name: str) -> dict:
    """Key path -> parameter-vector index for a patch of ``model_name``."""
    model = models.get(model_name)
    index = dict(P.COMMON_INDEX)
    for k, key in enumerate(model.vector_keys):
        index[key] = P.MODEL_BASE + k
    return index


_SECTIONS = {k.split(".")[0] for k in SCHEMA if "." in k}
models.on_register(_add_model)
_CONTROLLER_KEYS = ("cc", "source", "param", "min", "max", "curve")


@dataclass
class Controller:
    """A controller mapping: MIDI source → parameter, ``min`` at 0 and ``max`` at 127."""

    source: int  # CC number 0..127, or params.SOURCE_* for aftertouch
    param: str
    min: float
    max: float
    curve: str = "linear"


@dataclass
class Patch:
    """A validated patch. ``values`` holds every schema key (defaults filled in)."""

    values: dict
    controllers: list = field(default_factory=list)
    path: Path | None = None
    network: dict | None = None  # the network spec (model: network)
    tuning: object = None  # spikesynth.tuning.Tuning from the tuning: section (None: 12-TET)

    def with_tuning(self, tuning) -> Patch:
        """A copy playing ``tuning`` (a :class:`spikesynth.tuning.Tuning`, or None for 12-TET
        from ``a4``) instead of its own ``tuning:`` section (``--scl``/``--kbm``)."""
        return dataclasses.replace(self, tuning=tuning)

    @property
    def name(self) -> str:
        return self.values["name"]

    def __getitem__(self, key):
        return self.values[key]

    def param_vector(self) -> np.ndarray:
        """The engine's parameter vector (float64): the common keys, then the model's own."""
        index_of = param_index(self.values["model"])
        vec = np.zeros(P.MODEL_BASE + len(models.get(self.values["model"]).vector_keys))
        for path, index in index_of.items():
            value = self.values[path]
            spec = SCHEMA[path]
            vec[index] = spec.choices.index(value) if spec.kind == "choice" else float(value)
        return vec

    def ramp_table(self) -> np.ndarray:
        """The engine's parameter smoothing table (float64, shape (vector length,
        RAMP_FIELDS)): ``R_MODE`` from each key's Spec (``smooth``: a linear ramp, or a
        geometric one for an ``exp`` curve over a positive range; otherwise a jump), the
        other columns zero (no ramp moving)."""
        index_of = param_index(self.values["model"])
        table = np.zeros((P.MODEL_BASE + len(models.get(self.values["model"]).vector_keys),
                          P.RAMP_FIELDS))
        for path, index in index_of.items():
            spec = SCHEMA[path]
            if spec.smooth and spec.kind == "float":
                geometric = spec.curve == "exp" and spec.lo is not None and spec.lo > 0
                table[index, P.R_MODE] = P.RAMP_GEOMETRIC if geometric else P.RAMP_LINEAR
        return table

    def controller_table(self) -> np.ndarray:
        """Controller rows (float64, shape (n, CTL_FIELDS)); at least one row (source -1)."""
        table = np.full((max(len(self.controllers), 1), P.CTL_FIELDS), -1.0)
        for row, c in zip(table, self.controllers, strict=False):
            row[P.CTL_SOURCE] = c.source
            row[P.CTL_PARAM] = param_index(self.values["model"])[c.param]
            row[P.CTL_MIN] = c.min
            row[P.CTL_MAX] = c.max
            row[P.CTL_CURVE] = P.CURVE_EXP if c.curve == "exp" else P.CURVE_LINEAR
        return table

    def replace(self, **changes) -> Patch:
        """A copy with some values changed (dotted keys as ``spring__damping``), validated."""
        values = dict(self.values)
        changes = {key.replace("__", "."): value for key, value in changes.items()}
        if "izhikevich.preset" in changes:  # a new preset refills what is not set explicitly
            for name in _IZH_FIELDS:
                values.pop(f"izhikevich.{name}", None)
        values.update(changes)
        raw = _unflatten(values)
        if self.network is not None:
            raw.setdefault("network", {}).update(self.network)
        raw["controllers"] = [
            {"cc" if c.source < 128 else "source": c.source if c.source < 128 else
             {v: k for k, v in P.SOURCE_NAMES.items()}[c.source],
             "param": c.param, "min": c.min, "max": c.max, "curve": c.curve}
            for c in self.controllers
        ]
        return patch_from_dict(raw, source=self.path or "<patch>")


def _unflatten(values: dict) -> dict:
    out: dict = {}
    for key, value in values.items():
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


# libyaml's parser when PyYAML was built with it (about 10x faster); the same safe rules.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: Input bounds, checked before anything walks the document.
MAX_PATCH_BYTES = 1_000_000  # a patch file's size (the bundled ones are about 1 KB)
MAX_NESTING = 32  # mappings and lists inside each other
MAX_NODES = 100_000  # YAML nodes, counting every alias as the nodes it stands for
MAX_CONTROLLERS = 256
MAX_STRING = 10_000  # characters of a string value (name, description)


def _parse_bounded(text: str, path):
    """Compose ``text`` into a YAML node graph within the bounds above, or raise PatchError.

    The events are counted first (nesting depth, aliases), then the node graph is composed
    (aliases stay shared nodes) and its expanded size is counted without expanding it, each
    shared node once; so a "billion laughs" file is rejected in the time its few hundred
    bytes take to scan. Returns the root node (None for an empty document).
    """
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_PATCH_BYTES:
        raise PatchError(path, f"file is too large ({size} bytes): a patch is at most "
                               f"{MAX_PATCH_BYTES} bytes")
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_NESTING:
                raise PatchError(path, f"nested more than {MAX_NESTING} levels deep",
                                 event.start_mark.line + 1)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    finally:
        loader.dispose()
    if root is None:
        return None
    expanded: dict[int, int] = {}
    open_nodes: set[int] = set()

    def count(node) -> int:  # nodes this one stands for, aliases expanded (memoised)
        key = id(node)
        if key in expanded:
            return expanded[key]
        if key in open_nodes:
            raise PatchError(path, "an alias refers to itself (a recursive structure)",
                             node.start_mark.line + 1)
        open_nodes.add(key)
        total = 1
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                total += count(k) + count(v)
                if total > MAX_NODES:
                    break
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                total += count(item)
                if total > MAX_NODES:
                    break
        open_nodes.discard(key)
        expanded[key] = total
        if total > MAX_NODES:
            raise PatchError(path, f"too large: more than {MAX_NODES} values once its "
                                   f"aliases are expanded", node.start_mark.line + 1)
        return total

    count(root)
    return root


def _line_map(root) -> dict:
    """Map key paths ("a.b", "controllers[0].cc") to 1-based line numbers.

    ``root`` is a composed node graph. A node reached a second time (through an alias) is
    not walked again, so the map stays as small as the file.
    """
    lines: dict = {}
    seen: set[int] = set()

    def walk(node, prefix):
        if id(node) in seen:
            return
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                name = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
                key = f"{prefix}.{name}" if prefix else str(name)
                if key in lines and isinstance(key_node, yaml.ScalarNode):
                    raise PatchError(None, "duplicate key", key_node.start_mark.line + 1, key)
                lines[key] = key_node.start_mark.line + 1
                walk(value_node, key)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                key = f"{prefix}[{i}]"
                lines[key] = item.start_mark.line + 1
                walk(item, key)

    if root is not None:
        walk(root, "")
    return lines


def _describe(spec: Spec) -> str:
    if spec.kind == "choice":
        return "one of " + ", ".join(spec.choices)
    if spec.kind == "str":
        return "a string"
    noun = "a whole number" if spec.kind == "int" else "a number"
    unit = f" {spec.unit}" if spec.unit else ""
    return f"{noun} from {_fmt(spec.lo)} to {_fmt(spec.hi)}{unit}"


def _fmt(x) -> str:
    return f"{x:g}"


def _did_you_mean(name, known) -> str:
    """`` (did you mean 'voices'?)`` for a near miss of one of ``known``, else ``""``."""
    import difflib

    close = difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _short(value, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters (a message stays one readable line)."""
    try:
        text = repr(value)
    except ValueError:  # an int too long to print
        return f"a {type(value).__name__} too long to show"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _check_value(spec: Spec, value, fail):
    if spec.kind == "str":
        if not isinstance(value, str):
            fail(f"expected {_describe(spec)}, got {_short(value)}")
        if len(value) > MAX_STRING:
            fail(f"expected a string of at most {MAX_STRING} characters, got {len(value)}")
        return value
    if spec.kind == "choice":
        if not isinstance(value, (str, int, float)) or value not in spec.choices:
            fail(f"expected {_describe(spec)}, got {_short(value)}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        fail(f"expected {_describe(spec)}, got {_short(value)}")
    if isinstance(value, int) and not spec.lo <= value <= spec.hi:  # before float(): 10**400
        fail(f"expected {_describe(spec)}, got {_short(value)}")
    if spec.kind == "int" and not float(value).is_integer():
        fail(f"expected {_describe(spec)}, got {_short(value)}")
    if not math.isfinite(value) or not spec.lo <= value <= spec.hi:
        fail(f"expected {_describe(spec)}, got {_short(value)}")
    return int(value) if spec.kind == "int" else float(value)


def patch_from_dict(raw, source="<patch>", lines=None) -> Patch:
    """Validate a plain dict (as from YAML) into a :class:`Patch`. Raises :class:`PatchError`."""
    lines = lines or {}

    def fail(message, key=None):
        line = lines.get(key) if key else None
        if line is None and key:  # fall back to the nearest enclosing key that has a line
            parent = key
            while line is None and ("." in parent or "[" in parent):
                parent = parent.rsplit(".", 1)[0] if "." in parent else parent.rsplit("[", 1)[0]
                line = lines.get(parent)
        raise PatchError(source, message, line, key)

    if raw is None:
        fail("file is empty: expected a patch mapping")
    if not isinstance(raw, dict):
        fail(f"expected a mapping of patch keys at the top level, got {type(raw).__name__}")

    values = {key: spec.default for key, spec in SCHEMA.items()}
    given = set()
    network = {}
    for key, value in raw.items():
        if not isinstance(key, str):
            fail(f"keys must be strings, got {_short(key)}")
        if key == "controllers":
            continue
        if key in _SECTIONS:
            if not isinstance(value, dict):
                fail(f"expected a mapping of {key}.* keys, got {_short(value)}", key)
            for sub, subvalue in value.items():
                path = f"{key}.{sub}"
                if sub in _SECTION_SPEC_KEYS.get(key, ()):
                    network[sub] = subvalue
                    continue
                if path not in SCHEMA:
                    names = [k.split(".", 1)[1] for k in SCHEMA if k.startswith(key + ".")]
                    fail(f"unknown key{_did_you_mean(sub, names)} (known in {key}: "
                         f"{', '.join(names)})", path)
                values[path] = _check_value(SCHEMA[path], subvalue, lambda m, p=path: fail(m, p))
                given.add(path)
        elif key in SCHEMA:
            values[key] = _check_value(SCHEMA[key], value, lambda m, k=key: fail(m, k))
        else:
            names = sorted({k.split(".")[0] for k in SCHEMA} | {"controllers"})
            fail(f"unknown key{_did_you_mean(key, names)} (known: {', '.join(names)})", key)

    # Relations between keys, and presets: each voice model checks its own.
    for name in models.names():
        validate = models.get(name).validate
        if validate is not None:
            validate(values, given, network, fail)
    validate_listen(values, given, network, fail)

    controllers = []
    raw_ctl = raw.get("controllers", []) or []
    if not isinstance(raw_ctl, list):
        fail("expected a list of controller mappings", "controllers")
    if len(raw_ctl) > MAX_CONTROLLERS:
        fail(f"expected at most {MAX_CONTROLLERS} controller mappings, got {len(raw_ctl)}",
             "controllers")
    for i, item in enumerate(raw_ctl):
        at = f"controllers[{i}]"
        if not isinstance(item, dict):
            fail("expected a mapping with cc (or source), param, min, max", at)
        for k in item:
            if k not in _CONTROLLER_KEYS:
                fail(f"unknown key (known: {', '.join(_CONTROLLER_KEYS)})", f"{at}.{k}")
        if ("cc" in item) == ("source" in item):
            fail("expected exactly one of cc (0-127) or source "
                 f"({', '.join(P.SOURCE_NAMES)})", at)
        if "cc" in item:
            cc = item["cc"]
            if isinstance(cc, bool) or not isinstance(cc, int) or not 0 <= cc <= 127:
                fail(f"expected a CC number from 0 to 127, got {_short(cc)}", f"{at}.cc")
            if cc in (64, 120, 121, 123):
                fail(f"CC {cc} is reserved (sustain / channel mode)", f"{at}.cc")
            src = cc
        else:
            name = item["source"]
            if not isinstance(name, str) or name not in P.SOURCE_NAMES:
                fail(f"expected one of {', '.join(P.SOURCE_NAMES)}, got {_short(name)}",
                     f"{at}.source")
            src = P.SOURCE_NAMES[name]
        param = item.get("param")
        targets = param_index(values["model"])
        if not isinstance(param, str) or param not in targets or not SCHEMA[param].controllable:
            ok = ", ".join(k for k in targets if SCHEMA[k].controllable)
            fail(f"expected a controllable parameter ({ok}), got {_short(param)}", f"{at}.param")
        spec = SCHEMA[param]
        lo = _check_value(spec, item.get("min", spec.lo), lambda m, k=f"{at}.min": fail(m, k))
        hi = _check_value(spec, item.get("max", spec.hi), lambda m, k=f"{at}.max": fail(m, k))
        curve = item.get("curve", "linear")
        if curve not in ("linear", "exp"):
            fail(f"expected linear or exp, got {_short(curve)}", f"{at}.curve")
        if curve == "exp" and (lo <= 0 or hi <= 0):
            fail("an exp curve needs positive min and max", f"{at}.curve")
        controllers.append(Controller(src, param, float(lo), float(hi), curve))
    return Patch(values=values, controllers=controllers,
                 path=Path(source) if source != "<patch>" else None,
                 network=network if values["model"] == "network" else None,
                 tuning=_load_tuning_section(values, source, fail))


def _load_tuning_section(values, source, fail):
    """The ``tuning:`` section's Scala files, relative to the patch file (None: 12-TET)."""
    scl, kbm = values["tuning.scl"], values["tuning.kbm"]
    if not scl and not kbm:
        return None
    from .tuning import TuningFileError, load_tuning

    folder = Path(source).parent if source != "<patch>" else Path()
    try:
        return load_tuning(folder / scl if scl else None, folder / kbm if kbm else None)
    except TuningFileError as e:
        key = "tuning.kbm" if kbm and Path(e.file) == folder / kbm else "tuning.scl"
        fail(str(e), key)


def load_patch(path=None) -> Patch:
    """Read and validate a patch file (``None``: the bundled default).

    Raises :class:`PatchError`.
    """
    path = Path(path) if path is not None else DEFAULT_PATCH
    return patch_from_text(_read_patch_text(path), path)


def _read_patch_text(path: Path) -> str:
    """A patch file's text, at most MAX_PATCH_BYTES; PatchError when it cannot be read."""
    try:
        if path.is_file() and path.stat().st_size > MAX_PATCH_BYTES:
            raise PatchError(path, f"file is too large ({path.stat().st_size} bytes): a patch "
                                   f"is at most {MAX_PATCH_BYTES} bytes")
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PatchError(path, "no such patch file") from None
    except IsADirectoryError:
        raise PatchError(path, "is a directory, expected a .yaml patch file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise PatchError(path, f"cannot read: {e}") from None


def _yaml_problem(e) -> str:
    """A YAML error's problem in one line."""
    if isinstance(e, yaml.reader.ReaderError):
        return f"a character YAML does not allow ({e.reason}, #x{e.character:04x})" if \
            isinstance(e.character, int) else f"unreadable text ({e.reason})"
    problem = getattr(e, "problem", None) or str(e).split("\n", 1)[0]
    return " ".join(str(problem).split())


def _yaml_line(text: str, e):
    mark = getattr(e, "problem_mark", None)
    if mark is not None:
        return mark.line + 1
    position = getattr(e, "position", None)
    if isinstance(position, int):
        return text.count("\n", 0, position) + 1
    return None


def patch_from_text(text: str, path="<patch>") -> Patch:
    """Parse and validate YAML text within the input bounds. Raises :class:`PatchError`."""
    raw, lines = _raw_and_lines(text, path)
    return patch_from_dict(raw, source=path, lines=lines)


def _raw_and_lines(text: str, path) -> tuple:
    """The YAML document (bounded parse) and its key-path → line map."""
    if not text.strip():
        raise PatchError(path, "file is empty: expected a patch mapping")
    try:
        root = _parse_bounded(text, path)
        if root is None:  # only comments, or an empty document
            raise PatchError(path, "file is empty: expected a patch mapping")
        lines = _line_map(root)
        loader = yaml.SafeLoader("")
        try:
            raw = loader.construct_document(root)
        finally:
            loader.dispose()
    except PatchError as e:
        raise PatchError(path, e.message, e.line, e.key) from None
    except yaml.YAMLError as e:
        raise PatchError(path, f"broken YAML: {_yaml_problem(e)}", _yaml_line(text, e)) from None
    except RecursionError:
        raise PatchError(path, "broken YAML: nested too deeply") from None
    except (ValueError, TypeError, OverflowError) as e:  # e.g. an integer of 5000 digits
        raise PatchError(path, f"broken YAML: a value cannot be read ({e})") from None
    return raw, lines


def read_network_section(path) -> dict:
    """The network spec (neurons, synapses, stdp) of a patch file's ``network:`` section.

    For the network study API (:func:`spikesynth.network.load_network_spec`): read with
    ``yaml.safe_load``, not validated here. Raises :class:`PatchError`.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise PatchError(path, f"cannot read: {e.strerror or e}") from None
    try:
        root = _parse_bounded(text, path)
        loader = yaml.SafeLoader("")
        try:
            doc = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except PatchError as e:
        raise PatchError(path, e.message, e.line, e.key) from None
    except yaml.YAMLError as e:
        raise PatchError(path, f"invalid YAML: {_yaml_problem(e)}", _yaml_line(text, e)) from None
    except (ValueError, TypeError, OverflowError, RecursionError) as e:
        raise PatchError(path, f"invalid YAML: {' '.join(str(e).split())}") from None
    if not isinstance(doc, dict) or "network" not in doc:
        raise PatchError(path, "missing: expected a top-level 'network:' key", key="network")
    section = doc["network"]
    if not isinstance(section, dict):
        raise PatchError(path, "expected a mapping", key="network")
    return {k: v for k, v in section.items() if k in _SECTION_SPEC_KEYS["network"]}


def list_patches(folder) -> list[Path]:
    """The patch files of a folder, in name order (program change n selects the n-th)."""
    return sorted(p for p in Path(folder).glob("*.yaml") if p.is_file())


def read_raw_patch(path) -> tuple[dict, dict]:
    """A patch file's top-level mapping, unvalidated, and its key-path → line map.

    For modules that validate sections of their own (the ear effects' ``ear:``, ``mix:``
    ...; :mod:`spikesynth.ear_effects`). Raises :class:`PatchError` for a missing or
    unreadable file, broken YAML or a top level that is not a mapping.
    """
    path = Path(path)
    raw, lines = _raw_and_lines(_read_patch_text(path), path)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise PatchError(path, "expected a mapping of patch keys at the top level")
    return raw, lines
