"""Saving a patch back to YAML with the file's comments and key order kept.

The only module that imports ``ruamel.yaml`` (a round-trip YAML library). :func:`patch_text`
edits the original document in place: only the keys whose value differs from what the
original text loads as are written (a value the file did not give, such as an Izhikevich
parameter filled in by its preset, stays out unless it changed), new keys go to the end of
their section, and the controller list is replaced only when it changed. The result is
validated by :func:`spikesynth.patch.patch_from_text`, so a saved file always passes
``spikesynth check`` and a bad one fails with the same message.
"""

from __future__ import annotations

import io
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from ..fileio import atomic_output
from ..patch import SCHEMA, PatchError, patch_from_text

__all__ = ["controllers_raw", "patch_text", "write_patch"]


def _yaml() -> YAML:
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 100
    y.indent(mapping=2, sequence=4, offset=2)
    return y


def controllers_raw(patch) -> list[dict]:
    """A patch's controller mappings as plain dicts, as a patch file spells them."""
    from .. import params as P

    names = {v: k for k, v in P.SOURCE_NAMES.items()}
    out = []
    for c in patch.controllers:
        item = {"cc": c.source} if c.source < 128 else {"source": names[c.source]}
        item.update(param=c.param, min=c.min, max=c.max, curve=c.curve)
        out.append(item)
    return out


def _plain(value):
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return value  # keep floats floats (the schema accepts either)
    return value


def patch_text(patch, original_text: str, source="<patch>") -> str:
    """The YAML text of ``patch``, written over ``original_text`` (its comments and order kept).

    Thread: main or the UI's server thread. Raises :class:`~spikesynth.patch.PatchError` when
    the result does not validate (it then is not written anywhere).
    """
    y = _yaml()
    doc = y.load(original_text) if original_text.strip() else None
    if doc is None:
        doc = CommentedMap()
    if not isinstance(doc, dict):
        raise PatchError(source, "the file is not a mapping of patch keys; cannot save over it")
    try:
        before = patch_from_text(original_text, source)
    except PatchError:
        before = None
    for key, spec in SCHEMA.items():
        value = patch.values[key]
        old = before.values[key] if before is not None else spec.default
        if value == old and (before is not None or _has(doc, key)):
            continue
        if value == spec.default and not _has(doc, key) and before is None:
            continue
        _set(doc, key, _plain(value))
    new_ctl = controllers_raw(patch)
    old_ctl = controllers_raw(before) if before is not None else []
    if new_ctl != old_ctl:
        seq = CommentedSeq()
        for item in new_ctl:
            m = CommentedMap(item)
            m.fa.set_flow_style()
            seq.append(m)
        if new_ctl:
            doc["controllers"] = seq
        else:
            doc.pop("controllers", None)
    buf = io.StringIO()
    y.dump(doc, buf)
    text = buf.getvalue()
    patch_from_text(text, source)  # the same schema and messages as `spikesynth check`
    return text


def _has(doc, key: str) -> bool:
    node = doc
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _set(doc, key: str, value) -> None:
    parts = key.split(".")
    node = doc
    for part in parts[:-1]:
        if part not in node or not isinstance(node[part], dict):
            node[part] = CommentedMap()
        node = node[part]
    node[parts[-1]] = value


def write_patch(patch, path, original_text: str | None = None) -> Path:
    """Save ``patch`` to ``path`` atomically (:func:`spikesynth.fileio.atomic_output`).

    ``original_text`` is the document to edit (default: the file at ``path`` if it exists,
    else the patch's own file). Thread: main or the UI's server thread. Raises
    :class:`~spikesynth.patch.PatchError` (nothing written) or ``OSError``.
    """
    path = Path(path)
    if original_text is None:
        base = path if path.exists() else patch.path
        original_text = Path(base).read_text(encoding="utf-8") if base else ""
    text = patch_text(patch, original_text, path)
    with atomic_output(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    return path
