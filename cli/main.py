"""`forecaster`: the command line. The only place that turns errors into exit codes."""
from __future__ import annotations

import typer

# Each module adds its commands to `app` as it is imported; in this order they are listed in --help.
from cli import data_commands, model_commands, daemon_command, report_commands  # noqa: F401, I001
from cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    """Run the command line; a usage error (an unknown option, a --kind that is not one) is one
    `error:` line and exit status 2, like every other failure, instead of a framed box."""
    import sys
    try:
        result = app(standalone_mode=False)
    except Exception as exc:
        if not (hasattr(exc, "format_message") and hasattr(exc, "exit_code")):
            raise
        message = exc.format_message()
        if type(exc).__name__ == "NoArgsIsHelpError":  # `forecaster` alone: the help, as it asks
            typer.echo(message, err=True)
        else:
            from jobs.recording import one_line
            message = one_line(" ".join(message.replace("Value error, ", "").split()))
            hint = getattr(getattr(exc, "ctx", None), "command_path", None)
            typer.echo(f"error: {message}" + (f" (see `{hint} --help`)" if hint else ""), err=True)
        sys.exit(exc.exit_code)
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    main()
