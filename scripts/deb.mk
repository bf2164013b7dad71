# make deb: the Debian package (debian/, built with dh) into build/deb/.
# make deb-test: build it and test it (lintian, file list, install, enable, upgrade,
# disable, remove, purge in a throwaway root): tests/test_package.py.
.PHONY: deb deb-test
deb:
	scripts/build-deb build/deb

deb-test: deps all clients
	$(PY) -m pytest -n 2 $(TEST_ARGS) tests/test_package.py
