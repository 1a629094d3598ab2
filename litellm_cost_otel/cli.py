"""The `litellm-cost-otel` command."""

from __future__ import annotations

import argparse
import os
import sys

from .check import LoadError, check_file, render_json, render_load_error_json, render_text

EXIT_UNREADABLE = 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="litellm-cost-otel",
                                     description="Tools for the litellm-cost-otel LiteLLM proxy plugin.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    check = commands.add_parser(
        "check", help="report proxy config mistakes that make cost silently wrong",
        description="Read a LiteLLM proxy config as the proxy would and report the mistakes that make cost "
                    "silently wrong or missing. Exit 0: no error-level finding; 1: at least one (or any finding "
                    "with --strict); 2: the config cannot be read. Details: docs/check.md.")
    check.add_argument("path", metavar="PATH", help="the proxy config YAML (e.g. proxy_config.yaml)")
    check.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")
    check.add_argument("--strict", action="store_true", help="exit 1 on any finding, warnings and info included")
    args = parser.parse_args(argv)
    return run_check(args.path, args.format, args.strict)


def run_check(path: str, output_format: str, strict: bool) -> int:
    # A copy taken now: the price lookup sets LITELLM_LOCAL_MODEL_COST_MAP for itself, and the
    # check must report on the environment it was started in.
    environ = dict(os.environ)
    try:
        report = check_file(path, environ)
    except LoadError as error:
        print(f"litellm-cost-otel: {error}", file=sys.stderr)
        if output_format == "json":
            print(render_load_error_json(path, error))
        return EXIT_UNREADABLE
    except Exception as error:  # a bug of ours on some unforeseen input: one line, not a traceback
        print(f"litellm-cost-otel: {path}: internal error while checking: {type(error).__name__}: {error}",
              file=sys.stderr)
        return EXIT_UNREADABLE
    print(render_json(report) if output_format == "json" else render_text(report))
    return report.exit_code(strict)


if __name__ == "__main__":
    sys.exit(main())
