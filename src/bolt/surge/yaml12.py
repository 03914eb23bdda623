"""Reading compose files as compose reads them: YAML 1.2's core schema, not PyYAML's 1.1.

PyYAML resolves YAML 1.1 scalars: ``22:22`` becomes the sexagesimal integer 1342 and
``no``/``on`` become booleans, which would turn ``ports: [22:22]`` and ``restart: no`` into
nonsense.  The compose spec (like Go's yaml.v3) uses YAML 1.2, where those are strings.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from basis.errors import InvalidInput


class _Loader(yaml.SafeLoader):
    pass


_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, rx)
        for tag, rx in resolvers
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def _int(loader: _Loader, node: yaml.ScalarNode) -> int:
    text = loader.construct_scalar(node)
    return int(str(text), 0) if str(text).startswith(("0o", "0x")) else int(str(text))


_Loader.add_constructor("tag:yaml.org,2002:int", _int)


def load(text: str, source: str) -> Any:
    """The document in ``text``; malformed YAML is invalid input naming line and column."""
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise InvalidInput(f"{where}: invalid YAML: {err.problem or err}") from None
    except yaml.YAMLError as err:
        raise InvalidInput(f"{source}: invalid YAML: {err}") from None
