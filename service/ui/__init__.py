"""``onnxplain ui``: a small web page over the Python client — pick a model, drop an image, run methods, compare.

The page never talks gRPC itself: ``app.py`` answers the browser's JSON and event requests and ``runs.py``
calls the server through ``OnnxplainClient`` in background threads, so the event loop never waits on it.
"""

from service.ui.app import create_app
from service.ui.guard import Limits

__all__ = ["Limits", "create_app"]
