"""Browser tests of the built site (a package, so that its test_widgets.py and
tests/test_widgets.py can share a basename)."""
