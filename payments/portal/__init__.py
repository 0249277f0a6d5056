"""The portal's paying pages (``views``, mounted at /portal/ by ``urls``): they live in
payments/ because billing never imports payments; billing's own portal pages are
``billing.portal``."""
