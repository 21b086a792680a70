"""Matching: which rule takes an alert, and what that rule acts on.

Owns loading and linting rule files (``loader``; per-file checks in ``compiler``, YAML lines in
``positions``, reports in ``problems``), Alertmanager matchers (``matchers``), CEL conditions
(``conditions``), sandboxed Jinja2 templates (``templates``) with target validation (``names``), the
compiled rules and their index (``compiled``), rule selection (``select``) and the shape of the
catalogue of probes and actions that the caller hands in (``catalogue``). Everything is compiled
once when rules load and only called per alert.

Pure: no I/O besides reading rule files in ``loader``; never imports a network, database or Kubernetes
library, nor any ``service`` package other than ``service.model``.
"""
