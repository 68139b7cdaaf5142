"""The test suite mirrors the package's layout (tests/model, tests/backends, tests/analyses, ...).
Helpers shared by several folders live here at the top: ``journeys`` (stores from plain-data
journeys), ``serving`` (a real ``loudou serve``), ``reference`` (slow reference funnels),
``planted`` and ``demo_served`` (businesses with known effects), ``cli_process`` (the real command
in a subprocess). pytest puts this folder on ``sys.path`` because this file is here, so tests in
any folder import them by name; no test file imports another test file."""
