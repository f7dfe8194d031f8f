"""The CLI's parser walked once for the tests that attack or check every option: every action
of every command, with the command path that leads to it (a parser reached twice, such as
`sagemaker train` = `sagemaker entrypoint`, is walked once)."""

from __future__ import annotations

import argparse
from typing import Iterator, Tuple


def every_action() -> Iterator[Tuple[Tuple[str, ...], argparse.Action]]:
    from rectrain.cli.main import build_parser

    seen = set()
    todo = [(build_parser(), ())]
    while todo:
        parser, path = todo.pop(0)
        if id(parser) in seen:
            continue
        seen.add(id(parser))
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo.extend((sub, path + (name,)) for name, sub in action.choices.items())
            else:
                yield path, action
