"""The complete elements of a JSON array, as its text streams in: each one as soon as its closing brace arrives.

A worker answering tool_choice REQUIRED with several tools generates a JSON array of calls; scanning the text
as it comes lets each call go out the moment its object is complete instead of when generation ends. The
scanner tracks only nesting and strings (escapes included), which is all it takes to find where a top-level
element ends; the element itself is then parsed with json.
"""

from __future__ import annotations


class ArrayElements:
    def __init__(self) -> None:
        self._depth = 0  # 1 inside the top-level array, 2 inside one of its elements, ...
        self._in_string = False
        self._escaped = False
        self._element: list[str] = []  # the text of the top-level element being read

    def feed(self, text: str) -> list[str]:
        """The texts of the top-level elements that `text` completes, in order."""
        done: list[str] = []
        for char in text:
            if self._depth >= 2:
                self._element.append(char)
            if self._in_string:
                if self._escaped:
                    self._escaped = False
                elif char == "\\":
                    self._escaped = True
                elif char == '"':
                    self._in_string = False
            elif char == '"':
                self._in_string = True
            elif char in "[{":
                self._depth += 1
                if self._depth == 2:
                    self._element = [char]
            elif char in "]}":
                self._depth -= 1
                if self._depth == 1:
                    done.append("".join(self._element))
                    self._element = []
        return done
