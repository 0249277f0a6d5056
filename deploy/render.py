#!/usr/bin/env python3
"""Fill deploy/'s templates (nginx site, systemd units, firewall) for one host.

    python3 deploy/render.py --server-name billing.example.com --out /tmp/tillit-deploy

Every ``{{NAME}}`` in a template gets the value of ``--name`` (or its default, printed by
``--help``); a template naming a value nobody gave is refused, naming it. The files are
written under ``--out`` with the templates' relative paths; then copy them into place
(docs/deploy.md). Uses only the standard library: it runs before any virtualenv exists.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEMPLATES = ["nginx/tillit.conf", "systemd/tillit-web.service", "systemd/tillit-worker.service"]
COPIED = ["firewall/nftables.conf"]
PLACEHOLDER = re.compile(r"\{\{([A-Z_]+)\}\}")
DEFAULTS = {
    "server_name": None,  # required
    "tls_certificate": "/etc/ssl/tillit/fullchain.pem",
    "tls_key": "/etc/ssl/tillit/privkey.pem",
    "https_listen": "443",
    "http_listen": "80",
    "upstream": "unix:/run/tillit/gunicorn.sock",
    "user": "tillit",
    "app_dir": "/srv/tillit/app",
    "env_file": "/etc/tillit/tillit.env",
    "credentials_dir": "/etc/tillit/credentials",
    "var_dir": "/var/lib/tillit",
    "keys_dir": "/srv/tillit-keys",
    "workers": "4",
}


class MissingValue(Exception):
    """A template names a value that was not given."""


def render(text: str, values: dict[str, str]) -> str:
    """The template with every ``{{NAME}}`` replaced; MissingValue names the first unknown."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1).lower()
        if values.get(name) is None:
            raise MissingValue(f"--{name.replace('_', '-')} is required (used in a template)")
        return str(values[name])

    return PLACEHOLDER.sub(value, text)


def render_all(values: dict[str, str], out: Path) -> list[Path]:
    """Write every rendered template and copied file under ``out``; the paths written."""
    written = []
    for name in TEMPLATES + COPIED:
        text = (HERE / name).read_text(encoding="utf-8")
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render(text, values) if name in TEMPLATES else text, encoding="utf-8")
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name, default in DEFAULTS.items():
        flag = f"--{name.replace('_', '-')}"
        parser.add_argument(flag, default=default, required=default is None, help=f"{default}")
    parser.add_argument("--out", type=Path, required=True, help="where to write the files")
    options = vars(parser.parse_args(argv))
    out = options.pop("out")
    try:
        written = render_all(options, out)
    except MissingValue as missing:
        print(f"render.py: {missing}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
