"""One module per probe kind behind the `Check` protocol of `base.py`."""
