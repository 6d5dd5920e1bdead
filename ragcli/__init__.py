"""ragcli: retrieval-augmented generation over your own documents, from one command-line tool."""

import os

# onnxruntime's Linux wheels (1.2x+) start Microsoft's 1DS telemetry when the library loads; about ten
# seconds later it resolves and posts to mobile.events.data.microsoft.com. The switch is read when the
# library loads (`onnxruntime.disable_telemetry_events()` comes too late), so it is set before any
# ragcli module can import onnxruntime. ragcli never touches the network on its own.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"
