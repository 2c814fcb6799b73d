"""Regenerate the dashboard's GraphQL schema copy and TypeScript types (run by `make frontend-types`).

frontend/schema.graphql is the gateway's schema as SDL; frontend/scripts/codegen.mjs turns it and the
operations in frontend/src/**/*.graphql into frontend/src/generated/graphql.ts. `--check` fails when
either committed file differs from a fresh generation, which `make test` runs (like the protobuf check).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FRONTEND = ROOT / "frontend"
SCHEMA = FRONTEND / "schema.graphql"


def schema_sdl() -> str:
    sys.path.insert(0, str(ROOT))
    from gateway.schema import build_schema

    return build_schema().as_str() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when the committed files are out of date")
    args = parser.parse_args()
    sdl = schema_sdl()
    if args.check:
        if not SCHEMA.exists() or SCHEMA.read_text(encoding="utf-8") != sdl:
            print("frontend/schema.graphql is not the gateway's schema: run `make frontend-types`", file=sys.stderr)
            return 1
    else:
        SCHEMA.write_text(sdl, encoding="utf-8")
    node = shutil.which("node")
    if node is None:
        print("node is not installed; the dashboard needs Node.js 20.19 or newer", file=sys.stderr)
        return 1
    command = [node, "scripts/codegen.mjs", *(["--check"] if args.check else [])]
    return subprocess.run(command, cwd=FRONTEND, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
