"""Write docs/cli.md, the command-line reference, from the Typer app itself (as `llm` and `sqlite-utils`
generate theirs), so it cannot drift from the code.

    python scripts/cli_reference.py          # rewrite docs/cli.md
    python scripts/cli_reference.py --check  # exit 1 when docs/cli.md is stale (tests/test_cli_reference.py)
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TARGET = REPO / "docs" / "cli.md"
HEADER = """# ragcli command-line reference

Generated from the command definitions by `python scripts/cli_reference.py`; `tests/test_cli_reference.py`
fails when this file is stale. `ragcli COMMAND -h` shows the same on a terminal.

Global options (`--config`, `-v`, `-q`) may come before or after the command: `ragcli ask "…" -v` works.
"""


def render() -> str:
    import typer

    from ragcli.cli import EXAMPLES_HEADING, app

    root = typer.main.get_command(app)
    root_ctx = typer.main._click.Context(root, info_name="ragcli", **root.context_settings)
    sections: list[str] = [HEADER]
    for ctx in _walk(root, root_ctx):
        sections.append(_section(ctx, EXAMPLES_HEADING))
    return "\n".join(sections).rstrip() + "\n"


def _walk(command: Any, ctx: Any) -> Any:
    yield ctx
    for name in getattr(command, "commands", {}):
        sub = command.get_command(ctx, name)
        if sub is None or sub.hidden:
            continue
        yield from _walk(sub, type(ctx)(sub, info_name=name, parent=ctx))


def _section(ctx: Any, examples_heading: str) -> str:
    command = ctx.command
    level = "#" * min(2 + ctx.command_path.count(" "), 4)
    lines = [f"{level} `{ctx.command_path}`", ""]
    usage = " ".join([ctx.command_path, *command.collect_usage_pieces(ctx)])
    lines += ["```", usage, "```", ""]
    if command.help:
        lines += [inspect.cleandoc(command.help), ""]
    rows = [_param_row(param, ctx) for param in command.get_params(ctx)]
    rows = [row for row in rows if row is not None]
    if rows:
        lines += ["| Option or argument | Value | Default | Description |", "| --- | --- | --- | --- |"]
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
        lines.append("")
    if getattr(command, "commands", None):
        lines += ["Commands: " + ", ".join(f"`{name}`" for name in command.commands), ""]
    epilog = command.epilog or ""
    if examples_heading in epilog:
        examples = [line.strip().removeprefix("$ ") for line in epilog.split(examples_heading, 1)[1].splitlines()]
        lines += ["Examples:", "", "```sh", *[e for e in examples if e], "```", ""]
    return "\n".join(lines)


def _param_row(param: Any, ctx: Any) -> list[str] | None:
    if getattr(param, "hidden", False):
        return None
    if param.param_type_name == "argument":
        name = f"`{param.metavar or param.name.upper()}`"
        value, default = "", "required" if param.required else ""
    else:
        # Long names first, whatever order the app declared them in (it may differ between runs).
        opts = sorted(param.opts, key=lambda opt: (not opt.startswith("--"), opt))
        name = " / ".join(f"`{opt}`" for opt in [*opts, *param.secondary_opts])
        value = param.display_type_rich(ctx) or ""
        default = _default(param)
    return [name, f"`{value}`" if value else "", default, " ".join((param.help or "").split())]


def _default(param: Any) -> str:
    if isinstance(param.show_default, str):
        return f"`{param.show_default}`"
    if param.is_flag or param.count or param.default is None or param.show_default is False:
        return ""
    return f"`{param.default}`"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            sys.stderr.write(f"{TARGET} is stale: run python scripts/cli_reference.py\n")
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main(sys.argv[1:]))
