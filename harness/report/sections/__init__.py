"""One module per report section. Each exports ``TITLE`` and ``build``: ``build(ctx)`` for a section
of the whole report, ``build(ctx, spec_runs)`` for one of a spec, which also declares ``NEEDS``
(``harness.report.needs``); both return a list of ``harness.document`` blocks."""
