"""``python -m cti.dialplan [PATH]``: the check alone, without loading the whole ``cti`` command.

For an editor's on-save hook: the same findings and exit status as ``cti dialplan check``
(``--strict``: warnings fail too; ``-q``: errors only), in a fraction of the start-up time.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cti.config import ConfigError, load_settings
from cti.dialplan.checks import check_tree
from cti.dialplan.tree import ConfigTree, TreeError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cti.dialplan", description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", help="checkout or /etc/asterisk-like folder (default deploy.source_dir)")
    parser.add_argument("--config", help="cti.toml (default $CTI_CONFIG)")
    parser.add_argument("--no-lint", action="store_true")
    parser.add_argument("-q", "--quiet", action="store_true")
    parser.add_argument("--strict", action="store_true")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
        tree = ConfigTree.at(args.path or settings.deploy.source_dir)
    except (ConfigError, TreeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    config_file = Path(args.config) if args.config else None
    report = check_tree(tree, settings, config_file=config_file, lint=not args.no_lint)
    for f in report.errors + ([] if args.quiet else report.warnings):
        print(f.format())
    print(f"{len(report.errors)} error(s), {len(report.warnings)} warning(s) in {tree.root} "
          f"({report.elapsed_s * 1000:.0f} ms)", file=sys.stderr)
    return 1 if report.errors or (args.strict and report.warnings) else 0


if __name__ == "__main__":
    sys.exit(main())
