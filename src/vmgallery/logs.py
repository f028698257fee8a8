"""Structured logs: one JSON object per line on stderr, with whatever `extra=` fields the caller gave."""

from __future__ import annotations

import json
import logging
import time

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
# What json.dumps(out, default=str) builds per call, built once (every request writes a line: see pipeline.py)
_ENCODE = json.JSONEncoder(default=str).encode


class JsonFormatter(logging.Formatter):
    _last: tuple[int, str] = (-1, "")  # the last second formatted and its text, one tuple: threads share it

    def _time(self, created: float) -> str:
        last = self._last
        if last[0] != int(created):
            last = (int(created), time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(created))) + "Z")
            self._last = last
        return last[1]

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": self._time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return _ENCODE(out)


def setup_logging(level: str = "info") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
