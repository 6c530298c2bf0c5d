"""Turn pydantic's validation errors into file:line: key: messages a person can act on."""

from __future__ import annotations

import difflib
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from fbtui.config.yamlsrc import Source
from fbtui.errors import ConfigError, ConfigErrors

M = TypeVar("M", bound=BaseModel)

_EXPECTED = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "float_type": "a number", "float_parsing": "a number",
    "bool_type": "true or false", "bool_parsing": "true or false",
    "string_type": "a string", "list_type": "a list", "dict_type": "a mapping",
    "model_type": "a mapping", "model_attributes_type": "a mapping",
}


def describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    return repr(value)


def _model_fields(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names allowed at `loc` (for 'did you mean')."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None)
        if fields is None or part not in fields:
            return list(getattr(current, "model_fields", {}) or [])
        ann = fields[part].annotation
        args = getattr(ann, "__args__", ()) or ()
        candidates = [a for a in (ann, *args) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not candidates:
            # dict[str, Model] / list[Model]
            inner = [a for arg in args for a in (arg, *getattr(arg, "__args__", ()))]
            candidates = [a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)]
        current = candidates[0] if candidates else None
        if current is None:
            return []
    return list(getattr(current, "model_fields", {}) or [])


def _message(err: dict[str, Any], model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    kind = err["type"]
    value = err.get("input")
    if kind == "extra_forbidden":
        allowed = _model_fields(model, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return f"unknown key{hint} (expected one of: {', '.join(allowed)})"
    if kind == "missing":
        return "required key is missing"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {describe(value)}"
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return f"expected one of {expected}, got {describe(value)}"
    if kind == "value_error":
        return str(err.get("ctx", {}).get("error", err["msg"]))
    msg = err["msg"]
    return f"{msg[0].lower()}{msg[1:]}, got {describe(value)}"


def validate(model: type[M], src: Source, *, data: Any = None, prefix: tuple[Any, ...] = ()) -> M:
    """Validate `data` (default: the whole source) as `model`; errors point into `src`."""
    data = src.data if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping at the top, got {describe(data)}", file=src.file, line=1)
    try:
        return model.model_validate(data)
    except ValidationError as e:
        errors: list[ConfigError] = []
        for err in e.errors():
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
            path = (*prefix, *loc)
            unknown_key = err["type"] == "extra_forbidden"
            errors.append(src.error(path, _message(err, model, loc), key=unknown_key))
        seen: set[str] = set()
        unique = [x for x in errors if not (x.message in seen or seen.add(x.message))]
        raise (unique[0] if len(unique) == 1 else ConfigErrors(unique)) from None
