"""Test-suite settings: `make test` is the fast suite (under 15 minutes on a 2-core CPU); the
slow end-to-end checks it leaves out are marked ``extra`` and run by `make test-extra`."""


def pytest_configure(config):
    config.addinivalue_line("markers", "extra: a slow end-to-end check; `make test-extra` runs it, `make test` does not")
