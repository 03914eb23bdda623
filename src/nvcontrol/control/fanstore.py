"""Fan curves users declared, per GPU UUID, in ``$NVCTL_CONFIG_DIR/fan-curves.toml``.

The file is human-editable::

    ["GPU-5f3a..."]
    points = "40:30,60:50,80:100"
    hysteresis_c = 3
"""

from __future__ import annotations

import os
import tomllib

import tomli_w

from basis.errors import InvalidInput, fs_errors
from nvcontrol.control import paths
from nvcontrol.control.fancurve import FanCurve


def load_curves() -> dict[str, FanCurve]:
    path = paths.fan_curves_path()
    try:
        doc = tomllib.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise InvalidInput(f"{path}: cannot read fan curves ({err})") from None
    out = {}
    for uuid, entry in doc.items():
        if not isinstance(entry, dict):
            raise InvalidInput(f"{path}: [{uuid!r}] must be a table with points and hysteresis_c")
        out[uuid] = FanCurve.from_dict(entry)
    return out


def save_curve(uuid: str, curve: FanCurve | None) -> None:
    """Set (or with ``None`` remove) one GPU's curve, replacing the file atomically."""
    curves = load_curves()
    if curve is None:
        curves.pop(uuid, None)
    else:
        curves[uuid] = curve
    path = paths.fan_curves_path()
    with fs_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(tomli_w.dumps({u: c.to_dict() for u, c in sorted(curves.items())}))
        os.replace(tmp, path)
