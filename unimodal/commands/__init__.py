"""One module per script in ``scripts/``: each parses its overrides, calls the runners and prints where things
went. ``main()`` is the script's entry point (one-line errors, exit 2; usage on ``-h``)."""
