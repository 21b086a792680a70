"""The OpenAPI 3.1 document served at ``/v1/openapi.json`` (hand-written: it is the public contract)."""

from __future__ import annotations

from typing import Any

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}, "field": {"type": "string"}},
}


def _err(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


_TARGET = {
    "type": "object",
    "required": ["kind", "namespace", "name", "valid"],
    "properties": {
        "kind": {"type": "string"},
        "namespace": {"type": "string"},
        "name": {"type": "string"},
        "selector": {"type": ["string", "null"]},
        "valid": {"type": "boolean"},
        "error": {"type": ["string", "null"]},
    },
}

_SUMMARY = {
    "type": "object",
    "required": ["id", "rule", "state", "severity", "target", "opened_at", "mitigated_at", "resolved_at"],
    "properties": {
        "id": {"type": "string"},
        "rule": {"type": "string"},
        "state": {
            "enum": ["open", "diagnosing", "remediating", "verifying", "mitigated", "escalated", "resolved"]
        },
        "severity": {"type": "string"},
        "target": {"$ref": "#/components/schemas/Target"},
        "reason": {"type": ["string", "null"]},
        "opened_at": {"type": "string", "format": "date-time"},
        "mitigated_at": {"type": ["string", "null"], "format": "date-time"},
        "resolved_at": {"type": ["string", "null"], "format": "date-time"},
    },
}

_ALERT = {
    "type": "object",
    "required": ["status", "labels", "startsAt", "fingerprint"],
    "properties": {
        "status": {"enum": ["firing", "resolved"]},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "startsAt": {"type": "string", "format": "date-time"},
        "endsAt": {"type": "string", "format": "date-time"},
        "generatorURL": {"type": "string"},
        "fingerprint": {"type": "string"},
    },
}

_WEBHOOK = {
    "type": "object",
    "required": ["version", "status", "alerts"],
    "properties": {
        "version": {"const": "4"},
        "status": {"enum": ["firing", "resolved"]},
        "receiver": {"type": "string"},
        "alerts": {"type": "array", "items": {"$ref": "#/components/schemas/Alert"}},
        "groupKey": {"type": "string"},
        "truncatedAlerts": {"type": "integer", "minimum": 0},
    },
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "remediator", "version": "1", "description": "Alert remediation service API"},
    "components": {
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "basic": {"type": "http", "scheme": "basic"},
        },
        "schemas": {
            "Error": _ERROR,
            "Target": _TARGET,
            "IncidentSummary": _SUMMARY,
            "Alert": _ALERT,
            "Webhook": _WEBHOOK,
        },
    },
    "paths": {
        "/v1/alerts": {
            "post": {
                "summary": "Alertmanager webhook (v4); 200 only after the alerts are stored",
                "security": [{"bearer": []}, {"basic": []}],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Webhook"}}},
                },
                "responses": {
                    "200": {
                        "description": "stored",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["accepted", "duplicates"],
                                    "properties": {
                                        "accepted": {"type": "integer"},
                                        "duplicates": {"type": "integer"},
                                    },
                                }
                            }
                        },
                    },
                    "400": _err("invalid JSON or schema; `field` names the bad field"),
                    "401": _err("missing or invalid credentials"),
                    "413": _err("body over the limit"),
                    "415": _err("not JSON"),
                    "503": _err("store unavailable; Alertmanager retries"),
                },
            }
        },
        "/v1/incidents": {
            "get": {
                "summary": "Incidents, newest first",
                "security": [{"bearer": []}],
                "parameters": [
                    {"name": "state", "in": "query", "schema": {"type": "string"}},
                    {"name": "rule", "in": "query", "schema": {"type": "string"}},
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
                    },
                    {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": {
                        "description": "a page",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["incidents"],
                                    "properties": {
                                        "incidents": {
                                            "type": "array",
                                            "items": {"$ref": "#/components/schemas/IncidentSummary"},
                                        },
                                        "next": {"type": "string"},
                                    },
                                }
                            }
                        },
                    },
                    "400": _err("bad query parameter"),
                    "401": _err("missing or invalid credentials"),
                },
            }
        },
        "/v1/incidents/{id}": {
            "get": {
                "summary": "The full incident: alerts, findings, actions, timeline, bundle",
                "security": [{"bearer": []}],
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {
                    "200": {"description": "the incident"},
                    "401": _err("missing or invalid credentials"),
                    "404": _err("no such incident"),
                },
            }
        },
        "/v1/incidents/{id}/actions/{action}/approve": {
            "post": {
                "summary": "Run a proposed action (approver token); the approver is journaled",
                "security": [{"bearer": []}],
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
                    {"name": "action", "in": "path", "required": True, "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": {"description": "the action record after it ran"},
                    "401": _err("missing or unknown token"),
                    "403": _err("a known token that may not approve"),
                    "404": _err("no such incident or action"),
                    "409": _err("already decided, or a guard refused it"),
                },
            }
        },
        "/v1/incidents/{id}/actions/{action}/reject": {
            "post": {
                "summary": "Refuse a proposed action (approver token)",
                "security": [{"bearer": []}],
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
                    {"name": "action", "in": "path", "required": True, "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": {"description": "the action record"},
                    "401": _err("missing or unknown token"),
                    "403": _err("not an approver"),
                    "404": _err("no such action"),
                    "409": _err("already decided"),
                },
            }
        },
        "/v1/pause": {
            "post": {
                "summary": "Kill switch: stop every automatic action (approver token)",
                "security": [{"bearer": []}],
                "responses": {
                    "200": {"description": "paused"},
                    "401": _err("unauthorized"),
                    "403": _err("not an approver"),
                },
            }
        },
        "/v1/resume": {
            "post": {
                "summary": "Resume automatic actions (approver token)",
                "security": [{"bearer": []}],
                "responses": {
                    "200": {"description": "resumed"},
                    "401": _err("unauthorized"),
                    "403": _err("not an approver"),
                },
            }
        },
        "/healthz": {"get": {"summary": "liveness", "responses": {"200": {"description": "alive"}}}},
        "/readyz": {
            "get": {
                "summary": "readiness (store reachable)",
                "responses": {"200": {"description": "ready"}, "503": {"description": "not ready"}},
            }
        },
        "/metrics": {
            "get": {"summary": "Prometheus exposition", "responses": {"200": {"description": "metrics"}}}
        },
    },
}
