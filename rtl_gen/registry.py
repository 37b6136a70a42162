"""The registry of generatable blocks and their parameters.

A block is a named factory of an Amaranth ``wiring.Component`` plus the parameters it
accepts. Blocks are registered in :mod:`rtl_gen.blocks`; :func:`get_block` and
:func:`block_names` load that module on first use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Block", "BlockError", "Param", "block_names", "get_block", "register"]


class BlockError(ValueError):
    """An unknown block, an unknown parameter or a bad parameter value (one-line message)."""


_BOOL_WORDS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


@dataclass(frozen=True)
class Param:
    """One block parameter.

    ``kind`` is ``int``, ``bool`` or ``str``; ``choices`` restricts the allowed values. The
    factory validates ranges itself (its ``ValueError`` message is reported as is).
    """

    name: str
    kind: type
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None

    def parse(self, text: str) -> Any:
        """Convert a command-line string to this parameter's type."""
        if self.kind is bool:
            try:
                value = _BOOL_WORDS[text.strip().lower()]
            except KeyError:
                raise BlockError(f"parameter {self.name!r} takes true/false, got {text!r}") from None
        elif self.kind is int:
            try:
                value = int(text, 0)
            except ValueError:
                raise BlockError(f"parameter {self.name!r} takes an integer, got {text!r}") from None
        else:
            value = text
        return value

    def check(self, value: Any) -> Any:
        """Type- and choice-check a value given from Python."""
        if self.kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise BlockError(f"parameter {self.name!r} takes an integer, got {value!r}")
        if self.kind is bool and not isinstance(value, bool):
            raise BlockError(f"parameter {self.name!r} takes true/false, got {value!r}")
        if self.kind is str and not isinstance(value, str):
            raise BlockError(f"parameter {self.name!r} takes a string, got {value!r}")
        if self.choices is not None and value not in self.choices:
            allowed = ", ".join(map(str, self.choices))
            raise BlockError(f"parameter {self.name!r} must be one of {allowed}, got {value!r}")
        return value


@dataclass(frozen=True)
class Block:
    """A generatable block: ``factory(**params)`` returns the component."""

    name: str
    factory: Callable[..., Any]
    description: str
    params: tuple[Param, ...] = field(default=())

    def resolve(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults updated with ``overrides`` (already typed), all checked."""
        known = {p.name: p for p in self.params}
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            names = ", ".join(known) or "none"
            raise BlockError(f"block {self.name!r} has no parameter {unknown[0]!r} (parameters: {names})")
        values = {p.name: p.default for p in self.params}
        for name, value in overrides.items():
            values[name] = known[name].check(value)
        return values

    def elaborate(self, overrides: Mapping[str, Any]):
        """Build the component, turning its validation errors into :class:`BlockError`."""
        params = self.resolve(overrides)
        try:
            return self.factory(**params), params
        except (TypeError, ValueError) as exc:
            raise BlockError(f"block {self.name!r}: {exc}") from None


_BLOCKS: dict[str, Block] = {}


def register(block: Block) -> Block:
    if block.name in _BLOCKS:
        raise ValueError(f"block {block.name!r} is registered twice")
    _BLOCKS[block.name] = block
    return block


def _load() -> None:
    from . import blocks  # noqa: F401  (registers every block on import)


def block_names() -> list[str]:
    _load()
    return sorted(_BLOCKS)


def get_block(name: str) -> Block:
    _load()
    try:
        return _BLOCKS[name]
    except KeyError:
        raise BlockError(f"unknown block {name!r} (known blocks: {', '.join(sorted(_BLOCKS))})") from None
