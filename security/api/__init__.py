"""The API's shared machinery: OAuth 2.0 authentication and scopes, one error shape,
request ids, throttles, cursor pagination, idempotent POSTs and the request's principal.

Security owns API authentication; ``billing.api`` and ``payments.api`` build their
endpoints on ``security.api.views.ApiView`` and import from here, never the reverse
(docs/api.md).
"""
