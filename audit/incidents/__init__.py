"""Incident response: incidents with their timeline, the detectors that open them and the
containment actions security officers take (docs/incident-response.md).

Writes go through ``audit.incidents.services`` (the incident itself) and
``audit.incidents.containment`` (actions on other apps, through their services);
reads through ``audit.incidents.selectors``. It sits on top of every app.
"""
