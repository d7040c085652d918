"""decaylens harness: specs, arrays, the NumPy oracle, metrics, results and the report.

Needs only NumPy and the standard library; no framework is imported here.
"""
