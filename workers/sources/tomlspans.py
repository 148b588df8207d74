"""Where each key of a TOML file sits: the line numbers tomllib does not give.

tomllib gives no positions for values, so lines come from a light scan of the text: each table
block runs from its header to the next header, and a key's line is where ``key =`` starts inside
it (strings and multi-line arrays are skipped properly).  Each block is then parsed on its own, so
that a syntax error in one block hides no other.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["Block", "TOMLSyntaxError", "loads", "parse_block", "split_blocks"]


class TOMLSyntaxError(ValueError):
    """TOML that does not parse, at its 1-based line in the whole file."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


@dataclass
class Block:
    """A header and the lines up to the next header (the preamble has path ())."""

    lines: list[str]
    header_line: int  # 1-based; 0 for the preamble
    first: int  # 0-based index of the first body line
    end: int = 0
    path: tuple[str, ...] = ()
    is_array: bool = False
    keys: dict[str, tuple[int, int]] = field(default_factory=dict)  # key -> body line index span

    def line_of(self, key: str, at: object = None) -> int:
        """1-based line of ``key =`` (or of ``at``'s text inside its value); the header's if unknown."""
        if key not in self.keys:
            return self.header_line or 1
        start, stop = self.keys[key]
        if isinstance(at, str) and at:
            for needle in dict.fromkeys((at, json.dumps(at, ensure_ascii=False)[1:-1])):
                for i in range(start, stop):
                    if needle in self.lines[i]:
                        return i + 1
        return start + 1


_BARE_HEADER_RE: Final = re.compile(r"\s*\[\[?\s*[A-Za-z0-9_-]+(?:\s*\.\s*[A-Za-z0-9_-]+)*\s*\]\]?\s*(?:#.*)?$")
_KEY_RE: Final = re.compile(r"""\s*("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)\s*[=.]""")


def split_blocks(lines: list[str]) -> list[Block]:
    """The preamble and one block per header, with each top-level key's line span."""
    blocks = [Block(lines, 0, 0)]
    open_string: str | None = None
    depth = 0
    last_key: str | None = None
    for i, line in enumerate(lines):
        block = blocks[-1]
        # A bare header also ends an array left open by mistake: as an element it would be invalid anyway.
        top = open_string is None and depth == 0
        header = open_string is None and ((top and line.lstrip().startswith("[")) or bool(_BARE_HEADER_RE.match(line)))
        at_top = top or header
        if header:
            depth = 0
            block.end = i
            if last_key:
                block.keys[last_key] = (block.keys[last_key][0], i)
            blocks.append(Block(lines, i + 1, i + 1))
            last_key = None
        elif at_top and (match := _KEY_RE.match(line)):
            key = _unquote_key(match.group(1))
            if last_key:
                block.keys[last_key] = (block.keys[last_key][0], i)
            block.keys.setdefault(key, (i, len(lines)))
            last_key = key
        open_string, depth = _scan(line, open_string, depth)
    blocks[-1].end = len(lines)
    if last_key:
        blocks[-1].keys[last_key] = (blocks[-1].keys[last_key][0], len(lines))
    return blocks


def _unquote_key(key: str) -> str:
    if key.startswith('"'):
        try:
            return str(json.loads(key))
        except ValueError:
            return key[1:-1]
    return key.strip("'")


def _scan(line: str, open_string: str | None, depth: int) -> tuple[str | None, int]:
    """Lexer state after ``line``: an unclosed multi-line string's quotes and the bracket depth."""
    i, n = 0, len(line)
    while i < n:
        if open_string:
            j = line.find(open_string, i)
            if j < 0:
                return open_string, depth
            i, open_string = j + 3, None
            continue
        char = line[i]
        if char == "#":
            break
        if line.startswith(('"""', "'''"), i):
            open_string, i = line[i : i + 3], i + 3
        elif char == '"':
            i += 1
            while i < n and line[i] != '"':
                i += 2 if line[i] == "\\" else 1
            i += 1
        elif char == "'":
            close = line.find("'", i + 1)
            i = n if close < 0 else close + 1
        else:
            depth += (char in "[{") - (char in "]}")
            i += 1
    return open_string, max(depth, 0)


def parse_block(block: Block) -> dict[str, Any]:
    """The block's table, parsed on its own; fills in the block's path and whether it is an array.

    Raises :class:`TOMLSyntaxError` for a header or body that does not parse.
    """
    if block.header_line:
        parsed: Any = loads(block.lines[block.header_line - 1], block.header_line - 1, block.header_line)
        while isinstance(parsed, dict) and len(parsed) == 1:
            key, parsed = next(iter(parsed.items()))
            block.path += (key,)
        block.is_array = isinstance(parsed, list)
    body = "\n".join(block.lines[block.first : block.end])
    return loads(body, block.first, max(block.end, block.first + 1))


def loads(text: str, offset: int, last_line: int) -> dict[str, Any]:
    """``tomllib.loads`` of lines that start after line ``offset`` of a file and end at ``last_line``.

    Raises :class:`TOMLSyntaxError` at the file's line: tomllib's own, shifted by ``offset``, or
    ``last_line`` when the error is at the end of the text.
    """
    try:
        return tomllib.loads(text)
    except RecursionError:
        # tomllib recurses once per nested array or inline table and gives up a few hundred deep.
        raise TOMLSyntaxError(offset + _deepest_line(text), "TOML syntax: arrays or tables nested too deeply") from None
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = re.search(r" \(at line (\d+), column (\d+)\)$", message)
        if match:
            line, column = int(match.group(1)), match.group(2)
            raise TOMLSyntaxError(offset + line, f"TOML syntax: {message[: match.start()]} (column {column})") from None
        end_message = "TOML syntax: " + message.replace(" (at end of document)", " at the end")
        raise TOMLSyntaxError(max(last_line, 1), end_message) from None


def _deepest_line(text: str) -> int:
    """1-based line (within ``text``) where the bracket nesting is deepest, for a nesting error."""
    open_string: str | None = None
    depth = deepest = 0
    line_of_deepest = 1
    for number, line in enumerate(text.splitlines(), 1):
        # The brackets opened on a line bound how deep it goes ("[[[…]]]" closes where it opens).
        peak = depth + line.count("[") + line.count("{")
        if peak > deepest:
            deepest, line_of_deepest = peak, number
        open_string, depth = _scan(line, open_string, depth)
    return line_of_deepest
