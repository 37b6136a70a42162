"""Read the JSON side file that ``rtl_gen`` writes next to the Verilog.

Testbenches pack and unpack struct payloads through it, so the bit positions they use are
the ones the hardware was generated with. The runner passes the file's path to the cocotb
process in ``RECNMP_BLOCK_JSON``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["BlockDescription", "PayloadLayout"]

ENV_VAR = "RECNMP_BLOCK_JSON"


@dataclass(frozen=True)
class PayloadLayout:
    """Field name -> (offset, width) of one struct-carrying port."""

    fields: Mapping[str, tuple[int, int]]

    @property
    def width(self) -> int:
        return max((o + w for o, w in self.fields.values()), default=0)

    def pack(self, **values: int) -> int:
        """Build the port value; every field must be given and fit its width."""
        missing = set(self.fields) - set(values)
        extra = set(values) - set(self.fields)
        if missing or extra:
            raise ValueError(f"fields missing {sorted(missing)}, unknown {sorted(extra)}")
        word = 0
        for name, value in values.items():
            offset, width = self.fields[name]
            if not 0 <= value < (1 << width):
                raise ValueError(f"field {name!r} value {value} does not fit in {width} bits")
            word |= value << offset
        return word

    def unpack(self, word: int) -> dict[str, int]:
        return {n: (word >> o) & ((1 << w) - 1) for n, (o, w) in self.fields.items()}


@dataclass(frozen=True)
class BlockDescription:
    """The parsed side file: ``top``, ``params``, ``ports`` and payload ``layouts``."""

    top: str
    params: Mapping[str, Any]
    ports: Mapping[str, tuple[str, int]]
    layouts: Mapping[str, PayloadLayout]

    @classmethod
    def load(cls, path) -> BlockDescription:
        raw = json.loads(Path(path).read_text())
        return cls(
            top=raw["top"],
            params=raw["params"],
            ports={p["name"]: (p["direction"], p["width"]) for p in raw["ports"]},
            layouts={
                port: PayloadLayout({f["name"]: (f["offset"], f["width"]) for f in fields})
                for port, fields in raw["layouts"].items()
            },
        )

    @classmethod
    def from_env(cls) -> BlockDescription:
        """The description of the block under test (set by :mod:`verif.runner`)."""
        try:
            return cls.load(os.environ[ENV_VAR])
        except KeyError:
            raise RuntimeError(f"{ENV_VAR} is not set: run this testbench through verif.runner") from None

    def layout(self, port: str) -> PayloadLayout:
        return self.layouts[port]
