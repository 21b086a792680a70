"""Diagnosis: read-only probes, one module per family, run concurrently under deadlines → findings.

Never writes to anything it probes.
"""
