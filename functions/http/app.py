"""Lambda entry point of the HTTP function (API Gateway HTTP API, payload 2.0).

The app is `maas.service.http.HttpFunction` (in the layer); this module builds it once per
cold start, from the function's environment, which also loads the default model.
"""

from maas.service.http import HttpFunction

function = HttpFunction.from_env()
handler = function.handler
