"""FHIR R4 Subscriptions: the resource (service), matching by the search engine, and the rest-hook and
websocket channels."""
