"""``wfm-pipeline`` entry point: dispatches sub-commands to the module that owns them (lazy imports)."""

from __future__ import annotations

import sys

USAGE = """usage: wfm-pipeline <command> [options]
  sandbox   run the Genesys Cloud sandbox (wfm-pipeline sandbox --help)
  dev       run the sandbox (unless credentials are set) and dagster dev (wfm-pipeline dev --help)"""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "sandbox":
        from wfm_pipeline.sandbox.cli import main as sandbox_main

        return sandbox_main(rest)
    if command == "dev":
        from wfm_pipeline.devserver import run as dev_main

        return dev_main(rest)
    print(f"unknown command {command!r}\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
