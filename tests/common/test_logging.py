"""Log lines: JSON, with context, and never a secret or a forged line."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from services.common.logging import configure_logging, get_logger


@pytest.fixture(autouse=True)
def _restore_logging() -> object:
    """configure_logging changes process-wide state; put it back so later tests see what they expect."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    config = structlog.get_config()
    yield None
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.configure(**config)
    structlog.contextvars.clear_contextvars()


def test_every_line_passes_the_masking_processor(capsys: pytest.CaptureFixture[str]) -> None:
    """Secrets in messages and fields are masked; a newline in a value is escaped, so one event is one line."""
    configure_logging("test", "INFO", "json")
    structlog.contextvars.bind_contextvars(job_id="j-1")
    get_logger("t").info(
        "called ERP with Authorization: Bearer abc.def.ghi",
        password="hunter2",
        url="https://u:p4ss@erp/x?token=t0k",
        note="first\nSECOND LINE forged",
    )
    structlog.contextvars.unbind_contextvars("job_id")
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    line = json.loads(err[0])
    assert line["service"] == "test" and line["job_id"] == "j-1" and line["level"] == "info"
    assert "abc.def.ghi" not in err[0] and "hunter2" not in err[0] and "p4ss" not in err[0] and "t0k" not in err[0]
    assert line["note"] == "first\\nSECOND LINE forged"


def test_standard_library_records_are_rendered_and_masked_too(capsys: pytest.CaptureFixture[str]) -> None:
    """A plain `logging` call from a library comes out as the same JSON, masked."""
    configure_logging("test", "INFO", "json")
    logging.getLogger("some.library").warning("retrying with password=%s", "s3cret")
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["logger"] == "some.library" and "s3cret" not in line["event"]
