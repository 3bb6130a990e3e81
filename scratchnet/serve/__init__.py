"""``scratchnet serve``: a local web page where you draw a digit and watch the network think.

:mod:`scratchnet.serve.api` answers the page's JSON requests (predictions, explanations, test
images) from a :class:`~scratchnet.serve.api.Session`; :mod:`scratchnet.serve.server` serves the
page's files from ``static/`` and the API with the standard library's ThreadingHTTPServer. The
page is plain HTML, CSS and JavaScript that ship in the package: no build step, no network.
"""
