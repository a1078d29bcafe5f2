"""Window names and alarm files of a streaming ingest, re-exported for tests and scripts.

Window names are the core's (``beamline.windows``); the alarms are the shared TFDV window
checks' (``beamline_plugins.tfdv_tools.window_checks``)."""

from __future__ import annotations

from beamline.windows import window_name as window_name
from beamline_plugins.tfdv_tools.window_checks import ALARMS_FILE as ALARMS_FILE
from beamline_plugins.tfdv_tools.window_checks import alarm_line as alarm_line
